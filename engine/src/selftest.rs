//! Kernel self-test: every WGSL kernel against its CPU reference ([`crate::reference`]) on the same
//! inputs. The native test suite (wgpu on lavapipe) and the page (WebGPU) run this same code.

use serde::{Deserialize, Serialize};

use crate::reference::{self, Attention, Rope};
use crate::gpu::params::{Params, Step};
use crate::gpu::tune::Timer;
use crate::gpu::{ops::Recorder, Fuse, Gpu, IntDot, Kernel, PassTimer, Reduce, Tiling};
use crate::model::Activation;
use crate::util::{now_ms, Rng};
use crate::{KvPrecision, Precision, QuantMatrix, Result};

/// Element type a kernel computes in: f32 activations, weights at one of the precisions.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DType {
    F32,
    Fp16,
    Int8,
    Int4,
    Int3,
    Int2,
    /// KV cache stored as f16 or INT8 (`kv_store`).
    #[serde(rename = "kv-f16")]
    KvF16,
    #[serde(rename = "kv-int8")]
    KvInt8,
    /// INT4 and INT3 KV caches, plain or rotated.
    #[serde(rename = "kv-int4")]
    KvInt4,
    #[serde(rename = "kv-int3")]
    KvInt3,
    /// INT8 and INT4 weights times 8-bit activations (`act_q8`, `matvec_q8*`).
    #[serde(rename = "int8-a8")]
    Int8A8,
    #[serde(rename = "int4-a8")]
    Int4A8,
}

impl DType {
    pub fn name(self) -> &'static str {
        match self {
            DType::F32 => "f32",
            DType::Fp16 => "fp16",
            DType::Int8 => "int8",
            DType::Int4 => "int4",
            DType::Int3 => "int3",
            DType::Int2 => "int2",
            DType::KvF16 => "kv-f16",
            DType::KvInt8 => "kv-int8",
            DType::KvInt4 => "kv-int4",
            DType::KvInt3 => "kv-int3",
            DType::Int8A8 => "int8-a8",
            DType::Int4A8 => "int4-a8",
        }
    }
}

impl From<KvPrecision> for DType {
    fn from(k: KvPrecision) -> Self {
        match k {
            KvPrecision::F32 => DType::F32,
            KvPrecision::F16 => DType::KvF16,
            KvPrecision::Int8 => DType::KvInt8,
            KvPrecision::Int4 | KvPrecision::Int4Rot => DType::KvInt4,
            KvPrecision::Int3 | KvPrecision::Int3Rot => DType::KvInt3,
        }
    }
}

impl From<Precision> for DType {
    fn from(p: Precision) -> Self {
        match p {
            Precision::Fp16 => DType::Fp16,
            Precision::Int8 => DType::Int8,
            Precision::Int4 => DType::Int4,
            Precision::Int3 => DType::Int3,
            Precision::Int2 => DType::Int2,
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
/// With 8-bit activations both sides quantize the same inputs, but `127 / max|x|` may round
/// differently on a GPU and put a code on the other side of a tie: one code step of one input
/// moves an output by about 1e-3 of its `Σ|w·x|`, where a wrong code order or scale moves it by
/// its whole size.
pub const KERNEL_TOLERANCE: [(DType, Tolerance); 12] = [
    (DType::F32, Tolerance { atol: 1e-5, rtol: 2e-4 }),
    (DType::Fp16, Tolerance { atol: 1e-5, rtol: 1e-4 }),
    (DType::Int8, Tolerance { atol: 1e-5, rtol: 1e-4 }),
    (DType::Int4, Tolerance { atol: 1e-5, rtol: 1e-4 }),
    (DType::Int3, Tolerance { atol: 1e-5, rtol: 1e-4 }),
    (DType::Int2, Tolerance { atol: 1e-5, rtol: 1e-4 }),
    (DType::KvF16, Tolerance { atol: 0.0, rtol: 1e-3 }),
    (DType::KvInt8, Tolerance { atol: 0.0, rtol: 1e-6 }),
    (DType::KvInt4, Tolerance { atol: 0.0, rtol: 1e-6 }),
    (DType::KvInt3, Tolerance { atol: 0.0, rtol: 1e-6 }),
    (DType::Int8A8, Tolerance { atol: 1e-5, rtol: 2e-3 }),
    (DType::Int4A8, Tolerance { atol: 1e-5, rtol: 2e-3 }),
];

pub fn tolerance(d: DType) -> Tolerance {
    KERNEL_TOLERANCE.iter().find(|(t, _)| *t == d).map(|(_, t)| *t).unwrap_or(Tolerance { atol: 0.0, rtol: 0.0 })
}

/// One kernel run on one shape.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Case {
    /// A decode matvec with `fuse` folded in; `n` outputs (`2n` rows when gate and up are stacked).
    Matvec { p: Precision, reduce: Reduce, fuse: Fuse, k: usize, n: usize },
    /// A decode matvec over 8-bit activations: `act_q8` (the norm fused there) then `matvec_q8*`.
    MatvecQ8 { p: Precision, reduce: Reduce, fuse: Fuse, dot: IntDot, k: usize, n: usize },
    /// Prefill's activations `[m, k]` to 8 bits and back (`act_q8_rows`).
    ActQ8Rows { m: usize, k: usize },
    Matmul { p: Precision, tiling: Tiling, m: usize, k: usize, n: usize },
    /// A prefill matmul over 8-bit activations: `act_q8_rows`' codes, then the barrier-free
    /// `matmul_q8*` (`tiling`: `Rows` or `RowsSubgroup`).
    MatmulQ8 { p: Precision, tiling: Tiling, m: usize, k: usize, n: usize },
    Embedding { p: Precision, rows: usize, k: usize, m: usize },
    Rmsnorm { rows: usize, d: usize },
    /// SwiGLU's gate over stacked gate and up projections `[m, 2n]`.
    RmsnormAdd { rows: usize, d: usize },
    HeadNorm { m: usize, heads: usize, kv_heads: usize, head_dim: usize },
    Glu { act: Activation, m: usize, n: usize },
    Add { len: usize },
    /// RoPE of q and k of a stacked QKV projection and the append of k and v to a cache.
    /// `scaled`: Llama 3's frequency divisors (random, 1 to 8) and a linear scale of 1/2.
    RopeStore { neox: bool, scaled: bool, m: usize, heads: usize, kv_heads: usize, head_dim: usize, pos0: usize, kv: KvPrecision },
    /// `window`: a sliding window of that many keys (0: none).
    Attention { m: usize, heads: usize, kv_heads: usize, head_dim: usize, pos0: usize, window: usize, kv: KvPrecision },
    /// The mean key of each channel over `n` positions of a cache (`kv_mean.wgsl`).
    KvMean { n: usize, kv_dim: usize },
    /// A step of `m` positions from `pos0` into a layer's ring of recent positions (`kv_recent.wgsl`).
    KvRecent { m: usize, pos0: usize, kv_dim: usize },
    /// Each key channel's sum of squared queries over `m` rows (`kv_query_sq.wgsl`).
    KvQuerySq { m: usize, heads: usize, kv_heads: usize, head_dim: usize },
    /// The rotated formats' key scales from `n` positions of a cache (`kv_balance.wgsl`).
    KvBalance { n: usize, kv_heads: usize, head_dim: usize },
    Argmax { n: usize },
    /// One draw of the sampler: penalty, top-`k`, top-p, min-p and temperature (greedy after the
    /// penalty when `k` is 1), over logits with ties at the top-k cut.
    Sample { n: usize, k: usize },
}

/// One result row of the self-test.
#[derive(Clone, Debug, Serialize, Deserialize)]
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
    pub timer: Timer,
}

impl Case {
    pub fn kernel_name(&self) -> String {
        match self {
            Case::Matvec { p, reduce, fuse, .. } => Kernel::Matvec(*p, *reduce, *fuse).name(),
            Case::MatvecQ8 { p, reduce, fuse, dot, .. } => {
                // The norm runs in act_q8: named apart from the unfused case it otherwise shares.
                let norm = if *fuse == Fuse::Norm { "+norm" } else { "" };
                Kernel::matvec_q8(*p, *reduce, *fuse, *dot).name() + norm
            }
            Case::ActQ8Rows { .. } => Kernel::ActQ8Rows { codes: false }.name(),
            Case::Matmul { p, tiling, .. } => Kernel::Matmul(*p, *tiling).name(),
            Case::MatmulQ8 { p, tiling, .. } => Kernel::MatmulQ8(*p, *tiling).name(),
            Case::Embedding { p, .. } => format!("embedding_{p}"),
            Case::Rmsnorm { .. } => "rmsnorm".into(),
            Case::RmsnormAdd { .. } => Kernel::RmsnormAdd.name(),
            Case::HeadNorm { .. } => Kernel::HeadNorm.name(),
            Case::Glu { act, .. } => Kernel::Glu(*act).name(),
            Case::Add { .. } => "add".into(),
            Case::RopeStore { neox: false, scaled: true, kv, .. } => format!("rope_scaled_store_kv_{kv}"),
            Case::RopeStore { neox: false, kv, .. } => format!("rope_store_kv_{kv}"),
            Case::RopeStore { neox: true, kv, .. } => format!("rope_neox_store_kv_{kv}"),
            Case::Attention { kv: KvPrecision::F32, window: 0, .. } => "attention".into(),
            Case::Attention { kv: KvPrecision::F32, .. } => "attention_window".into(),
            Case::Attention { kv, .. } => format!("attention_kv_{kv}"),
            Case::KvMean { .. } => Kernel::KvMean.name(),
            Case::KvRecent { .. } => Kernel::KvRecent.name(),
            Case::KvQuerySq { .. } => Kernel::KvQuerySq.name(),
            Case::KvBalance { .. } => Kernel::KvBalance.name(),
            Case::Argmax { .. } => "argmax".into(),
            Case::Sample { .. } => "sample".into(),
        }
    }

    pub fn dtype(&self) -> DType {
        match self {
            Case::Matvec { p, .. } | Case::Matmul { p, .. } | Case::Embedding { p, .. } => (*p).into(),
            Case::MatvecQ8 { p: Precision::Int4, .. } | Case::MatmulQ8 { p: Precision::Int4, .. } => DType::Int4A8,
            Case::MatvecQ8 { .. } | Case::MatmulQ8 { .. } => DType::Int8A8,
            _ => DType::F32,
        }
    }

    pub fn shape(&self) -> String {
        match *self {
            Case::Matvec { k, n, .. } | Case::MatvecQ8 { k, n, .. } => format!("{k}x{n}"),
            Case::ActQ8Rows { m, k } => format!("m{m} {k}"),
            Case::Matmul { m, k, n, .. } | Case::MatmulQ8 { m, k, n, .. } => format!("m{m} {k}x{n}"),
            Case::Embedding { rows, k, m, .. } => format!("{rows}x{k} m{m}"),
            Case::Rmsnorm { rows, d } | Case::RmsnormAdd { rows, d } => format!("{rows}x{d}"),
            Case::HeadNorm { m, heads, kv_heads, head_dim } => format!("m{m} h{heads}/{kv_heads} d{head_dim}"),
            Case::Glu { m, n, .. } => format!("m{m} {n}"),
            Case::Add { len } | Case::Argmax { n: len } => format!("{len}"),
            Case::KvMean { n, kv_dim } => format!("n{n} {kv_dim}"),
            Case::KvRecent { m, pos0, kv_dim } => format!("m{m} @{pos0} {kv_dim}"),
            Case::KvQuerySq { m, heads, kv_heads, head_dim } => format!("m{m} h{heads}/{kv_heads} d{head_dim}"),
            Case::KvBalance { n, kv_heads, head_dim } => format!("n{n} h{kv_heads} d{head_dim}"),
            Case::Sample { n, k: 1 } => format!("{n} greedy"),
            Case::Sample { n, k } => format!("{n} top-{k}"),
            Case::Attention { m, heads, kv_heads, head_dim, pos0, window, .. } if window > 0 => {
                format!("m{m} h{heads}/{kv_heads} d{head_dim} pos{pos0} window{window}")
            }
            Case::Attention { m, heads, kv_heads, head_dim, pos0, .. }
            | Case::RopeStore { m, heads, kv_heads, head_dim, pos0, .. } => {
                format!("m{m} h{heads}/{kv_heads} d{head_dim} pos{pos0}")
            }
        }
    }
}

/// Every kernel at every precision on shapes that are not multiples of the workgroup (64) or
/// block (32) size: the page's self-test and the first test table.
pub fn standard_cases(subgroups: bool) -> Vec<Case> {
    let mut v = Vec::new();
    for p in Precision::ALL {
        for reduce in Reduce::ALL {
            if !reduce.needs_subgroups() || subgroups {
                v.extend(Fuse::ALL.map(|fuse| Case::Matvec { p, reduce, fuse, k: 300, n: 77 }));
            }
        }
        for tiling in Tiling::ALL.into_iter().filter(|t| !t.needs_subgroups() || subgroups) {
            v.push(Case::Matmul { p, tiling, m: 37, k: 300, n: 77 });
        }
        v.push(Case::Embedding { p, rows: 50, k: 300, m: 5 });
        if p.int_dot() {
            v.extend(Kernel::q8_forms(subgroups).into_iter().flat_map(|(reduce, dot)| Fuse::ALL.map(|fuse| Case::MatvecQ8 { p, reduce, fuse, dot, k: 300, n: 77 })));
            for tiling in [Tiling::Rows, Tiling::RowsSubgroup].into_iter().filter(|t| !t.needs_subgroups() || subgroups) {
                v.push(Case::MatmulQ8 { p, tiling, m: 37, k: 300, n: 77 });
            }
        }
    }
    v.push(Case::ActQ8Rows { m: 5, k: 579 });
    v.extend([
        Case::Rmsnorm { rows: 3, d: 579 },
        Case::RmsnormAdd { rows: 3, d: 579 },
        Case::HeadNorm { m: 5, heads: 3, kv_heads: 1, head_dim: 40 },
        Case::Glu { act: Activation::Silu, m: 3, n: 335 },
        Case::Glu { act: Activation::Gelu, m: 3, n: 335 },
        Case::Add { len: 1003 },
        Case::KvMean { n: 37, kv_dim: 200 },
        // A step that wraps around the ring, and one longer than the ring (only its last rows kept).
        Case::KvRecent { m: 5, pos0: 45, kv_dim: 70 },
        Case::KvRecent { m: 53, pos0: 7, kv_dim: 70 },
        Case::KvQuerySq { m: 37, heads: 6, kv_heads: 2, head_dim: 40 },
        Case::KvBalance { n: 37, kv_heads: 3, head_dim: 40 },
        Case::Argmax { n: 1001 },
        Case::Sample { n: 1001, k: 1 },
        Case::Sample { n: 1001, k: 40 },
    ]);
    for kv in KvPrecision::ALL {
        // INT8 blocks run along a token's row: kv_heads · head_dim must be a multiple of 32, and
        // 64 for INT4/INT3's units; the rotated formats at a head size that is not a power of
        // two (rotation blocks of 32).
        let head_dim = match kv {
            KvPrecision::F32 | KvPrecision::F16 => 40,
            KvPrecision::Int8 => 48,
            KvPrecision::Int4 | KvPrecision::Int3 => 64,
            KvPrecision::Int4Rot | KvPrecision::Int3Rot => 96,
        };
        v.push(Case::RopeStore { neox: false, scaled: false, m: 5, heads: 6, kv_heads: 2, head_dim, pos0: 37, kv });
        v.push(Case::RopeStore { neox: true, scaled: false, m: 5, heads: 6, kv_heads: 2, head_dim, pos0: 37, kv });
        // The 4- and 3-bit formats' recent window reaches back before the step (into the ring).
        let pos0 = if kv.recent() > 0 { 30 } else { 11 };
        v.push(Case::Attention { m: 5, heads: 6, kv_heads: 2, head_dim, pos0, window: 0, kv });
    }
    v.push(Case::RopeStore { neox: false, scaled: true, m: 5, heads: 6, kv_heads: 2, head_dim: 40, pos0: 37, kv: KvPrecision::F32 });
    // A window shorter than the context: the first queries see every key, later ones the last 7.
    v.push(Case::Attention { m: 5, heads: 6, kv_heads: 2, head_dim: 40, pos0: 4, window: 7, kv: KvPrecision::F32 });
    // A long context (many chunks of keys merged), with and without a window that starts inside a chunk.
    v.push(Case::Attention { m: 3, heads: 6, kv_heads: 2, head_dim: 40, pos0: 1500, window: 0, kv: KvPrecision::F32 });
    v.push(Case::Attention { m: 3, heads: 6, kv_heads: 2, head_dim: 40, pos0: 1500, window: 77, kv: KvPrecision::F32 });
    v
}

/// The default model's (SmolLM2-135M) weight shapes, inputs × outputs.
pub const MODEL_SHAPES: [(usize, usize); 5] = [(576, 576), (576, 192), (576, 1536), (1536, 576), (576, 49152)];

/// Matvec and matmul at the default model's real shapes, and attention at its head layout.
pub fn model_shape_cases(reduce: Reduce, tiling: Tiling) -> Vec<Case> {
    let mut v = Vec::new();
    for p in Precision::ALL {
        for (k, n) in MODEL_SHAPES {
            v.push(Case::Matvec { p, reduce, fuse: Fuse::None, k, n });
            v.push(Case::Matmul { p, tiling, m: 7, k, n });
        }
        // The fused forms at the shapes a layer uses them: QKV, gate|up, down (+ residual).
        for (fuse, k, n) in [(Fuse::Norm, 576, 960), (Fuse::NormGlu(Activation::Silu), 576, 1536), (Fuse::Add, 1536, 576)] {
            v.push(Case::Matvec { p, reduce, fuse, k, n });
        }
    }
    for kv in KvPrecision::ALL {
        v.push(Case::Attention { m: 7, heads: 9, kv_heads: 3, head_dim: 64, pos0: 30, window: 0, kv });
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

/// A [`Step`] uniform at `pos0`, for the kernels that read the position from it.
fn step(gpu: &Gpu, pos0: usize) -> crate::gpu::Buffer {
    gpu.uniform("step", &Step { pos0: pos0 as u32, ..Default::default() }.words())
}

/// Run one case on the GPU and compare it with the CPU reference.
pub async fn run_case(gpu: &Gpu, case: &Case, seed: u64) -> Result<Row> {
    let timer = PassTimer::new(gpu, 3).map(std::rc::Rc::new);
    let mut t = Trial { gpu, rec: Recorder::new(gpu, timer.clone(), 3), rng: Rng::new(seed) };
    let Expected { out, want, scale, decode } = match *case {
        Case::Matvec { p, reduce, fuse, k, n } => matvec_trial(&mut t, p, reduce, fuse, k, n)?,
        Case::MatvecQ8 { p, reduce, fuse, dot, k, n } => matvec_q8_trial(&mut t, p, reduce, fuse, dot, k, n)?,
        Case::ActQ8Rows { m, k } => act_q8_rows_trial(&mut t, m, k)?,
        Case::Matmul { p, tiling, m, k, n } => matmul_trial(&mut t, p, tiling, m, k, n)?,
        Case::MatmulQ8 { p, tiling, m, k, n } => matmul_q8_trial(&mut t, p, tiling, m, k, n)?,
        Case::Embedding { p, rows, k, m } => embedding_trial(&mut t, p, rows, k, m)?,
        Case::Rmsnorm { rows, d } => rmsnorm_trial(&mut t, rows, d)?,
        Case::RmsnormAdd { rows, d } => rmsnorm_add_trial(&mut t, rows, d)?,
        Case::HeadNorm { m, heads, kv_heads, head_dim } => head_norm_trial(&mut t, m, heads, kv_heads, head_dim)?,
        Case::Glu { act, m, n } => glu_trial(&mut t, act, m, n)?,
        Case::Add { len } => add_trial(&mut t, len)?,
        Case::RopeStore { neox, scaled, m, heads, kv_heads, head_dim, pos0, kv } => rope_store_trial(&mut t, neox, scaled, m, heads, kv_heads, head_dim, pos0, kv)?,
        Case::Attention { m, heads, kv_heads, head_dim, pos0, window, kv } => attention_trial(&mut t, m, heads, kv_heads, head_dim, pos0, window, kv)?,
        Case::KvMean { n, kv_dim } => kv_mean_trial(&mut t, n, kv_dim)?,
        Case::KvRecent { m, pos0, kv_dim } => kv_recent_trial(&mut t, m, pos0, kv_dim)?,
        Case::KvQuerySq { m, heads, kv_heads, head_dim } => kv_query_sq_trial(&mut t, m, heads, kv_heads, head_dim)?,
        Case::KvBalance { n, kv_heads, head_dim } => kv_balance_trial(&mut t, n, kv_heads, head_dim)?,
        Case::Argmax { n } => argmax_trial(&mut t, n)?,
        Case::Sample { n, k } => sample_trial(&mut t, n, k)?,
    };
    let t0 = now_ms();
    t.rec.submit();
    gpu.wait().await?;
    let wall = now_ms() - t0;
    let (ms, timer_name) = match &timer {
        Some(t) => (t.read_ms(gpu).await?.iter().sum(), Timer::Timestamp),
        None => (wall, Timer::Wall),
    };
    let got = match decode {
        Some(decode) => decode(&gpu.read_u32(&out, (out.size() / 4) as usize).await?),
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

/// What a case's trial records into: the device, one recorder for the case's passes, and the
/// source of its random inputs.
struct Trial<'g> {
    gpu: &'g Gpu,
    rec: Recorder,
    rng: Rng,
}

/// Turns the words a kernel wrote (a KV cache, a token index) into the values compared.
type Decode = Box<dyn Fn(&[u32]) -> Vec<f32>>;

/// What a trial recorded, and what the CPU reference says the GPU must give back.
struct Expected {
    /// The buffer compared.
    out: crate::gpu::Buffer,
    /// The reference's values, and the scale of each one's tolerance ([`Tolerance`]).
    want: Vec<f32>,
    scale: Vec<f32>,
    /// None: `out` holds f32 values, compared as they are.
    decode: Option<Decode>,
}

/// A decode matvec's random inputs, on both sides: W, x, the norm's weights g and the output's
/// previous values y0 (`Add`).
struct MatvecInputs {
    w: QuantMatrix,
    x: Vec<f32>,
    g: Vec<f32>,
    y0: Vec<f32>,
    gw: crate::gpu::GpuMatrix,
    gx: crate::gpu::Buffer,
    gg: crate::gpu::Buffer,
    gy: crate::gpu::Buffer,
}

fn matvec_inputs(t: &mut Trial, p: Precision, fuse: Fuse, k: usize, n: usize) -> Result<MatvecInputs> {
    let (gpu, rng) = (t.gpu, &mut t.rng);
    let rows = n * fuse.pairs();
    let w = QuantMatrix::quantize(&rng.normals(rows * k, 0.05), rows, k, p)?;
    let x = rng.normals(k, 1.0);
    let g = rng.normals(k, 1.0);
    let y0 = rng.normals(n, 1.0);
    let gw = gpu.upload_matrix("w", &w)?;
    let (gx, gg) = (gpu.storage_f32("x", &x)?, gpu.storage_f32("g", &g)?);
    let gy = if fuse == Fuse::Add { gpu.storage_f32("y", &y0)? } else { gpu.zeros("y", n)? };
    Ok(MatvecInputs { w, x, g, y0, gw, gx, gg, gy })
}

/// The trial of [`Case::Matvec`].
fn matvec_trial(t: &mut Trial, p: Precision, reduce: Reduce, fuse: Fuse, k: usize, n: usize) -> Result<Expected> {
    let MatvecInputs { w, x, g, y0, gw, gx, gg, gy } = matvec_inputs(t, p, fuse, k, n)?;
    let rec = &mut t.rec;
    rec.matvec_fused(&gw, &gx, &gy, fuse, Some((&gg, 1e-5)), reduce);
    let h = if fuse.norm() { reference::rmsnorm(&x, &g, 1e-5) } else { x.clone() };
    let (y, abs) = (reference::matmul(&w, &h, 1), reference::matmul_abs(&w, &h, 1));
    Ok(fused_expected(fuse, gy, y, abs, &y0))
}

/// What a decode matvec with `fuse` must write, from the reference's rows `y` (and their
/// `Σ|w·x|`, `abs`), `y0` the output's previous values (`Add`).
fn fused_expected(fuse: Fuse, out: crate::gpu::Buffer, y: Vec<f32>, abs: Vec<f32>, y0: &[f32]) -> Expected {
    let n = y0.len();
    let (want, scale) = match fuse {
        Fuse::None | Fuse::Norm => (y, abs),
        Fuse::Add => (y.iter().zip(y0).map(|(a, b)| a + b).collect(), abs.iter().zip(y0).map(|(a, b)| a + b.abs()).collect()),
        // act(g)·u moves by about |u|·Δg + |g|·Δu.
        Fuse::NormGlu(act) => (
            reference::glu(act, &y[..n], &y[n..]),
            (0..n).map(|i| abs[i] * y[n + i].abs() + y[i].abs() * abs[n + i]).collect(),
        ),
    };
    Expected { out, want, scale, decode: None }
}

/// The trial of [`Case::MatvecQ8`]. The reference quantizes `x·g` (the norm's weights only: its
/// scale is one factor, applied to the sums) per block and multiplies in f32.
fn matvec_q8_trial(t: &mut Trial, p: Precision, reduce: Reduce, fuse: Fuse, dot: IntDot, k: usize, n: usize) -> Result<Expected> {
    let MatvecInputs { w, x, g, y0, gw, gx, gg, gy } = matvec_inputs(t, p, fuse, k, n)?;
    let (gpu, rec) = (t.gpu, &mut t.rec);
    let nb = k.div_ceil(32);
    let (xq, xd) = (gpu.zeros("xq", nb * 8)?, gpu.zeros("xd", 2 * (nb + 1))?);
    rec.matvec_q8(&gw, &gx, &gy, fuse, Some((&gg, 1e-5)), (&xq, &xd), reduce, dot);
    let (mut h, s) = if fuse.norm() {
        let ms = x.iter().map(|v| v * v).sum::<f32>() / k as f32;
        (x.iter().zip(&g).map(|(a, b)| a * b).collect(), 1.0 / (ms + 1e-5).sqrt())
    } else {
        (x.clone(), 1.0)
    };
    crate::layout::quantize_activations(&mut h, k);
    let y: Vec<f32> = reference::matmul(&w, &h, 1).iter().map(|v| v * s).collect();
    let abs: Vec<f32> = reference::matmul_abs(&w, &h, 1).iter().map(|v| v * s).collect();
    Ok(fused_expected(fuse, gy, y, abs, &y0))
}

/// The trial of [`Case::ActQ8Rows`].
fn act_q8_rows_trial(t: &mut Trial, m: usize, k: usize) -> Result<Expected> {
    let (gpu, rec, rng) = (t.gpu, &mut t.rec, &mut t.rng);
    let mut x = rng.normals(m * k, 1.0);
    let (gx, gy) = (gpu.storage_f32("x", &x)?, gpu.zeros("y", m * k)?);
    rec.act_q8_rows(&gx, &gy, m, k, false);
    crate::layout::quantize_activations(&mut x, k);
    let scale = vec![max_abs(&x); x.len()];
    Ok(Expected { out: gy, want: x, scale, decode: None })
}

/// The trial of [`Case::Matmul`].
fn matmul_trial(t: &mut Trial, p: Precision, tiling: Tiling, m: usize, k: usize, n: usize) -> Result<Expected> {
    let (gpu, rec, rng) = (t.gpu, &mut t.rec, &mut t.rng);
    let w = QuantMatrix::quantize(&rng.normals(n * k, 0.05), n, k, p)?;
    let x = rng.normals(m * k, 1.0);
    let gw = gpu.upload_matrix("w", &w)?;
    let (gx, gy) = (gpu.storage_f32("x", &x)?, gpu.zeros("y", m * n)?);
    rec.matmul_with(&gw, &gx, &gy, m, tiling);
    Ok(Expected { out: gy, want: reference::matmul(&w, &x, m), scale: reference::matmul_abs(&w, &x, m), decode: None })
}

/// The trial of [`Case::MatmulQ8`]: the CPU reference quantizes x per block
/// ([`crate::layout::quantize_activations`]) and multiplies in f32.
fn matmul_q8_trial(t: &mut Trial, p: Precision, tiling: Tiling, m: usize, k: usize, n: usize) -> Result<Expected> {
    let (gpu, rec, rng) = (t.gpu, &mut t.rec, &mut t.rng);
    let w = QuantMatrix::quantize(&rng.normals(n * k, 0.05), n, k, p)?;
    let mut x = rng.normals(m * k, 1.0);
    let gw = gpu.upload_matrix("w", &w)?;
    let (gx, gq, gy) = (gpu.storage_f32("x", &x)?, gpu.zeros("xq", crate::gpu::ops::q8_rows_words(m, k))?, gpu.zeros("y", m * n)?);
    rec.act_q8_rows(&gx, &gq, m, k, true);
    rec.matmul_q8(&gw, &gq, &gy, m, tiling);
    crate::layout::quantize_activations(&mut x, k);
    Ok(Expected { out: gy, want: reference::matmul(&w, &x, m), scale: reference::matmul_abs(&w, &x, m), decode: None })
}

/// The trial of [`Case::Embedding`].
fn embedding_trial(t: &mut Trial, p: Precision, rows: usize, k: usize, m: usize) -> Result<Expected> {
    let (gpu, rec, rng) = (t.gpu, &mut t.rec, &mut t.rng);
    let w = QuantMatrix::quantize(&rng.normals(rows * k, 1.0), rows, k, p)?;
    let ids: Vec<u32> = (0..m).map(|i| ((i * 37 + 11) % rows) as u32).collect();
    let gw = gpu.upload_matrix("w", &w)?;
    let (gi, go) = (gpu.storage_u32("ids", &ids)?, gpu.zeros("out", m * k)?);
    // Scaled, as Gemma's is (by √dim).
    rec.embedding(&gw, &gi, &go, m, 1.5);
    let want: Vec<f32> = reference::embedding(&w, &ids).iter().map(|v| v * 1.5).collect();
    let s = vec![max_abs(&want); want.len()];
    Ok(Expected { out: go, want, scale: s, decode: None })
}

/// The trial of [`Case::Rmsnorm`].
fn rmsnorm_trial(t: &mut Trial, rows: usize, d: usize) -> Result<Expected> {
    let (gpu, rec, rng) = (t.gpu, &mut t.rec, &mut t.rng);
    let (x, w) = (rng.normals(rows * d, 2.0), rng.normals(d, 1.0));
    let (gx, gw, gy) = (gpu.storage_f32("x", &x)?, gpu.storage_f32("w", &w)?, gpu.zeros("y", rows * d)?);
    rec.rmsnorm(&gx, &gw, &gy, rows, d, 1e-5);
    let want = reference::rmsnorm(&x, &w, 1e-5);
    let s = vec![max_abs(&want); want.len()];
    Ok(Expected { out: gy, want, scale: s, decode: None })
}

/// The trial of [`Case::RmsnormAdd`].
fn rmsnorm_add_trial(t: &mut Trial, rows: usize, d: usize) -> Result<Expected> {
    let (gpu, rec, rng) = (t.gpu, &mut t.rec, &mut t.rng);
    let (x, w, mut y) = (rng.normals(rows * d, 2.0), rng.normals(d, 1.0), rng.normals(rows * d, 1.0));
    let (gx, gw, gy) = (gpu.storage_f32("x", &x)?, gpu.storage_f32("w", &w)?, gpu.storage_f32("y", &y)?);
    rec.rmsnorm_add(&gx, &gw, &gy, rows, d, 1e-6);
    reference::rmsnorm_add(&mut y, &x, &w, 1e-6);
    let s = vec![max_abs(&y); y.len()];
    Ok(Expected { out: gy, want: y, scale: s, decode: None })
}

/// The trial of [`Case::HeadNorm`].
fn head_norm_trial(t: &mut Trial, m: usize, heads: usize, kv_heads: usize, head_dim: usize) -> Result<Expected> {
    let (gpu, rec, rng) = (t.gpu, &mut t.rec, &mut t.rng);
    let (mut qkv, w) = (rng.normals(m * (heads + 2 * kv_heads) * head_dim, 2.0), rng.normals(2 * head_dim, 1.0));
    let (gqkv, gw) = (gpu.storage_f32("qkv", &qkv)?, gpu.storage_f32("w", &w)?);
    rec.head_norm(&gqkv, &gw, m, heads, kv_heads, head_dim, 1e-6);
    reference::head_norm(&mut qkv, &w, heads, kv_heads, 1e-6);
    let s = vec![max_abs(&qkv); qkv.len()];
    Ok(Expected { out: gqkv, want: qkv, scale: s, decode: None })
}

/// The trial of [`Case::Glu`].
fn glu_trial(t: &mut Trial, act: Activation, m: usize, n: usize) -> Result<Expected> {
    let (gpu, rec, rng) = (t.gpu, &mut t.rec, &mut t.rng);
    let gu = rng.normals(m * 2 * n, 2.0);
    let (ggu, go) = (gpu.storage_f32("gu", &gu)?, gpu.zeros("o", m * n)?);
    rec.glu(act, &ggu, &go, m, n);
    let want: Vec<f32> = gu.chunks(2 * n).flat_map(|r| reference::glu(act, &r[..n], &r[n..])).collect();
    let s = vec![max_abs(&want); want.len()];
    Ok(Expected { out: go, want, scale: s, decode: None })
}

/// The trial of [`Case::Add`].
fn add_trial(t: &mut Trial, len: usize) -> Result<Expected> {
    let (gpu, rec, rng) = (t.gpu, &mut t.rec, &mut t.rng);
    let (mut a, b) = (rng.normals(len, 1.0), rng.normals(len, 1.0));
    let (ga, gb) = (gpu.storage_f32("a", &a)?, gpu.storage_f32("b", &b)?);
    rec.add(&ga, &gb, len);
    reference::add(&mut a, &b);
    let s = vec![max_abs(&a); len];
    Ok(Expected { out: ga, want: a, scale: s, decode: None })
}

/// The trial of [`Case::RopeStore`].
#[allow(clippy::too_many_arguments)]
fn rope_store_trial(t: &mut Trial, neox: bool, scaled: bool, m: usize, heads: usize, kv_heads: usize, head_dim: usize, pos0: usize, kv: KvPrecision) -> Result<Expected> {
    let (gpu, rec, rng) = (t.gpu, &mut t.rec, &mut t.rng);
    let (qd, kvd) = (heads * head_dim, kv_heads * head_dim);
    let scale = if scaled { 0.5 } else { 1.0 };
    let r = Rope { heads, head_dim, n_rot: head_dim, pos0, base: 10000.0, neox, scale };
    let factors: Vec<f32> = (0..head_dim / 2).map(|_| if scaled { 1.0 + 7.0 * rng.uniform() } else { 1.0 }).collect();
    let gfactors = gpu.storage_f32("factors", &factors)?;
    let (mut q, mut k) = (rng.normals(m * qd, 1.0), rng.normals(m * kvd, 1.0));
    // Values (c + u) · 2⁻⁷ with |u| <= 0.3 and one ±127 per block: INT8 finds d = 2⁻⁷ and
    // rounds far from any tie, so stored values must match exactly.
    let v: Vec<f32> = (0..m * kvd)
        .map(|i| {
            let c = if i % 32 == 5 { 127.0 } else { (rng.uniform() * 252.0 - 126.0).round() };
            (c + (rng.uniform() - 0.5) * 0.6 * (i % 32 != 5) as u8 as f32) / 128.0
        })
        .collect();
    let qkv: Vec<f32> = (0..m)
        .flat_map(|t| [&q[t * qd..(t + 1) * qd], &k[t * kvd..(t + 1) * kvd], &v[t * kvd..(t + 1) * kvd]].concat())
        .collect();
    // Room for 3 more tokens: the values half starts at n_ctx · kvd, not right after the keys.
    let n_ctx = pos0 + m + 3;
    let v_base = n_ctx * kvd;
    let cache_words = kv.words(2 * v_base);
    let (gqkv, cache) = (gpu.storage_f32("qkv", &qkv)?, gpu.zeros("cache", cache_words)?);
    // Mean keys of two layers, the second this one's: an offset three times the keys' spread,
    // which the 4- and 3-bit formats subtract before coding (the others ignore it); then key
    // scales of two layers, ½ to 2, which the rotated formats multiply keys by.
    let means = rng.normals(2 * kvd, 3.0);
    let scales: Vec<f32> = (0..2 * kvd).map(|_| 0.5 + 1.5 * rng.uniform()).collect();
    let gstats = gpu.storage_f32("key stats", &[&means[..], &scales[..]].concat())?;
    let stage = gpu.zeros("stage", m * kvd)?;
    rec.rope_store(&gqkv, &cache, &step(gpu, pos0), m, &r, kv_heads, v_base, kv, &gfactors, (&gstats, kvd, 3 * kvd), &stage);
    // Compared: the rotated q, the stored keys and values, then (with a recent window) what it
    // reads of them, gathered into one buffer.
    let out = gpu.zeros("q+cache+stage", qkv.len() + cache_words + m * kvd)?;
    let qkv_bytes = (qkv.len() * 4) as u64;
    rec.encoder().copy_buffer_to_buffer(&gqkv, 0, &out, 0, qkv_bytes);
    rec.encoder().copy_buffer_to_buffer(&cache, 0, &out, qkv_bytes, (cache_words * 4) as u64);
    rec.encoder().copy_buffer_to_buffer(&stage, 0, &out, qkv_bytes + (cache_words * 4) as u64, (m * kvd * 4) as u64);
    reference::rope_with(&mut q, &r, &factors);
    reference::rope_with(&mut k, &Rope { heads: kv_heads, ..r }, &factors);
    if kv.centered() {
        for row in k.chunks_exact_mut(kvd) {
            row.iter_mut().zip(&means[kvd..]).for_each(|(v, m)| *v -= m);
        }
    }
    if kv.scaled() {
        for row in k.chunks_exact_mut(kvd) {
            row.iter_mut().zip(&scales[kvd..]).for_each(|(v, s)| *v *= s);
        }
    }
    let k_stored = kv.decode(&reference::kv_store(kv, &k, head_dim)?, head_dim);
    let v_stored = kv.decode(&reference::kv_store(kv, &v, head_dim)?, head_dim);
    // The window's copies, per row keys then values, as f16 pairs in the coded basis (read as
    // f16 values, not rotated back).
    let staged: Vec<f32> = if kv.recent() > 0 {
        let words: Vec<u32> = k.chunks_exact(kvd).zip(v.chunks_exact(kvd)).flat_map(|(kr, vr)| [kv.exact_words(kr, head_dim), kv.exact_words(vr, head_dim)].concat()).collect();
        KvPrecision::F16.decode(&words, 0)
    } else {
        vec![]
    };
    let (lo, hi, n_qkv, n_staged) = (pos0 * kvd, (pos0 + m) * kvd, qkv.len(), staged.len());
    let decode: Option<Decode> = Some(Box::new(move |w: &[u32]| {
        let q = w[..n_qkv].chunks(qd + 2 * kvd).flat_map(|row| row[..qd].iter().map(|&b| f32::from_bits(b)));
        let all = kv.decode(&w[n_qkv..n_qkv + cache_words], head_dim);
        let stage = KvPrecision::F16.decode(&w[n_qkv + cache_words..], 0);
        q.chain(all[lo..hi].iter().copied()).chain(all[v_base + lo..v_base + hi].iter().copied()).chain(stage[..n_staged].iter().copied()).collect()
    }));
    // q as any f32 op. Keys are rotated on the GPU first, so an INT8 code may round one
    // step the other way (one block scale d); f16 may round one f16 step; the tie-free
    // values must match.
    let (mk, mv) = (max_abs(&k_stored), max_abs(&v_stored));
    let f32_tol = tolerance(DType::F32).rtol;
    let qscale = vec![max_abs(&q); q.len()];
    let kscale: Vec<f32> = match kv {
        KvPrecision::F32 => vec![mk; k.len()],
        KvPrecision::F16 => vec![mk * 1e-3 / f32_tol; k.len()],
        _ => kv_steps(kv, &k, head_dim).iter().map(|d| d / f32_tol).collect(),
    };
    let vscale = match kv {
        KvPrecision::F32 => vec![mv; v.len()],
        KvPrecision::F16 => vec![mv * 1e-3 / f32_tol; v.len()],
        KvPrecision::Int8 => vec![0.0; v.len()],
        _ => kv_steps(kv, &v, head_dim).iter().map(|d| d / f32_tol).collect(),
    };
    // f16 steps of values the GPU computed in f32 (one may round the other way).
    let sscale = vec![max_abs(&staged) * 1e-3 / f32_tol; staged.len()];
    Ok(Expected { out, want: [q, k_stored, v_stored, staged].concat(), scale: [qscale, kscale, vscale, sscale].concat(), decode })
}

/// The trial of [`Case::KvRecent`]: random words in the stage and in a cache of 3 positions' codes
/// (which must stay as they are) and a ring; compared word for word, each as two 16-bit halves.
fn kv_recent_trial(t: &mut Trial, m: usize, pos0: usize, kv_dim: usize) -> Result<Expected> {
    let at = 3 * kv_dim;
    let slots = crate::layout::KV_RECENT_SLOTS;
    let stage: Vec<u32> = (0..m * kv_dim).map(|_| t.rng.next_u32()).collect();
    let mut cache: Vec<u32> = (0..at + slots * (kv_dim + 1)).map(|_| t.rng.next_u32()).collect();
    let (gstage, gcache) = (t.gpu.storage_u32("stage", &stage)?, t.gpu.storage_u32("cache", &cache)?);
    t.rec.kv_recent(&gstage, &gcache, &step(t.gpu, pos0), m, kv_dim, at);
    reference::kv_recent(&stage, &mut cache, m, pos0, kv_dim, at);
    let halves = |w: &[u32]| -> Vec<f32> { w.iter().flat_map(|&x| [(x & 0xffff) as f32, (x >> 16) as f32]).collect() };
    let want = halves(&cache);
    let n = cache.len();
    let decode: Option<Decode> = Some(Box::new(move |w: &[u32]| halves(&w[..n])));
    Ok(Expected { out: gcache, scale: vec![0.0; want.len()], want, decode })
}

/// The trial of [`Case::KvMean`]: keys with an offset per channel, a cache with room for 5 more
/// positions, written into the second layer's row of means.
fn kv_mean_trial(t: &mut Trial, n: usize, kv_dim: usize) -> Result<Expected> {
    let offsets = t.rng.normals(kv_dim, 4.0);
    let keys: Vec<f32> = t.rng.normals((n + 5) * kv_dim, 1.0).iter().enumerate().map(|(i, v)| v + offsets[i % kv_dim]).collect();
    let cache = t.gpu.storage_f32("cache", &[&keys[..], &vec![9.0; (n + 5) * kv_dim]].concat())?;
    let out = t.gpu.zeros("means", 2 * kv_dim)?;
    t.rec.kv_mean(&cache, &out, n, kv_dim, kv_dim);
    let want = [vec![0.0; kv_dim], reference::kv_mean(&keys, n, kv_dim)].concat();
    let scale = vec![max_abs(&want); want.len()];
    Ok(Expected { out, want, scale, decode: None })
}

/// The trial of [`Case::KvQuerySq`]: rows of a stacked projection (q, then 50 other values),
/// summed into the second layer's row of an output that already holds ones (the kernel adds).
fn kv_query_sq_trial(t: &mut Trial, m: usize, heads: usize, kv_heads: usize, head_dim: usize) -> Result<Expected> {
    let (kvd, stride) = (kv_heads * head_dim, heads * head_dim + 50);
    // Queries with a spread per channel, as RoPE pairs and outlier channels give them.
    let spread: Vec<f32> = (0..heads * head_dim).map(|_| 0.2 + 3.0 * t.rng.uniform()).collect();
    let q: Vec<f32> = t.rng.normals(m * stride, 1.0).iter().enumerate().map(|(i, v)| v * spread.get(i % stride).copied().unwrap_or(9.0)).collect();
    let gq = t.gpu.storage_f32("q", &q)?;
    let out = t.gpu.storage_f32("query_sq", &vec![1.0; 2 * kvd])?;
    t.rec.kv_query_sq(&gq, &out, m, (heads, kv_heads, head_dim), stride, kvd);
    let sums = reference::kv_query_sq(&q, m, stride, heads, kv_heads, head_dim);
    let want = [vec![1.0; kvd], sums.iter().map(|s| s + 1.0).collect()].concat();
    let scale = vec![max_abs(&want); want.len()];
    Ok(Expected { out, want, scale, decode: None })
}

/// The trial of [`Case::KvBalance`]: keys with an offset and a spread per channel (a few 20
/// times the rest), queries' sums with a spread of their own, one head whose keys never move
/// (its scales stay 1); the scales written into the second layer's row, the means read from the
/// first.
fn kv_balance_trial(t: &mut Trial, n: usize, kv_heads: usize, head_dim: usize) -> Result<Expected> {
    let kvd = kv_heads * head_dim;
    let offsets = t.rng.normals(kvd, 4.0);
    let spread: Vec<f32> = (0..kvd).map(|e| if e < head_dim { 0.0 } else if e % 7 == 3 { 20.0 } else { 0.3 + t.rng.uniform() }).collect();
    let keys: Vec<f32> = t.rng.normals((n + 5) * kvd, 1.0).iter().enumerate().map(|(i, v)| v * spread[i % kvd] + offsets[i % kvd]).collect();
    let cache = t.gpu.storage_f32("cache", &[&keys[..], &vec![9.0; (n + 5) * kvd]].concat())?;
    let means = reference::kv_mean(&keys, n, kvd);
    let qsq: Vec<f32> = (0..kvd).map(|_| 50.0 * t.rng.uniform() * t.rng.uniform()).collect();
    let stats = t.gpu.storage_f32("key stats", &[&means[..], &vec![5.0; 2 * kvd][..]].concat())?;
    let gq = t.gpu.storage_f32("query_sq", &[&[0.0; 3][..], &qsq[..]].concat())?;
    t.rec.kv_balance(&cache, &stats, &gq, n, kvd, head_dim, (0, 2 * kvd, 3));
    let want = [means.clone(), vec![5.0; kvd], reference::kv_balance(&keys, n, kvd, head_dim, &means, &qsq)].concat();
    let scale = [vec![max_abs(&means); kvd], vec![1.0; 2 * kvd]].concat();
    Ok(Expected { out: stats, want, scale, decode: None })
}

/// One code step of each value of `x` stored as the INT `kv` format: the widest gap of its grid
/// times the largest value of its block (INT8) or unit (INT4/INT3, of the rotated values for a
/// rotated format: one code rounded the other way moves every value of its rotation block by at
/// most that step).
fn kv_steps(kv: KvPrecision, x: &[f32], head_dim: usize) -> Vec<f32> {
    let mut r = x.to_vec();
    if kv.rotated() {
        crate::layout::rotate(&mut r, head_dim, false);
    }
    r.chunks(if kv.bits() == 8 { 32 } else { kv.unit() }).flat_map(|b| vec![max_abs(b) * kv.widest_step(); b.len()]).collect()
}

/// The trial of [`Case::Attention`].
#[allow(clippy::too_many_arguments)]
fn attention_trial(t: &mut Trial, m: usize, heads: usize, kv_heads: usize, head_dim: usize, pos0: usize, window: usize, kv: KvPrecision) -> Result<Expected> {
    let (gpu, rec, rng) = (t.gpu, &mut t.rec, &mut t.rng);
    let a = Attention { heads, kv_heads, head_dim, pos0, scale: 1.0 / (head_dim as f32).sqrt(), window };
    let n_kv = pos0 + m;
    let n = n_kv * kv_heads * head_dim;
    let q = rng.normals(m * heads * head_dim, 1.0);
    let (k, v) = (rng.normals(n, 1.0), rng.normals(n, 1.0));
    // The cache as the CPU encodes it (keys, then values from value n on): attention is
    // tested over exactly the keys and values the reference attends over.
    let (kw, vw) = (reference::kv_store(kv, &k, head_dim)?, reference::kv_store(kv, &v, head_dim)?);
    let kvd = kv_heads * head_dim;
    // With a recent window: the ring after the codes holds the positions before the step that
    // fit, but one (its slot overwritten since), and the stage the step's own.
    let mut recent = reference::Recent::new(kv.recent());
    let mut ring = vec![0u32; kv.ring_words(kvd)];
    let mut staged = vec![];
    let exact_row = |x: &[f32], j: usize| kv.exact_words(&x[j * kvd..(j + 1) * kvd], head_dim);
    if recent.r > 0 {
        let slots = recent.tags.len();
        for j in pos0.saturating_sub(slots)..pos0 {
            let w = [exact_row(&k, j), exact_row(&v, j)].concat();
            ring[(j % slots) * kvd..][..kvd].copy_from_slice(&w);
            if j + 3 != pos0 {
                (ring[slots * kvd + j % slots], recent.tags[j % slots]) = ((j + 1) as u32, (j + 1) as u32);
            }
        }
        staged = (pos0..n_kv).flat_map(|j| [exact_row(&k, j), exact_row(&v, j)].concat()).collect();
    }
    let cache = gpu.storage_u32("cache", &[kw.clone(), vw.clone(), ring].concat())?;
    let stage = gpu.storage_u32("stage", &[staged, vec![0]].concat())?;
    let gq = gpu.storage_f32("q", &q)?;
    // Key scales ½ to 2 (from value 5 on), which a rotated format divides the queries by: the
    // stored keys stand for keys multiplied by them.
    let scales: Vec<f32> = (0..kvd).map(|_| 0.5 + 1.5 * rng.uniform()).collect();
    let gscales = gpu.storage_f32("key scales", &[&[7.0; 5][..], &scales[..]].concat())?;
    // Scores for two query rows at a time: the queries go through in tiles, as a long prompt's do.
    let (gs, go) = (gpu.zeros("scores", crate::gpu::ops::scores_len(heads, head_dim, 2, n_kv))?, gpu.zeros("o", m * heads * head_dim)?);
    rec.attention(&gq, heads * head_dim, &cache, &step(gpu, pos0), &gs, &go, m, &a, n, kv, (&gscales, 5), (&stage, kv.words(2 * n)));
    let qs = if kv.scaled() { reference::divide_queries(&q, heads, kv_heads, head_dim, &scales) } else { q };
    let exact = |x: &[f32]| -> Vec<f32> { x.chunks_exact(kvd).flat_map(|r| kv.exact(r, head_dim)).collect() };
    let (ke, ve) = if recent.r > 0 { (exact(&k), exact(&v)) } else { (vec![], vec![]) };
    let stored = (kv.decode(&kw, head_dim), kv.decode(&vw, head_dim));
    let want = reference::attention_with(&qs, (&stored.0, &stored.1), (&ke, &ve), m, &a, |pos, j| recent.exact(j, pos, pos0));
    let s = vec![max_abs(&want); want.len()];
    Ok(Expected { out: go, want, scale: s, decode: None })
}

/// The trial of [`Case::Argmax`].
fn argmax_trial(t: &mut Trial, n: usize) -> Result<Expected> {
    let (gpu, rec, rng) = (t.gpu, &mut t.rec, &mut t.rng);
    let mut x = rng.normals(n, 1.0);
    // A tie between two maxima: the lower index wins, as on the CPU.
    let (i, j) = (n / 3, 2 * n / 3);
    x[i] = 10.0;
    x[j] = 10.0;
    let (gx, go) = (gpu.storage_f32("x", &x)?, gpu.zeros("out", 1)?);
    rec.argmax(&gx, &go, n);
    let decode: Option<Decode> = Some(Box::new(|w: &[u32]| vec![w[0] as f32]));
    Ok(Expected { out: go, want: vec![crate::model::argmax(&x) as f32], scale: vec![0.0], decode })
}

/// The trial of [`Case::Sample`].
fn sample_trial(t: &mut Trial, n: usize, k: usize) -> Result<Expected> {
    let (gpu, rec, rng) = (t.gpu, &mut t.rec, &mut t.rng);
    let (x, d) = sample_case(rng, n, k);
    let words = crate::gpu::ops::draw_words(&d);
    let (gx, go, gd) = (gpu.storage_f32("x", &x)?, gpu.zeros("out", 1)?, gpu.storage_u32("draw", &words)?);
    rec.sample(&gx, &go, &gd, n, &d);
    let decode: Option<Decode> = Some(Box::new(|w: &[u32]| vec![w[0] as f32]));
    Ok(Expected { out: go, want: vec![crate::sampler::sample(&x, &d) as f32], scale: vec![0.0], decode })
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

/// Logits for a sampling case (rounded to quarters, so the top-k cut falls among ties) and a draw
/// over them: a repetition penalty on some tokens, top-`k`, top-p 0.9, min-p 0.02, temperature
/// 0.8 (greedy when `k` is 1), and a random number from `rng`.
pub fn sample_case(rng: &mut Rng, n: usize, k: usize) -> (Vec<f32>, crate::sampler::Draw) {
    let x: Vec<f32> = rng.normals(n, 2.0).into_iter().map(|v| (v * 4.0).round() / 4.0).collect();
    let mut recent: Vec<u32> = (0..24).map(|i| ((i * 37 + 5) % n) as u32).collect();
    recent.sort_unstable();
    recent.dedup();
    let greedy = k == 1;
    let d = crate::sampler::Draw {
        recent,
        penalty: 1.3,
        top_k: k,
        top_p: 0.9,
        min_p: 0.02,
        temperature: if greedy { 0.0 } else { 0.8 },
        u: if greedy { 0.0 } else { rng.uniform() },
    };
    (x, d)
}
