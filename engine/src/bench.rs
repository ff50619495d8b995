//! Kernel benchmark: matvec (the decode hot path) at each precision and shape, against a plain
//! copy kernel on the same adapter. Shared by `lowbit bench kernels` and the page.

use serde::{Deserialize, Serialize};

use crate::gpu::{ops::Recorder, AdapterSummary, Gpu, PassTimer, Reduce, Tiling};
use crate::util::{median, now_ms, Rng};
use crate::{Precision, QuantMatrix, Result};

/// Benchmark shapes, inputs × outputs (k × n).
pub const BENCH_SHAPES: [(usize, usize); 3] = [(576, 1536), (2048, 2048), (4096, 4096)];

#[derive(Clone, Debug, Serialize)]
pub struct BenchRow {
    pub precision: Precision,
    pub k: usize,
    pub n: usize,
    pub weight_bytes: u64,
    pub median_us: f64,
    /// Weight bytes read per second.
    pub gbps: f64,
    /// `gbps` / the copy kernel's GB/s.
    pub ratio_to_copy: f64,
}

#[derive(Clone, Debug, Serialize)]
pub struct BenchReport {
    pub adapter: AdapterSummary,
    /// "timestamp" (GPU timestamp queries) or "wall" (wall clock over a batch).
    pub timer: &'static str,
    pub reps: u32,
    /// Copy kernel bandwidth, bytes read + bytes written per second.
    pub copy_gbps: f64,
    pub copy_bytes: u64,
    pub rows: Vec<BenchRow>,
}

/// Median milliseconds of one pass recorded by `record`, over `reps` passes.
async fn time_passes(gpu: &Gpu, reps: u32, record: &dyn Fn(&mut Recorder)) -> Result<(f64, &'static str)> {
    // Warm-up: compiles the pipeline and touches the buffers.
    let mut rec = Recorder::new(gpu, None, 0);
    record(&mut rec);
    rec.submit();
    gpu.wait().await?;
    if let Some(timer) = PassTimer::new(gpu, reps).map(std::rc::Rc::new) {
        let mut rec = Recorder::new(gpu, Some(timer.clone()), reps);
        for _ in 0..reps {
            record(&mut rec);
        }
        rec.submit();
        gpu.wait().await?;
        let ms = timer.read_ms(gpu).await?;
        // Some browsers quantize timestamps; fall back to wall clock if they read as zero.
        if ms.iter().any(|&t| t > 0.0) {
            return Ok((median(&ms), "timestamp"));
        }
    }
    let batch = 8;
    let mut samples = Vec::new();
    for _ in 0..reps.div_ceil(batch).max(3) {
        let mut rec = Recorder::new(gpu, None, 0);
        for _ in 0..batch {
            record(&mut rec);
        }
        let t0 = now_ms();
        rec.submit();
        gpu.wait().await?;
        samples.push((now_ms() - t0) / batch as f64);
    }
    Ok((median(&samples), "wall"))
}

/// The copy kernel's bandwidth over `bytes` (bytes read + bytes written per second, in GB/s):
/// the most a memory-bound kernel can hope for on this adapter.
pub async fn copy_bandwidth(gpu: &Gpu, bytes: u64, reps: u32) -> Result<(f64, &'static str)> {
    let bytes = bytes.div_ceil(16) * 16;
    let src = gpu.zeros("copy.src", (bytes / 4) as usize)?;
    let dst = gpu.zeros("copy.dst", (bytes / 4) as usize)?;
    let (ms, timer) = time_passes(gpu, reps, &|r| r.copy(&src, &dst, (bytes / 16) as usize)).await?;
    Ok((2.0 * bytes as f64 / (ms * 1e-3) / 1e9, timer))
}

/// Run the kernel benchmark on `shapes` (k × n) at every precision.
pub async fn run(gpu: &Gpu, shapes: &[(usize, usize)], reps: u32) -> Result<BenchReport> {
    let mut rng = Rng::new(7);
    // Copy yardstick: as many bytes as the largest FP16 matrix.
    let (k, n) = shapes.iter().copied().max_by_key(|(k, n)| k * n).unwrap_or((4096, 4096));
    let copy_bytes = (k * n * 2) as u64;
    let (copy_gbps, timer) = copy_bandwidth(gpu, copy_bytes, reps).await?;
    let mut rows = Vec::new();
    for &(k, n) in shapes {
        let values = rng.normals(n * k, 0.05);
        let x = gpu.storage_f32("x", &rng.normals(k, 1.0))?;
        let y = gpu.zeros("y", n)?;
        for p in Precision::ALL {
            let w = gpu.upload_matrix("w", &QuantMatrix::quantize(&values, n, k, p)?)?;
            let (ms, _) = time_passes(gpu, reps, &|r| r.matvec(&w, &x, &y)).await?;
            let gbps = w.bytes() as f64 / (ms * 1e-3) / 1e9;
            rows.push(BenchRow {
                precision: p,
                k,
                n,
                weight_bytes: w.bytes(),
                median_us: ms * 1e3,
                gbps,
                ratio_to_copy: gbps / copy_gbps,
            });
        }
    }
    Ok(BenchReport { adapter: gpu.info.clone(), timer, reps, copy_gbps, copy_bytes, rows })
}

impl BenchReport {
    /// Median time ratio of two precisions at one shape.
    pub fn time_ratio(&self, a: Precision, b: Precision, k: usize, n: usize) -> Option<f64> {
        let t = |p| self.rows.iter().find(|r| r.precision == p && r.k == k && r.n == n).map(|r| r.median_us);
        Some(t(a)? / t(b)?)
    }

    pub fn table(&self) -> String {
        let mut s = format!(
            "adapter: {} ({}, {})  matvec: {}  matmul: {}  timer: {}  reps: {}\ncopy kernel: {:.2} GB/s (read + write, {} MB)\n",
            self.adapter.name,
            self.adapter.backend,
            self.adapter.device_type,
            self.adapter.matvec_kernel,
            self.adapter.matmul_kernel,
            self.timer,
            self.reps,
            self.copy_gbps,
            self.copy_bytes / 1_000_000
        );
        s += &format!("{:<6} {:>11} {:>12} {:>12} {:>9} {:>8}\n", "prec", "k x n", "weight MB", "median us", "GB/s", "/copy");
        for r in &self.rows {
            s += &format!(
                "{:<6} {:>11} {:>12.2} {:>12.1} {:>9.2} {:>8.3}\n",
                r.precision.name(),
                format!("{}x{}", r.k, r.n),
                r.weight_bytes as f64 / 1e6,
                r.median_us,
                r.gbps,
                r.ratio_to_copy
            );
        }
        if let Some((k, n)) = BENCH_SHAPES.last().copied() {
            if let Some(r) = self.time_ratio(Precision::Int4, Precision::Fp16, k, n) {
                s += &format!("int4 time / fp16 time at {k}x{n}: {r:.3}\n");
            }
        }
        s
    }
}

/// Where the time of one decode step goes, per kernel.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct KernelTime {
    pub kernel: String,
    pub calls: usize,
    pub ms: f64,
}

/// One decode step of a loaded model, measured.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DecodeProfile {
    pub plan: crate::plan::Plan,
    pub kv: crate::KvPrecision,
    /// Position of the profiled token (its KV cache length).
    pub position: usize,
    /// GPU time per kernel from timestamp queries, slowest first (empty without them).
    pub kernels: Vec<KernelTime>,
    /// Sum of the kernels' GPU time (None without timestamp queries).
    pub gpu_ms: Option<f64>,
    /// Wall-clock time of a whole step, logits read back included (median of a few).
    pub wall_ms: f64,
    /// Bytes the step reads (weights, norms, keys and values).
    pub bytes_per_token: u64,
    /// The copy kernel's bandwidth on this adapter, GB/s.
    pub copy_gbps: f64,
}

impl DecodeProfile {
    /// Weight and cache bytes read per second of wall time, GB/s.
    pub fn achieved_gbps(&self) -> f64 {
        self.bytes_per_token as f64 / (self.wall_ms * 1e-3).max(1e-12) / 1e9
    }
}

/// Sum per-pass timings by kernel, slowest first.
pub fn by_kernel(passes: &[(crate::gpu::Kernel, f64)]) -> Vec<KernelTime> {
    let mut out: Vec<KernelTime> = Vec::new();
    for (k, ms) in passes {
        let name = k.name();
        match out.iter_mut().find(|t| t.kernel == name) {
            Some(t) => {
                t.calls += 1;
                t.ms += ms;
            }
            None => out.push(KernelTime { kernel: name, calls: 1, ms: *ms }),
        }
    }
    out.sort_by(|a, b| b.ms.total_cmp(&a.ms));
    out
}

/// The matvec and prefill matmul variants that run fastest on this adapter: each candidate times
/// a few passes over an INT4 matrix of a small model's size (1024 × 1024, 32 tokens for the
/// matmul). GPUs pick the subgroup (or workgroup) matvec and the shared-memory tiles; CPU adapters
/// (lavapipe, SwiftShader) the barrier-free one-row-per-invocation kernels.
pub async fn tune(gpu: &Gpu) -> Result<(Reduce, Tiling)> {
    let (k, n, m) = (1024, 1024, 32);
    let mut rng = Rng::new(7);
    let w = QuantMatrix::quantize(&rng.normals(n * k, 0.05), n, k, Precision::Int4)?;
    let gw = gpu.upload_matrix("tune.w", &w)?;
    let x = gpu.storage_f32("tune.x", &rng.normals(m * k, 1.0))?;
    let y = gpu.zeros("tune.y", m * n)?;
    let mut reduce = (f64::INFINITY, gpu.reduce());
    for r in gpu.reduces() {
        let (ms, _) = time_passes(gpu, 5, &|rec| rec.matvec_with(&gw, &x, &y, r)).await?;
        if ms < reduce.0 {
            reduce = (ms, r);
        }
    }
    let mut tiling = (f64::INFINITY, gpu.tiling());
    for t in [Tiling::Shared, Tiling::Rows] {
        let (ms, _) = time_passes(gpu, 3, &|rec| rec.matmul_with(&gw, &x, &y, m, t)).await?;
        if ms < tiling.0 {
            tiling = (ms, t);
        }
    }
    gpu.check()?;
    Ok((reduce.1, tiling.1))
}
