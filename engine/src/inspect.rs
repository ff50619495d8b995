//! The inspector: what a weight tensor looks like and what requantizing it does — a histogram
//! of its values, the distribution of INT8's and INT4's block scales, and the error each
//! precision leaves (histogram and RMS, relative to the file's own values).

use serde::{Deserialize, Serialize};

use crate::gguf::Gguf;
use crate::{Error, Precision, QuantMatrix, Result};

/// At most this many weights are inspected (whole rows, evenly spaced through the tensor).
pub const MAX_VALUES: usize = 1 << 20;

/// A tensor the inspector can open.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TensorEntry {
    pub name: String,
    pub dtype: String,
    pub rows: usize,
    pub cols: usize,
}

/// Counts of values in `bins` equal-width bins over `lo..hi`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Histogram {
    pub lo: f64,
    pub hi: f64,
    pub counts: Vec<u64>,
}

impl Histogram {
    pub fn of(values: &[f32], lo: f64, hi: f64, bins: usize) -> Histogram {
        let bins = bins.max(1);
        let (lo, hi) = if hi > lo { (lo, hi) } else { (lo - 0.5, lo + 0.5) };
        let mut counts = vec![0u64; bins];
        let w = (hi - lo) / bins as f64;
        for &v in values {
            let i = ((v as f64 - lo) / w).floor();
            if i.is_finite() {
                counts[(i.max(0.0) as usize).min(bins - 1)] += 1;
            }
        }
        Histogram { lo, hi, counts }
    }

    /// Over the values' own range.
    pub fn auto(values: &[f32], bins: usize) -> Histogram {
        let (lo, hi) = values.iter().fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), &v| (a.min(v as f64), b.max(v as f64)));
        if !lo.is_finite() {
            return Histogram::of(&[], 0.0, 1.0, bins);
        }
        Histogram::of(values, lo, hi, bins)
    }

    /// Symmetric around zero: `−max|v| .. max|v|`.
    pub fn symmetric(values: &[f32], bins: usize) -> Histogram {
        let m = values.iter().fold(0f64, |a, &v| a.max((v as f64).abs()));
        Histogram::of(values, -m, m, bins)
    }
}

/// What requantizing to one precision does to the tensor.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PrecisionView {
    pub precision: Precision,
    /// `rms(requantized − source) / rms(source)`.
    pub relative_rms_error: f64,
    pub max_abs_error: f64,
    /// Histogram of `requantized − source`.
    pub error: Histogram,
    /// Histogram of the block scales (None for FP16, which has none).
    pub scales: Option<Histogram>,
    pub n_blocks: usize,
    /// `relative_rms_error` with the same rows quantized by searched scales (the data-free
    /// method), where the file's blocks are not kept as stored: what a better method recovers.
    #[serde(default)]
    pub searched_relative_rms_error: Option<f64>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Inspection {
    pub tensor: TensorEntry,
    /// Weights inspected (all, or whole rows evenly spaced up to [`MAX_VALUES`]).
    pub n_values: usize,
    pub n_total: usize,
    pub rows_inspected: usize,
    pub mean: f64,
    pub std: f64,
    pub values: Histogram,
    pub precisions: Vec<PrecisionView>,
}

/// The 2-D weight tensors of a model file, in file order.
pub fn tensors(g: &Gguf) -> Vec<TensorEntry> {
    g.tensors
        .iter()
        .filter(|t| t.dims.len() == 2)
        .map(|t| {
            let (rows, cols) = t.matrix_shape();
            TensorEntry { name: t.name.clone(), dtype: t.ggml_type.name().to_string(), rows, cols }
        })
        .collect()
}

/// Inspect tensor `name` of `g` with `bins`-bin histograms.
pub fn inspect(g: &Gguf, name: &str, bins: usize) -> Result<Inspection> {
    let t = g.tensor(name)?;
    if t.dims.len() != 2 {
        return Err(Error::Shape(format!("{name} is not a matrix")));
    }
    let (rows, cols) = t.matrix_shape();
    // Whole rows, evenly spaced, so blocks stay intact; only those rows are dequantized (the
    // embedding alone would be 113 MB of f32 in the worker's memory, which never shrinks).
    let data = g.tensor_data(t);
    if rows == 0 || data.len() % rows != 0 {
        return Err(Error::Malformed(format!("{name}: {} bytes are not {rows} whole rows", data.len())));
    }
    let row_bytes = data.len() / rows;
    let take = (MAX_VALUES / cols.max(1)).clamp(1, rows);
    let picked: Vec<usize> = (0..take).map(|i| i * rows / take).collect();
    let mut values = Vec::with_capacity(take * cols);
    let mut picked_bytes = Vec::with_capacity(take * row_bytes);
    for &r in &picked {
        picked_bytes.extend_from_slice(&data[r * row_bytes..(r + 1) * row_bytes]);
        values.extend(crate::gguf::dequantize(t.ggml_type, &data[r * row_bytes..(r + 1) * row_bytes])?);
    }
    let n = values.len().max(1) as f64;
    let mean = values.iter().map(|&v| v as f64).sum::<f64>() / n;
    let var = values.iter().map(|&v| (v as f64 - mean).powi(2)).sum::<f64>() / n;
    let rms_src = (values.iter().map(|&v| (v as f64).powi(2)).sum::<f64>() / n).sqrt();
    let mut precisions = Vec::new();
    for p in Precision::ALL {
        // As the model loads it: the file's own blocks where they are this precision's.
        let (q, kept) = match QuantMatrix::from_ggml(t.ggml_type, &picked_bytes, picked.len(), cols, p) {
            Some(kept) => (kept, true),
            None => (QuantMatrix::quantize(&values, picked.len(), cols, p)?, false),
        };
        let searched = (!kept && p != Precision::Fp16)
            .then(|| crate::method::quantize(&values, picked.len(), cols, p, crate::method::Method::Search, crate::model::Mat::Q(0), None))
            .transpose()?
            .map(|s| {
                let e = s.dequantize().iter().zip(&values).map(|(b, v)| ((b - v) as f64).powi(2)).sum::<f64>() / n;
                if rms_src > 0.0 { e.sqrt() / rms_src } else { 0.0 }
            });
        let back = q.dequantize();
        let err: Vec<f32> = back.iter().zip(&values).map(|(b, v)| b - v).collect();
        let rms = (err.iter().map(|&e| (e as f64).powi(2)).sum::<f64>() / n).sqrt();
        let scales = q.block_scales();
        precisions.push(PrecisionView {
            precision: p,
            relative_rms_error: if rms_src > 0.0 { rms / rms_src } else { 0.0 },
            max_abs_error: err.iter().fold(0f64, |a, &e| a.max((e as f64).abs())),
            error: Histogram::symmetric(&err, bins),
            scales: (!scales.is_empty()).then(|| Histogram::of(&scales, 0.0, scales.iter().fold(0f64, |a, &s| a.max(s as f64)), bins)),
            n_blocks: q.rows * q.blocks_per_row(),
            searched_relative_rms_error: searched,
        });
    }
    Ok(Inspection {
        tensor: TensorEntry { name: name.to_string(), dtype: t.ggml_type.name().to_string(), rows, cols },
        n_values: values.len(),
        n_total: rows * cols,
        rows_inspected: picked.len(),
        mean,
        std: var.sqrt(),
        values: Histogram::auto(&values, bins),
        precisions,
    })
}

/// How far each layer's output drifts from FP16's at other variants, on one text.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LayerErrors {
    pub n_tokens: usize,
    /// Per variant (reference excluded): `‖h − h_fp16‖ / ‖h_fp16‖` of the residual stream after
    /// each layer, over all tokens.
    pub rows: Vec<(crate::plan::Variant, Vec<f64>)>,
}

/// `‖a − b‖ / ‖b‖`.
pub fn relative_error(a: &[f32], b: &[f32]) -> f64 {
    let (mut num, mut den) = (0f64, 0f64);
    for (x, y) in a.iter().zip(b) {
        num += (*x as f64 - *y as f64).powi(2);
        den += (*y as f64).powi(2);
    }
    if den > 0.0 { (num / den).sqrt() } else { 0.0 }
}

/// Run `tokens` through `b` at the reference and at each variant (requantizing in place, like
/// [`crate::quality::compare_on`]) and compare every layer's output. The KV cache is overwritten.
/// `on_variant` hears of each variant before it runs (the reference first) and cancels the run by
/// answering false.
pub async fn layer_errors(
    b: &mut crate::model::gpu::GpuBackend,
    g: &Gguf<'_>,
    tokens: &[u32],
    variants: &[crate::plan::Variant],
    mut on_variant: impl FnMut(crate::plan::Variant) -> bool,
) -> Result<LayerErrors> {
    use crate::model::{forward_hidden, Backend};
    let cfg = b.cfg.clone();
    let run = |b: &mut crate::model::gpu::GpuBackend, v: crate::plan::Variant| -> Result<Vec<crate::model::gpu::GpuActivations>> {
        b.set_precision(g, v.plan)?;
        b.set_kv(g, v.kv)?;
        forward_hidden(&cfg, b, tokens, 0)
    };
    let mut next = |v| if on_variant(v) { Ok(()) } else { Err(crate::Error::Cancelled) };
    next(crate::plan::Variant::REFERENCE)?;
    let acts = run(b, crate::plan::Variant::REFERENCE)?;
    let mut reference = Vec::with_capacity(acts.len());
    for a in &acts {
        reference.push(b.read(a).await?);
    }
    let mut rows = Vec::new();
    for &v in variants.iter().filter(|v| **v != crate::plan::Variant::REFERENCE) {
        next(v)?;
        let acts = run(b, v)?;
        let mut errs = Vec::with_capacity(acts.len());
        for (a, r) in acts.iter().zip(&reference) {
            errs.push(relative_error(&b.read(a).await?, r));
        }
        rows.push((v, errs));
    }
    Ok(LayerErrors { n_tokens: tokens.len(), rows })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histograms_count_every_value_once() {
        let v = [-1.0, -0.5, 0.0, 0.25, 1.0, 1.0];
        let h = Histogram::auto(&v, 4);
        assert_eq!(h.counts, vec![1, 1, 2, 2]);
        assert_eq!((h.lo, h.hi), (-1.0, 1.0));
        let s = Histogram::symmetric(&[0.5, -2.0], 2);
        assert_eq!((s.lo, s.hi, s.counts.clone()), (-2.0, 2.0, vec![1, 1]));
        assert_eq!(Histogram::auto(&[], 3).counts, vec![0, 0, 0]);
        assert_eq!(Histogram::auto(&[2.0, 2.0], 2).counts.iter().sum::<u64>(), 2);
    }
}
