//! AWQ, activation-aware weight quantization (Lin et al. 2023; read `auto_scale.py` in
//! mit-han-lab/llm-awq). The few input channels that calibration activations drive hardest
//! carry most of a layer's output: scaling those columns of the weight *up* by `s` before
//! rounding (and the input *down* by the same `s`) shrinks their relative rounding error. Per
//! site `s = mean|x|^α` (normalised so `max·min = 1`), with `α` searched on a grid to minimise
//! the site's output error `‖X·(W − Q(W·s)/s)ᵀ‖²` on the calibration activations.
//!
//! The `1/s` on the input is folded into what produces it, so the decode path is unchanged:
//! - Q, K, V: into the attention norm's weights ([`Vector::Attn`]);
//! - gate, up: into the feed-forward norm's weights ([`Vector::Ffn`]);
//! - down: into the rows of up (the gated product `act(gate)·up` is linear in up).
//!
//! Not scaled: O (its input comes from V through the attention; llm-awq folds it into V's rows
//! only without grouped-query attention, and every model here shares K/V heads), and the output
//! head (tied to the embedding in the test models, whose rows a lookup reads unscaled). Those get
//! the importance-weighted search, which AWQ also uses after scaling. A site is left unscaled
//! where any matrix it would touch is kept as the file stores it ([`QuantMatrix::keeps`]) or
//! stays at FP16: its stored numbers cannot absorb a scale.

use std::collections::HashMap;
use std::sync::Arc;

use super::{par_map, weighted, Calibration, Inputs, Site};
use crate::gguf::{Gguf, TensorInfo};
use crate::model::{Config, Mat, Vector};
use crate::plan::Plan;
use crate::{Error, Precision, QuantMatrix, Result};

/// Exponents tried: `α = i / GRID` for `i` in `0..GRID` (llm-awq's grid has 20 steps over
/// [0, 1); 10 chose as well on Gemma 3 270M at half the time, which the page's single thread feels).
pub const GRID: usize = 10;
/// Rows of a site's matrices (evenly spaced over them) the α search rounds and scores.
const ROWS: usize = 128;
/// Calibration tokens (evenly spaced) the α search scores the output error on.
const TOKENS: usize = 128;

/// The matrices a site's scales multiply (columns), and the matrix whose rows absorb `1/s`
/// (`None`: a norm's weights do, [`norm_of`]). `None` for sites AWQ leaves unscaled.
pub fn group(site: Site) -> Option<(Vec<Mat>, Option<Mat>)> {
    match site {
        Site::Qkv(l) => Some((vec![Mat::Q(l), Mat::K(l), Mat::V(l)], None)),
        Site::GateUp(l) => Some((vec![Mat::Gate(l), Mat::Up(l)], None)),
        Site::Down(l) => Some((vec![Mat::Down(l)], Some(Mat::Up(l)))),
        Site::O(_) | Site::Output => None,
    }
}

/// The norm whose weights absorb a site's `1/s`.
pub fn norm_of(site: Site) -> Option<Vector> {
    match site {
        Site::Qkv(l) => Some(Vector::Attn(l)),
        Site::GateUp(l) => Some(Vector::Ffn(l)),
        _ => None,
    }
}

/// `s = mean|x|^α`, normalised so its largest times its smallest is 1 (llm-awq's
/// `s / sqrt(s.max() · s.min())`); `mean_abs` floored at 1e-4 first.
pub fn scales_at(mean_abs: &[f32], alpha: f32) -> Vec<f32> {
    let s: Vec<f32> = mean_abs.iter().map(|&a| a.max(1e-4).powf(alpha)).collect();
    let (mx, mn) = s.iter().fold((0f32, f32::MAX), |(a, b), &v| (a.max(v), b.min(v)));
    let norm = (mx * mn).sqrt();
    s.iter().map(|v| v / norm).collect()
}

/// Each column's mean absolute activation.
fn mean_abs(x: &Inputs) -> Vec<f32> {
    let mut s = vec![0f64; x.cols];
    for row in x.x.chunks_exact(x.cols.max(1)) {
        for (a, v) in s.iter_mut().zip(row) {
            *a += v.abs() as f64;
        }
    }
    s.iter().map(|v| (v / x.rows().max(1) as f64) as f32).collect()
}

/// The importance weights of the search after scaling: the scaled inputs `x/s` have mean squares
/// `importance / s²`.
pub fn scaled_importance(importance: &[f32], s: &[f32]) -> Vec<f32> {
    importance.iter().zip(s).map(|(w, s)| w / (s * s)).collect()
}

/// `values [rows, cols]` with column `j` times `cols_s[j]` and row `r` divided by `rows_s[r]`.
pub fn scaled(values: &[f32], cols: usize, cols_s: Option<&[f32]>, rows_s: Option<&[f32]>) -> Vec<f32> {
    let mut v = values.to_vec();
    for (r, row) in v.chunks_exact_mut(cols).enumerate() {
        let inv = rows_s.map_or(1.0, |s| 1.0 / s[r]);
        for (j, w) in row.iter_mut().enumerate() {
            *w *= cols_s.map_or(1.0, |s| s[j]) * inv;
        }
    }
    v
}

/// The site's output error `Σ_t Σ_r (x_t · (w_r − ŵ_r))²` over calibration tokens `x [n, k]`
/// when the `rows` (each `k` weights) are stored scaled by `s` at precision `p`.
fn error(rows: &[f32], k: usize, x: &[f32], importance: &[f32], s: &[f32], p: Precision) -> Result<f64> {
    let n_rows = rows.len() / k;
    let q = weighted(&scaled(rows, k, Some(s), None), n_rows, k, p, &scaled_importance(importance, s))?;
    let back = q.dequantize();
    let errs = par_map(n_rows, |r| {
        let delta: Vec<f32> = (0..k).map(|j| rows[r * k + j] - back[r * k + j] / s[j]).collect();
        x.chunks_exact(k).map(|xt| (crate::model::cpu::dot8(xt, &delta) as f64).powi(2)).sum::<f64>()
    });
    Ok(errs.iter().sum())
}

/// The `α` on the grid whose scales give the site the least output error, and those scales;
/// `None` where `α = 0` (no scaling) is best. `mats` are the site's matrices (row-major, `k`
/// columns each), `inputs` its calibration activations.
pub fn search(mats: &[&[f32]], k: usize, inputs: &Inputs, p: Precision) -> Result<Option<(f32, Vec<f32>)>> {
    if inputs.cols != k || mats.iter().any(|m| m.len() % k != 0) {
        return Err(Error::Shape(format!("AWQ: calibration inputs of {} columns for matrices of {k}", inputs.cols)));
    }
    // Evenly spaced rows of the stacked matrices, and tokens.
    let total: usize = mats.iter().map(|m| m.len() / k).sum();
    let stride = total.div_ceil(ROWS).max(1);
    let all = mats.iter().flat_map(|m| m.chunks_exact(k));
    let rows: Vec<f32> = all.step_by(stride).flatten().copied().collect();
    let t_stride = inputs.rows().div_ceil(TOKENS).max(1);
    let x: Vec<f32> = inputs.x.chunks_exact(k).step_by(t_stride).flatten().copied().collect();
    let (mean, importance) = (mean_abs(inputs), inputs.importance());
    let mut best: Option<(f64, f32, Vec<f32>)> = None;
    for i in 0..GRID {
        let alpha = i as f32 / GRID as f32;
        let s = scales_at(&mean, alpha);
        let e = error(&rows, k, &x, &importance, &s, p)?;
        if best.as_ref().is_none_or(|b| e < b.0) {
            best = Some((e, alpha, s));
        }
    }
    Ok(best.and_then(|(_, alpha, s)| (alpha > 0.0).then_some((alpha, s))))
}

/// A plan's matrices and the norm weights AWQ changes, made tensor by tensor from a file (the
/// page's worker and [`crate::export`] step through them). Each site's scales are searched once
/// per precision and kept in the [`Calibration`].
#[derive(Clone)]
pub struct Awq {
    plan: Plan,
    tensors: HashMap<Mat, TensorInfo>,
    norms: HashMap<Vector, TensorInfo>,
}

impl Awq {
    pub fn new(cfg: &Config, g: &Gguf, plan: Plan) -> Result<Awq> {
        let mut tensors = HashMap::new();
        for m in cfg.matrices() {
            tensors.insert(m, g.tensor(&m.tensor_name(false))?.clone());
        }
        let mut norms = HashMap::new();
        for l in 0..cfg.n_layers {
            for v in [Vector::Attn(l), Vector::Ffn(l)] {
                norms.insert(v, g.tensor(&v.tensor_name())?.clone());
            }
        }
        Ok(Awq { plan, tensors, norms })
    }

    fn tensor(&self, m: Mat) -> Result<&TensorInfo> {
        self.tensors.get(&m).ok_or_else(|| Error::TensorNotFound(m.tensor_name(false)))
    }

    /// Whether the plan requantizes `m` (neither FP16 nor kept as stored): only then can it
    /// absorb a scale.
    fn requantized(&self, m: Mat) -> Result<bool> {
        let (t, p) = (self.tensor(m)?, self.plan.of(m));
        Ok(p != Precision::Fp16 && !QuantMatrix::keeps(t.ggml_type, t.matrix_shape().1, p))
    }

    /// The scales of `site` at this plan (`None`: left unscaled).
    pub fn scales(&self, file: &[u8], site: Site, calib: &Calibration) -> Result<Option<Arc<Vec<f32>>>> {
        let Some((mats, rows_of)) = group(site) else { return Ok(None) };
        for m in mats.iter().chain(&rows_of) {
            if !self.requantized(*m)? {
                return Ok(None);
            }
        }
        let Some(inputs) = calib.inputs(mats[0]) else { return Ok(None) };
        let p = self.plan.of(mats[0]);
        calib.awq_scales(site, p, || {
            let values = mats.iter().map(|m| self.tensor(*m).and_then(|t| crate::gguf::dequantize(t.ggml_type, t.data(file)?))).collect::<Result<Vec<_>>>()?;
            let refs: Vec<&[f32]> = values.iter().map(|v| &v[..]).collect();
            Ok(search(&refs, inputs.cols, inputs, p)?.map(|(_, s)| s))
        })
    }

    /// Matrix `m` (tensor `t`) at the plan: its columns scaled by its site's `s`, its rows (up's)
    /// divided by the down site's, then the importance-weighted search under the scaled inputs.
    /// Unscaled (kept as stored, FP16, or a site AWQ leaves alone), it is [`super::requantize`]'s.
    pub fn matrix(&self, file: &[u8], t: &TensorInfo, m: Mat, calib: &Calibration) -> Result<QuantMatrix> {
        let cols_s = match Site::of(m, calib.tied) {
            Some(s) => self.scales(file, s, calib)?,
            None => None,
        };
        let rows_s = match m {
            Mat::Up(l) => self.scales(file, Site::Down(l), calib)?,
            _ => None,
        };
        if cols_s.is_none() && rows_s.is_none() {
            return super::requantize(file, t, m, &self.plan, Some(calib));
        }
        // Scales exist only where every matrix they touch is requantized (`scales`).
        let (rows, cols) = t.matrix_shape();
        let values = crate::gguf::dequantize(t.ggml_type, t.data(file)?)?;
        let importance = match calib.inputs(m) {
            Some(inp) if inp.cols == cols => inp.importance(),
            Some(inp) => return Err(Error::Shape(format!("calibration inputs of {} columns for a matrix of {cols}", inp.cols))),
            None => vec![1.0; cols],
        };
        let v = scaled(&values, cols, cols_s.as_deref().map(|s| &s[..]), rows_s.as_deref().map(|s| &s[..]));
        let w = match &cols_s {
            Some(s) => scaled_importance(&importance, s),
            None => importance,
        };
        weighted(&v, rows, cols, self.plan.of(m), &w)
    }

    /// Norm `v`'s weights where the plan folds scales into them (divided by its site's `s`);
    /// `None` where they stay the file's.
    pub fn vector(&self, file: &[u8], v: Vector, calib: &Calibration) -> Result<Option<Vec<f32>>> {
        let site = match v {
            Vector::Attn(l) => Site::Qkv(l),
            Vector::Ffn(l) => Site::GateUp(l),
            _ => return Ok(None),
        };
        let Some(s) = self.scales(file, site, calib)? else { return Ok(None) };
        let t = self.norms.get(&v).ok_or_else(|| Error::TensorNotFound(v.tensor_name()))?;
        let g = crate::gguf::dequantize(t.ggml_type, t.data(file)?)?;
        if g.len() != s.len() {
            return Err(Error::Shape(format!("{}: {} weights for {} scales", v.tensor_name(), g.len(), s.len())));
        }
        Ok(Some(g.iter().zip(s.iter()).map(|(g, s)| g / s).collect()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::util::Rng;

    /// Inputs `[n, k]` whose first few channels are much larger (the salient channels AWQ is
    /// about: LLM activations have a few outlier channels).
    fn salient_inputs(n: usize, k: usize, rng: &mut Rng) -> Inputs {
        let mut x = rng.normals(n * k, 1.0);
        for t in 0..n {
            for j in 0..4 {
                x[t * k + j * 9] *= 20.0;
            }
        }
        Inputs { cols: k, x }
    }

    fn output_error(w: &[f32], q: &QuantMatrix, k: usize, x: &Inputs, s: Option<&[f32]>) -> f64 {
        let back = q.dequantize();
        let rows = w.len() / k;
        let mut e = 0f64;
        for xt in x.x.chunks_exact(k) {
            for r in 0..rows {
                let d: f64 = (0..k).map(|j| (w[r * k + j] - back[r * k + j] / s.map_or(1.0, |s| s[j])) as f64 * xt[j] as f64).sum();
                e += d * d;
            }
        }
        e
    }

    #[test]
    fn scales_are_normalised_and_alpha_zero_is_no_scaling() {
        let m = [0.01, 1.0, 4.0, 100.0];
        assert!(scales_at(&m, 0.0).iter().all(|&s| (s - 1.0).abs() < 1e-6));
        let s = scales_at(&m, 0.5);
        let (mx, mn) = s.iter().fold((0f32, f32::MAX), |(a, b), &v| (a.max(v), b.min(v)));
        assert!((mx * mn - 1.0).abs() < 1e-4, "{s:?}");
        assert!(s.windows(2).all(|w| w[0] < w[1]), "larger activations, larger scales: {s:?}");
    }

    #[test]
    fn awq_scaling_cuts_the_output_error_of_salient_channels_on_a_ragged_shape() {
        // 70 columns (two whole blocks and a padded one), 37 rows.
        let (rows, k) = (37, 70);
        let mut rng = Rng::new(5);
        let w = rng.normals(rows * k, 0.05);
        let x = salient_inputs(300, k, &mut rng);
        for p in [Precision::Int4, Precision::Int3] {
            let (alpha, s) = search(&[&w], k, &x, p).unwrap().expect("salient channels are worth scaling");
            assert!(alpha > 0.0 && alpha < 1.0, "{alpha}");
            let awq = weighted(&scaled(&w, k, Some(&s), None), rows, k, p, &scaled_importance(&x.importance(), &s)).unwrap();
            let imatrix = weighted(&w, rows, k, p, &x.importance()).unwrap();
            let (e_awq, e_imp) = (output_error(&w, &awq, k, &x, Some(&s)), output_error(&w, &imatrix, k, &x, None));
            assert!(e_awq < 0.9 * e_imp, "{p}: AWQ {e_awq} vs importance-weighted {e_imp}");
        }
    }

    #[test]
    fn uniform_inputs_leave_little_to_scale() {
        // Every channel alike: scaling cannot help much, and the search must not make it worse.
        let (rows, k) = (16, 64);
        let mut rng = Rng::new(9);
        let w = rng.normals(rows * k, 0.05);
        // Fewer tokens than the search samples, so it scores every one.
        let x = Inputs { cols: k, x: rng.normals(120 * k, 1.0) };
        let imatrix = weighted(&w, rows, k, Precision::Int4, &x.importance()).unwrap();
        let e_imp = output_error(&w, &imatrix, k, &x, None);
        match search(&[&w], k, &x, Precision::Int4).unwrap() {
            None => {}
            Some((_, s)) => {
                let awq = weighted(&scaled(&w, k, Some(&s), None), rows, k, Precision::Int4, &scaled_importance(&x.importance(), &s)).unwrap();
                // Scored on the same (sub-sampled) tokens it was searched on: never worse.
                assert!(output_error(&w, &awq, k, &x, Some(&s)) <= e_imp * 1.001);
            }
        }
    }

    #[test]
    fn scaled_divides_rows_and_multiplies_columns() {
        let v = [1.0, 2.0, 3.0, 4.0];
        assert_eq!(scaled(&v, 2, Some(&[2.0, 0.5]), Some(&[1.0, 4.0])), vec![2.0, 1.0, 1.5, 0.5]);
        assert!(search(&[&v], 3, &Inputs { cols: 2, x: vec![1.0; 4] }, Precision::Int4).is_err());
    }
}
