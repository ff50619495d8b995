//! The start-up measurement that picks the matvec and prefill matmul variants this adapter runs
//! fastest ([`fastest`], called by [`Gpu::new`]), and the pass timing it shares with the kernel
//! benchmark ([`crate::bench`]).

use super::{ops::Recorder, Fuse, Gpu, IntDot, PassTimer, Reduce, Tiling};
use crate::util::{median, now_ms, Rng};
use crate::{Precision, QuantMatrix, Result};

/// How a pass was timed: GPU timestamp queries, or the wall clock over a batch of passes
/// (`timestamp` and `wall` in reports and JSON).
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Timer {
    Timestamp,
    Wall,
}

impl std::fmt::Display for Timer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Timer::Timestamp => "timestamp",
            Timer::Wall => "wall",
        })
    }
}

/// Median milliseconds of one pass recorded by `record`, over `reps` passes: GPU timestamps where
/// the adapter has them and `timestamps` asks for them, else wall clock over batches of passes.
/// Every pass is recorded and run once first (compiling the pipeline, touching the buffers).
pub async fn time_passes_with(gpu: &Gpu, reps: u32, record: &dyn Fn(&mut Recorder), timestamps: bool) -> Result<(f64, Timer)> {
    // Warm-up: compiles the pipeline and touches the buffers.
    let mut rec = Recorder::new(gpu, None, 0);
    record(&mut rec);
    rec.submit();
    gpu.wait().await?;
    if let Some(timer) = PassTimer::new(gpu, reps).filter(|_| timestamps).map(std::rc::Rc::new) {
        let mut rec = Recorder::new(gpu, Some(timer.clone()), reps);
        for _ in 0..reps {
            record(&mut rec);
        }
        rec.submit();
        gpu.wait().await?;
        let ms = timer.read_ms(gpu).await?;
        // Some browsers quantize timestamps; fall back to wall clock if they read as zero.
        if ms.iter().any(|&t| t > 0.0) {
            return Ok((median(&ms), Timer::Timestamp));
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
    Ok((median(&samples), Timer::Wall))
}

/// The matvec and prefill matmul variants that run fastest on this adapter: each candidate times
/// a few passes over INT4 matrices of a small model's size (the matvec 1024 × 1024, with its
/// input's rmsnorm fused in, as most of a decode step's matvecs run; the matmul 512 × 1024 over
/// 16 tokens). GPUs pick the subgroup (or workgroup) matvec and the shared-memory tiles; CPU
/// adapters (lavapipe, SwiftShader) the barrier-free kernels, sharing x through subgroups where
/// they have them. Every page start runs this: larger matrices cost seconds on a software adapter
/// (smaller ones let noise pick the slower matvec on lavapipe one time in four).
pub async fn fastest(gpu: &Gpu) -> Result<(Reduce, Tiling)> {
    let (k, n, m) = (1024, 1024, 16);
    let mut rng = Rng::new(7);
    let values = rng.normals(n * k, 0.05);
    let gw = gpu.upload_matrix("tune.w", &QuantMatrix::quantize(&values, n, k, Precision::Int4)?)?;
    let mw = gpu.upload_matrix("tune.mw", &QuantMatrix::quantize(&values[..n / 2 * k], n / 2, k, Precision::Int4)?)?;
    let x = gpu.storage_f32("tune.x", &rng.normals(m * k, 1.0))?;
    let g = gpu.storage_f32("tune.g", &vec![1.0; k])?;
    let y = gpu.zeros("tune.y", m * n)?;
    let reduce = quickest(gpu, gpu.reduces(), 5, |rec, r| rec.matvec_fused(&gw, &x, &y, Fuse::Norm, Some((&g, 1e-5)), r)).await?;
    let tiling = quickest(gpu, gpu.tilings(), 3, |rec, t| rec.matmul_with(&mw, &x, &y, m, t)).await?;
    gpu.check()?;
    Ok((reduce.unwrap_or(gpu.reduce()), tiling.unwrap_or(gpu.tiling())))
}

/// The candidate whose passes (`record`, `reps` of them) run fastest, the first of equals; None
/// without candidates. Wall clock, not timestamps: what a user waits for (a software adapter's
/// timestamps need not cover all of its work).
async fn quickest<T: Copy>(gpu: &Gpu, candidates: impl IntoIterator<Item = T>, reps: u32, record: impl Fn(&mut Recorder, T)) -> Result<Option<T>> {
    let mut best: Option<(f64, T)> = None;
    for c in candidates {
        let (ms, _) = time_passes_with(gpu, reps, &|rec| record(rec, c), false).await?;
        if best.is_none_or(|(b, _)| ms < b) {
            best = Some((ms, c));
        }
    }
    Ok(best.map(|(_, c)| c))
}

/// The integer matvec form that runs fastest here, timed as [`fastest`] times the f32 matvec
/// (1024 × 1024 INT4, the norm fused into `act_q8`): the barrier-free matvec multiplies 8-bit
/// codes with packed dot products or converts them to f32 once per block, and a CPU adapter that
/// emulates the packed products may run the second faster. The reducing matvecs (GPUs) have the
/// packed form only.
pub async fn fastest_int_dot(gpu: &Gpu) -> Result<IntDot> {
    let reduce = gpu.reduce();
    if !matches!(reduce, Reduce::Row | Reduce::RowSubgroup) {
        return Ok(IntDot::Packed);
    }
    let (k, n) = (1024, 1024);
    let mut rng = Rng::new(7);
    let w = gpu.upload_matrix("tune.w", &QuantMatrix::quantize(&rng.normals(n * k, 0.05), n, k, Precision::Int4)?)?;
    let x = gpu.storage_f32("tune.x", &rng.normals(k, 1.0))?;
    let g = gpu.storage_f32("tune.g", &vec![1.0; k])?;
    let (xq, xd, y) = (gpu.zeros("tune.xq", k / 4)?, gpu.zeros("tune.xd", 2 * (k / 32 + 1))?, gpu.zeros("tune.y", n)?);
    let forms = [IntDot::Packed, IntDot::Unpacked];
    let best = quickest(gpu, forms, 5, |rec, dot| rec.matvec_q8(&w, &x, &y, Fuse::Norm, Some((&g, 1e-5)), (&xq, &xd), reduce, dot)).await?;
    gpu.check()?;
    Ok(best.unwrap_or_default())
}
