//! A model at a plan written back as GGUF, so llama.cpp and every GGUF runtime load exactly the
//! weights lowbit ran: INT4 blocks as Q4_1 (the same f16 scale `d` and minimum `m`, the nibbles
//! reordered from lowbit's pairs `2j, 2j+1` to ggml's `j, j+16`), INT8 blocks as Q8_0 (the same
//! bytes), FP16 as F16. Norms (as AWQ left them, in F32), biases and metadata are copied; the tokenizer and chat template
//! with them. `general.quantized_by` names lowbit and `lowbit.quantization.*` the plan and method.
//! Loading the export at the same precisions keeps every block as stored
//! ([`QuantMatrix::from_ggml`]), so it scores exactly as the variant that wrote it.

use half::f16;

use crate::gguf::{write, GgmlType, Gguf, TensorOut, Value};
use crate::layout::{Blocks, BLOCK};
use crate::method::Calibration;
use crate::model::{Config, Mat, Vector};
use crate::plan::Plan;
use crate::{Error, Precision, QuantMatrix, Result};

/// ggml's bytes for a quantized matrix (whole rows of 32-weight blocks; FP16 rows cut to `cols`).
pub fn ggml_bytes(q: &QuantMatrix) -> Result<(GgmlType, Vec<u8>)> {
    if q.cols % BLOCK != 0 && q.precision() != Precision::Fp16 {
        return Err(Error::Shape(format!("rows of {} weights cannot be written as 32-weight ggml blocks", q.cols)));
    }
    Ok(match &q.blocks {
        Blocks::Int8(b) => (GgmlType::Q8_0, bytemuck::cast_slice(&b[..]).to_vec()),
        Blocks::Int4(b) => {
            let mut out = Vec::with_capacity(b.len() * 20);
            for blk in b {
                out.extend(blk.d.to_le_bytes());
                out.extend(blk.m.to_le_bytes());
                let level = |i: usize| (blk.qs[i / 2] >> (4 * (i % 2))) & 15;
                out.extend((0..BLOCK / 2).map(|j| level(j) | level(j + BLOCK / 2) << 4));
            }
            (GgmlType::Q4_1, out)
        }
        Blocks::Int3(_) | Blocks::Int2(_) => {
            return Err(Error::Usage("INT3 and INT2 have no 32-weight block format in GGUF: export INT8, INT4 or FP16".into()))
        }
        Blocks::Fp16(_) => {
            let mut row = vec![0f32; q.cols];
            let mut out = Vec::with_capacity(q.rows * q.cols * 2);
            for r in 0..q.rows {
                q.dequantize_row(r, &mut row);
                out.extend(row.iter().flat_map(|&v| f16::from_f32(v).to_bits().to_le_bytes()));
            }
            (GgmlType::F16, out)
        }
    })
}

/// llama.cpp's `general.file_type` for a plan: the feed-forward's precision (most weights).
fn file_type(plan: &Plan) -> u32 {
    match plan.ffn {
        Precision::Fp16 => 1, // LLAMA_FTYPE_MOSTLY_F16
        Precision::Int8 => 7, // LLAMA_FTYPE_MOSTLY_Q8_0
        Precision::Int4 | Precision::Int3 | Precision::Int2 => 3, // LLAMA_FTYPE_MOSTLY_Q4_1
    }
}

/// The model in `g` at `plan` as GGUF bytes, all at once; `calib` for a calibrated method.
/// `on_tensor(done, total)` after each tensor, the last one included.
pub fn export(g: &Gguf, plan: &Plan, calib: Option<&Calibration>, mut on_tensor: impl FnMut(usize, usize)) -> Result<Vec<u8>> {
    let mut e = Exporter::new(g, *plan)?;
    loop {
        let more = e.step(g, calib)?;
        on_tensor(e.done(), e.total());
        if !more {
            return e.finish(g);
        }
    }
}

/// Writes an export one tensor per [`Exporter::step`], so a caller can report progress and
/// cancel in between (the page's worker does).
pub struct Exporter {
    /// Makes each matrix and changed norm at the plan (its `plan`).
    quantizer: crate::method::Quantizer,
    /// The model's weight matrices by tensor name.
    mats: Vec<(String, Mat)>,
    /// The norms a method may change (AWQ folds its scales into them), by tensor name.
    norms: Vec<(String, Vector)>,
    /// Each tensor's type and bytes so far, in the file's order.
    encoded: Vec<(GgmlType, Vec<u8>)>,
    total: usize,
}

impl Exporter {
    pub fn new(g: &Gguf, plan: Plan) -> Result<Exporter> {
        if plan.precisions().iter().any(|p| matches!(p, Precision::Int3 | Precision::Int2)) {
            return Err(Error::Usage(format!("{plan}: INT3 and INT2 have no 32-weight block format in GGUF; export INT8, INT4 or FP16")));
        }
        let cfg = Config::from_gguf(g)?;
        let mats = cfg.matrices().into_iter().map(|m| (m.tensor_name(false), m)).collect();
        let norms = (0..cfg.n_layers).flat_map(|l| [Vector::Attn(l), Vector::Ffn(l)]).map(|v| (v.tensor_name(), v)).collect();
        let quantizer = crate::method::Quantizer::new(&cfg, g, plan)?;
        Ok(Exporter { quantizer, mats, norms, encoded: Vec::with_capacity(g.tensors.len()), total: g.tensors.len() })
    }

    pub fn done(&self) -> usize {
        self.encoded.len()
    }

    pub fn total(&self) -> usize {
        self.total
    }

    /// Encode the next tensor of `g` (the file [`Exporter::new`] read); false once all are.
    pub fn step(&mut self, g: &Gguf, calib: Option<&Calibration>) -> Result<bool> {
        let Some(t) = g.tensors.get(self.encoded.len()) else { return Ok(false) };
        let norm = self.norms.iter().find(|(name, _)| *name == t.name).map(|n| n.1);
        let changed = match norm {
            Some(v) => self.quantizer.vector(g.bytes(), v, calib)?,
            None => None,
        };
        self.encoded.push(match (self.mats.iter().find(|(name, _)| *name == t.name), changed) {
            (Some((_, m)), _) => ggml_bytes(&self.quantizer.matrix(g.bytes(), t, *m, calib)?)?,
            (None, Some(v)) => (GgmlType::F32, v.iter().flat_map(|x| x.to_le_bytes()).collect()),
            (None, None) => (t.ggml_type, g.tensor_data(t).to_vec()),
        });
        Ok(self.encoded.len() < self.total)
    }

    /// The file, once every tensor is encoded.
    pub fn finish(self, g: &Gguf) -> Result<Vec<u8>> {
        if self.encoded.len() != g.tensors.len() {
            return Err(Error::Usage(format!("{} of {} tensors written", self.encoded.len(), g.tensors.len())));
        }
        let plan = &self.quantizer.plan;
        let mut metadata: Vec<(String, Value)> = g.metadata.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
        let ours = ["general.file_type", "general.quantized_by", "lowbit.quantization.plan", "lowbit.quantization.method"];
        metadata.retain(|(k, _)| !ours.contains(&k.as_str()));
        metadata.push(("general.file_type".into(), Value::U32(file_type(plan))));
        metadata.push(("general.quantized_by".into(), Value::String("lowbit".into())));
        metadata.push(("lowbit.quantization.plan".into(), Value::String(plan.code())));
        metadata.push(("lowbit.quantization.method".into(), Value::String(plan.method.name().into())));
        let tensors: Vec<TensorOut> = g
            .tensors
            .iter()
            .zip(&self.encoded)
            .map(|(t, (ty, data))| TensorOut { name: t.name.clone(), dims: t.dims.clone(), ggml_type: *ty, data })
            .collect();
        Ok(write(&metadata, &tensors, g.alignment))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::util::Rng;

    #[test]
    fn int4_blocks_become_q4_1_blocks_with_the_same_values() {
        let (rows, cols) = (3, 64);
        let v = Rng::new(4).normals(rows * cols, 0.3);
        for p in [Precision::Int4, Precision::Int8, Precision::Fp16] {
            let q = QuantMatrix::quantize(&v, rows, cols, p).unwrap();
            let (ty, bytes) = ggml_bytes(&q).unwrap();
            let back = crate::gguf::dequantize(ty, &bytes).unwrap();
            let want = q.dequantize();
            assert_eq!(back.len(), want.len());
            for (a, b) in back.iter().zip(&want) {
                assert!(a.to_bits() == b.to_bits() || (*a == 0.0 && *b == 0.0), "{p}: {a} vs {b}");
            }
            // And back into lowbit's blocks unchanged (what a load of the export does).
            if p != Precision::Fp16 {
                assert_eq!(QuantMatrix::from_ggml(ty, &bytes, rows, cols, p).unwrap(), q);
            }
        }
        let ragged = QuantMatrix::quantize(&v[..3 * 40], 3, 40, Precision::Int4).unwrap();
        assert!(ggml_bytes(&ragged).is_err());
    }
}
