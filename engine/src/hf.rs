//! Hugging Face checkpoints as their authors publish them (`config.json`, `tokenizer.json`,
//! `tokenizer_config.json`, `generation_config.json`, `model.safetensors` or shards listed by
//! `model.safetensors.index.json`), turned in memory into the GGUF file llama.cpp's
//! `convert_hf_to_gguf.py` would write, then run like any GGUF. [`to_gguf`] reads; [`from_gguf`]
//! writes a checkpoint from a GGUF (the suite's stand-in for real checkpoints, and the test of
//! every transform's inverse).
//!
//! The transforms, each a named function tested on a hand-made example:
//! - [`rope_permute`]: llama checkpoints store each Q and K head's rows in the GPT-NeoX rotation's
//!   order (pairs `i, i + d/2`); llama GGUFs store them interleaved (pairs `2i, 2i + 1`), the
//!   order the `llama` rotation reads. Qwen2, Qwen3 and Gemma 3 keep the NeoX order and rotation.
//! - [`gemma_norm_shift`]: Gemma's RMS norms compute `x · (1 + w)` and store `w`; GGUF stores
//!   `1 + w` (as f32, as llama.cpp does).
//! - Gemma's embedding scale `√dim` is applied at run time by both (no weight changes); Gemma's
//!   embedding rows past the tokenizer's size are dropped, as llama.cpp drops them. Other models'
//!   token lists are padded with unused `[PAD{i}]` tokens to the embedding's rows.
//! - Llama 3's RoPE scaling becomes the `rope_freqs.weight` divisors
//!   ([`crate::synth::llama3_rope_factors`]); linear scaling becomes `rope.scaling.*`.
//!
//! Matrices keep their dtype (BF16, F16 or F32: the "source precision" the model card shows)
//! unless [`OutType`] asks for another; vectors (norms, biases) become F32.

use std::borrow::Cow;
use std::collections::{BTreeMap, BTreeSet, HashMap};

use half::{bf16, f16};
use serde_json::{json, Value as Json};

use crate::gguf::{self, Array, GgmlType, Gguf, TensorOut, Value};
use crate::model::{Config, Family, Features};
use crate::safetensors::{self, Dtype, SafeTensors};
use crate::tokenizer::{TOKEN_BYTE, TOKEN_CONTROL, TOKEN_NORMAL, TOKEN_UNKNOWN, TOKEN_UNUSED, TOKEN_USER_DEFINED};
use crate::{Error, Result};

pub const CONFIG: &str = "config.json";
pub const TOKENIZER: &str = "tokenizer.json";
pub const TOKENIZER_CONFIG: &str = "tokenizer_config.json";
pub const GENERATION_CONFIG: &str = "generation_config.json";
pub const CHAT_TEMPLATE: &str = "chat_template.jinja";
pub const WEIGHTS: &str = "model.safetensors";
pub const INDEX: &str = "model.safetensors.index.json";

/// The files read besides the weights, in fetch order, and whether a checkpoint must have them.
pub const META_FILES: [(&str, bool); 5] =
    [(CONFIG, true), (TOKENIZER, true), (TOKENIZER_CONFIG, false), (GENERATION_CONFIG, false), (CHAT_TEMPLATE, false)];

/// A checkpoint's files by name (the names above and the shards an index lists).
pub type Files = BTreeMap<String, Vec<u8>>;

/// The most tokens a vocabulary may have (Gemma's 262,144 is the largest published).
const MAX_VOCAB: usize = 1 << 22;

fn bad(msg: impl Into<String>) -> Error {
    Error::Hf(msg.into())
}

/// A JSON value as an error message quotes it: its first 300 characters.
fn shown(j: &Json) -> String {
    let text = j.to_string();
    match text.char_indices().nth(300) {
        Some((at, _)) => format!("{}…", &text[..at]),
        None => text,
    }
}

/// The largest head a config may declare (Gemma's 256 is the largest published): what RoPE's
/// tables are sized by before any tensor is seen.
const MAX_HEAD_DIM: usize = 1024;

/// Whether a checkpoint's reader reads a file of this name (the files [`META_FILES`] names, the
/// shard index, the weights).
pub fn reads_file(name: &str) -> bool {
    META_FILES.iter().any(|(f, _)| *f == name) || name == INDEX || name.ends_with(".safetensors")
}

/// The weight files a checkpoint needs: the shards its index lists (in order, each once), or
/// `model.safetensors`.
pub fn weight_files(index: Option<&[u8]>) -> Result<Vec<String>> {
    match index {
        Some(bytes) => shards(&parse_index(bytes)?),
        None => Ok(vec![WEIGHTS.into()]),
    }
}

/// `model.safetensors.index.json`: which shard holds each tensor.
fn parse_index(bytes: &[u8]) -> Result<BTreeMap<String, String>> {
    let text = std::str::from_utf8(bytes).map_err(|_| Error::Safetensors("the shard index is not UTF-8".into()))?;
    safetensors::shard_index(text)
}

/// The shard files an index names, in order, each once.
fn shards(index: &BTreeMap<String, String>) -> Result<Vec<String>> {
    let mut seen = BTreeSet::new();
    let out: Vec<String> = index.values().filter(|f| seen.insert(f.as_str())).cloned().collect();
    if out.is_empty() {
        return Err(Error::Safetensors("the shard index lists no tensors".into()));
    }
    Ok(out)
}

/// A Hugging Face model repository, named by its id (`owner/name`), its page's URL, or a folder
/// of it (`…/tree/REVISION`): where its files download from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Repo {
    /// `owner/name`.
    pub id: String,
    pub revision: String,
}

impl Repo {
    /// The repository `input` names, or None when it names something else (a file's link, a
    /// relative path, a web address elsewhere).
    pub fn parse(input: &str) -> Option<Repo> {
        let s = input.trim();
        let rest = ["https://huggingface.co/", "http://huggingface.co/", "https://hf.co/", "huggingface.co/", "hf.co/"]
            .iter()
            .find_map(|p| s.strip_prefix(p));
        let full = rest.is_some();
        let rest = rest.unwrap_or(s).trim_end_matches('/');
        let parts: Vec<&str> = rest.split('/').collect();
        let (owner, name, revision) = match parts[..] {
            [o, n] => (o, n, "main"),
            [o, n, "tree", r] if full => (o, n, r),
            _ => return None,
        };
        let ok = |p: &str| {
            !p.is_empty() && p.len() <= 96 && !p.starts_with(['.', '-']) && p.chars().all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
        };
        // A bare `dir/file.gguf` is a relative link to a file, not a repository.
        let file_like = [".gguf", ".bin", ".safetensors", ".json"].iter().any(|e| name.to_ascii_lowercase().ends_with(e));
        (ok(owner) && ok(name) && ok(revision) && !file_like).then(|| Repo { id: format!("{owner}/{name}"), revision: revision.into() })
    }

    /// Where the repository's files download from: this, then the file's name.
    pub fn base_url(&self) -> String {
        format!("https://huggingface.co/{}/resolve/{}/", self.id, self.revision)
    }

    /// The model's name (the id's second part).
    pub fn name(&self) -> &str {
        self.id.split_once('/').map_or(&self.id, |(_, n)| n)
    }
}

/// The dtype of the GGUF's matrices.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OutType {
    /// The checkpoint's own (BF16, F16 or F32).
    AsStored,
    F32,
    F16,
    BF16,
}

impl OutType {
    pub fn parse(s: &str) -> Result<Self> {
        Ok(match s {
            "source" | "as-stored" => OutType::AsStored,
            "f32" => OutType::F32,
            "f16" => OutType::F16,
            "bf16" => OutType::BF16,
            other => return Err(Error::Usage(format!("--outtype {other}: expected source, f32, f16 or bf16"))),
        })
    }
}

fn ggml_of(d: Dtype) -> GgmlType {
    match d {
        Dtype::F32 => GgmlType::F32,
        Dtype::F16 => GgmlType::F16,
        Dtype::BF16 => GgmlType::BF16,
    }
}

fn dtype_of(t: OutType, stored: Dtype) -> Dtype {
    match t {
        OutType::AsStored => stored,
        OutType::F32 => Dtype::F32,
        OutType::F16 => Dtype::F16,
        OutType::BF16 => Dtype::BF16,
    }
}

/// `values` as little-endian bytes of `d`.
fn encode(values: &[f32], d: Dtype) -> Vec<u8> {
    match d {
        Dtype::F32 => values.iter().flat_map(|x| x.to_le_bytes()).collect(),
        Dtype::F16 => values.iter().flat_map(|&x| f16::from_f32(x).to_le_bytes()).collect(),
        Dtype::BF16 => values.iter().flat_map(|&x| bf16::from_f32(x).to_le_bytes()).collect(),
    }
}

// ---------------------------------------------------------------------------------------------
// The transforms

/// The rows of a Q or K projection (`heads` heads of `rows / heads` rows, each row `row_len`
/// elements: bytes of a stored tensor, or values) from Hugging Face's order to llama GGUF's:
/// within a head of `d` rows, row `2i + j` (j = 0, 1) of the result is row `j·d/2 + i` of the
/// checkpoint (`convert_hf_to_gguf.py`'s `LlamaModel.permute`: reshape to (heads, 2, d/2), swap
/// the last two axes).
pub fn rope_permute<T: Copy + Default>(data: &[T], heads: usize, row_len: usize) -> Result<Vec<T>> {
    permute_rows(data, heads, row_len, false)
}

/// The inverse of [`rope_permute`].
pub fn rope_unpermute<T: Copy + Default>(data: &[T], heads: usize, row_len: usize) -> Result<Vec<T>> {
    permute_rows(data, heads, row_len, true)
}

fn permute_rows<T: Copy + Default>(data: &[T], heads: usize, row_len: usize, inverse: bool) -> Result<Vec<T>> {
    let rows = if row_len == 0 { 0 } else { data.len() / row_len };
    if heads == 0 || row_len == 0 || data.len() % row_len != 0 || rows % (2 * heads) != 0 {
        return Err(Error::Shape(format!("{rows} rows cannot be {heads} heads of pairs")));
    }
    let (d, half) = (rows / heads, rows / heads / 2);
    let mut out = vec![T::default(); data.len()];
    for h in 0..heads {
        for i in 0..half {
            for j in 0..2 {
                let (gguf_row, hf_row) = (h * d + 2 * i + j, h * d + j * half + i);
                let (to, from) = if inverse { (hf_row, gguf_row) } else { (gguf_row, hf_row) };
                out[to * row_len..(to + 1) * row_len].copy_from_slice(&data[from * row_len..(from + 1) * row_len]);
            }
        }
    }
    Ok(out)
}

/// Gemma's norm weight as GGUF stores it: `1 + w` for the checkpoint's `w` (`shift` = 1), or
/// back (`shift` = −1).
pub fn gemma_norm_shift(values: &mut [f32], shift: f32) {
    values.iter_mut().for_each(|v| *v += shift);
}

// ---------------------------------------------------------------------------------------------
// Tensor names

/// (checkpoint name within `model.layers.N.`, GGUF name within `blk.N.`), for every family.
const LAYER_NAMES: [(&str, &str); 13] = [
    ("input_layernorm.weight", "attn_norm.weight"),
    ("self_attn.q_proj.weight", "attn_q.weight"),
    ("self_attn.k_proj.weight", "attn_k.weight"),
    ("self_attn.v_proj.weight", "attn_v.weight"),
    ("self_attn.o_proj.weight", "attn_output.weight"),
    ("self_attn.q_proj.bias", "attn_q.bias"),
    ("self_attn.k_proj.bias", "attn_k.bias"),
    ("self_attn.v_proj.bias", "attn_v.bias"),
    ("self_attn.q_norm.weight", "attn_q_norm.weight"),
    ("self_attn.k_norm.weight", "attn_k_norm.weight"),
    ("mlp.gate_proj.weight", "ffn_gate.weight"),
    ("mlp.up_proj.weight", "ffn_up.weight"),
    ("mlp.down_proj.weight", "ffn_down.weight"),
];

/// The norms around attention and the feed-forward, by family: llama's one norm before the
/// feed-forward is called `post_attention_layernorm`; Gemma 3 has four.
const LLAMA_NORMS: [(&str, &str); 1] = [("post_attention_layernorm.weight", "ffn_norm.weight")];
const GEMMA_NORMS: [(&str, &str); 3] = [
    ("post_attention_layernorm.weight", "post_attention_norm.weight"),
    ("pre_feedforward_layernorm.weight", "ffn_norm.weight"),
    ("post_feedforward_layernorm.weight", "post_ffw_norm.weight"),
];

const GLOBAL_NAMES: [(&str, &str); 3] =
    [("model.embed_tokens.weight", "token_embd.weight"), ("model.norm.weight", "output_norm.weight"), ("lm_head.weight", "output.weight")];

fn layer_names(family: Family) -> impl Iterator<Item = (&'static str, &'static str)> {
    let norms: &[(&str, &str)] = if family == Family::Gemma { &GEMMA_NORMS } else { &LLAMA_NORMS };
    LAYER_NAMES.iter().chain(norms).copied()
}

/// A checkpoint tensor's GGUF name: `Ok(None)` for tensors GGUF does without (RoPE's cached
/// inverse frequencies), an error for one lowbit would not know how to run.
pub fn gguf_name(hf: &str, family: Family) -> Result<Option<String>> {
    if hf.ends_with("rotary_emb.inv_freq") {
        return Ok(None);
    }
    if let Some(&(_, g)) = GLOBAL_NAMES.iter().find(|(h, _)| *h == hf) {
        return Ok(Some(g.to_string()));
    }
    let unknown = || bad(format!("tensor {hf} is not part of a model lowbit runs"));
    let rest = hf.strip_prefix("model.layers.").ok_or_else(unknown)?;
    let (layer, suffix) = rest.split_once('.').ok_or_else(unknown)?;
    let l: usize = layer.parse().map_err(|_| unknown())?;
    let (_, g) = layer_names(family).find(|(h, _)| *h == suffix).ok_or_else(unknown)?;
    Ok(Some(format!("blk.{l}.{g}")))
}

/// A GGUF tensor's checkpoint name (None for `rope_freqs.weight`, which a checkpoint's config
/// describes instead).
pub fn hf_name(gguf: &str, family: Family) -> Option<String> {
    if let Some(&(h, _)) = GLOBAL_NAMES.iter().find(|(_, g)| *g == gguf) {
        return Some(h.to_string());
    }
    let rest = gguf.strip_prefix("blk.")?;
    let (layer, suffix) = rest.split_once('.')?;
    let (h, _) = layer_names(family).find(|(_, g)| *g == suffix)?;
    Some(format!("model.layers.{layer}.{h}"))
}

// ---------------------------------------------------------------------------------------------
// Config

/// `config.json`'s `architectures[0]` (or `model_type`) as a GGUF architecture.
const ARCH_NAMES: [(&str, &str); 8] = [
    ("LlamaForCausalLM", "llama"),
    ("Qwen2ForCausalLM", "qwen2"),
    ("Qwen3ForCausalLM", "qwen3"),
    ("Gemma3ForCausalLM", "gemma3"),
    ("llama", "llama"),
    ("qwen2", "qwen2"),
    ("qwen3", "qwen3"),
    ("gemma3_text", "gemma3"),
];

/// Known published Llama 3 RoPE scalings (factor, low, high, original context), and the
/// synthetic test models' (see [`crate::synth::model_of`]): how [`from_gguf`] names a
/// `rope_freqs.weight` in a config.
const LLAMA3_SCALINGS: [(f32, f32, f32, f32); 3] = [(8.0, 1.0, 4.0, 8192.0), (32.0, 1.0, 4.0, 8192.0), (8.0, 1.0, 4.0, 32.0)];

struct Hp<'a>(&'a Json);

impl Hp<'_> {
    fn get(&self, k: &str) -> Option<&Json> {
        self.0.get(k).filter(|v| !v.is_null())
    }
    fn usize(&self, k: &str) -> Result<Option<usize>> {
        match self.get(k) {
            None => Ok(None),
            Some(v) => v
                .as_u64()
                .filter(|&n| n <= 1 << 31)
                .map(|n| Some(n as usize))
                .ok_or_else(|| Error::BadConfig(format!("{CONFIG}: {k} = {v} is not a plausible size"))),
        }
    }
    fn req(&self, k: &str) -> Result<usize> {
        self.usize(k)?.ok_or_else(|| Error::BadConfig(format!("{CONFIG} has no {k}")))
    }
    fn f64(&self, k: &str) -> Result<Option<f64>> {
        match self.get(k) {
            None => Ok(None),
            Some(v) => v.as_f64().map(Some).ok_or_else(|| Error::BadConfig(format!("{CONFIG}: {k} = {v} is not a number"))),
        }
    }
    fn str(&self, k: &str) -> Option<&str> {
        self.get(k).and_then(Json::as_str)
    }
    fn bool(&self, k: &str) -> bool {
        self.get(k).and_then(Json::as_bool).unwrap_or(false)
    }
}

/// What the tensor pass needs to know of the config.
struct Arch {
    name: &'static str,
    family: Family,
    dim: usize,
    n_heads: usize,
    n_kv_heads: usize,
}

/// `config.json` as GGUF metadata (`{arch}.*` keys, `general.architecture`), and the RoPE
/// divisors Llama 3's scaling implies.
fn config_metadata(cfg: &Json) -> Result<(Arch, Vec<(String, Value)>, Option<Vec<f32>>)> {
    let hp = Hp(cfg);
    let declared = cfg.get("architectures").and_then(|a| a.get(0)).and_then(Json::as_str).or_else(|| hp.str("model_type"));
    let declared = declared.ok_or_else(|| Error::BadConfig(format!("{CONFIG} names no architecture")))?;
    let name = ARCH_NAMES.iter().find(|(h, _)| *h == declared).map(|(_, g)| *g).ok_or_else(|| Error::UnsupportedArchitecture(declared.into()))?;
    let f = Features::of(name).ok_or_else(|| Error::UnsupportedArchitecture(name.into()))?;
    let gemma = f.family == Family::Gemma;
    let dim = hp.req("hidden_size")?;
    let n_heads = hp.req("num_attention_heads")?;
    let n_kv_heads = hp.usize("num_key_value_heads")?.unwrap_or(n_heads);
    let head_dim = match hp.usize("head_dim")? {
        Some(h) => h,
        None if n_heads > 0 => dim / n_heads,
        None => 0,
    };
    if head_dim > MAX_HEAD_DIM {
        return Err(Error::BadConfig(format!("{CONFIG}: head_dim {head_dim} is not a plausible head size (at most {MAX_HEAD_DIM})")));
    }
    // What the layer functions do; anything else is refused rather than run wrong.
    let act = hp.str("hidden_activation").or_else(|| hp.str("hidden_act")).unwrap_or(if gemma { "gelu_pytorch_tanh" } else { "silu" });
    let want_act = if gemma { "gelu_pytorch_tanh" } else { "silu" };
    if act != want_act {
        return Err(Error::BadConfig(format!("{CONFIG}: activation {act} (lowbit runs {want_act} for {declared})")));
    }
    for k in ["mlp_bias", "use_sliding_window"] {
        if hp.bool(k) {
            return Err(Error::BadConfig(format!("{CONFIG}: {k} is not supported yet")));
        }
    }
    if hp.bool("attention_bias") != f.qkv_bias && !(hp.get("attention_bias").is_none()) {
        return Err(Error::BadConfig(format!("{CONFIG}: attention_bias = {} is not {declared}'s layer", hp.bool("attention_bias"))));
    }
    for k in ["final_logit_softcapping", "attn_logit_softcapping"] {
        if hp.get(k).is_some() {
            return Err(Error::BadConfig(format!("{CONFIG}: {k} is not supported yet")));
        }
    }
    if let Some(s) = hp.f64("query_pre_attn_scalar")? {
        if s != head_dim as f64 {
            return Err(Error::BadConfig(format!("{CONFIG}: query_pre_attn_scalar {s} differs from head_dim {head_dim}")));
        }
    }
    if let Some(p) = hp.f64("partial_rotary_factor")? {
        if p != 1.0 {
            return Err(Error::BadConfig(format!("{CONFIG}: partial_rotary_factor {p} is not supported yet")));
        }
    }
    // Newer configs keep RoPE's settings in rope_parameters (per layer type for Gemma 3).
    let rope_params = hp.get("rope_parameters");
    let rope_of = |kind: &str| rope_params.and_then(|p| p.get(kind).filter(|v| v.is_object()).or(Some(p)));
    let rope_theta = match hp.f64("rope_theta")? {
        Some(t) => t,
        None => rope_of("full_attention").and_then(|p| p.get("rope_theta")).and_then(Json::as_f64).unwrap_or(if gemma { 1e6 } else { 1e4 }),
    };
    let scaling = hp.get("rope_scaling").or_else(|| rope_of("full_attention").filter(|p| p.get("rope_type").is_some_and(|t| t != "default")));
    let u = |x: usize| Value::U32(x as u32);
    let k = |key: &str| format!("{name}.{key}");
    let mut meta = vec![
        ("general.architecture".to_string(), Value::String(name.into())),
        (k("block_count"), u(hp.req("num_hidden_layers")?)),
        (k("context_length"), u(hp.usize("max_position_embeddings")?.unwrap_or(2048))),
        (k("embedding_length"), u(dim)),
        (k("feed_forward_length"), u(hp.req("intermediate_size")?)),
        (k("attention.head_count"), u(n_heads)),
        (k("attention.head_count_kv"), u(n_kv_heads)),
        (k("attention.key_length"), u(head_dim)),
        (k("attention.value_length"), u(head_dim)),
        (k("rope.dimension_count"), u(head_dim)),
        (k("rope.freq_base"), Value::F32(rope_theta as f32)),
        (k("attention.layer_norm_rms_epsilon"), Value::F32(hp.f64("rms_norm_eps")?.unwrap_or(if gemma { 1e-6 } else { 1e-5 }) as f32)),
    ];
    if let Some(v) = hp.usize("vocab_size")? {
        meta.push((k("vocab_size"), u(v)));
    }
    let mut rope_freqs = None;
    if let Some(s) = scaling {
        let s = Hp(s);
        let kind = s.str("rope_type").or_else(|| s.str("type")).unwrap_or("default");
        let factor = s.f64("factor")?.unwrap_or(1.0);
        match kind {
            "default" => {}
            "linear" => {
                meta.push((k("rope.scaling.type"), Value::String("linear".into())));
                meta.push((k("rope.scaling.factor"), Value::F32(factor as f32)));
            }
            "llama3" => {
                let low = s.f64("low_freq_factor")?.unwrap_or(1.0) as f32;
                let high = s.f64("high_freq_factor")?.unwrap_or(4.0) as f32;
                let ctx = s.usize("original_max_position_embeddings")?.unwrap_or(8192) as f32;
                if !(factor > 0.0 && low > 0.0 && high > low && ctx > 0.0) {
                    return Err(Error::BadConfig(format!("{CONFIG}: Llama 3 RoPE scaling factor {factor}, low {low}, high {high}")));
                }
                rope_freqs = Some(crate::synth::llama3_rope_factors(rope_theta as f32, head_dim, factor as f32, low, high, ctx));
            }
            other => return Err(Error::BadConfig(format!("RoPE scaling '{other}' is not supported yet (linear and Llama 3's are)"))),
        }
    }
    if gemma {
        let window = hp.usize("sliding_window")?.unwrap_or(0);
        let n_layers = hp.req("num_hidden_layers")?;
        // The period of local layers: `sliding_window_pattern`, or read off `layer_types`.
        let period = match (hp.usize("sliding_window_pattern")?, hp.get("layer_types").and_then(Json::as_array)) {
            (Some(p), _) => p,
            (None, Some(types)) => types.iter().position(|t| t == "full_attention").map_or(n_layers + 1, |i| i + 1),
            (None, None) => 6,
        };
        if let Some(types) = hp.get("layer_types").and_then(Json::as_array) {
            let expected = (0..n_layers).map(|l| if window > 0 && l % period.max(1) < period.max(1) - 1 { "sliding_attention" } else { "full_attention" });
            if types.len() != n_layers || !types.iter().zip(expected).all(|(t, e)| t == e) {
                return Err(Error::BadConfig(format!("{CONFIG}: layer_types is not a repeating pattern of local layers then one global layer")));
            }
        }
        let local_theta = hp.f64("rope_local_base_freq")?.or_else(|| rope_of("sliding_attention").and_then(|p| p.get("rope_theta")).and_then(Json::as_f64));
        meta.push((k("attention.sliding_window"), u(window)));
        meta.push((k("attention.sliding_window_pattern"), u(period)));
        meta.push((k("rope.freq_base_swa"), Value::F32(local_theta.unwrap_or(1e4) as f32)));
    }
    Ok((Arch { name, family: f.family, dim, n_heads, n_kv_heads }, meta, rope_freqs))
}

// ---------------------------------------------------------------------------------------------
// Tokenizer

/// The pre-tokenizers of `tokenizer.json` lowbit knows, as `tokenizer.ggml.pre` names: the
/// regexes Hugging Face writes (Llama 3's and Qwen2's, in their case-insensitive form).
const LLAMA3_SPLIT: &str = r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";
const QWEN2_SPLIT: &str = r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";

fn byte_level(use_regex: bool) -> Json {
    json!({ "type": "ByteLevel", "add_prefix_space": false, "trim_offsets": true, "use_regex": use_regex })
}

fn split(regex: &str) -> Json {
    json!({ "type": "Split", "pattern": { "Regex": regex }, "behavior": "Isolated", "invert": false })
}

/// The `pre_tokenizer` of `tokenizer.json` for a GGUF pre-tokenizer name.
fn pre_tokenizer_json(pre: &str) -> Result<Json> {
    Ok(match pre {
        "smollm" | "starcoder" | "refact" => json!({ "type": "Sequence", "pretokenizers": [{ "type": "Digits", "individual_digits": true }, byte_level(true)] }),
        "gpt-2" => byte_level(true),
        "llama-bpe" | "llama3" | "llama-v3" => json!({ "type": "Sequence", "pretokenizers": [split(LLAMA3_SPLIT), byte_level(false)] }),
        "qwen2" => json!({ "type": "Sequence", "pretokenizers": [split(QWEN2_SPLIT), byte_level(false)] }),
        other => return Err(Error::Usage(format!("pre-tokenizer '{other}' cannot be written as tokenizer.json yet"))),
    })
}

/// The GGUF pre-tokenizer name of `tokenizer.json`'s `pre_tokenizer`.
fn pre_name(pre: &Json) -> Result<&'static str> {
    let steps: Vec<&Json> = match pre.get("type").and_then(Json::as_str) {
        Some("Sequence") => pre.get("pretokenizers").and_then(Json::as_array).map(|a| a.iter().collect()).unwrap_or_default(),
        _ => vec![pre],
    };
    let ty = |j: &Json| j.get("type").and_then(Json::as_str).unwrap_or("").to_string();
    let flag = |j: &Json, k: &str| j.get(k).and_then(Json::as_bool);
    let regex = |j: &Json| j.get("pattern").and_then(|p| p.get("Regex")).and_then(Json::as_str).map(str::to_string);
    let byte_level_ok = |j: &Json, regex: bool| ty(j) == "ByteLevel" && flag(j, "use_regex").unwrap_or(true) == regex && !flag(j, "add_prefix_space").unwrap_or(false);
    let name = match steps[..] {
        [b] if byte_level_ok(b, true) => Some("gpt-2"),
        [d, b] if ty(d) == "Digits" && flag(d, "individual_digits") == Some(true) && byte_level_ok(b, true) => Some("smollm"),
        [s, b] if ty(s) == "Split" && byte_level_ok(b, false) => match regex(s).as_deref() {
            Some(LLAMA3_SPLIT) => Some("llama-bpe"),
            Some(QWEN2_SPLIT) => Some("qwen2"),
            _ => None,
        },
        _ => None,
    };
    name.ok_or_else(|| bad(format!("{TOKENIZER}'s pre-tokenizer is not one lowbit knows (GPT-2's, SmolLM's, Llama 3's and Qwen2's are): {}", shown(pre))))
}

/// Which tokenizer a `tokenizer.json` holds.
enum Kind {
    ByteLevel { pre: &'static str },
    Spm { add_space_prefix: bool },
}

/// `<0x41>`: a SentencePiece byte token.
fn is_byte_token(t: &str) -> bool {
    t.len() == 6 && t.starts_with("<0x") && t.ends_with('>') && u8::from_str_radix(&t[3..5], 16).is_ok()
}

/// Whether a SentencePiece-style `tokenizer.json` puts `▁` before the text: its normalizer is
/// `Replace(" " → "▁")`, after a `Prepend("▁")` when it does (Llama 2); or its pre-tokenizer is a
/// `Metaspace` that does not split, prepending unless told never to. Anything else is refused.
fn spm_space_prefix(tj: &Json) -> Result<bool> {
    let ty = |j: &Json| j.get("type").and_then(Json::as_str).unwrap_or("").to_string();
    let is_replace = |j: &Json| {
        ty(j) == "Replace" && j.get("pattern").and_then(|p| p.get("String")).and_then(Json::as_str) == Some(" ") && j.get("content").and_then(Json::as_str) == Some("\u{2581}")
    };
    let is_prepend = |j: &Json| ty(j) == "Prepend" && j.get("prepend").and_then(Json::as_str) == Some("\u{2581}");
    let refuse = |what: &str, j: &Json| bad(format!("{TOKENIZER}'s {what} is not one lowbit knows for SentencePiece-style BPE: {}", shown(j)));
    let normalizer = tj.get("normalizer").unwrap_or(&Json::Null);
    let from_normalizer = match normalizer {
        Json::Null => None,
        n if is_replace(n) => Some(false),
        n if ty(n) == "Sequence" => match n.get("normalizers").and_then(Json::as_array).map(Vec::as_slice) {
            Some([p, r]) if is_prepend(p) && is_replace(r) => Some(true),
            Some([r]) if is_replace(r) => Some(false),
            _ => return Err(refuse("normalizer", n)),
        },
        n => return Err(refuse("normalizer", n)),
    };
    let pre = tj.get("pre_tokenizer").unwrap_or(&Json::Null);
    // Gemma's (transformers' GemmaConverter): split at spaces, which the normalizer has already
    // replaced with `▁`, so nothing is split.
    let gemma_split = |j: &Json| {
        ty(j) == "Split"
            && j.get("pattern").and_then(|p| p.get("String")).and_then(Json::as_str) == Some(" ")
            && j.get("invert").and_then(Json::as_bool) != Some(true)
    };
    let from_pre = match pre {
        Json::Null => None,
        p if gemma_split(p) && from_normalizer.is_some() => None,
        p if ty(p) == "Metaspace" && p.get("split").and_then(Json::as_bool) != Some(true) => {
            Some(p.get("prepend_scheme").and_then(Json::as_str).map_or(p.get("add_prefix_space").and_then(Json::as_bool).unwrap_or(true), |s| s != "never"))
        }
        p => return Err(refuse("pre-tokenizer", p)),
    };
    match (from_normalizer, from_pre) {
        (Some(n), None) => Ok(n),
        (None, Some(p)) => Ok(p),
        _ => Err(refuse("normalizer and pre-tokenizer", &json!([normalizer, pre]))),
    }
}

/// A special token's text as `tokenizer_config.json` writes it: a string or `{"content": …}`.
fn token_text(v: Option<&Json>) -> Option<String> {
    match v? {
        Json::String(s) => Some(s.clone()),
        o => o.get("content").and_then(Json::as_str).map(str::to_string),
    }
}

fn json_file(files: &Files, name: &str) -> Result<Option<Json>> {
    let Some(bytes) = files.get(name) else { return Ok(None) };
    serde_json::from_slice(bytes).map(Some).map_err(|e| bad(format!("{name} is not JSON: {e}")))
}

/// `tokenizer.json` (byte-level or SentencePiece-style BPE), `tokenizer_config.json`, `generation_config.json` and
/// `chat_template.jinja` as GGUF tokenizer metadata, the vocabulary padded to `rows` tokens
/// (or cut there, for Gemma's embedding, which is cut instead: `pad` false); returns the
/// vocabulary's size too.
fn tokenizer_metadata(files: &Files, rows: usize, pad: bool) -> Result<(Vec<(String, Value)>, usize)> {
    let tj = json_file(files, TOKENIZER)?.ok_or_else(|| bad(format!("the checkpoint has no {TOKENIZER}")))?;
    let tc = json_file(files, TOKENIZER_CONFIG)?.unwrap_or(Json::Null);
    let gc = json_file(files, GENERATION_CONFIG)?.unwrap_or(Json::Null);
    let model = tj.get("model").ok_or_else(|| bad(format!("{TOKENIZER} has no model")))?;
    if model.get("type").and_then(Json::as_str) != Some("BPE") {
        return Err(bad(format!("{TOKENIZER}'s model is {}, not BPE", model.get("type").unwrap_or(&Json::Null))));
    }
    // SentencePiece's BPE as tokenizer.json writes it (Llama 2, TinyLlama, Gemma): whole UTF-8
    // characters, unknown ones as byte tokens; else byte-level BPE (GPT-2, Llama 3, Qwen, SmolLM).
    let spm = model.get("byte_fallback").and_then(Json::as_bool) == Some(true);
    let kind = if spm {
        Kind::Spm { add_space_prefix: spm_space_prefix(&tj)? }
    } else {
        match tj.get("normalizer") {
            None | Some(Json::Null) => {}
            // llama.cpp ignores Qwen's NFC normalizer too.
            Some(n) if n.get("type").and_then(Json::as_str) == Some("NFC") => {}
            Some(n) => return Err(bad(format!("{TOKENIZER}'s normalizer {} is not supported yet", n.get("type").unwrap_or(n)))),
        }
        Kind::ByteLevel { pre: pre_name(tj.get("pre_tokenizer").unwrap_or(&Json::Null))? }
    };
    let vocab = model.get("vocab").and_then(Json::as_object).ok_or_else(|| bad(format!("{TOKENIZER}'s model has no vocab")))?;
    let added = tj.get("added_tokens").and_then(Json::as_array).cloned().unwrap_or_default();
    // An id past every token the file lists and every row of the embedding would leave holes
    // that cost memory and mean nothing.
    let bound = (vocab.len() + added.len()).max(rows).min(MAX_VOCAB);
    let id_of = |v: &Json, what: &str| -> Result<usize> {
        v.as_u64()
            .map(|i| i as usize)
            .filter(|&i| i < bound)
            .ok_or_else(|| bad(format!("{TOKENIZER}: {what} has id {v}, past the vocabulary's {bound} tokens")))
    };
    let mut slots: Vec<Option<(String, i32)>> = vec![];
    let mut put = |id: usize, text: &str, ty: i32| -> Result<()> {
        if slots.len() <= id {
            slots.resize(id + 1, None);
        }
        match &slots[id] {
            Some((t, _)) if t != text => Err(bad(format!("{TOKENIZER}: id {id} is both {t:?} and {text:?}"))),
            _ => {
                slots[id] = Some((text.to_string(), ty));
                Ok(())
            }
        }
    };
    for (text, id) in vocab {
        put(id_of(id, text)?, text, TOKEN_NORMAL)?;
    }
    for a in &added {
        let text = a.get("content").and_then(Json::as_str).ok_or_else(|| bad(format!("{TOKENIZER}: an added token has no content")))?;
        let id = id_of(a.get("id").unwrap_or(&Json::Null), text)?;
        let special = a.get("special").and_then(Json::as_bool).unwrap_or(false);
        put(id, text, if special { TOKEN_CONTROL } else { TOKEN_USER_DEFINED })?;
    }
    let n_tokens = slots.len();
    if pad && slots.len() < rows {
        slots.resize(rows, None);
    }
    let (tokens, types): (Vec<String>, Vec<i32>) =
        slots.into_iter().enumerate().map(|(i, s)| s.unwrap_or_else(|| (format!("[PAD{i}]"), TOKEN_UNUSED))).unzip();
    let ids: HashMap<&str, u32> = tokens.iter().enumerate().map(|(i, t)| (t.as_str(), i as u32)).collect();
    let merges: Vec<(String, String)> = model
        .get("merges")
        .and_then(Json::as_array)
        .ok_or_else(|| bad(format!("{TOKENIZER}'s model has no merges")))?
        .iter()
        .map(|m| match m {
            Json::String(s) => match s.split(' ').collect::<Vec<_>>()[..] {
                [a, b] => Ok((a.to_string(), b.to_string())),
                _ => Err(bad(format!("{TOKENIZER}: merge {m} is not two tokens"))),
            },
            Json::Array(p) => match &p[..] {
                [Json::String(a), Json::String(b)] => Ok((a.clone(), b.clone())),
                _ => Err(bad(format!("{TOKENIZER}: merge {m} is not two tokens"))),
            },
            _ => Err(bad(format!("{TOKENIZER}: merge {m} is not two tokens"))),
        })
        .collect::<Result<_>>()?;
    // As Hugging Face's reader does: a merge must make a token (else which id it stands for is
    // a guess).
    for (a, b) in &merges {
        if !ids.contains_key(format!("{a}{b}").as_str()) {
            return Err(bad(format!("{TOKENIZER}: merge {a:?} {b:?} makes {:?}, which is not a token", format!("{a}{b}"))));
        }
    }
    let mut meta = match kind {
        Kind::ByteLevel { pre } => {
            // GGUF writes a merge as "a b": byte-level tokens have no spaces (GPT-2's bytes map
            // the space to Ġ).
            if let Some((a, b)) = merges.iter().find(|(a, b)| a.contains(' ') || b.contains(' ')) {
                return Err(bad(format!("{TOKENIZER}: merge {a:?} {b:?} holds a space, which no byte-level token does")));
            }
            vec![
            ("tokenizer.ggml.model".to_string(), Value::String("gpt2".into())),
            ("tokenizer.ggml.pre".to_string(), Value::String(pre.into())),
            ("tokenizer.ggml.tokens".to_string(), Value::Array(Array::String(tokens.clone()))),
            ("tokenizer.ggml.token_type".to_string(), Value::Array(Array::I32(types))),
            ("tokenizer.ggml.merges".to_string(), Value::Array(Array::String(merges.iter().map(|(a, b)| format!("{a} {b}")).collect()))),
            ]
        }
        Kind::Spm { add_space_prefix } => {
            // SentencePiece merges the adjacent pair whose result scores highest; Hugging Face's
            // BPE the pair of lowest rank. A token's score is minus the rank of the first merge
            // that makes it (tokens no merge makes: below every other).
            let mut scores: Vec<f32> = (0..tokens.len()).map(|i| -1e9 - i as f32).collect();
            for (rank, (a, b)) in merges.iter().enumerate().rev() {
                if let Some(&id) = ids.get(format!("{a}{b}").as_str()) {
                    scores[id as usize] = -(rank as f32);
                }
            }
            let mut types = types;
            for (i, t) in tokens.iter().enumerate() {
                if types[i] == TOKEN_NORMAL && is_byte_token(t) {
                    types[i] = TOKEN_BYTE;
                }
            }
            if let Some(unk) = model.get("unk_token").and_then(Json::as_str).and_then(|u| ids.get(u)) {
                types[*unk as usize] = TOKEN_UNKNOWN;
            }
            vec![
                ("tokenizer.ggml.model".to_string(), Value::String("llama".into())),
                ("tokenizer.ggml.pre".to_string(), Value::String("default".into())),
                ("tokenizer.ggml.tokens".to_string(), Value::Array(Array::String(tokens.clone()))),
                ("tokenizer.ggml.scores".to_string(), Value::Array(Array::F32(scores))),
                ("tokenizer.ggml.token_type".to_string(), Value::Array(Array::I32(types))),
                ("tokenizer.ggml.add_space_prefix".to_string(), Value::Bool(add_space_prefix)),
            ]
        }
    };
    // Special tokens by text from tokenizer_config.json, else by id from generation_config.json
    // (and config.json's ids are the same as the latter's in published checkpoints).
    let special = |text_key: &str, id_key: &str| -> Result<Option<u32>> {
        if let Some(t) = token_text(tc.get(text_key)) {
            return ids.get(t.as_str()).copied().map(Some).ok_or_else(|| bad(format!("{TOKENIZER_CONFIG}: {text_key} {t:?} is not a token")));
        }
        let id = match gc.get(id_key) {
            Some(Json::Array(a)) => a.first().and_then(Json::as_u64),
            Some(v) => v.as_u64(),
            None => None,
        };
        match id {
            Some(i) if (i as usize) < tokens.len() => Ok(Some(i as u32)),
            Some(i) => Err(bad(format!("{GENERATION_CONFIG}: {id_key} {i} is not a token"))),
            None => Ok(None),
        }
    };
    for (key, text_key, id_key) in [
        ("tokenizer.ggml.bos_token_id", "bos_token", "bos_token_id"),
        ("tokenizer.ggml.eos_token_id", "eos_token", "eos_token_id"),
        ("tokenizer.ggml.unknown_token_id", "unk_token", "unk_token_id"),
        ("tokenizer.ggml.padding_token_id", "pad_token", "pad_token_id"),
    ] {
        if let Some(id) = special(text_key, id_key)? {
            meta.push((key.to_string(), Value::U32(id)));
        }
    }
    // BOS: tokenizer_config.json's add_bos_token, else whether the post-processor adds it.
    let add_bos = match tc.get("add_bos_token").and_then(Json::as_bool) {
        Some(b) => b,
        None => {
            // The post-processor, or one in its sequence (Llama 3's: ByteLevel, then the template).
            let post = tj.get("post_processor").unwrap_or(&Json::Null);
            let steps: Vec<&Json> = match post.get("processors").and_then(Json::as_array) {
                Some(list) => list.iter().collect(),
                None => vec![post],
            };
            steps.iter().any(|p| {
                p.get("single").and_then(Json::as_array).and_then(|s| s.first()).is_some_and(|first| first.get("SpecialToken").is_some())
            })
        }
    };
    meta.push(("tokenizer.ggml.add_bos_token".into(), Value::Bool(add_bos)));
    let template = match tc.get("chat_template") {
        Some(Json::String(s)) => Some(s.clone()),
        Some(Json::Array(list)) => list
            .iter()
            .find(|t| t.get("name").and_then(Json::as_str) == Some("default"))
            .or(list.first())
            .and_then(|t| t.get("template"))
            .and_then(Json::as_str)
            .map(str::to_string),
        _ => None,
    };
    let template = match (template, files.get(CHAT_TEMPLATE)) {
        (Some(t), _) => Some(t),
        (None, Some(b)) => Some(String::from_utf8(b.clone()).map_err(|_| bad(format!("{CHAT_TEMPLATE} is not UTF-8")))?),
        (None, None) => None,
    };
    if let Some(t) = template {
        meta.push(("tokenizer.chat_template".into(), Value::String(t)));
    }
    Ok((meta, n_tokens))
}

// ---------------------------------------------------------------------------------------------
// Checkpoint → GGUF

/// Every tensor of the checkpoint's weight files, by name (checked: each parses, no name in two
/// shards, every tensor the index lists is where it says).
fn tensors(files: &Files) -> Result<BTreeMap<String, safetensors::TensorView<'_>>> {
    let index = files.get(INDEX).map(|b| parse_index(b)).transpose()?;
    let weights = match &index {
        Some(idx) => shards(idx)?,
        None => vec![WEIGHTS.into()],
    };
    let mut out = BTreeMap::new();
    for file in weights {
        let bytes = files.get(&file).ok_or_else(|| bad(format!("the checkpoint has no {file}")))?;
        let st = SafeTensors::parse(bytes).map_err(|e| match e {
            Error::Safetensors(m) => Error::Safetensors(format!("{file}: {m}")),
            e => e,
        })?;
        for t in st.tensors {
            if let Some(idx) = &index {
                if idx.get(&t.name) != Some(&file) {
                    return Err(Error::Safetensors(format!("{file} holds {}, which the index puts elsewhere", t.name)));
                }
            }
            let name = t.name.clone();
            if out.insert(name.clone(), t).is_some() {
                return Err(Error::Safetensors(format!("two shards hold {name}")));
            }
        }
    }
    if let Some(idx) = &index {
        if let Some(missing) = idx.keys().find(|k| !out.contains_key(*k)) {
            return Err(Error::Safetensors(format!("{missing} is in the index but not in {}", idx[missing])));
        }
    }
    Ok(out)
}

/// The checkpoint in `files` as a GGUF file (see the module docs), named `name`, its matrices in
/// `out`'s dtype. Its metadata and tensors are checked as any GGUF is ([`Config::from_gguf`]),
/// with errors naming the checkpoint's tensors.
pub fn to_gguf(files: &Files, name: &str, out: OutType) -> Result<Vec<u8>> {
    let cfg = json_file(files, CONFIG)?.ok_or_else(|| bad(format!("the checkpoint has no {CONFIG}")))?;
    let (arch, mut meta, rope_freqs) = config_metadata(&cfg)?;
    let gemma = arch.family == Family::Gemma;
    let views = tensors(files)?;
    if let Some((name, v)) = views.iter().find(|(_, v)| v.shape.is_empty() || v.shape.len() > 2) {
        return Err(bad(format!("tensor {name} has {} dimensions: a model's tensors have 1 or 2", v.shape.len())));
    }
    let embed = views.get("model.embed_tokens.weight").ok_or_else(|| bad("the checkpoint has no model.embed_tokens.weight"))?;
    let rows = match embed.shape[..] {
        [rows, d] if d == arch.dim && rows > 0 && rows <= MAX_VOCAB => rows,
        _ => return Err(bad(format!("model.embed_tokens.weight has shape {:?} where {CONFIG} implies [vocabulary, {}]", embed.shape, arch.dim))),
    };
    // A stored head is used unless the config ties it; a config silent on it ties only when no
    // head is stored (transformers' defaults differ by model; llama.cpp uses a stored head).
    let tied = match cfg.get("tie_word_embeddings").and_then(Json::as_bool) {
        Some(t) => t,
        None => !views.contains_key("lm_head.weight"),
    };
    if !tied && !views.contains_key("lm_head.weight") {
        return Err(bad(format!("{CONFIG} unties the output head (tie_word_embeddings: false) but the checkpoint has no lm_head.weight")));
    }
    let (tok_meta, n_tokens) = tokenizer_metadata(files, rows, !gemma)?;
    meta.extend(tok_meta);
    meta.push(("general.name".into(), Value::String(name.into())));
    // (GGUF name, checkpoint name, dims innermost first, type, bytes: the checkpoint's own where
    // nothing changes them, so the source and the GGUF are the only two copies of the weights).
    let mut encoded: Vec<(String, String, Vec<u64>, GgmlType, Cow<[u8]>)> = vec![];
    for (hf, v) in &views {
        let Some(gg) = gguf_name(hf, arch.family)? else { continue };
        if gg == "output.weight" && tied {
            // A tied checkpoint may store the head anyway; the model reads the embedding.
            continue;
        }
        if v.shape.len() == 1 {
            let mut values = v.to_f32();
            if gemma && hf.ends_with("norm.weight") {
                gemma_norm_shift(&mut values, 1.0);
            }
            encoded.push((gg, hf.clone(), vec![v.shape[0] as u64], GgmlType::F32, Cow::Owned(encode(&values, Dtype::F32))));
            continue;
        }
        // Gemma's embedding keeps the tokenizer's rows only.
        let kept = if gg == "token_embd.weight" && gemma { n_tokens.min(rows) } else { v.shape[0] };
        let v = safetensors::TensorView { data: &v.data[..kept * v.shape[1] * v.dtype.size()], shape: vec![kept, v.shape[1]], ..v.clone() };
        let dims = vec![v.shape[1] as u64, kept as u64];
        let to = dtype_of(out, v.dtype);
        let mut bytes: Cow<[u8]> = if to == v.dtype { Cow::Borrowed(v.data) } else { Cow::Owned(encode(&v.to_f32(), to)) };
        let row_bytes = v.shape[1] * to.size();
        if arch.name == "llama" {
            if gg.ends_with("attn_q.weight") {
                bytes = Cow::Owned(rope_permute(&bytes, arch.n_heads, row_bytes).map_err(|e| bad(format!("{hf}: {e}")))?);
            } else if gg.ends_with("attn_k.weight") {
                bytes = Cow::Owned(rope_permute(&bytes, arch.n_kv_heads, row_bytes).map_err(|e| bad(format!("{hf}: {e}")))?);
            }
        }
        encoded.push((gg, hf.clone(), dims, ggml_of(to), bytes));
    }
    if let Some(f) = rope_freqs {
        encoded.push((crate::model::ROPE_FREQS.into(), "config.json rope_scaling".into(), vec![f.len() as u64], GgmlType::F32, Cow::Owned(encode(&f, Dtype::F32))));
    }
    // LLAMA_FTYPE_ALL_F32 / MOSTLY_F16 / MOSTLY_BF16, by the matrices' type.
    let file_type = match encoded.iter().find(|e| e.2.len() > 1).map(|e| e.3) {
        Some(GgmlType::F16) => 1,
        Some(GgmlType::BF16) => 32,
        _ => 0,
    };
    meta.push(("general.file_type".into(), Value::U32(file_type)));
    let outs: Vec<TensorOut> = encoded.iter().map(|(n, _, dims, ty, data)| TensorOut { name: n.clone(), dims: dims.clone(), ggml_type: *ty, data }).collect();
    let bytes = gguf::write(&meta, &outs, 32);
    // Check it as any GGUF, naming the checkpoint's tensors in what is wrong.
    let g = Gguf::parse(&bytes)?;
    let hf_of = |gg: &str| encoded.iter().find(|e| e.0 == gg).map_or_else(|| hf_name(gg, arch.family).unwrap_or(gg.into()), |e| e.1.clone());
    match Config::from_gguf(&g) {
        Ok(_) => Ok(bytes),
        Err(Error::TensorShape { tensor, expected, found }) => Err(Error::Hf(format!(
            "tensor {} has shape {:?} where {CONFIG} implies {:?}",
            hf_of(&tensor),
            found.iter().rev().collect::<Vec<_>>(),
            expected.iter().rev().collect::<Vec<_>>()
        ))),
        Err(Error::TensorNotFound(t)) => Err(Error::Hf(format!("the checkpoint has no {}", hf_of(&t)))),
        Err(e) => Err(e),
    }
}

// ---------------------------------------------------------------------------------------------
// GGUF → checkpoint (the suite's stand-in for published checkpoints)

/// A checkpoint of `g`'s model, as its authors would publish it: every transform undone, weights
/// in `dtype`, split into `shards` files (with an index) when more than one. Its tokenizer as
/// [`tokenizer_files`] writes it.
pub fn from_gguf(g: &Gguf, dtype: Dtype, shards: usize) -> Result<Files> {
    let cfg = Config::from_gguf(g)?;
    let arch = cfg.architecture.as_str();
    let hf_arch = ARCH_NAMES.iter().find(|(_, a)| *a == arch).map(|(h, _)| *h).ok_or_else(|| Error::UnsupportedArchitecture(arch.into()))?;
    let gemma = cfg.family == Family::Gemma;
    let tok = crate::tokenizer::Tokenizer::from_gguf(g)?;
    let mut files = Files::new();

    // config.json
    let mut c = json!({
        "architectures": [hf_arch],
        "model_type": if gemma { "gemma3_text" } else { arch },
        "hidden_size": cfg.dim,
        "intermediate_size": cfg.ffn_dim,
        "num_hidden_layers": cfg.n_layers,
        "num_attention_heads": cfg.n_heads,
        "num_key_value_heads": cfg.n_kv_heads,
        "head_dim": cfg.head_dim,
        "max_position_embeddings": cfg.context_length,
        "rms_norm_eps": cfg.rms_eps,
        "rope_theta": cfg.rope_base,
        "tie_word_embeddings": cfg.tied_output,
        "vocab_size": cfg.vocab,
        "torch_dtype": match dtype { Dtype::BF16 => "bfloat16", Dtype::F16 => "float16", Dtype::F32 => "float32" },
        "bos_token_id": tok.bos,
        "eos_token_id": tok.eos,
    });
    let o = c.as_object_mut().ok_or_else(|| bad("config"))?;
    if cfg.n_rot != cfg.head_dim {
        return Err(Error::Usage("a partial rotation cannot be written as a checkpoint yet".into()));
    }
    if gemma {
        o.insert("hidden_activation".into(), json!("gelu_pytorch_tanh"));
        o.insert("query_pre_attn_scalar".into(), json!(cfg.head_dim));
        o.insert("sliding_window".into(), json!(cfg.sliding_window));
        o.insert("rope_local_base_freq".into(), json!(cfg.rope_base_local));
        let types: Vec<&str> = (0..cfg.n_layers).map(|l| if cfg.is_local(l) { "sliding_attention" } else { "full_attention" }).collect();
        o.insert("layer_types".into(), json!(types));
    } else {
        o.insert("hidden_act".into(), json!("silu"));
        o.insert("attention_bias".into(), json!(cfg.qkv_bias));
    }
    if cfg.rope_scale != 1.0 {
        o.insert("rope_scaling".into(), json!({ "rope_type": "linear", "factor": 1.0 / cfg.rope_scale }));
    }
    if cfg.rope_factors {
        let t = g.tensor(crate::model::ROPE_FREQS)?;
        let have = g.dequantize_tensor(t)?;
        let found = LLAMA3_SCALINGS.iter().find(|&&(f, lo, hi, ctx)| {
            let want = crate::synth::llama3_rope_factors(cfg.rope_base, cfg.n_rot, f, lo, hi, ctx);
            want.len() == have.len() && want.iter().zip(&have).all(|(a, b)| (a - b).abs() <= 1e-5 * a.abs().max(1.0))
        });
        let &(f, lo, hi, ctx) = found.ok_or_else(|| Error::Usage("rope_freqs.weight matches no known Llama 3 scaling".into()))?;
        o.insert(
            "rope_scaling".into(),
            json!({ "rope_type": "llama3", "factor": f, "low_freq_factor": lo, "high_freq_factor": hi, "original_max_position_embeddings": ctx as u64 }),
        );
    }
    files.insert(CONFIG.into(), serde_json::to_vec_pretty(&c).map_err(|e| bad(e.to_string()))?);

    files.extend(tokenizer_files(g)?);

    // The weights, transforms undone.
    let mut weights: Vec<(String, Vec<usize>, Vec<f32>)> = vec![];
    for t in &g.tensors {
        let Some(hf) = hf_name(&t.name, cfg.family) else { continue };
        let mut values = g.dequantize_tensor(t)?;
        let shape: Vec<usize> = t.dims.iter().rev().map(|&d| d as usize).collect();
        if gemma && hf.ends_with("norm.weight") {
            gemma_norm_shift(&mut values, -1.0);
        }
        if arch == "llama" && (t.name.ends_with("attn_q.weight") || t.name.ends_with("attn_k.weight")) {
            let heads = if t.name.ends_with("attn_q.weight") { cfg.n_heads } else { cfg.n_kv_heads };
            values = rope_unpermute(&values, heads, shape[1])?;
        }
        weights.push((hf, shape, values));
    }
    let shards = shards.clamp(1, weights.len().max(1));
    let per = weights.len().div_ceil(shards);
    let mut weight_map = serde_json::Map::new();
    let mut meta = BTreeMap::new();
    meta.insert("format".to_string(), "pt".to_string());
    for (s, chunk) in weights.chunks(per.max(1)).enumerate() {
        let file = if shards == 1 { WEIGHTS.to_string() } else { format!("model-{:05}-of-{:05}.safetensors", s + 1, shards) };
        let list: Vec<(&str, Dtype, &[usize], &[f32])> = chunk.iter().map(|(n, shape, v)| (n.as_str(), dtype, shape.as_slice(), v.as_slice())).collect();
        for (n, ..) in chunk {
            weight_map.insert(n.clone(), json!(file));
        }
        files.insert(file, safetensors::write(&list, &meta)?);
    }
    if shards > 1 {
        let index = json!({ "metadata": {}, "weight_map": weight_map });
        files.insert(INDEX.into(), serde_json::to_vec_pretty(&index).map_err(|e| bad(e.to_string()))?);
    }
    Ok(files)
}

/// `tokenizer.json`, `tokenizer_config.json` and `generation_config.json` for `g`'s tokenizer, as
/// Hugging Face's `tokenizers` reads them (GGUF's byte-level `gpt2` and SentencePiece `llama`
/// models).
pub fn tokenizer_files(g: &Gguf) -> Result<Files> {
    let tok = crate::tokenizer::Tokenizer::from_gguf(g)?;
    let mut files = Files::new();
    let tj = match g.get_str("tokenizer.ggml.model") {
        Some("gpt2") => byte_level_json(g, &tok)?,
        Some("llama") => spm_json(g, &tok)?,
        other => return Err(Error::Usage(format!("a {} tokenizer cannot be written as tokenizer.json yet", other.unwrap_or("nameless")))),
    };
    files.insert(TOKENIZER.into(), serde_json::to_vec(&tj).map_err(|e| bad(e.to_string()))?);
    let text = |id: Option<u32>| id.and_then(|i| tok.tokens.get(i as usize)).map_or(Json::Null, |t| json!(t));
    let mut tc = json!({
        "add_bos_token": tok.add_bos,
        "bos_token": text(tok.bos),
        "eos_token": text(tok.eos),
        "unk_token": text(tok.unk),
        "tokenizer_class": "PreTrainedTokenizerFast",
    });
    if let Some(t) = g.get_str("tokenizer.chat_template") {
        tc["chat_template"] = json!(t);
    }
    files.insert(TOKENIZER_CONFIG.into(), serde_json::to_vec_pretty(&tc).map_err(|e| bad(e.to_string()))?);
    let gen = json!({ "bos_token_id": tok.bos, "eos_token_id": tok.eos, "do_sample": false });
    files.insert(GENERATION_CONFIG.into(), serde_json::to_vec_pretty(&gen).map_err(|e| bad(e.to_string()))?);

    Ok(files)
}

/// The token's entry in `added_tokens` (control, unknown and user-defined tokens).
fn added_token(id: usize, text: &str, ty: i32) -> Option<Json> {
    matches!(ty, TOKEN_CONTROL | TOKEN_USER_DEFINED | TOKEN_UNKNOWN).then(|| {
        json!({ "id": id, "content": text, "single_word": false, "lstrip": false, "rstrip": false, "normalized": false, "special": ty != TOKEN_USER_DEFINED })
    })
}

/// `tokenizer.json` of a byte-level BPE (GGUF's `gpt2`): its unused padding tokens left out.
fn byte_level_json(g: &Gguf, tok: &crate::tokenizer::Tokenizer) -> Result<Json> {
    let pre = g.get_str("tokenizer.ggml.pre").unwrap_or("gpt-2");
    let merges: Vec<String> = g.get("tokenizer.ggml.merges").and_then(Value::as_array).and_then(Array::strings).map(<[String]>::to_vec).unwrap_or_default();
    let mut vocab = serde_json::Map::new();
    let mut added = vec![];
    for (i, (t, &ty)) in tok.tokens.iter().zip(&tok.token_types).enumerate() {
        if ty == TOKEN_UNUSED {
            continue;
        }
        vocab.insert(t.clone(), json!(i));
        added.extend(added_token(i, t, ty));
    }
    let llama3 = matches!(pre, "llama-bpe" | "llama3" | "llama-v3");
    Ok(json!({
        "version": "1.0",
        "truncation": null,
        "padding": null,
        "added_tokens": added,
        "normalizer": null,
        "pre_tokenizer": pre_tokenizer_json(pre)?,
        "post_processor": { "type": "ByteLevel", "add_prefix_space": true, "trim_offsets": false, "use_regex": true },
        "decoder": { "type": "ByteLevel", "add_prefix_space": true, "trim_offsets": true, "use_regex": true },
        "model": {
            "type": "BPE", "dropout": null, "unk_token": null, "continuing_subword_prefix": null, "end_of_word_suffix": null,
            "fuse_unk": false, "byte_fallback": false, "ignore_merges": llama3, "vocab": vocab, "merges": merges,
        },
    }))
}

/// `tokenizer.json` of a SentencePiece BPE (GGUF's `llama`), as Hugging Face's converter writes
/// one (`SentencePieceExtractor`): every split of a token into two tokens is a merge, the merges
/// ordered by the token's score (highest first), a token's own splits by their halves' ids.
fn spm_json(g: &Gguf, tok: &crate::tokenizer::Tokenizer) -> Result<Json> {
    let n = tok.tokens.len();
    let scores: Vec<f64> = g.get("tokenizer.ggml.scores").and_then(Value::as_array).and_then(Array::numbers).unwrap_or_else(|| vec![0.0; n]);
    let add_space_prefix = match g.get("tokenizer.ggml.add_space_prefix") {
        Some(Value::Bool(b)) => *b,
        _ => true,
    };
    let ids: HashMap<&str, usize> = tok.tokens.iter().enumerate().map(|(i, t)| (t.as_str(), i)).collect();
    let mut vocab = serde_json::Map::new();
    let mut added = vec![];
    // (token, left id, right id)
    let mut merges: Vec<(usize, usize, usize)> = vec![];
    for (i, (t, &ty)) in tok.tokens.iter().zip(&tok.token_types).enumerate() {
        vocab.insert(t.clone(), json!(i));
        added.extend(added_token(i, t, ty));
        let mut local: Vec<(usize, usize, usize)> = t
            .char_indices()
            .skip(1)
            .filter_map(|(k, _)| Some((i, *ids.get(&t[..k])?, *ids.get(&t[k..])?)))
            .collect();
        local.sort_by_key(|m| (m.1, m.2));
        merges.extend(local);
    }
    merges.sort_by(|a, b| scores[b.0].partial_cmp(&scores[a.0]).unwrap_or(std::cmp::Ordering::Equal));
    let merges: Vec<Json> = merges.iter().map(|&(_, a, b)| json!([tok.tokens[a], tok.tokens[b]])).collect();
    let space = "\u{2581}";
    let replace = json!({ "type": "Replace", "pattern": { "String": " " }, "content": space });
    let normalizer = if add_space_prefix { json!({ "type": "Sequence", "normalizers": [{ "type": "Prepend", "prepend": space }, replace] }) } else { replace };
    let mut decoders = vec![
        json!({ "type": "Replace", "pattern": { "String": space }, "content": " " }),
        json!({ "type": "ByteFallback" }),
        json!({ "type": "Fuse" }),
    ];
    if add_space_prefix {
        decoders.push(json!({ "type": "Strip", "content": " ", "start": 1, "stop": 0 }));
    }
    let name = |id: Option<u32>| id.and_then(|i| tok.tokens.get(i as usize)).cloned();
    let post_processor = match name(tok.bos).filter(|_| tok.add_bos) {
        Some(bos) => json!({
            "type": "TemplateProcessing",
            "single": [{ "SpecialToken": { "id": bos, "type_id": 0 } }, { "Sequence": { "id": "A", "type_id": 0 } }],
            "pair": [{ "SpecialToken": { "id": bos, "type_id": 0 } }, { "Sequence": { "id": "A", "type_id": 0 } }, { "SpecialToken": { "id": bos, "type_id": 1 } }, { "Sequence": { "id": "B", "type_id": 1 } }],
            "special_tokens": { bos.clone(): { "id": bos, "ids": [tok.bos], "tokens": [bos] } },
        }),
        None => Json::Null,
    };
    Ok(json!({
        "version": "1.0",
        "truncation": null,
        "padding": null,
        "added_tokens": added,
        "normalizer": normalizer,
        // Gemma's (no space prefix) splits at spaces as transformers' GemmaConverter writes it:
        // after the normalizer, nothing.
        "pre_tokenizer": if add_space_prefix { Json::Null } else { json!({ "type": "Split", "pattern": { "String": " " }, "behavior": "MergedWithPrevious", "invert": false }) },
        "post_processor": post_processor,
        "decoder": { "type": "Sequence", "decoders": decoders },
        "model": {
            "type": "BPE", "dropout": null, "unk_token": name(tok.unk), "continuing_subword_prefix": null, "end_of_word_suffix": null,
            "fuse_unk": true, "byte_fallback": true, "ignore_merges": false, "vocab": vocab, "merges": merges,
        },
    }))
}

/// A GGUF holding only the tokenizer and chat template of the checkpoint in `files` (what
/// [`crate::tokenizer::Tokenizer::from_gguf`] and [`crate::chat::ChatTemplate::from_gguf`] read).
pub fn tokenizer_gguf(files: &Files) -> Result<Vec<u8>> {
    let (meta, _) = tokenizer_metadata(files, 0, false)?;
    Ok(gguf::write(&meta, &[], 32))
}

/// The checkpoint in directory `dir` (the files [`META_FILES`] names that exist, the index and the
/// weight files), read whole.
#[cfg(not(target_arch = "wasm32"))]
pub fn read_dir(dir: &std::path::Path) -> Result<Files> {
    let read = |name: &str| std::fs::read(dir.join(name)).map_err(|e| Error::Io(format!("{}: {e}", dir.join(name).display())));
    let mut files = Files::new();
    for (name, required) in META_FILES {
        if required || dir.join(name).is_file() {
            files.insert(name.to_string(), read(name)?);
        }
    }
    if dir.join(INDEX).is_file() {
        files.insert(INDEX.into(), read(INDEX)?);
    }
    for w in weight_files(files.get(INDEX).map(Vec::as_slice))? {
        let bytes = read(&w)?;
        files.insert(w, bytes);
    }
    Ok(files)
}

/// Write `files` into directory `dir` (made if missing).
#[cfg(not(target_arch = "wasm32"))]
pub fn write_dir(dir: &std::path::Path, files: &Files) -> Result<()> {
    std::fs::create_dir_all(dir).map_err(|e| Error::Io(format!("{}: {e}", dir.display())))?;
    for (name, bytes) in files {
        std::fs::write(dir.join(name), bytes).map_err(|e| Error::Io(format!("{}: {e}", dir.join(name).display())))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rope_permute_interleaves_each_heads_halves() {
        // Two heads of four rows (one byte each): HF rows a0 a1 | b0 b1 per head, where a are the
        // first halves' rows and b the second's; GGUF wants a0 b0 a1 b1.
        let hf = [10u8, 11, 20, 21, 30, 31, 40, 41];
        let g = rope_permute(&hf, 2, 1).unwrap();
        assert_eq!(g, [10, 20, 11, 21, 30, 40, 31, 41]);
        assert_eq!(rope_unpermute(&g, 2, 1).unwrap(), hf);
        // Rows of two bytes move whole.
        let hf2 = [1u8, 2, 3, 4, 5, 6, 7, 8];
        assert_eq!(rope_permute(&hf2, 1, 2).unwrap(), [1, 2, 5, 6, 3, 4, 7, 8]);
        // Heads of an odd number of rows have no pairs.
        assert!(matches!(rope_permute(&[0u8; 6], 2, 1), Err(Error::Shape(_))));
        assert!(matches!(rope_permute(&[0u8; 6], 0, 1), Err(Error::Shape(_))));
    }

    #[test]
    fn gemma_norms_are_stored_plus_one() {
        let mut w = vec![0.0, -0.5, 2.0];
        gemma_norm_shift(&mut w, 1.0);
        assert_eq!(w, [1.0, 0.5, 3.0]);
        gemma_norm_shift(&mut w, -1.0);
        assert_eq!(w, [0.0, -0.5, 2.0]);
    }

    #[test]
    fn tensor_names_map_both_ways_per_family() {
        let cases = [
            ("model.embed_tokens.weight", "token_embd.weight", Family::Llama),
            ("lm_head.weight", "output.weight", Family::Llama),
            ("model.norm.weight", "output_norm.weight", Family::Gemma),
            ("model.layers.3.self_attn.q_proj.weight", "blk.3.attn_q.weight", Family::Llama),
            ("model.layers.0.self_attn.k_proj.bias", "blk.0.attn_k.bias", Family::Llama),
            ("model.layers.11.self_attn.k_norm.weight", "blk.11.attn_k_norm.weight", Family::Gemma),
            ("model.layers.2.post_attention_layernorm.weight", "blk.2.ffn_norm.weight", Family::Llama),
            ("model.layers.2.post_attention_layernorm.weight", "blk.2.post_attention_norm.weight", Family::Gemma),
            ("model.layers.2.pre_feedforward_layernorm.weight", "blk.2.ffn_norm.weight", Family::Gemma),
            ("model.layers.2.post_feedforward_layernorm.weight", "blk.2.post_ffw_norm.weight", Family::Gemma),
            ("model.layers.7.mlp.down_proj.weight", "blk.7.ffn_down.weight", Family::Gemma),
        ];
        for (hf, gg, fam) in cases {
            assert_eq!(gguf_name(hf, fam).unwrap().as_deref(), Some(gg), "{hf}");
            assert_eq!(hf_name(gg, fam).as_deref(), Some(hf), "{gg}");
        }
        assert_eq!(gguf_name("model.layers.0.self_attn.rotary_emb.inv_freq", Family::Llama).unwrap(), None);
        for odd in ["model.layers.0.pre_feedforward_layernorm.weight", "model.layers.x.mlp.up_proj.weight", "vision_tower.patch", "model.layers.1"] {
            assert!(matches!(gguf_name(odd, Family::Llama), Err(Error::Hf(_))), "{odd}");
        }
    }

    #[test]
    fn pre_tokenizers_are_recognised_and_written_alike() {
        for name in ["smollm", "gpt-2", "llama-bpe", "qwen2"] {
            assert_eq!(pre_name(&pre_tokenizer_json(name).unwrap()).unwrap(), name);
        }
        let metaspace = json!({ "type": "Metaspace", "replacement": "▁" });
        assert!(matches!(pre_name(&metaspace), Err(Error::Hf(_))));
        let other_split = json!({ "type": "Sequence", "pretokenizers": [split(r"\w+"), byte_level(false)] });
        assert!(matches!(pre_name(&other_split), Err(Error::Hf(_))));
    }

    fn tiny_config() -> Json {
        json!({
            "architectures": ["LlamaForCausalLM"], "hidden_size": 64, "intermediate_size": 128, "num_hidden_layers": 2,
            "num_attention_heads": 4, "num_key_value_heads": 2, "rms_norm_eps": 1e-5, "rope_theta": 10000.0,
            "max_position_embeddings": 256, "tie_word_embeddings": true, "hidden_act": "silu",
        })
    }

    #[test]
    fn configs_map_to_gguf_keys_and_odd_ones_are_refused() {
        let (arch, meta, freqs) = config_metadata(&tiny_config()).unwrap();
        assert_eq!((arch.name, arch.n_heads, arch.n_kv_heads), ("llama", 4, 2));
        let get = |k: &str| meta.iter().find(|(m, _)| m == k).map(|(_, v)| v.clone());
        assert_eq!(get("llama.attention.key_length"), Some(Value::U32(16)));
        assert_eq!(get("llama.block_count"), Some(Value::U32(2)));
        assert!(freqs.is_none());
        let mut l3 = tiny_config();
        l3["rope_scaling"] = json!({ "rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0, "original_max_position_embeddings": 32 });
        let (_, _, freqs) = config_metadata(&l3).unwrap();
        assert_eq!(freqs.unwrap(), crate::synth::llama3_rope_factors(10000.0, 16, 8.0, 1.0, 4.0, 32.0));
        for (k, v) in [
            ("hidden_act", json!("relu")),
            ("mlp_bias", json!(true)),
            ("attention_bias", json!(true)),
            ("rope_scaling", json!({ "rope_type": "yarn", "factor": 4.0 })),
            ("hidden_size", json!(-3)),
            ("num_attention_heads", json!("four")),
            ("final_logit_softcapping", json!(30.0)),
        ] {
            let mut c = tiny_config();
            c[k] = v;
            assert!(matches!(config_metadata(&c), Err(Error::BadConfig(_))), "{k}");
        }
        let mut c = tiny_config();
        c["architectures"] = json!(["MambaForCausalLM"]);
        assert!(matches!(config_metadata(&c), Err(Error::UnsupportedArchitecture(_))));
    }

    #[test]
    fn repositories_are_told_from_files_and_other_addresses() {
        let r = Repo::parse("HuggingFaceTB/SmolLM2-135M-Instruct").unwrap();
        assert_eq!((r.id.as_str(), r.revision.as_str(), r.name()), ("HuggingFaceTB/SmolLM2-135M-Instruct", "main", "SmolLM2-135M-Instruct"));
        assert_eq!(r.base_url() + "config.json", "https://huggingface.co/HuggingFaceTB/SmolLM2-135M-Instruct/resolve/main/config.json");
        assert_eq!(Repo::parse(" https://huggingface.co/Qwen/Qwen2.5-0.5B-Instruct/ ").unwrap().id, "Qwen/Qwen2.5-0.5B-Instruct");
        assert_eq!(Repo::parse("https://huggingface.co/Qwen/Qwen3-0.6B/tree/v1.0").unwrap().revision, "v1.0");
        assert_eq!(Repo::parse("hf.co/google/gemma-3-270m-it").unwrap().id, "google/gemma-3-270m-it");
        for not in [
            "https://huggingface.co/Qwen/Qwen3-0.6B-GGUF/resolve/main/Qwen3-0.6B-Q8_0.gguf",
            "https://huggingface.co/Qwen/Qwen3-0.6B-GGUF/blob/main/Qwen3-0.6B-Q8_0.gguf",
            "test-models/gemma-3-270m-q4_k_m.gguf",
            "models/SmolLM2-135M-Instruct.Q4_1.gguf",
            "https://example.com/a/b",
            "owner/name/tree/main",
            "SmolLM2-135M-Instruct",
            "../etc/passwd",
            "a b/c",
            "",
        ] {
            assert_eq!(Repo::parse(not), None, "{not}");
        }
    }

    #[test]
    fn sentencepiece_space_prefixes_are_read_from_each_published_form() {
        let replace = json!({ "type": "Replace", "pattern": { "String": " " }, "content": "\u{2581}" });
        let prepend = json!({ "type": "Prepend", "prepend": "\u{2581}" });
        let gemma_split = json!({ "type": "Split", "pattern": { "String": " " }, "behavior": "MergedWithPrevious", "invert": false });
        let metaspace = |scheme: &str| json!({ "type": "Metaspace", "replacement": "\u{2581}", "prepend_scheme": scheme, "split": false });
        let read = |normalizer: &Json, pre: &Json| spm_space_prefix(&json!({ "normalizer": normalizer, "pre_tokenizer": pre }));
        // Llama 2 and TinyLlama; Gemma 3 (transformers' GemmaConverter); the Metaspace form.
        assert!(read(&json!({ "type": "Sequence", "normalizers": [prepend, replace] }), &Json::Null).unwrap());
        assert!(!read(&replace, &gemma_split).unwrap());
        assert!(!read(&replace, &Json::Null).unwrap());
        assert!(read(&Json::Null, &metaspace("first")).unwrap());
        assert!(!read(&Json::Null, &metaspace("never")).unwrap());
        // A split with nothing replaced first, both forms at once, another normalizer: refused.
        for (n, p) in [(Json::Null, gemma_split.clone()), (replace.clone(), metaspace("first")), (json!({ "type": "Lowercase" }), Json::Null)] {
            assert!(matches!(read(&n, &p), Err(Error::Hf(_))), "{n} {p}");
        }
    }

    #[test]
    fn bos_is_added_when_a_post_processor_in_a_sequence_adds_it() {
        let template = json!({ "type": "TemplateProcessing", "single": [{ "SpecialToken": { "id": "<s>", "type_id": 0 } }, { "Sequence": { "id": "A", "type_id": 0 } }] });
        let add_bos = |post: Json| {
            let tj = json!({
                "added_tokens": [{ "id": 3, "content": "<s>", "special": true }],
                "pre_tokenizer": byte_level(true),
                "post_processor": post,
                "model": { "type": "BPE", "vocab": { "a": 0, "b": 1, "ab": 2, "<s>": 3 }, "merges": ["a b"] },
            });
            let files: Files = [(TOKENIZER.to_string(), serde_json::to_vec(&tj).unwrap())].into();
            let g = gguf::write(&tokenizer_metadata(&files, 0, false).unwrap().0, &[], 32);
            crate::tokenizer::Tokenizer::from_gguf(&Gguf::parse(&g).unwrap()).unwrap().add_bos
        };
        // Llama 3's: ByteLevel, then the template.
        assert!(add_bos(json!({ "type": "Sequence", "processors": [byte_level(false), template.clone()] })));
        assert!(add_bos(template));
        assert!(!add_bos(byte_level(false)));
        assert!(!add_bos(Json::Null));
    }
}
