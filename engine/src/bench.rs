//! Kernel benchmark: matvec (the decode hot path) at each precision and shape, against a plain
//! copy kernel on the same adapter. Shared by `lowbit bench kernels` and the page.

use serde::Serialize;

use crate::gpu::{ops::Recorder, AdapterSummary, Gpu, PassTimer};
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
    if let Some(timer) = PassTimer::new(gpu, reps) {
        let mut rec = Recorder::new(gpu, Some(&timer), reps);
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

/// Run the kernel benchmark on `shapes` (k × n) at every precision.
pub async fn run(gpu: &Gpu, shapes: &[(usize, usize)], reps: u32) -> Result<BenchReport> {
    let mut rng = Rng::new(7);
    // Copy yardstick: as many bytes as the largest FP16 matrix.
    let (k, n) = shapes.iter().copied().max_by_key(|(k, n)| k * n).unwrap_or((4096, 4096));
    let copy_bytes = (k * n * 2) as u64;
    let src = gpu.zeros("copy.src", (copy_bytes / 4) as usize)?;
    let dst = gpu.zeros("copy.dst", (copy_bytes / 4) as usize)?;
    let (copy_ms, timer) = time_passes(gpu, reps, &|r| r.copy(&src, &dst, (copy_bytes / 16) as usize)).await?;
    let copy_gbps = 2.0 * copy_bytes as f64 / (copy_ms * 1e-3) / 1e9;
    drop((src, dst));
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
            "adapter: {} ({}, {})  timer: {}  reps: {}\ncopy kernel: {:.2} GB/s (read + write, {} MB)\n",
            self.adapter.name,
            self.adapter.backend,
            self.adapter.device_type,
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
