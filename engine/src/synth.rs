//! Synthetic models: random weights at a chosen shape, with a real model's tokenizer and chat
//! template. The test suite runs every code path (tokenizer, template, KV cache, every kernel and
//! precision, lock-step, quality, inspector) on a [`Shape::TINY`] model in seconds instead of on
//! the default model in minutes; benchmarks use real models' shapes without shipping weights.
//!
//! The file is laid out like the default model: layer matrices as Q4_1, the token embedding (also
//! the tied output head) as Q8_0, norms as f32, so the same source-format paths are exercised.

use half::f16;

use crate::gguf::{self, Array, GgmlType, Gguf, TensorOut, Value};
use crate::layout::BLOCK;
use crate::util::Rng;
use crate::{Error, Result};

/// The architecture hyper-parameters of a synthetic llama model. The vocabulary is the base
/// model's.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Shape {
    pub layers: usize,
    pub dim: usize,
    pub ffn: usize,
    pub heads: usize,
    pub kv_heads: usize,
    pub context: usize,
}

impl Shape {
    /// The test model: 2 layers, dim 96 (3 heads of 32, one KV head, as SmolLM2's 3:1 grouping),
    /// feed-forward 224. No width is a multiple of 64, so partial workgroups run everywhere.
    pub const TINY: Shape = Shape { layers: 2, dim: 96, ffn: 224, heads: 3, kv_heads: 1, context: 2048 };
    /// SmolLM2-135M's shape.
    pub const SMOLLM2_135M: Shape = Shape { layers: 30, dim: 576, ffn: 1536, heads: 9, kv_heads: 3, context: 2048 };
    /// SmolLM2-1.7B's shape.
    pub const SMOLLM2_1_7B: Shape = Shape { layers: 24, dim: 2048, ffn: 8192, heads: 32, kv_heads: 32, context: 2048 };

    /// Qwen2.5-0.5B's layer shape (as llama layers: no q/k/v biases).
    pub const QWEN2_5_0_5B: Shape = Shape { layers: 24, dim: 896, ffn: 4864, heads: 14, kv_heads: 2, context: 2048 };
    /// Llama-3.2-1B's layer shape.
    pub const LLAMA_3_2_1B: Shape = Shape { layers: 16, dim: 2048, ffn: 8192, heads: 32, kv_heads: 8, context: 2048 };

    /// The named shapes and their models' vocabulary sizes.
    pub const NAMED: [(&'static str, Shape, usize); 5] = [
        ("tiny", Self::TINY, 49152),
        ("smollm2-135m", Self::SMOLLM2_135M, 49152),
        ("qwen2.5-0.5b", Self::QWEN2_5_0_5B, 151936),
        ("llama-3.2-1b", Self::LLAMA_3_2_1B, 128256),
        ("smollm2-1.7b", Self::SMOLLM2_1_7B, 49152),
    ];

    /// `tiny`, `smollm2-135m`, `qwen2.5-0.5b`, `llama-3.2-1b`, `smollm2-1.7b`, or
    /// `LAYERS:DIM:FFN:HEADS:KV_HEADS`.
    pub fn parse(s: &str) -> Result<Self> {
        let named = Self::NAMED.map(|(n, shape, _)| (n, shape));
        if let Some((_, shape)) = named.iter().find(|(n, _)| *n == s) {
            return Ok(*shape);
        }
        let bad = || Error::Usage(format!("shape '{s}': expected a name ({}) or LAYERS:DIM:FFN:HEADS:KV_HEADS", Self::NAMED.map(|n| n.0).join(", ")));
        let v: Vec<usize> = s.split(':').map(|x| x.parse().map_err(|_| bad())).collect::<Result<_>>()?;
        let [layers, dim, ffn, heads, kv_heads] = v[..] else { return Err(bad()) };
        let shape = Shape { layers, dim, ffn, heads, kv_heads, context: 2048 };
        shape.check()?;
        Ok(shape)
    }

    fn check(&self) -> Result<()> {
        let ok = self.layers > 0
            && self.dim % BLOCK == 0
            && self.ffn % BLOCK == 0
            && self.dim > 0
            && self.ffn > 0
            && self.heads > 0
            && self.kv_heads > 0
            && self.heads % self.kv_heads == 0
            && self.dim % self.heads == 0
            && (self.dim / self.heads) % 2 == 0;
        if ok {
            Ok(())
        } else {
            Err(Error::Shape(format!("{self:?}: dim and ffn must be multiples of {BLOCK}, heads divide dim into even head sizes, kv_heads divide heads")))
        }
    }

    pub fn head_dim(&self) -> usize {
        self.dim / self.heads
    }
}

/// ggml's Q4_1 blocks of `values` (whole blocks): `x = d·q + m`, `qs[j]` holds `q[j]` in its low
/// nibble and `q[j + 16]` in its high nibble (ggml-common.h).
fn q4_1(values: &[f32]) -> Vec<u8> {
    let mut out = Vec::with_capacity(values.len() / BLOCK * 20);
    for b in values.chunks_exact(BLOCK) {
        let (lo, hi) = b.iter().fold((f32::MAX, f32::MIN), |(l, h), &x| (l.min(x), h.max(x)));
        let (d, m) = (f16::from_f32((hi - lo) / 15.0), f16::from_f32(lo));
        let (df, mf) = (d.to_f32(), m.to_f32());
        let q = |x: f32| if df == 0.0 { 0 } else { ((x - mf) / df).round().clamp(0.0, 15.0) as u8 };
        out.extend(d.to_bits().to_le_bytes());
        out.extend(m.to_bits().to_le_bytes());
        out.extend((0..BLOCK / 2).map(|j| q(b[j]) | q(b[j + BLOCK / 2]) << 4));
    }
    out
}

/// A GGUF file of a llama model at `shape` with random weights (seeded: the same bytes for the
/// same `base`, `shape` and `seed`), carrying `base`'s tokenizer, chat template and special tokens.
pub fn model(base: &Gguf, shape: &Shape, seed: u64) -> Result<Vec<u8>> {
    model_of(base, shape, seed, "llama")
}

/// The architectures [`model_of`] writes: llama's tensors, and Llama 3's, Qwen2's, Qwen3's and
/// Gemma 3's additions.
pub const ARCHITECTURES: [&str; 5] = ["llama", "llama3", "qwen2", "qwen3", "gemma3"];

/// [`model`] of architecture `arch` (one of [`ARCHITECTURES`]): `llama3` is a llama file with
/// Llama 3.1's RoPE frequency divisors (`rope_freqs.weight`, [`llama3_rope_factors`] for a
/// factor of 8 over 32 positions, so the tiny model's head has divisors of 1, 8 and between);
/// `qwen2` adds Q, K and V biases; `qwen3` adds per-head q/k norms;
/// `gemma3` adds those and the norms after attention and the FFN, with a sliding window of
/// [`GEMMA_WINDOW`] keys on every other layer (local layers 0, 2, …; RoPE base 10,000 there and
/// 1,000,000 on the global ones).
pub fn model_of(base: &Gguf, shape: &Shape, seed: u64, arch: &str) -> Result<Vec<u8>> {
    if !ARCHITECTURES.contains(&arch) {
        return Err(Error::UnsupportedArchitecture(arch.into()));
    }
    let vocab = base
        .get("tokenizer.ggml.tokens")
        .and_then(Value::as_array)
        .map(|a| a.len())
        .ok_or_else(|| Error::Malformed("the base model has no tokenizer.ggml.tokens".into()))?;
    let base_arch = base.get_str("general.architecture").unwrap_or("llama").to_string();
    let mut metadata: Vec<(String, Value)> = base
        .metadata
        .iter()
        .filter(|(k, _)| k.starts_with("tokenizer.") || *k == "general.license")
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    for k in ["rope.freq_base", "attention.layer_norm_rms_epsilon"] {
        if let Some(v) = base.get(&format!("{base_arch}.{k}")) {
            metadata.push((format!("{arch}.{k}"), v.clone()));
        }
    }
    build(metadata, vocab, shape, seed, base.alignment, arch)
}

/// Llama 3.1's RoPE frequency divisors (as llama.cpp's convert_hf_to_gguf.py writes them into
/// `rope_freqs.weight`): pairs whose wavelength is under `context / high` positions keep their
/// frequency, those over `context / low` are divided by `factor`, and those between are blended.
pub fn llama3_rope_factors(base: f32, n_rot: usize, factor: f32, low: f32, high: f32, context: f32) -> Vec<f32> {
    (0..n_rot / 2)
        .map(|i| {
            let wavelen = 2.0 * std::f32::consts::PI / crate::reference::rope_freq(base, i, n_rot);
            if wavelen < context / high {
                1.0
            } else if wavelen > context / low {
                factor
            } else {
                let smooth = (context / wavelen - low) / (high - low);
                1.0 / ((1.0 - smooth) / factor + smooth)
            }
        })
        .collect()
}

/// The sliding window of a synthetic Gemma 3 model's local layers: short enough that a test's
/// prompt runs past it.
pub const GEMMA_WINDOW: usize = 4;

/// A model at `shape` with random weights and a placeholder vocabulary of `vocab` tokens (no
/// tokenizer to speak of): what `lowbit bench model --shape` runs where no model file is at hand.
pub fn bare(shape: &Shape, vocab: usize, seed: u64) -> Result<Vec<u8>> {
    let tokens = Value::Array(Array::String((0..vocab).map(|i| format!("<{i}>")).collect()));
    let metadata = vec![("tokenizer.ggml.model".into(), Value::String("llama".into())), ("tokenizer.ggml.tokens".into(), tokens)];
    build(metadata, vocab, shape, seed, 32, "llama")
}

fn build(mut metadata: Vec<(String, Value)>, vocab: usize, shape: &Shape, seed: u64, alignment: u64, arch: &str) -> Result<Vec<u8>> {
    shape.check()?;
    let (d, f, hd) = (shape.dim, shape.ffn, shape.head_dim());
    let kv = shape.kv_heads * hd;
    let u = |x: usize| Value::U32(x as u32);
    let llama3 = arch == "llama3";
    let arch = if llama3 { "llama" } else { arch };
    metadata.extend([
        ("general.architecture".into(), Value::String(arch.into())),
        ("general.name".into(), Value::String(format!("lowbit synthetic {arch} {}x{} (random weights)", shape.layers, d))),
        ("general.file_type".into(), Value::U32(3)), // LLAMA_FTYPE_MOSTLY_Q4_1
    ]);
    let mut keys = vec![
        ("context_length", u(shape.context)),
        ("embedding_length", u(d)),
        ("block_count", u(shape.layers)),
        ("feed_forward_length", u(f)),
        ("attention.head_count", u(shape.heads)),
        ("attention.head_count_kv", u(shape.kv_heads)),
        ("rope.dimension_count", u(hd)),
        ("vocab_size", u(vocab)),
    ];
    if arch == "gemma3" {
        keys.extend([
            ("attention.sliding_window", u(GEMMA_WINDOW)),
            ("attention.sliding_window_pattern", u(2)),
            ("rope.freq_base", Value::F32(1e6)),
            ("rope.freq_base_swa", Value::F32(1e4)),
        ]);
    }
    for (k, v) in keys {
        let key = format!("{arch}.{k}");
        metadata.retain(|(m, _)| *m != key);
        metadata.push((key, v));
    }
    let (qk_norm, post_norms, biases) = (matches!(arch, "qwen3" | "gemma3"), arch == "gemma3", arch == "qwen2");

    let mut rng = Rng::new(seed);
    // (name, dims innermost first, type, bytes). Matrices are N(0, 1/fan_in) so activations keep
    // their size through the layers; the embedding's scale gives logits a spread of a few nats.
    let mut tensors: Vec<(String, Vec<u64>, GgmlType, Vec<u8>)> = Vec::new();
    let norm = |rng: &mut Rng, n: usize| -> Vec<u8> { (0..n).flat_map(|_| (1.0 + 0.1 * rng.normal()).to_le_bytes()).collect() };
    let embd = rng.normals(vocab * d, 0.25);
    tensors.push(("token_embd.weight".into(), vec![d as u64, vocab as u64], GgmlType::Q8_0, gguf::q8_0_bytes(&embd, vocab, d)?));
    drop(embd);
    for l in 0..shape.layers {
        let mut mat = |name: &str, rows: usize, cols: usize| {
            let w = rng.normals(rows * cols, 1.0 / (cols as f32).sqrt());
            (format!("blk.{l}.{name}.weight"), vec![cols as u64, rows as u64], GgmlType::Q4_1, q4_1(&w))
        };
        let layer = [
            mat("attn_q", d, d),
            mat("attn_k", kv, d),
            mat("attn_v", kv, d),
            mat("attn_output", d, d),
            mat("ffn_gate", f, d),
            mat("ffn_up", f, d),
            mat("ffn_down", d, f),
        ];
        tensors.push((format!("blk.{l}.attn_norm.weight"), vec![d as u64], GgmlType::F32, norm(&mut rng, d)));
        tensors.push((format!("blk.{l}.ffn_norm.weight"), vec![d as u64], GgmlType::F32, norm(&mut rng, d)));
        if qk_norm {
            for n in ["attn_q_norm", "attn_k_norm"] {
                tensors.push((format!("blk.{l}.{n}.weight"), vec![hd as u64], GgmlType::F32, norm(&mut rng, hd)));
            }
        }
        if biases {
            for (n, len) in [("attn_q", d), ("attn_k", kv), ("attn_v", kv)] {
                let b: Vec<u8> = (0..len).flat_map(|_| (0.1 * rng.normal()).to_le_bytes()).collect();
                tensors.push((format!("blk.{l}.{n}.bias"), vec![len as u64], GgmlType::F32, b));
            }
        }
        if post_norms {
            for n in ["post_attention_norm", "post_ffw_norm"] {
                tensors.push((format!("blk.{l}.{n}.weight"), vec![d as u64], GgmlType::F32, norm(&mut rng, d)));
            }
        }
        tensors.extend(layer);
    }
    tensors.push(("output_norm.weight".into(), vec![d as u64], GgmlType::F32, norm(&mut rng, d)));
    if llama3 {
        let base = metadata.iter().find(|(k, _)| k == "llama.rope.freq_base").and_then(|(_, v)| v.as_f64()).unwrap_or(10000.0) as f32;
        let f = llama3_rope_factors(base, hd, 8.0, 1.0, 4.0, 32.0);
        tensors.push(("rope_freqs.weight".into(), vec![(hd / 2) as u64], GgmlType::F32, f.iter().flat_map(|x| x.to_le_bytes()).collect()));
    }
    let out: Vec<TensorOut> =
        tensors.iter().map(|(name, dims, ty, data)| TensorOut { name: name.clone(), dims: dims.clone(), ggml_type: *ty, data }).collect();
    Ok(gguf::write(&metadata, &out, alignment))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn q4_1_blocks_decode_to_their_grid() {
        let mut rng = Rng::new(3);
        let x = rng.normals(64, 1.0);
        let bytes = q4_1(&x);
        assert_eq!(bytes.len(), 2 * 20);
        let y = gguf::dequantize(GgmlType::Q4_1, &bytes).unwrap();
        for (b, (xs, ys)) in x.chunks(32).zip(y.chunks(32)).enumerate() {
            let step = (xs.iter().cloned().fold(f32::MIN, f32::max) - xs.iter().cloned().fold(f32::MAX, f32::min)) / 15.0;
            for (a, c) in xs.iter().zip(ys) {
                assert!((a - c).abs() <= step * 0.5 + 1e-2 * step.max(1e-3), "block {b}: {a} vs {c} (step {step})");
            }
        }
    }

    /// Llama 3.2 1B's divisors (base 500,000, 64 rotated dims, factor 32 over 8,192 positions,
    /// low 1, high 4), computed by hand with convert_hf_to_gguf.py's formula: pairs 0–14 keep
    /// their frequency, 15–17 blend, 18–31 are divided by 32.
    #[test]
    fn llama3_rope_factors_of_llama_3_2() {
        let f = llama3_rope_factors(500000.0, 64, 32.0, 1.0, 4.0, 8192.0);
        assert_eq!(f.len(), 32);
        assert!(f[..15].iter().all(|&x| x == 1.0) && f[18..].iter().all(|&x| x == 32.0), "{f:?}");
        for (i, want) in [(15, 1.65133), (16, 3.29226), (17, 9.66673)] {
            assert!((f[i] - want).abs() < 1e-4, "pair {i}: {} not {want}", f[i]);
        }
    }

    #[test]
    fn shapes_parse_and_bad_ones_are_named_errors() {
        assert_eq!(Shape::parse("tiny").unwrap(), Shape::TINY);
        assert_eq!(Shape::parse("2:64:96:2:1").unwrap().head_dim(), 32);
        for bad in ["", "2:64", "2:60:96:2:1", "2:64:96:3:1", "0:64:96:2:1", "2:64:96:2:0", "x:64:96:2:1"] {
            assert!(Shape::parse(bad).is_err(), "{bad}");
        }
    }
}
