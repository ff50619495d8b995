//! Quantization methods: which integers, scales and minima a matrix is stored with at a given
//! precision. The GPU layouts and kernels are the same for every method; only the numbers
//! differ, so a method costs nothing at decode time.
//!
//! - [`Method::Rtn`]: each block's min and max (INT4) or absmax (INT8), round to nearest.
//! - [`Method::Search`]: data-free; per block the scale (and min) that minimise the squared
//!   error, by a grid of candidates and least-squares refits ([`search`]).
//! - [`Method::Imatrix`]: the same search weighted by each input column's mean squared
//!   activation on a calibration text ([`calibration`]), llama.cpp's importance matrix.
//! - [`Method::Awq`]: the inputs' most active channels scaled up in the weights (and down in
//!   the norm or matrix that produces them) before the importance-weighted search ([`awq`]).
//! - [`Method::Gptq`]: per matrix, columns quantized in order with each one's error fed forward
//!   onto the columns not yet quantized, through the inverse of the inputs' `XᵀX` ([`gptq`]).
//!
//! FP16 has nothing to choose: every method stores the same halves.

pub mod awq;
pub mod calibration;
pub mod gptq;
pub mod search;

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::layout::{Blocks, BLOCK};
use crate::model::{Mat, Vector};
use crate::plan::Plan;
use crate::{Error, Precision, QuantMatrix, Result};
pub use calibration::{Calibration, Inputs, Site};

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize, PartialOrd, Ord)]
#[serde(rename_all = "lowercase")]
pub enum Method {
    #[default]
    Rtn,
    Search,
    Imatrix,
    Awq,
    Gptq,
}

impl Method {
    pub const ALL: [Method; 5] = [Method::Rtn, Method::Search, Method::Imatrix, Method::Awq, Method::Gptq];

    pub fn name(self) -> &'static str {
        match self {
            Method::Rtn => "rtn",
            Method::Search => "search",
            Method::Imatrix => "imatrix",
            Method::Awq => "awq",
            Method::Gptq => "gptq",
        }
    }

    pub fn parse(s: &str) -> Result<Method> {
        Method::ALL
            .into_iter()
            .find(|m| m.name() == s.to_ascii_lowercase())
            .ok_or_else(|| Error::Usage(format!("unknown method '{s}' (rtn, search, imatrix, awq or gptq)")))
    }

    pub fn is_rtn(&self) -> bool {
        *self == Method::Rtn
    }

    /// Whether it needs the activations of a calibration text.
    pub fn calibrated(self) -> bool {
        matches!(self, Method::Imatrix | Method::Awq | Method::Gptq)
    }

    /// One line for a newcomer.
    pub fn explain(self) -> &'static str {
        match self {
            Method::Rtn => "each block's range split evenly; every weight rounded to the nearest level",
            Method::Search => "each block's scale and offset searched to make its rounding error smallest",
            Method::Imatrix => "the same search, but errors weighted by how strongly a calibration text drives each input",
            Method::Awq => "the inputs a calibration text drives hardest scaled up in the weights, and down where they come from, before the weighted search",
            Method::Gptq => "weights rounded one column at a time, each error compensated on the columns still to come",
        }
    }
}

impl fmt::Display for Method {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Run `f(i)` for `i` in `0..n` over the available cores (one thread on wasm), results in order.
pub(crate) fn par_map<T: Send>(n: usize, f: impl Fn(usize) -> T + Sync) -> Vec<T> {
    let threads = if cfg!(target_arch = "wasm32") { 1 } else { std::thread::available_parallelism().map_or(1, |t| t.get()).min(8) };
    if threads <= 1 || n <= 1 {
        return (0..n).map(f).collect();
    }
    let chunk = n.div_ceil(threads);
    let f = &f;
    std::thread::scope(|s| {
        let handles: Vec<_> = (0..n).step_by(chunk).map(|i0| s.spawn(move || (i0..(i0 + chunk).min(n)).map(f).collect::<Vec<T>>())).collect();
        handles.into_iter().flat_map(|h| h.join().unwrap_or_default()).collect()
    })
}

/// Block `b` of row `r` of a row-major `[rows, cols]` matrix, zero-padded to 32 values.
fn block_of(values: &[f32], cols: usize, r: usize, b: usize) -> [f32; BLOCK] {
    let mut x = [0f32; BLOCK];
    let row = &values[r * cols..(r + 1) * cols];
    let src = &row[(b * BLOCK).min(cols)..((b + 1) * BLOCK).min(cols)];
    x[..src.len()].copy_from_slice(src);
    x
}

/// Each block's column weights, once per matrix: padding columns carry none, and a block whose
/// weights are all zero falls back to uniform.
pub(crate) fn block_weights(weights: &[f32], cols: usize) -> Vec<[f32; BLOCK]> {
    (0..cols.div_ceil(BLOCK))
        .map(|b| {
            let w = block_of(weights, cols, 0, b);
            if w.iter().all(|&v| v <= 0.0) { [1.0; BLOCK] } else { w }
        })
        .collect()
}

/// Every block of a row-major `[rows, cols]` matrix fitted by `fit(values, weights)`, rows over
/// the cores, in order.
fn fit_rows<B: Copy + Send>(values: &[f32], rows: usize, cols: usize, wb: &[[f32; BLOCK]], fit: impl Fn(&[f32; BLOCK], &[f32; BLOCK]) -> B + Sync) -> Vec<B> {
    par_map(rows, |r| wb.iter().enumerate().map(|(b, w)| fit(&block_of(values, cols, r, b), w)).collect::<Vec<B>>()).concat()
}

/// Matrix `m` (tensor `t` of `file`) at `plan`: its own blocks where they are already its
/// precision's ([`QuantMatrix::from_ggml`]: no method can do better than the file's own
/// numbers), else dequantized and quantized by the plan's method. What the GPU uploads and what
/// [`crate::export`] writes. AWQ, which also reads a matrix's neighbours, goes through
/// [`Quantizer`]; here it is the importance-weighted search without scales.
pub fn requantize(file: &[u8], t: &crate::gguf::TensorInfo, m: Mat, plan: &Plan, calib: Option<&Calibration>) -> Result<QuantMatrix> {
    let (rows, cols) = t.matrix_shape();
    let data = t.data(file)?;
    let p = plan.of(m);
    match QuantMatrix::from_ggml(t.ggml_type, data, rows, cols, p) {
        Some(kept) => Ok(kept),
        None => quantize(&crate::gguf::dequantize(t.ggml_type, data)?, rows, cols, p, plan.method, m, calib),
    }
}

/// Matrix `mat` (row-major f32 `values`) quantized at `p` by `method`. The calibrated methods
/// need `calib`; a matrix no activation multiplies (an untied embedding) gets the data-free
/// search under them.
pub fn quantize(values: &[f32], rows: usize, cols: usize, p: Precision, method: Method, mat: Mat, calib: Option<&Calibration>) -> Result<QuantMatrix> {
    if values.len() != rows * cols {
        return Err(Error::Shape(format!("quantize: {} values for a {rows}x{cols} matrix", values.len())));
    }
    if p == Precision::Fp16 || method == Method::Rtn {
        return QuantMatrix::quantize(values, rows, cols, p);
    }
    let inputs = match (method.calibrated(), calib) {
        (false, _) => None,
        (true, Some(c)) => c.inputs(mat),
        (true, None) => return Err(Error::Usage(format!("method {method} needs a calibration text"))),
    };
    let weights: Vec<f32> = match inputs {
        None => vec![1.0; cols],
        Some(inp) if inp.cols == cols => inp.importance(),
        Some(inp) => return Err(Error::Shape(format!("calibration inputs of {} columns for a matrix of {cols}", inp.cols))),
    };
    if let (Method::Gptq, Some(_), Some(c), 0) = (method, inputs, calib, cols % BLOCK) {
        return gptq::quantize(values, rows, cols, p, &*c.factor(mat)?, &weights);
    }
    weighted(values, rows, cols, p, &weights)
}

/// The searched blocks of a row-major `[rows, cols]` matrix under per-column `weights`
/// (`search`, `imatrix`, and `awq` after scaling).
pub(crate) fn weighted(values: &[f32], rows: usize, cols: usize, p: Precision, weights: &[f32]) -> Result<QuantMatrix> {
    let wb = block_weights(weights, cols);
    let blocks = match p {
        Precision::Int4 => Blocks::Int4(fit_rows(values, rows, cols, &wb, search::asym)),
        Precision::Int8 => Blocks::Int8(fit_rows(values, rows, cols, &wb, search::int8)),
        Precision::Int3 => Blocks::Int3(fit_rows(values, rows, cols, &wb, search::asym)),
        Precision::Int2 => Blocks::Int2(fit_rows(values, rows, cols, &wb, search::asym)),
        Precision::Fp16 => return QuantMatrix::quantize(values, rows, cols, p),
    };
    Ok(QuantMatrix { rows, cols, blocks })
}

/// How a plan's matrices (and the vectors its method changes) are made from a file, tensor by
/// tensor: what the GPU uploads ([`crate::model::gpu::Requantizer`]) and what
/// [`crate::export`] writes.
#[derive(Clone)]
pub struct Quantizer {
    pub plan: Plan,
    /// AWQ's view of the model, which needs a site's other matrices and norms.
    awq: Option<awq::Awq>,
}

impl Quantizer {
    pub fn new(cfg: &crate::model::Config, g: &crate::gguf::Gguf, plan: Plan) -> Result<Quantizer> {
        let awq = (plan.method == Method::Awq).then(|| awq::Awq::new(cfg, g, plan)).transpose()?;
        Ok(Quantizer { plan, awq })
    }

    /// Matrix `m` (tensor `t` of `file`) at the plan.
    pub fn matrix(&self, file: &[u8], t: &crate::gguf::TensorInfo, m: Mat, calib: Option<&Calibration>) -> Result<QuantMatrix> {
        match (&self.awq, calib) {
            (Some(a), Some(c)) => a.matrix(file, t, m, c),
            _ => requantize(file, t, m, &self.plan, calib),
        }
    }

    /// Vector `v` where the plan's method changes it (AWQ's scales folded into a norm); `None`
    /// where it stays the file's.
    pub fn vector(&self, file: &[u8], v: Vector, calib: Option<&Calibration>) -> Result<Option<Vec<f32>>> {
        match (&self.awq, calib) {
            (Some(a), Some(c)) => a.vector(file, v, c),
            _ => Ok(None),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::util::Rng;

    #[test]
    fn methods_parse_by_name_and_rtn_is_the_default() {
        for m in Method::ALL {
            assert_eq!(Method::parse(m.name()).unwrap(), m);
            assert_eq!(serde_json::to_string(&m).unwrap(), format!("\"{}\"", m.name()));
        }
        assert_eq!(Method::default(), Method::Rtn);
        assert!(Method::parse("awq4").is_err());
    }

    #[test]
    fn search_matrix_has_lower_error_than_rtn_on_a_ragged_shape() {
        // 37 columns: one whole block and a padded one.
        let (rows, cols) = (5, 37);
        let v = Rng::new(11).normals(rows * cols, 0.1);
        let err = |q: &QuantMatrix| q.dequantize().iter().zip(&v).map(|(a, b)| ((a - b) as f64).powi(2)).sum::<f64>();
        for p in [Precision::Int4, Precision::Int8, Precision::Int3, Precision::Int2] {
            let rtn = QuantMatrix::quantize(&v, rows, cols, p).unwrap();
            let s = quantize(&v, rows, cols, p, Method::Search, Mat::Q(0), None).unwrap();
            assert_eq!(s.gpu_layout().q.len(), rtn.gpu_layout().q.len());
            assert!(err(&s) < err(&rtn), "{p}: search {} vs rtn {}", err(&s), err(&rtn));
        }
        assert!(quantize(&v, rows, cols, Precision::Int4, Method::Imatrix, Mat::Q(0), None).is_err());
    }
}
