//! Model configuration from GGUF and the llama forward pass, written once over a [`Backend`]
//! (the CPU backend in [`cpu`], which runs the file's weights as stored; the wgpu kernels in
//! [`gpu`]). The kernels' naive CPU references are [`crate::reference`].

pub mod cpu;
pub mod gpu;

use serde::{Deserialize, Serialize};

use crate::gguf::Gguf;
use crate::{Error, Result};

/// Architecture hyper-parameters read from GGUF metadata.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Config {
    pub architecture: String,
    pub n_layers: usize,
    pub dim: usize,
    pub ffn_dim: usize,
    pub n_heads: usize,
    pub n_kv_heads: usize,
    pub head_dim: usize,
    pub n_rot: usize,
    pub vocab: usize,
    pub context_length: usize,
    pub rope_base: f32,
    /// GPT-NeoX rotation (pairs i, i + n_rot/2); llama GGUFs use the normal pairs.
    pub rope_neox: bool,
    pub rms_eps: f32,
    /// The output head is the token embedding (no `output.weight`).
    pub tied_output: bool,
    /// The Q, K and V projections add a bias (Qwen2).
    pub qkv_bias: bool,
    /// Every q and k head is RMS-normalized before RoPE (Gemma 3, Qwen3).
    pub qk_norm: bool,
    /// Which layer function runs the model.
    pub family: Family,
    /// The feed-forward's gate activation.
    pub activation: Activation,
    /// The token embedding is multiplied by this (Gemma: √dim).
    pub embed_scale: f32,
    /// Sliding-window attention on local layers: the keys a query sees (0: none).
    pub sliding_window: usize,
    /// Layer `l` is local when `l % swa_period < swa_period − 1` (Gemma 3: 5 local, 1 global).
    pub swa_period: usize,
    /// RoPE base of local layers (global layers use `rope_base`).
    pub rope_base_local: f32,
    /// Linear RoPE scaling of global layers: positions times 1 / `rope.scaling.factor` (else 1).
    pub rope_scale: f32,
    /// Per-pair RoPE frequency divisors from `rope_freqs.weight` (Llama 3's long-context scaling).
    pub rope_factors: bool,
}

/// A family of layer functions (`layer_llama`, `layer_gemma`): how a layer's steps are arranged.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Family {
    /// Pre-norm attention and SwiGLU, each added to the residual stream (llama, Qwen2, Qwen3).
    Llama,
    /// Pre- and post-norms around attention and the feed-forward (Gemma 3).
    Gemma,
}

/// The gate activation of a gated feed-forward.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Activation {
    /// `silu(g)·u` (SwiGLU).
    Silu,
    /// `gelu_tanh(g)·u` (GeGLU).
    Gelu,
}

/// What an architecture's name says about its layer; the rest of a [`Config`] comes from the
/// file's metadata. One place per architecture, read by [`Config::from_gguf`] and by the model
/// picker ([`crate::catalog`]).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Features {
    pub family: Family,
    pub activation: Activation,
    pub rope_neox: bool,
    pub qkv_bias: bool,
    pub qk_norm: bool,
}

impl Features {
    /// llama's layer: SwiGLU, normal RoPE pairs, no biases or q/k norms.
    pub const LLAMA: Features = Features { family: Family::Llama, activation: Activation::Silu, rope_neox: false, qkv_bias: false, qk_norm: false };

    /// The features of architecture `arch` (one of [`ARCHITECTURES`]), or None.
    pub fn of(arch: &str) -> Option<Features> {
        let llama = Self::LLAMA;
        Some(match arch {
            "llama" => llama,
            "qwen2" => Features { rope_neox: true, qkv_bias: true, ..llama },
            "qwen3" => Features { rope_neox: true, qk_norm: true, ..llama },
            "gemma3" => Features { family: Family::Gemma, activation: Activation::Gelu, rope_neox: true, qk_norm: true, ..llama },
            _ => return None,
        })
    }
}

/// The architectures lowbit runs: llama; Qwen2 (llama's layer with Q, K, V biases and GPT-NeoX
/// rotation); Qwen3 (llama's layer with q/k norms and GPT-NeoX rotation); Gemma 3 (pre- and
/// post-norms, q/k norms, GeGLU, a scaled embedding, sliding-window attention on local layers).
pub const ARCHITECTURES: [&str; 4] = ["llama", "qwen2", "qwen3", "gemma3"];

impl Config {
    pub fn from_gguf(g: &Gguf) -> Result<Self> {
        let arch = g.get_str("general.architecture").ok_or_else(|| Error::Malformed("no general.architecture".into()))?;
        let f = Features::of(arch).ok_or_else(|| Error::UnsupportedArchitecture(arch.to_string()))?;
        let gemma = f.family == Family::Gemma;
        // Sizes past 2^31 describe no model, and on wasm32 they would wrap around in a usize.
        let opt = |k: &str| -> Result<Option<usize>> {
            let key = format!("{arch}.{k}");
            g.get_u64(&key)
                .map(|v| usize::try_from(v).ok().filter(|&v| v <= 1 << 31).ok_or_else(|| Error::BadConfig(format!("{key} = {v} is not a plausible size"))))
                .transpose()
        };
        let req = |k: &str| opt(k)?.ok_or_else(|| Error::MissingKey(format!("{arch}.{k}")));
        let opt_f = |k: &str, d: f32| g.get(&format!("{arch}.{k}")).and_then(|v| v.as_f64()).map_or(d, |v| v as f32);
        let dim = req("embedding_length")?;
        let n_heads = req("attention.head_count")?;
        let n_kv_heads = opt("attention.head_count_kv")?.unwrap_or(n_heads);
        let head_dim = opt("attention.key_length")?.unwrap_or(dim / n_heads.max(1));
        let vocab = g
            .get("tokenizer.ggml.tokens")
            .and_then(|v| v.as_array())
            .map(|a| a.len())
            .ok_or_else(|| Error::MissingKey("tokenizer.ggml.tokens".into()))?;
        let mut cfg = Config {
            architecture: arch.to_string(),
            n_layers: req("block_count")?,
            dim,
            ffn_dim: req("feed_forward_length")?,
            n_heads,
            n_kv_heads,
            head_dim,
            n_rot: opt("rope.dimension_count")?.unwrap_or(head_dim),
            vocab,
            context_length: opt("context_length")?.unwrap_or(2048),
            rope_base: opt_f("rope.freq_base", 10000.0),
            rope_neox: f.rope_neox,
            rms_eps: opt_f("attention.layer_norm_rms_epsilon", 1e-5),
            tied_output: g.tensor("output.weight").is_err(),
            qkv_bias: f.qkv_bias,
            qk_norm: f.qk_norm,
            family: f.family,
            activation: f.activation,
            embed_scale: if gemma { (dim as f32).sqrt() } else { 1.0 },
            sliding_window: if gemma { opt("attention.sliding_window")?.unwrap_or(0) } else { 0 },
            swa_period: if gemma { opt("attention.sliding_window_pattern")?.unwrap_or(6).max(1) } else { 1 },
            rope_base_local: opt_f("rope.freq_base_swa", 10000.0),
            rope_scale: 1.0,
            rope_factors: g.tensor(ROPE_FREQS).is_ok(),
        };
        match g.get_str(&format!("{arch}.rope.scaling.type")) {
            None | Some("none") => {}
            Some("linear") => cfg.rope_scale = 1.0 / opt_f("rope.scaling.factor", 1.0),
            // Its frequency divisors are the file's rope_freqs tensor.
            Some("llama3") if cfg.rope_factors => {}
            Some(other) => return Err(Error::BadConfig(format!("RoPE scaling '{other}' is not supported yet (linear and Llama 3's are)"))),
        }
        if n_heads == 0 || n_kv_heads == 0 || n_heads % n_kv_heads != 0 || head_dim == 0 || cfg.n_rot > head_dim || cfg.n_rot % 2 != 0 {
            return Err(Error::BadConfig(format!(
                "inconsistent heads: {n_heads} heads, {n_kv_heads} kv heads, head_dim {head_dim}, n_rot {}",
                cfg.n_rot
            )));
        }
        if cfg.n_layers == 0 || cfg.dim == 0 || cfg.ffn_dim == 0 || cfg.context_length == 0 {
            return Err(Error::BadConfig(format!(
                "{} layers, embedding length {}, feed-forward length {}, context length {}",
                cfg.n_layers, cfg.dim, cfg.ffn_dim, cfg.context_length
            )));
        }
        let base_ok = |b: f32| b.is_finite() && b > 0.0;
        if !(cfg.rms_eps.is_finite() && cfg.rms_eps >= 0.0 && base_ok(cfg.rope_base) && base_ok(cfg.rope_base_local) && base_ok(cfg.rope_scale)) {
            return Err(Error::BadConfig(format!(
                "rms epsilon {}, rope base {} (local layers {}), rope scale {}",
                cfg.rms_eps, cfg.rope_base, cfg.rope_base_local, cfg.rope_scale
            )));
        }
        cfg.check_tensors(g)?;
        Ok(cfg)
    }

    /// Every tensor the model reads is in the file with the shape the metadata implies (so the
    /// metadata's sizes are bounded by the file's bytes before anything is allocated for them).
    fn check_tensors(&self, g: &Gguf) -> Result<()> {
        // The innermost dimension first, as GGUF stores them.
        let shape = |name: &str, want: &[usize]| -> Result<()> {
            let t = g.tensor(name)?;
            let found: Vec<u64> = t.dims.iter().copied().filter(|&d| d != 1).collect();
            let expected: Vec<u64> = want.iter().map(|&d| d as u64).filter(|&d| d != 1).collect();
            if found != expected {
                return Err(Error::TensorShape { tensor: name.to_string(), expected: want.to_vec(), found: t.dims.clone() });
            }
            Ok(())
        };
        let (d, q, kv) = (self.dim, self.n_heads * self.head_dim, self.n_kv_heads * self.head_dim);
        // Layers first: an absurd block count fails at the first missing layer.
        for l in 0..self.n_layers {
            shape(&Vector::Attn(l).tensor_name(), &[d])?;
            shape(&Mat::Q(l).tensor_name(false), &[d, q])?;
            shape(&Mat::K(l).tensor_name(false), &[d, kv])?;
            shape(&Mat::V(l).tensor_name(false), &[d, kv])?;
            if self.qkv_bias {
                for (m, n) in [(Mat::Q(l), q), (Mat::K(l), kv), (Mat::V(l), kv)] {
                    shape(&m.bias_name(), &[n])?;
                }
            }
            if self.qk_norm {
                shape(&Vector::q_norm_name(l), &[self.head_dim])?;
                shape(&Vector::k_norm_name(l), &[self.head_dim])?;
            }
            if self.family == Family::Gemma {
                shape(&Vector::AttnPost(l).tensor_name(), &[d])?;
                shape(&Vector::FfnPost(l).tensor_name(), &[d])?;
            }
            shape(&Mat::O(l).tensor_name(false), &[q, d])?;
            shape(&Vector::Ffn(l).tensor_name(), &[d])?;
            shape(&Mat::Gate(l).tensor_name(false), &[d, self.ffn_dim])?;
            shape(&Mat::Up(l).tensor_name(false), &[d, self.ffn_dim])?;
            shape(&Mat::Down(l).tensor_name(false), &[self.ffn_dim, d])?;
        }
        shape(&Vector::Output.tensor_name(), &[d])?;
        if self.rope_factors {
            shape(ROPE_FREQS, &[self.n_rot / 2])?;
        }
        shape(&Mat::Embedding.tensor_name(false), &[d, self.vocab])?;
        if !self.tied_output {
            shape("output.weight", &[d, self.vocab])?;
        }
        Ok(())
    }
}

impl Config {
    /// The model's vectors (norm weights, biases, RoPE divisors), in load order: one list for every
    /// backend.
    pub fn vectors(&self) -> Vec<Vector> {
        let mut v = vec![];
        for l in 0..self.n_layers {
            v.extend([Vector::Attn(l), Vector::Ffn(l)]);
            if self.qkv_bias {
                v.push(Vector::QkvBias(l));
            }
            if self.qk_norm {
                v.push(Vector::QkNorm(l));
            }
            if self.family == Family::Gemma {
                v.extend([Vector::AttnPost(l), Vector::FfnPost(l)]);
            }
        }
        v.push(Vector::Output);
        if self.rope_factors {
            v.push(Vector::RopeFreqs);
        }
        v
    }

    /// `(rows, cols)` of a weight matrix, as `check_tensors` holds the file to.
    pub fn matrix_shape(&self, m: Mat) -> (usize, usize) {
        let (d, q, kv) = (self.dim, self.n_heads * self.head_dim, self.n_kv_heads * self.head_dim);
        match m {
            Mat::Embedding | Mat::Output => (self.vocab, d),
            Mat::Q(_) => (q, d),
            Mat::K(_) | Mat::V(_) => (kv, d),
            Mat::O(_) => (d, q),
            Mat::Gate(_) | Mat::Up(_) => (self.ffn_dim, d),
            Mat::Down(_) => (d, self.ffn_dim),
        }
    }

    /// The weight matrices the file stores, in load order: [`Mat::all`] without the output head
    /// when it is the token embedding.
    pub fn matrices(&self) -> Vec<Mat> {
        Mat::all(self.n_layers).into_iter().filter(|&m| !(m == Mat::Output && self.tied_output)).collect()
    }

    /// Whether layer `l` attends through a sliding window (a local layer).
    pub fn is_local(&self, l: usize) -> bool {
        self.sliding_window > 0 && l % self.swa_period < self.swa_period - 1
    }

    /// Bytes of every vector, as f32.
    pub fn vector_bytes(&self) -> u64 {
        self.vectors().into_iter().map(|n| self.vector_len(n) as u64 * 4).sum()
    }

    /// Elements of vector `n`.
    pub fn vector_len(&self, n: Vector) -> usize {
        match n {
            Vector::QkvBias(_) => (self.n_heads + 2 * self.n_kv_heads) * self.head_dim,
            Vector::QkNorm(_) => 2 * self.head_dim,
            Vector::RopeFreqs => self.n_rot / 2,
            _ => self.dim,
        }
    }

    /// Layer `l`'s attention shape for queries starting at `pos0` (scale 1/sqrt(head_dim), the
    /// sliding window on local layers).
    /// Why this model's KV rows cannot be stored as `kv`, if they cannot ([`crate::KvPrecision::unfit`]).
    pub fn kv_unfit(&self, kv: crate::KvPrecision) -> Option<String> {
        kv.unfit(self.n_kv_heads * self.head_dim, self.head_dim)
    }

    /// The most positions a layer's KV cache as `kv` holds in one buffer of `limit` bytes (its
    /// keys and values share one: `GpuBackend::set_kv`).
    pub fn kv_positions_in(&self, kv: crate::KvPrecision, limit: u64) -> usize {
        (limit as f64 / (2 * self.n_kv_heads * self.head_dim) as f64 / kv.bytes_per_value()) as usize
    }

    pub fn attention(&self, l: usize, pos0: usize) -> crate::reference::Attention {
        crate::reference::Attention {
            heads: self.n_heads,
            kv_heads: self.n_kv_heads,
            head_dim: self.head_dim,
            pos0,
            scale: 1.0 / (self.head_dim as f32).sqrt(),
            window: if self.is_local(l) { self.sliding_window } else { 0 },
        }
    }

    /// Layer `l`'s rotary embedding for `heads` heads per token starting at `pos0` (local layers
    /// have their own base and no scaling; the frequency divisors, when the model has them, are
    /// the vector [`Vector::RopeFreqs`]).
    pub fn rope(&self, l: usize, heads: usize, pos0: usize) -> crate::reference::Rope {
        let (base, scale) = if self.is_local(l) { (self.rope_base_local, 1.0) } else { (self.rope_base, self.rope_scale) };
        crate::reference::Rope { heads, head_dim: self.head_dim, n_rot: self.n_rot, pos0, base, neox: self.rope_neox, scale }
    }
}

/// A weight matrix of the model.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Mat {
    /// The token embedding `[vocab, dim]`: a row per token, read by the first step.
    Embedding,
    Q(usize),
    K(usize),
    V(usize),
    O(usize),
    Gate(usize),
    Up(usize),
    Down(usize),
    /// The output head (the token embedding when tied).
    Output,
}

/// A vector of the model: a norm's weights, a bias, or RoPE's frequency divisors. Backends keep
/// them in f32 whatever the plan.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Vector {
    /// The norm before the attention.
    Attn(usize),
    /// The norm before the feed-forward.
    Ffn(usize),
    /// The norm before the output head.
    Output,
    /// The Q, K and V biases of a layer, one after the other (the stacked projection's bias).
    QkvBias(usize),
    /// The per-head q norm's weights, then the k norm's ([`crate::reference::head_norm`]).
    QkNorm(usize),
    /// The norm of the attention's output, before the residual connection (Gemma).
    AttnPost(usize),
    /// The norm of the feed-forward's output, before the residual connection (Gemma).
    FfnPost(usize),
    /// RoPE frequency divisors, one per rotated pair (Llama 3).
    RopeFreqs,
}

/// The tensor of Llama 3's RoPE frequency divisors.
pub const ROPE_FREQS: &str = "rope_freqs.weight";

impl Mat {
    /// The tensor that holds it (`tied`: the output head is the token embedding).
    pub fn tensor_name(self, tied: bool) -> String {
        match self {
            Mat::Q(l) => format!("blk.{l}.attn_q.weight"),
            Mat::K(l) => format!("blk.{l}.attn_k.weight"),
            Mat::V(l) => format!("blk.{l}.attn_v.weight"),
            Mat::O(l) => format!("blk.{l}.attn_output.weight"),
            Mat::Gate(l) => format!("blk.{l}.ffn_gate.weight"),
            Mat::Up(l) => format!("blk.{l}.ffn_up.weight"),
            Mat::Down(l) => format!("blk.{l}.ffn_down.weight"),
            Mat::Output if !tied => "output.weight".into(),
            Mat::Embedding | Mat::Output => "token_embd.weight".into(),
        }
    }

    /// The name of the matrix's bias tensor.
    pub fn bias_name(self) -> String {
        self.tensor_name(false).replace(".weight", ".bias")
    }

    /// Every matrix of a model with `n_layers` layers, in load order: the token embedding, the
    /// layers', the output head.
    pub fn all(n_layers: usize) -> Vec<Mat> {
        let mut v = vec![Mat::Embedding];
        v.extend((0..n_layers).flat_map(|l| [Mat::Q(l), Mat::K(l), Mat::V(l), Mat::O(l), Mat::Gate(l), Mat::Up(l), Mat::Down(l)]));
        v.push(Mat::Output);
        v
    }
}

impl Vector {
    pub fn tensor_name(self) -> String {
        match self {
            Vector::Attn(l) => format!("blk.{l}.attn_norm.weight"),
            Vector::Ffn(l) => format!("blk.{l}.ffn_norm.weight"),
            Vector::Output => "output_norm.weight".into(),
            Vector::QkvBias(l) => format!("blk.{l}.attn_q+k+v.bias"),
            Vector::QkNorm(l) => format!("blk.{l}.attn_q+k_norm.weight"),
            Vector::AttnPost(l) => format!("blk.{l}.post_attention_norm.weight"),
            Vector::FfnPost(l) => format!("blk.{l}.post_ffw_norm.weight"),
            Vector::RopeFreqs => ROPE_FREQS.into(),
        }
    }

    fn q_norm_name(l: usize) -> String {
        format!("blk.{l}.attn_q_norm.weight")
    }

    fn k_norm_name(l: usize) -> String {
        format!("blk.{l}.attn_k_norm.weight")
    }

    /// Its values from the file.
    pub fn values(self, g: &Gguf) -> Result<Vec<f32>> {
        match self {
            Vector::QkvBias(l) => {
                let mut v = vec![];
                for m in [Mat::Q(l), Mat::K(l), Mat::V(l)] {
                    v.extend(g.dequantize_tensor(g.tensor(&m.bias_name())?)?);
                }
                Ok(v)
            }
            Vector::QkNorm(l) => {
                let mut v = g.dequantize_tensor(g.tensor(&Self::q_norm_name(l))?)?;
                v.extend(g.dequantize_tensor(g.tensor(&Self::k_norm_name(l))?)?);
                Ok(v)
            }
            n => g.dequantize_tensor(g.tensor(&n.tensor_name())?),
        }
    }
}

/// The ops the layer functions need, each one fused step of a layer (so a backend can run each
/// as one kernel). Activations are `[m, width]` for `m` tokens.
pub trait Backend {
    type Act;
    /// Start a forward step at position `pos0`: the token embedding rows of `ids`, times the
    /// config's `embed_scale`.
    fn embed(&mut self, ids: &[u32], pos0: usize) -> Result<Self::Act>;
    /// The attention's input: `h = rmsnorm(x)`, `q = RoPE(h·Wqᵀ)`, and `k = RoPE(h·Wkᵀ)`,
    /// `v = h·Wvᵀ` appended to layer `l`'s KV cache at `pos0` (with the config's Q/K/V biases
    /// before RoPE, per-head q/k norms, and layer `l`'s RoPE base). Returns q, for [`Backend::attend`]
    /// (a backend may return q, k and v stacked per token: `attend` reads each row's first
    /// `heads · head_dim` values).
    fn qkv(&mut self, x: &Self::Act, l: usize, pos0: usize) -> Result<Self::Act>;
    /// Causal attention of `q` over layer `l`'s cache (keys `0 ..= pos0 + t` for token t, the
    /// last `sliding_window` of them on a local layer).
    fn attend(&mut self, l: usize, q: &Self::Act, pos0: usize) -> Result<Self::Act>;
    /// `x += a · Wᵀ`: a projection and the residual connection.
    fn linear_add(&mut self, x: &mut Self::Act, a: &Self::Act, w: Mat) -> Result<()>;
    /// `x += rmsnorm(a · Wᵀ) · g`: a projection normalized by `norm`, then the residual
    /// connection (Gemma's post-norms).
    fn linear_norm_add(&mut self, x: &mut Self::Act, a: &Self::Act, w: Mat, norm: Vector) -> Result<()>;
    /// The gated feed-forward's input: `act(h·Wgateᵀ) ⊙ (h·Wupᵀ)`, `h = rmsnorm(x)`, with the
    /// config's activation (SwiGLU, GeGLU).
    fn glu(&mut self, x: &Self::Act, l: usize) -> Result<Self::Act>;
    /// `rmsnorm(x) · Woutᵀ`: logits.
    fn logits(&mut self, x: &Self::Act) -> Result<Self::Act>;
    /// The last token's row.
    fn last_row(&mut self, x: &Self::Act) -> Result<Self::Act>;
    /// A copy of `x` (a snapshot of the residual stream, which the layers update in place).
    fn copy(&mut self, x: &Self::Act) -> Result<Self::Act>;
    /// The most rows of logits one forward pass may return (a GPU holds them in one buffer).
    fn max_logit_rows(&self) -> usize {
        usize::MAX
    }
    /// The values of an activation (finishing any queued work).
    fn read(&mut self, x: &Self::Act) -> impl std::future::Future<Output = Result<Vec<f32>>>;
    /// The index of the largest value of a one-row activation (greedy sampling), finishing any
    /// queued work. A GPU backend reads back only the index.
    fn argmax(&mut self, x: &Self::Act) -> impl std::future::Future<Output = Result<u32>> {
        async move { Ok(argmax(&self.read(x).await?) as u32) }
    }
    /// One draw of the sampler from a one-row activation of logits, finishing any queued work.
    /// A GPU backend draws on the device and reads back only the token.
    fn sample(&mut self, x: &Self::Act, d: &crate::sampler::Draw) -> impl std::future::Future<Output = Result<u32>> {
        async move { Ok(crate::sampler::sample(&self.read(x).await?, d)) }
    }

    // Chained decoding ([`decode`]): each step's token is picked on the device, into the
    // history there, and fed to the next step without a read-back; the CPU reads the tokens back
    // a batch at a time. A backend that cannot says so with `chain_ahead` 1 and never gets the
    // other calls.

    /// How many decode steps may be recorded ahead of the tokens read back, for draws like `d`
    /// (None: greedy) with a penalty window of `window` tokens: 1 where each token must be read
    /// before the next step is recorded.
    fn chain_ahead(&self, _d: Option<&crate::sampler::Draw>, _window: usize) -> usize {
        1
    }
    /// Start a chain after `history` (the tokens so far; the one at index i is at position i).
    fn chain_start(&mut self, _history: &[u32]) -> Result<()> {
        Err(Error::Usage("this backend reads every token back".into()))
    }
    /// Pick the token at history index `at` from one row of logits, on the device: the argmax
    /// (`draw` None), or draw `d` with its penalty over history `at − window .. at` (`d.recent` is
    /// not read). The next [`Backend::embed_chained`] reads it.
    fn pick_chained(
        &mut self,
        _logits: &Self::Act,
        _at: usize,
        _draw: Option<(&crate::sampler::Draw, usize)>,
    ) -> Result<()> {
        Err(Error::Usage("this backend reads every token back".into()))
    }
    /// [`Backend::embed`] of the token the last chained pick wrote, at `pos0`.
    fn embed_chained(&mut self, _pos0: usize) -> Result<Self::Act> {
        Err(Error::Usage("this backend reads every token back".into()))
    }
    /// Submit what is recorded and start reading history `from..to` back, behind it.
    fn chain_send(&mut self, _from: usize, _to: usize) -> Result<()> {
        Err(Error::Usage("this backend reads every token back".into()))
    }
    /// The tokens of the oldest range sent and not yet read (waiting for them).
    fn chain_read(&mut self) -> impl std::future::Future<Output = Result<Vec<u32>>> {
        async { Err(Error::Usage("this backend reads every token back".into())) }
    }
    /// End the chain: reads still under way are dropped (what ran past the end is discarded; the
    /// KV cache past the caller's position is overwritten by later steps).
    fn chain_end(&mut self) {}
}

/// Perplexity of a token sequence, teacher-forced: position i predicts token i + 1.
#[derive(Clone, Debug, Serialize)]
pub struct Perplexity {
    pub ppl: f64,
    pub n_tokens: usize,
    /// Argmax of the logits at each position (`n_tokens − 1` of them).
    pub argmax: Vec<u32>,
    /// `log p(token i + 1)` at each position.
    pub target_logprob: Vec<f32>,
    pub tokens_per_second: f64,
}

/// Run `tokens` through the model teacher-forced, in chunks of `chunk` (the KV cache carries
/// the context), calling `on_row(i, logits)` for every position `i` that has a next token.
/// Returns the seconds it took.
pub async fn score<B: Backend>(
    cfg: &Config,
    b: &mut B,
    tokens: &[u32],
    chunk: usize,
    mut on_row: impl FnMut(usize, &[f32]),
) -> Result<f64> {
    let t0 = crate::util::now_ms();
    let mut pos = 0;
    while pos < tokens.len() {
        let end = (pos + chunk.min(b.max_logit_rows()).max(1)).min(tokens.len());
        let logits = forward(cfg, b, &tokens[pos..end], pos, true)?;
        let logits = b.read(&logits).await?;
        if let Some(i) = logits.iter().position(|x| !x.is_finite()) {
            return Err(Error::NonFinite(format!("the logits at position {}", pos + i / cfg.vocab)));
        }
        for (i, row) in logits.chunks(cfg.vocab).enumerate() {
            if pos + i + 1 < tokens.len() {
                on_row(pos + i, row);
            }
        }
        pos = end;
    }
    Ok((crate::util::now_ms() - t0) / 1e3)
}

/// Perplexity of a token sequence, teacher-forced: position i predicts token i + 1.
pub async fn perplexity<B: Backend>(cfg: &Config, b: &mut B, tokens: &[u32], chunk: usize) -> Result<Perplexity> {
    let (mut argmax_v, mut lp) = (Vec::new(), Vec::new());
    let secs = score(cfg, b, tokens, chunk, |p, row| {
        argmax_v.push(argmax(row) as u32);
        lp.push(log_prob(row, tokens[p + 1] as usize));
    })
    .await?;
    Ok(Perplexity {
        ppl: perplexity_of(&lp),
        n_tokens: tokens.len(),
        argmax: argmax_v,
        target_logprob: lp,
        tokens_per_second: tokens.len() as f64 / secs.max(1e-9),
    })
}

/// `exp(−mean log p)` of per-position target log-probabilities.
pub fn perplexity_of(logprobs: &[f32]) -> f64 {
    let n = logprobs.len().max(1);
    (-logprobs.iter().map(|&x| x as f64).sum::<f64>() / n as f64).exp()
}

/// Tokens of the calibration text each layer's mean key is measured over
/// ([`crate::KvPrecision::centered`]).
pub const KEY_MEAN_TOKENS: usize = 256;

/// The tokens the mean keys are measured over: the first [`KEY_MEAN_TOKENS`] of the calibration
/// text ([`crate::method::calibration::TEXT`], never a text the quality figures score), or, for a
/// model whose tokenizer cannot encode it (a synthetic shape), ids 1, 2, 3, … of its vocabulary;
/// never more than the model's context holds.
pub fn key_mean_tokens(g: &crate::gguf::Gguf, cfg: &Config) -> Vec<u32> {
    let n = KEY_MEAN_TOKENS.min(cfg.context_length);
    let text = crate::tokenizer::Tokenizer::from_gguf(g)
        .map(|t| crate::method::calibration::text_tokens(&t, crate::method::calibration::TEXT, n))
        .unwrap_or_default();
    if text.len() >= n / 2 && text.iter().all(|&t| (t as usize) < cfg.vocab) {
        return text;
    }
    (1..=n).map(|i| (i % cfg.vocab.max(1)) as u32).collect()
}

/// The forward pass: logits `[m, vocab]` for the tokens `ids` at positions `pos0..`, or
/// `[1, vocab]` for the last one only.
pub fn forward<B: Backend>(cfg: &Config, b: &mut B, ids: &[u32], pos0: usize, all_logits: bool) -> Result<B::Act> {
    let x = layers(cfg, b, ids, pos0)?;
    let x = if all_logits { x } else { b.last_row(&x)? };
    b.logits(&x)
}

/// The residual stream `[m, dim]` after the last layer (no output head); every layer's keys and
/// values go into the KV cache on the way.
fn layers<B: Backend>(cfg: &Config, b: &mut B, ids: &[u32], pos0: usize) -> Result<B::Act> {
    let mut x = b.embed(ids, pos0)?;
    for l in 0..cfg.n_layers {
        layer(cfg, b, &mut x, l, pos0)?;
    }
    Ok(x)
}

/// The residual stream `[m, dim]` after each layer (no output head): what the inspector compares
/// layer by layer between precisions.
pub fn forward_hidden<B: Backend>(cfg: &Config, b: &mut B, ids: &[u32], pos0: usize) -> Result<Vec<B::Act>> {
    let mut x = b.embed(ids, pos0)?;
    let mut out = Vec::with_capacity(cfg.n_layers);
    for l in 0..cfg.n_layers {
        layer(cfg, b, &mut x, l, pos0)?;
        out.push(b.copy(&x)?);
    }
    Ok(out)
}

/// One transformer layer of the config's family, updating the residual stream `x` in place.
fn layer<B: Backend>(cfg: &Config, b: &mut B, x: &mut B::Act, l: usize, pos0: usize) -> Result<()> {
    match cfg.family {
        Family::Llama => layer_llama(b, x, l, pos0),
        Family::Gemma => layer_gemma(b, x, l, pos0),
    }
}

/// A llama layer (SmolLM2, Llama 2/3, TinyLlama, Qwen2, Qwen3): `x += attn(norm(x))`,
/// `x += ffn(norm(x))`.
fn layer_llama<B: Backend>(b: &mut B, x: &mut B::Act, l: usize, pos0: usize) -> Result<()> {
    // Attention block: q, k, v of the normalized stream, RoPE, k and v into the cache.
    let q = b.qkv(x, l, pos0)?;
    let a = b.attend(l, &q, pos0)?;
    b.linear_add(x, &a, Mat::O(l))?;
    // SwiGLU feed-forward block.
    let f = b.glu(x, l)?;
    b.linear_add(x, &f, Mat::Down(l))
}

/// A Gemma 3 layer: `x += norm(attn(norm(x)))`, `x += norm(ffn(norm(x)))`.
fn layer_gemma<B: Backend>(b: &mut B, x: &mut B::Act, l: usize, pos0: usize) -> Result<()> {
    // Attention block: q, k, v of the normalized stream, q and k normalized per head, RoPE with
    // the layer's base, a sliding window on local layers; its output normalized again.
    let q = b.qkv(x, l, pos0)?;
    let a = b.attend(l, &q, pos0)?;
    b.linear_norm_add(x, &a, Mat::O(l), Vector::AttnPost(l))?;
    // GeGLU feed-forward block, its output normalized too.
    let f = b.glu(x, l)?;
    b.linear_norm_add(x, &f, Mat::Down(l), Vector::FfnPost(l))
}

/// `log softmax(logits)[target]`.
pub fn log_prob(logits: &[f32], target: usize) -> f32 {
    logits[target] - log_sum_exp(logits)
}

/// `log softmax(logits)`: every token's log-probability.
pub fn log_softmax(logits: &[f32]) -> Vec<f32> {
    let lse = log_sum_exp(logits);
    logits.iter().map(|&v| v - lse).collect()
}

/// `log Σ exp(logits)`, computed stably (f64 sum).
fn log_sum_exp(logits: &[f32]) -> f32 {
    let mx = logits.iter().fold(f32::NEG_INFINITY, |a, &v| a.max(v));
    mx + logits.iter().map(|&v| ((v - mx) as f64).exp()).sum::<f64>().ln() as f32
}

pub fn argmax(v: &[f32]) -> usize {
    v.iter().enumerate().fold((0, f32::NEG_INFINITY), |(bi, bv), (i, &x)| if x > bv { (i, x) } else { (bi, bv) }).0
}

/// The next token from one row of logits, drawn by the backend: its argmax when sampling is
/// greedy, else the sampler's draw.
async fn pick<B: Backend>(b: &mut B, logits: &B::Act, sampler: &mut crate::sampler::Sampler, history: &[u32]) -> Result<u32> {
    if sampler.is_greedy() {
        b.argmax(logits).await
    } else {
        let d = sampler.draw(history);
        b.sample(logits, &d).await
    }
}

/// What [`decode`] did.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Decoded {
    /// Tokens fed back into the model (decode steps whose result was used).
    pub fed: usize,
    /// Tokens picked and shown to the caller.
    pub examined: usize,
    /// Waits for the device to read tokens back: one per token when each is read before the
    /// next step is recorded, one per batch when the steps are chained.
    pub round_trips: usize,
}

/// The longest a chained decode's batch should take, in milliseconds: the reply shows a batch
/// at a time, so on a slow adapter batches stay short (down to one step: the next batch is on
/// the GPU before this one is read, so the GPU still never waits for the CPU).
pub const BATCH_MS: f64 = 250.0;

/// Decode from `logits` (one row: the next token's), feeding each token the caller keeps back in:
/// pick a token, hand it to `on_token`; while it answers true (and fewer than `max_picks` tokens
/// were picked) append it to `history` and run it at its position (its index in `history`; the
/// cache holds positions `0 .. history.len()` before the call). `sampler` draws; its generator
/// ends where one token at a time would leave it.
///
/// Where the backend chains ([`Backend::chain_ahead`] > 1), tokens are picked on the device and
/// fed to the next step there; the steps are recorded a batch ahead of the tokens read back
/// (batches of 1, 2, 4, … up to the chain length, and no longer than [`BATCH_MS`] at the pace
/// measured so far), so the device never waits for the CPU to see a token. What runs past the end (a stop token, `on_token`'s false, the maximum) is discarded:
/// the tokens are the same, token for token, as one at a time.
pub async fn decode<B: Backend>(
    cfg: &Config,
    b: &mut B,
    logits: B::Act,
    history: &mut Vec<u32>,
    max_picks: usize,
    sampler: &mut crate::sampler::Sampler,
    mut on_token: impl FnMut(u32) -> bool,
) -> Result<Decoded> {
    let mut d = Decoded::default();
    if max_picks == 0 {
        return Ok(d);
    }
    let greedy = sampler.is_greedy();
    let probe = (!greedy).then(|| sampler.draw_with(&[], 0.0));
    let ahead = b.chain_ahead(probe.as_ref(), sampler.window(usize::MAX));
    if ahead <= 1 {
        let mut next = pick(b, &logits, sampler, history).await?;
        d.round_trips += 1;
        loop {
            d.examined += 1;
            if !on_token(next) || d.examined == max_picks {
                return Ok(d);
            }
            history.push(next);
            d.fed += 1;
            let logits = forward(cfg, b, &[next], history.len() - 1, false)?;
            next = pick(b, &logits, sampler, history).await?;
            d.round_trips += 1;
        }
    }
    // The draw of the token at history index `at`: its uniform number, and the penalty's window
    // over the tokens before it (on the device).
    fn draw_at(
        s: &mut crate::sampler::Sampler,
        greedy: bool,
        at: usize,
    ) -> Option<(crate::sampler::Draw, usize)> {
        (!greedy).then(|| {
            let u = s.next_u();
            (s.draw_with(&[], u), s.window(at))
        })
    }
    let base = sampler.clone();
    b.chain_start(history)?;
    let h0 = history.len();
    // History indices the picks may take: h0 .. limit.
    let limit = h0 + max_picks;
    let result = async {
        let dr = draw_at(sampler, greedy, h0);
        b.pick_chained(&logits, h0, dr.as_ref().map(|(d, w)| (d, *w)))?;
        b.chain_send(h0, h0 + 1)?;
        let (mut issued, mut batch) = (h0 + 1, 1);
        // Milliseconds per step, from the time between two reads (the batches run back to back).
        let (mut pace, mut last_read): (Option<f64>, Option<f64>) = (None, None);
        loop {
            // The next batch goes to the device before this one's tokens are awaited.
            if issued < limit {
                let by_time =
                    pace.map_or(usize::MAX, |ms| ((BATCH_MS / ms.max(1e-3)) as usize).max(1));
                batch = (batch * 2).min(ahead).min(by_time).min(limit - issued);
                let from = issued;
                for _ in 0..batch {
                    let x = forward_chained(cfg, b, issued - 1)?;
                    let dr = draw_at(sampler, greedy, issued);
                    b.pick_chained(&x, issued, dr.as_ref().map(|(d, w)| (d, *w)))?;
                    issued += 1;
                }
                b.chain_send(from, issued)?;
            }
            let tokens = b.chain_read().await?;
            d.round_trips += 1;
            let now = crate::util::now_ms();
            if let Some(t) = last_read.filter(|_| !tokens.is_empty()) {
                pace = Some((now - t) / tokens.len() as f64);
            }
            last_read = Some(now);
            for t in tokens {
                d.examined += 1;
                if !on_token(t) || d.examined == max_picks {
                    return Ok(());
                }
                history.push(t);
                d.fed += 1;
            }
        }
    }
    .await;
    b.chain_end();
    // The generator as one draw per token examined would leave it.
    *sampler = base;
    for _ in 0..d.examined {
        sampler.next_u();
    }
    result.map(|()| d)
}

/// A decode step of the token the last chained pick left on the device, at `pos`: its logits.
fn forward_chained<B: Backend>(cfg: &Config, b: &mut B, pos: usize) -> Result<B::Act> {
    let mut x = b.embed_chained(pos)?;
    for l in 0..cfg.n_layers {
        layer(cfg, b, &mut x, l, pos)?;
    }
    b.logits(&x)
}

/// What a generation produced.
#[derive(Clone, Debug, Serialize)]
pub struct Generation {
    pub ids: Vec<u32>,
    pub text: String,
    pub prefill_tokens: usize,
    pub prefill_tokens_per_second: f64,
    pub decode_tokens_per_second: f64,
    /// Position after the last token that is in the KV cache.
    pub end_pos: usize,
    /// Stopped at an end-of-turn or end-of-text token.
    pub stopped: bool,
    /// From the start of the prefill to the first token's text.
    pub time_to_first_token_ms: f64,
    /// Read-backs the reply's tokens took ([`Decoded::round_trips`]).
    pub round_trips: usize,
}

/// What [`generate`] reports as it goes; the callback's `false` stops it there.
#[derive(Clone, Copy, Debug)]
pub enum Step<'a> {
    /// `done` of the prompt's `total` tokens are read (only when the prompt is read in slices).
    Read { done: usize, total: usize },
    /// The next piece of the reply's text.
    Text(&'a str),
}

/// How [`generate`] reads the prompt.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Prefill {
    /// In one pass (nothing can stop it).
    Whole,
    /// In slices sized to take about `slice_ms` each (the first is [`FIRST_SLICE`] tokens), with
    /// a wait for the GPU and a [`Step::Read`] between them: the caller can stop there, and a
    /// browser worker's event loop gets a turn.
    Sliced { slice_ms: f64 },
}

/// The first prefill slice, in tokens: small enough that a software GPU reads it in about a
/// second, a multiple of the 4 tokens the prefill matmul computes per invocation.
pub const FIRST_SLICE: usize = 4;
/// The largest prefill slice.
pub const MAX_SLICE: usize = 512;
/// The most bytes a slice's attention scores may take (well under any GPU's 128 MiB binding).
pub const SCORES_BUDGET: usize = 64 << 20;

/// Prefill `prompt` after `context` (tokens already in the KV cache, positions `0..`), then
/// sample up to `max_tokens` tokens one at a time, calling `on_step` with each piece of text as
/// it is completed and, when the prompt is read in slices, after each slice (return false to stop
/// early: after a slice, the reply is empty and `end_pos` says how much of the prompt is in the
/// cache). The sampler's history is `context + prompt`.
#[allow(clippy::too_many_arguments)]
pub async fn generate<B: Backend>(
    cfg: &Config,
    b: &mut B,
    tok: &crate::tokenizer::Tokenizer,
    context: &[u32],
    prompt: &[u32],
    max_tokens: usize,
    sampler: &mut crate::sampler::Sampler,
    prefill: Prefill,
    mut on_step: impl FnMut(Step<'_>) -> bool,
) -> Result<Generation> {
    use crate::util::now_ms;
    if prompt.is_empty() {
        return Err(Error::Usage("empty prompt".into()));
    }
    let t0 = now_ms();
    let pos0 = context.len();
    let total = prompt.len();
    // Every slice but the last: the layers only (no logits), then wait for the GPU.
    let mut done = 0;
    if let Prefill::Sliced { slice_ms } = prefill {
        let mut slice = FIRST_SLICE;
        while total - done > slice {
            let ts = now_ms();
            let x = layers(cfg, b, &prompt[done..done + slice], pos0 + done)?;
            let last = b.last_row(&x)?;
            b.read(&last).await?;
            done += slice;
            if !on_step(Step::Read { done, total }) {
                let ms = now_ms() - t0;
                return Ok(Generation {
                    ids: vec![],
                    text: String::new(),
                    prefill_tokens: done,
                    prefill_tokens_per_second: done as f64 / (ms / 1e3).max(1e-9),
                    decode_tokens_per_second: 0.0,
                    end_pos: pos0 + done,
                    stopped: false,
                    time_to_first_token_ms: ms,
                    round_trips: 0,
                });
            }
            let per_ms = slice as f64 / (now_ms() - ts).max(1e-3);
            // Attention scores of a slice are [heads, slice, position + slice] floats: keep them
            // within SCORES_BUDGET too, so a slice late in a long context fits any GPU's bindings.
            let pos = pos0 + done;
            let by_memory = (1..=MAX_SLICE).rev().find(|&m| 4 * cfg.n_heads * m * (pos + m) <= SCORES_BUDGET).unwrap_or(1);
            let by_time = (per_ms * slice_ms) as usize;
            slice = (by_time.min(by_memory) / FIRST_SLICE * FIRST_SLICE).clamp(FIRST_SLICE, MAX_SLICE);
        }
    }
    let mut history = [context, prompt].concat();
    let logits = forward(cfg, b, &prompt[done..], pos0 + done, false)?;
    // Weights that hold NaN or infinity make every later logit one too, and the pick would turn
    // them into arbitrary tokens: the first position's logits are checked (one read of a row).
    if b.read(&logits).await?.iter().any(|x| !x.is_finite()) {
        return Err(Error::NonFinite("the logits of the reply's first token".into()));
    }
    let h0 = history.len();
    let (mut prefill_ms, mut first_token_ms) = (None, None);
    let (mut ids, mut text) = (Vec::new(), String::new());
    let mut dec = crate::tokenizer::StreamDecoder::default();
    let mut stopped = false;
    let decoded = decode(cfg, b, logits, &mut history, max_tokens, sampler, |next| {
        prefill_ms.get_or_insert_with(|| now_ms() - t0);
        if tok.is_stop(next) {
            stopped = true;
            return false;
        }
        ids.push(next);
        let piece = dec.push(tok, next);
        first_token_ms.get_or_insert_with(|| now_ms() - t0);
        text += &piece;
        on_step(Step::Text(&piece)) && ids.len() < max_tokens
    })
    .await?;
    let prefill_ms = prefill_ms.unwrap_or_else(|| now_ms() - t0);
    let pos = h0 + decoded.fed;
    // The last sampled token is not in the cache yet: the caller feeds it with the next turn.
    let rest = dec.finish();
    if !rest.is_empty() {
        on_step(Step::Text(&rest));
        text += &rest;
    }
    let decode_s = (now_ms() - t0 - prefill_ms) / 1e3;
    Ok(Generation {
        ids,
        text,
        prefill_tokens: prompt.len(),
        prefill_tokens_per_second: prompt.len() as f64 / (prefill_ms / 1e3).max(1e-9),
        decode_tokens_per_second: decoded.fed as f64 / decode_s.max(1e-9),
        round_trips: decoded.round_trips,
        end_pos: pos,
        stopped,
        time_to_first_token_ms: first_token_ms.unwrap_or(prefill_ms),
    })
}
