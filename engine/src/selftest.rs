//! Kernel self-test: every WGSL kernel against its CPU reference ([`crate::cpu`]) on the same
//! inputs. The native test suite (wgpu on lavapipe) and the page (WebGPU) run this same code.

use serde::Serialize;

use crate::cpu::{self, Attention, Rope};
use crate::gpu::{ops::Recorder, Gpu, Kernel, PassTimer, Reduce, Tiling};
use crate::util::{now_ms, Rng};
use crate::{KvPrecision, Precision, QuantMatrix, Result};

/// Element type a kernel computes in: f32 activations, weights at one of the precisions.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum DType {
    F32,
    Fp16,
    Int8,
    Int4,
    /// KV cache stored as f16 or INT8 (`kv_store`).
    #[serde(rename = "kv-f16")]
    KvF16,
    #[serde(rename = "kv-int8")]
    KvInt8,
}

impl DType {
    pub fn name(self) -> &'static str {
        match self {
            DType::F32 => "f32",
            DType::Fp16 => "fp16",
            DType::Int8 => "int8",
            DType::Int4 => "int4",
            DType::KvF16 => "kv-f16",
            DType::KvInt8 => "kv-int8",
        }
    }
}

impl From<KvPrecision> for DType {
    fn from(k: KvPrecision) -> Self {
        match k {
            KvPrecision::F32 => DType::F32,
            KvPrecision::F16 => DType::KvF16,
            KvPrecision::Int8 => DType::KvInt8,
        }
    }
}

impl From<Precision> for DType {
    fn from(p: Precision) -> Self {
        match p {
            Precision::Fp16 => DType::Fp16,
            Precision::Int8 => DType::Int8,
            Precision::Int4 => DType::Int4,
        }
    }
}

/// `|gpu − cpu| <= atol + rtol · scale`, where `scale` is `Σ|w·x|` of that output for kernels that
/// take dot products over weights (the rounding of f32 sums grows with it), and the largest
/// `|cpu|` of the whole output for the others.
#[derive(Clone, Copy, Debug, Serialize)]
pub struct Tolerance {
    pub atol: f32,
    pub rtol: f32,
}

/// GPU kernel vs CPU reference, one row per dtype. Both sides use the same quantized weights,
/// so only f32 summation order and GPU transcendentals (exp, sin, cos, pow) differ. A KV store is
/// compared after decoding: f16 may round a value the other way (one f16 step of the largest
/// value); INT8's test values lie away from rounding ties, so its blocks must match exactly.
pub const KERNEL_TOLERANCE: [(DType, Tolerance); 6] = [
    (DType::F32, Tolerance { atol: 1e-5, rtol: 2e-4 }),
    (DType::Fp16, Tolerance { atol: 1e-5, rtol: 1e-4 }),
    (DType::Int8, Tolerance { atol: 1e-5, rtol: 1e-4 }),
    (DType::Int4, Tolerance { atol: 1e-5, rtol: 1e-4 }),
    (DType::KvF16, Tolerance { atol: 0.0, rtol: 1e-3 }),
    (DType::KvInt8, Tolerance { atol: 0.0, rtol: 1e-6 }),
];

pub fn tolerance(d: DType) -> Tolerance {
    KERNEL_TOLERANCE.iter().find(|(t, _)| *t == d).map(|(_, t)| *t).unwrap_or(Tolerance { atol: 0.0, rtol: 0.0 })
}

/// One kernel run on one shape.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Case {
    Matvec { p: Precision, reduce: Reduce, k: usize, n: usize },
    Matmul { p: Precision, tiling: Tiling, m: usize, k: usize, n: usize },
    Embedding { p: Precision, rows: usize, k: usize, m: usize },
    Rmsnorm { rows: usize, d: usize },
    Rope { neox: bool, m: usize, heads: usize, head_dim: usize, pos0: usize },
    Softmax { rows: usize, n: usize },
    SiluMul { len: usize },
    Add { len: usize },
    Attention { m: usize, heads: usize, kv_heads: usize, head_dim: usize, pos0: usize, kv: KvPrecision },
    /// Store `n` values into a KV cache from value `offset` on.
    KvStore { kv: KvPrecision, n: usize, offset: usize },
}

/// One result row of the self-test.
#[derive(Clone, Debug, Serialize)]
pub struct Row {
    pub kernel: String,
    pub dtype: DType,
    pub shape: String,
    pub pass: bool,
    /// Largest `|gpu − cpu|`.
    pub max_err: f32,
    /// Largest `|gpu − cpu| / allowed` (pass iff <= 1).
    pub err_over_tol: f32,
    /// GPU time of the kernel's passes (timestamp queries) or wall time of submit + wait.
    pub ms: f64,
    pub timer: &'static str,
}

impl Case {
    pub fn kernel_name(&self) -> String {
        match self {
            Case::Matvec { p, reduce, .. } => Kernel::Matvec(*p, *reduce).name(),
            Case::Matmul { p, tiling, .. } => Kernel::Matmul(*p, *tiling).name(),
            Case::Embedding { p, .. } => format!("embedding_{p}"),
            Case::Rmsnorm { .. } => "rmsnorm".into(),
            Case::Rope { neox: false, .. } => "rope".into(),
            Case::Rope { neox: true, .. } => "rope_neox".into(),
            Case::Softmax { .. } => "softmax".into(),
            Case::SiluMul { .. } => "silu_mul".into(),
            Case::Add { .. } => "add".into(),
            Case::Attention { kv: KvPrecision::F32, .. } => "attention".into(),
            Case::Attention { kv, .. } => format!("attention_kv_{kv}"),
            Case::KvStore { kv, .. } => format!("kv_store_{kv}"),
        }
    }

    pub fn dtype(&self) -> DType {
        match self {
            Case::Matvec { p, .. } | Case::Matmul { p, .. } | Case::Embedding { p, .. } => (*p).into(),
            Case::KvStore { kv, .. } => (*kv).into(),
            _ => DType::F32,
        }
    }

    pub fn shape(&self) -> String {
        match *self {
            Case::Matvec { k, n, .. } => format!("{k}x{n}"),
            Case::Matmul { m, k, n, .. } => format!("m{m} {k}x{n}"),
            Case::Embedding { rows, k, m, .. } => format!("{rows}x{k} m{m}"),
            Case::Rmsnorm { rows, d } => format!("{rows}x{d}"),
            Case::Rope { m, heads, head_dim, pos0, .. } => format!("m{m} h{heads} d{head_dim} pos{pos0}"),
            Case::Softmax { rows, n } => format!("{rows}x{n}"),
            Case::SiluMul { len } | Case::Add { len } => format!("{len}"),
            Case::Attention { m, heads, kv_heads, head_dim, pos0, kv } => {
                format!("m{m} h{heads}/{kv_heads} d{head_dim} pos{pos0} kv {kv}")
            }
            Case::KvStore { n, offset, .. } => format!("{n} at {offset}"),
        }
    }
}

/// Every kernel at every precision on shapes that are not multiples of the workgroup (64) or
/// block (32) size: the page's self-test and the first test table.
pub fn standard_cases(subgroups: bool) -> Vec<Case> {
    let mut v = Vec::new();
    for p in Precision::ALL {
        for reduce in Reduce::ALL {
            if reduce != Reduce::Subgroup || subgroups {
                v.push(Case::Matvec { p, reduce, k: 300, n: 77 });
            }
        }
        for tiling in [Tiling::Shared, Tiling::Rows] {
            v.push(Case::Matmul { p, tiling, m: 37, k: 300, n: 77 });
        }
        v.push(Case::Embedding { p, rows: 50, k: 300, m: 5 });
    }
    v.extend([
        Case::Rmsnorm { rows: 3, d: 579 },
        Case::Rope { neox: false, m: 5, heads: 3, head_dim: 64, pos0: 37 },
        Case::Rope { neox: true, m: 5, heads: 3, head_dim: 40, pos0: 37 },
        Case::Softmax { rows: 7, n: 1001 },
        Case::SiluMul { len: 1003 },
        Case::Add { len: 1003 },
        Case::Attention { m: 5, heads: 6, kv_heads: 2, head_dim: 40, pos0: 11, kv: KvPrecision::F32 },
        Case::Attention { m: 5, heads: 6, kv_heads: 2, head_dim: 40, pos0: 11, kv: KvPrecision::F16 },
        // INT8 blocks run along a token's row: kv_heads · head_dim must be a multiple of 32.
        Case::Attention { m: 5, heads: 6, kv_heads: 2, head_dim: 48, pos0: 11, kv: KvPrecision::Int8 },
    ]);
    for kv in KvPrecision::ALL {
        v.push(Case::KvStore { kv, n: 5 * 96, offset: 11 * 96 });
    }
    v
}

/// The default model's (SmolLM2-135M) weight shapes, inputs × outputs.
pub const MODEL_SHAPES: [(usize, usize); 5] = [(576, 576), (576, 192), (576, 1536), (1536, 576), (576, 49152)];

/// Matvec and matmul at the default model's real shapes, and attention at its head layout.
pub fn model_shape_cases(reduce: Reduce, tiling: Tiling) -> Vec<Case> {
    let mut v = Vec::new();
    for p in Precision::ALL {
        for (k, n) in MODEL_SHAPES {
            v.push(Case::Matvec { p, reduce, k, n });
            v.push(Case::Matmul { p, tiling, m: 7, k, n });
        }
    }
    for kv in KvPrecision::ALL {
        v.push(Case::Attention { m: 7, heads: 9, kv_heads: 3, head_dim: 64, pos0: 30, kv });
    }
    v.push(Case::Rmsnorm { rows: 7, d: 576 });
    v
}

fn compare(gpu: &[f32], cpu: &[f32], scale: &[f32], tol: Tolerance) -> (bool, f32, f32) {
    let (mut max_err, mut worst) = (0f32, 0f32);
    let mut ok = gpu.len() == cpu.len();
    for ((g, c), s) in gpu.iter().zip(cpu).zip(scale) {
        let e = (g - c).abs();
        let allowed = tol.atol + tol.rtol * s;
        if !(e <= allowed) {
            ok = false; // also catches NaN
        }
        max_err = if e.is_nan() { f32::NAN } else { max_err.max(e) };
        worst = worst.max(e / allowed);
    }
    (ok && !max_err.is_nan(), max_err, if worst.is_nan() { f32::INFINITY } else { worst })
}

fn max_abs(v: &[f32]) -> f32 {
    v.iter().fold(0f32, |a, x| a.max(x.abs()))
}

/// Run one case on the GPU and compare it with the CPU reference.
pub async fn run_case(gpu: &Gpu, case: &Case, seed: u64) -> Result<Row> {
    let mut rng = Rng::new(seed);
    let timer = PassTimer::new(gpu, 3).map(std::rc::Rc::new);
    let mut rec = Recorder::new(gpu, timer.clone(), 3);
    // Each arm records its passes and returns (output buffer, cpu reference, per-output scale);
    // a KV store's output is cache words, decoded from `kv_out.1` on.
    let mut kv_out: Option<(KvPrecision, usize)> = None;
    let (out, want, scale): (wgpu::Buffer, Vec<f32>, Vec<f32>) = match *case {
        Case::Matvec { p, k, n, .. } | Case::Matmul { p, k, n, .. } => {
            let m = if let Case::Matmul { m, .. } = *case { m } else { 1 };
            let w = QuantMatrix::quantize(&rng.normals(n * k, 0.05), n, k, p)?;
            let x = rng.normals(m * k, 1.0);
            let gw = gpu.upload_matrix("w", &w)?;
            let (gx, gy) = (gpu.storage_f32("x", &x)?, gpu.zeros("y", m * n)?);
            if let Case::Matvec { reduce, .. } = *case {
                rec.matvec_with(&gw, &gx, &gy, reduce);
            } else if let Case::Matmul { tiling, .. } = *case {
                rec.matmul_with(&gw, &gx, &gy, m, tiling);
            }
            (gy, cpu::matmul(&w, &x, m), cpu::matmul_abs(&w, &x, m))
        }
        Case::Embedding { p, rows, k, m } => {
            let w = QuantMatrix::quantize(&rng.normals(rows * k, 1.0), rows, k, p)?;
            let ids: Vec<u32> = (0..m).map(|i| ((i * 37 + 11) % rows) as u32).collect();
            let gw = gpu.upload_matrix("w", &w)?;
            let (gi, go) = (gpu.storage_u32("ids", &ids)?, gpu.zeros("out", m * k)?);
            rec.embedding(&gw, &gi, &go, m);
            let want = cpu::embedding(&w, &ids);
            let s = vec![max_abs(&want); want.len()];
            (go, want, s)
        }
        Case::Rmsnorm { rows, d } => {
            let (x, w) = (rng.normals(rows * d, 2.0), rng.normals(d, 1.0));
            let (gx, gw, gy) = (gpu.storage_f32("x", &x)?, gpu.storage_f32("w", &w)?, gpu.zeros("y", rows * d)?);
            rec.rmsnorm(&gx, &gw, &gy, rows, d, 1e-5);
            let want = cpu::rmsnorm(&x, &w, 1e-5);
            let s = vec![max_abs(&want); want.len()];
            (gy, want, s)
        }
        Case::Rope { neox, m, heads, head_dim, pos0 } => {
            let p = Rope { heads, head_dim, n_rot: head_dim, pos0, base: 10000.0, neox };
            let mut x = rng.normals(m * heads * head_dim, 1.0);
            let gx = gpu.storage_f32("x", &x)?;
            rec.rope(&gx, m, &p);
            cpu::rope(&mut x, &p);
            let s = vec![max_abs(&x); x.len()];
            (gx, x, s)
        }
        Case::Softmax { rows, n } => {
            let mut x = rng.normals(rows * n, 3.0);
            let gx = gpu.storage_f32("x", &x)?;
            rec.softmax(&gx, rows, n);
            cpu::softmax(&mut x, n);
            let s = vec![max_abs(&x); x.len()];
            (gx, x, s)
        }
        Case::SiluMul { len } => {
            let (g, u) = (rng.normals(len, 3.0), rng.normals(len, 1.0));
            let (gg, gu, go) = (gpu.storage_f32("g", &g)?, gpu.storage_f32("u", &u)?, gpu.zeros("o", len)?);
            rec.silu_mul(&gg, &gu, &go, len);
            let want = cpu::silu_mul(&g, &u);
            let s = vec![max_abs(&want); len];
            (go, want, s)
        }
        Case::Add { len } => {
            let (mut a, b) = (rng.normals(len, 1.0), rng.normals(len, 1.0));
            let (ga, gb) = (gpu.storage_f32("a", &a)?, gpu.storage_f32("b", &b)?);
            rec.add(&ga, &gb, len);
            cpu::add(&mut a, &b);
            let s = vec![max_abs(&a); len];
            (ga, a, s)
        }
        Case::Attention { m, heads, kv_heads, head_dim, pos0, kv } => {
            let a = Attention { heads, kv_heads, head_dim, pos0, scale: 1.0 / (head_dim as f32).sqrt() };
            let n_kv = pos0 + m;
            let n = n_kv * kv_heads * head_dim;
            let q = rng.normals(m * heads * head_dim, 1.0);
            let (k, v) = (rng.normals(n, 1.0), rng.normals(n, 1.0));
            let (gq, gk, gv) = (gpu.storage_f32("q", &q)?, gpu.storage_f32("k", &k)?, gpu.storage_f32("v", &v)?);
            // The caches in their format, filled by kv_store (timed passes: the attention's three).
            let (kc, vc) = (gpu.zeros("k_cache", kv.words(n))?, gpu.zeros("v_cache", kv.words(n))?);
            let mut fill = Recorder::new(gpu, None, 0);
            fill.kv_store(&gk, &kc, n, 0, kv);
            fill.kv_store(&gv, &vc, n, 0, kv);
            fill.submit();
            let (gs, go) = (gpu.zeros("scores", heads * m * n_kv)?, gpu.zeros("o", m * heads * head_dim)?);
            rec.attention(&gq, &kc, &vc, &gs, &go, m, &a, kv);
            // The reference attends over the keys and values the GPU stored. (Quantizing them is
            // the KV-store case's test, on values far from rounding ties: on random values a GPU
            // whose division is not correctly rounded, as Vulkan allows, can round one INT8 code
            // the other way than the CPU, one quantization step, and that is not attention's error.)
            let k = kv.decode(&gpu.read_u32(&kc, kv.words(n)).await?);
            let v = kv.decode(&gpu.read_u32(&vc, kv.words(n)).await?);
            let want = cpu::attention(&q, &k, &v, m, &a);
            let s = vec![max_abs(&want); want.len()];
            (go, want, s)
        }
        Case::KvStore { kv, n, offset } => {
            // Values (q + u) · 2⁻⁷ with |u| <= 0.3 and one ±127 per block: INT8 finds d = 2⁻⁷
            // and rounds far from any tie.
            let x: Vec<f32> = (0..n)
                .map(|i| {
                    let q = if i % 32 == 5 { 127.0 } else { (rng.uniform() * 252.0 - 126.0).round() };
                    (q + (rng.uniform() - 0.5) * 0.6 * (i % 32 != 5) as u8 as f32) / 128.0
                })
                .collect();
            let src = gpu.storage_f32("src", &x)?;
            let cache = gpu.zeros("cache", kv.words(offset + n))?;
            rec.kv_store(&src, &cache, n, offset, kv);
            kv_out = Some((kv, offset));
            let want = kv.decode(&cpu::kv_store(kv, &x)?);
            let s = vec![max_abs(&want); want.len()];
            (cache, want, s)
        }
    };
    let t0 = now_ms();
    rec.submit();
    gpu.wait().await?;
    let wall = now_ms() - t0;
    let (ms, timer_name) = match &timer {
        Some(t) => (t.read_ms(gpu).await?.iter().sum(), "timestamp"),
        None => (wall, "wall"),
    };
    let got = match kv_out {
        Some((kv, offset)) => {
            let words = gpu.read_u32(&out, kv.words(offset + want.len())).await?;
            kv.decode(&words)[offset..].to_vec()
        }
        None => gpu.read_f32(&out, want.len()).await?,
    };
    let (pass, max_err, err_over_tol) = compare(&got, &want, &scale, tolerance(case.dtype()));
    Ok(Row {
        kernel: case.kernel_name(),
        dtype: case.dtype(),
        shape: case.shape(),
        pass,
        max_err,
        err_over_tol,
        ms,
        timer: timer_name,
    })
}

/// Run cases in order; `seed` varies the random inputs.
pub async fn run_cases(gpu: &Gpu, cases: &[Case], seed: u64) -> Result<Vec<Row>> {
    let mut rows = Vec::with_capacity(cases.len());
    for (i, c) in cases.iter().enumerate() {
        rows.push(run_case(gpu, c, seed.wrapping_add(i as u64)).await?);
    }
    Ok(rows)
}

/// Plain-text table of rows.
pub fn table(rows: &[Row]) -> String {
    let mut s = format!(
        "{:<16} {:<5} {:<22} {:<4} {:>10} {:>8} {:>9}\n",
        "kernel", "dtype", "shape", "ok", "max_err", "err/tol", "ms"
    );
    for r in rows {
        s += &format!(
            "{:<16} {:<5} {:<22} {:<4} {:>10.2e} {:>8.3} {:>9.3} {}\n",
            r.kernel,
            r.dtype.name(),
            r.shape,
            if r.pass { "pass" } else { "FAIL" },
            r.max_err,
            r.err_over_tol,
            r.ms,
            r.timer
        );
    }
    s
}
