//! A loaded model ready to chat: the GGUF bytes, tokenizer, chat template and GPU backend, plus
//! the tokens whose keys and values are in the KV cache, so a multi-turn conversation only
//! prefills what is new. This is what the page's worker holds; the CLI uses the same pieces.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::chat::{ChatTemplate, Message};
use crate::gguf::Gguf;
use crate::gpu::{AdapterSummary, Gpu};
use crate::model::gpu::{GpuBackend, Requantizer, Unit};
use crate::model::{self, Backend, Config, Generation, Mat, Prefill, Step};
use crate::plan::{Group, Plan};
use crate::sampler::{Sampler, SamplerConfig};
use crate::tokenizer::Tokenizer;
use crate::{Error, Precision, Result};

/// A reply reads its prompt in slices of about this long, so Stop answers within about this
/// much (plus the first slice, [`model::FIRST_SLICE`] tokens) even on a software GPU.
pub const PREFILL_SLICE_MS: f64 = 250.0;

/// What a model file is, read from its GGUF header alone (no weights touched).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ModelInfo {
    pub name: Option<String>,
    /// `general.basename`, `general.size_label` and `general.finetune` (for [`ModelInfo::title`]).
    #[serde(default)]
    pub basename: Option<String>,
    #[serde(default)]
    pub size_label: Option<String>,
    #[serde(default)]
    pub finetune: Option<String>,
    pub architecture: Option<String>,
    pub n_params: u64,
    pub n_tensors: usize,
    pub file_bytes: u64,
    pub gguf_version: u32,
    /// Tensor count per source dtype (`Q4_1`, `Q8_0`, `F32`, …).
    pub source_dtypes: BTreeMap<String, usize>,
    /// The dtype most weight matrices are stored in, and its bits per weight (scales included):
    /// a precision finer than this cannot add back what the file's own quantization lost.
    pub matrix_dtype: Option<(String, f64)>,
    pub chat_template: bool,
    /// Why the file's chat template is not used (it failed a trial render: ChatML instead).
    #[serde(default)]
    pub chat_template_fallback: Option<String>,
    /// The file's template refuses a system message: the system prompt opens the first user
    /// message instead (see [`ChatTemplate::fold_system`](crate::chat::ChatTemplate)).
    #[serde(default)]
    pub chat_template_folds_system: bool,
    /// The built-in format used instead of the file's template ("ChatML", "Gemma").
    #[serde(default)]
    pub chat_template_builtin: String,
    pub tokenizer: Option<String>,
    pub pre_tokenizer: Option<String>,
    pub n_vocab: Option<usize>,
    pub n_layers: Option<usize>,
    pub context_length: Option<usize>,
    pub config: Option<Config>,
    /// lowbit can run it (else `unsupported_reason` says why).
    pub supported: bool,
    pub unsupported_reason: Option<String>,
    /// Weight bytes on the GPU at each precision (matrices requantized, norms f32).
    pub weight_bytes: Vec<(Precision, u64)>,
    /// The largest single weight buffer at each precision (what the adapter's per-buffer limits
    /// must hold; the embedding and output head are split over bindings when one is not enough).
    pub largest_buffer: Vec<(Precision, u64)>,
    /// Weight bytes of each tensor group at each precision (norms not included).
    pub group_bytes: Vec<(Group, Precision, u64)>,
    /// The largest buffer of each tensor group at each precision (what a mixed plan must fit).
    #[serde(default)]
    pub group_largest: Vec<(Group, Precision, u64)>,
    /// The finest source dtype in each tensor group, and its bits per weight.
    #[serde(default)]
    pub group_dtypes: Vec<(Group, String, f64)>,
}

/// The file's tokenizer and its chat template (tried once: see [`ChatTemplate::from_gguf`]).
fn tokenizer_and_template(g: &Gguf) -> Result<(Tokenizer, ChatTemplate)> {
    let tok = Tokenizer::from_gguf(g)?;
    let template = ChatTemplate::from_gguf(g, &tok);
    Ok((tok, template))
}

impl ModelInfo {
    /// A title for people: the file's own name when it names the model (`SmolLM2-135M-Instruct.Q4_1.gguf`
    /// → "SmolLM2 135M Instruct", the quantization left to the precision shown beside it), else
    /// `general.basename` and `general.size_label` (and a one-word `general.finetune` such as
    /// "Instruct"), else `general.name` or the file name. `general.name` is often a training run's
    /// label ("Smollm2 135M 8k Lc100K Mix1 Ep2"): the page shows it on hover.
    pub fn title(&self, file_name: &str) -> String {
        let stem = strip_quant_suffix(file_name.trim_end_matches(".gguf").trim_end_matches(".GGUF"));
        let words = |s: &str| s.split(['-', '_', ' ']).filter(|w| !w.is_empty()).collect::<Vec<_>>().join(" ");
        let base = self.basename.as_deref().map(str::trim).filter(|b| !b.is_empty());
        if let Some(b) = base {
            // A file name in lower case only ("qwen2.5-0.5b-instruct-q4_k_m") reads worse than the metadata.
            let cased = stem.chars().any(|c| c.is_uppercase());
            if cased && stem.to_lowercase().replace(['-', '_', ' '], "").contains(&b.to_lowercase().replace(['-', '_', ' '], "")) {
                return words(stem);
            }
            let mut title = capitalize(b);
            if let Some(size) = self.size_label.as_deref().filter(|s| !s.is_empty()) {
                title = format!("{title} {size}");
            }
            if let Some(f) = self.finetune.as_deref().filter(|f| f.chars().all(|c| c.is_ascii_alphabetic()) && !f.is_empty()) {
                title = format!("{title} {}", capitalize(f));
            }
            return title;
        }
        self.name.clone().filter(|n| !n.trim().is_empty()).unwrap_or_else(|| words(stem))
    }

    pub fn from_gguf(g: &Gguf, file_bytes: u64) -> Self {
        Self::from_parts(g, file_bytes, &Config::from_gguf(g), &tokenizer_and_template(g))
    }

    /// The info of a file whose config, tokenizer and chat template were already built (or
    /// failed to build).
    fn from_parts(g: &Gguf, file_bytes: u64, cfg: &Result<Config>, tok: &Result<(Tokenizer, ChatTemplate)>) -> Self {
        let mut source_dtypes = BTreeMap::new();
        let mut n_params = 0u64;
        for t in &g.tensors {
            *source_dtypes.entry(t.ggml_type.name().to_string()).or_default() += 1;
            n_params += t.n_elements();
        }
        let mut matrices: BTreeMap<&str, (usize, f64)> = BTreeMap::new();
        for t in g.tensors.iter().filter(|t| t.dims.len() == 2) {
            let (weights, bytes) = t.ggml_type.block();
            matrices.entry(t.ggml_type.name()).or_insert((0, bytes as f64 * 8.0 / weights as f64)).0 += 1;
        }
        let matrix_dtype = matrices.iter().max_by_key(|(_, (n, _))| *n).map(|(name, (_, bits))| (name.to_string(), *bits));
        let (weight_bytes, largest_buffer, group_bytes, group_largest) = match cfg {
            Ok(c) => weight_sizes(c),
            Err(_) => (vec![], vec![], vec![], vec![]),
        };
        let group_dtypes = cfg.as_ref().map(|c| group_dtypes(c, g)).unwrap_or_default();
        ModelInfo {
            name: g.get_str("general.name").map(str::to_string),
            basename: g.get_str("general.basename").map(str::to_string),
            size_label: g.get_str("general.size_label").map(str::to_string),
            finetune: g.get_str("general.finetune").map(str::to_string),
            architecture: g.get_str("general.architecture").map(str::to_string),
            n_params,
            n_tensors: g.tensors.len(),
            file_bytes,
            gguf_version: g.version,
            source_dtypes,
            matrix_dtype,
            chat_template: g.get_str("tokenizer.chat_template").is_some(),
            chat_template_fallback: tok.as_ref().ok().and_then(|(_, t)| t.fallback.clone()),
            chat_template_folds_system: tok.as_ref().is_ok_and(|(_, t)| t.fold_system),
            chat_template_builtin: tok.as_ref().map_or_else(|_| String::new(), |(_, t)| t.builtin.to_string()),
            tokenizer: g.get_str("tokenizer.ggml.model").map(str::to_string),
            pre_tokenizer: g.get_str("tokenizer.ggml.pre").map(str::to_string),
            n_vocab: tok.as_ref().ok().map(|(t, _)| t.vocab_size()),
            n_layers: cfg.as_ref().ok().map(|c| c.n_layers),
            context_length: cfg.as_ref().ok().map(|c| c.context_length),
            supported: cfg.is_ok() && tok.is_ok(),
            unsupported_reason: match (cfg, tok) {
                (Err(e), _) | (Ok(_), Err(e)) => Some(e.to_string()),
                _ => None,
            },
            config: cfg.as_ref().ok().cloned(),
            weight_bytes,
            largest_buffer,
            group_bytes,
            group_largest,
            group_dtypes,
        }
    }

    /// The plan to load this file at when the user has not chosen one, and why: each tensor
    /// group at the smallest precision that holds what the file stores it in (Q4_0/Q4_1 at INT4,
    /// Q8_0 or 5-6 bit types at INT8, 16-bit and finer at FP16). A precision below the file's
    /// would lose more; one above it costs memory and speed for nothing.
    pub fn suggested_plan(&self) -> (Plan, String) {
        let at = |bits: f64| match bits {
            b if b <= 5.0 => Precision::Int4,
            b if b <= 8.5 => Precision::Int8,
            _ => Precision::Fp16,
        };
        let mut plan = Plan::uniform(Precision::Fp16);
        let mut parts = vec![];
        for (group, dtype, bits) in &self.group_dtypes {
            let p = at(*bits);
            plan = plan.with(*group, p);
            parts.push(format!("{} {dtype} → {}", group.label().to_lowercase(), p.name().to_uppercase()));
        }
        let why = match plan.uniform_precision() {
            Some(p) => format!(
                "{}, the precision this file stores its weights at ({})",
                p.name().to_uppercase(),
                self.group_dtypes.first().map_or("", |g| g.1.as_str())
            ),
            None => format!(
                "the precisions this file stores each group at ({}): a lower one would lose more, a higher one costs memory and speed for nothing",
                parts.join(", ")
            ),
        };
        (plan, why)
    }

    pub fn weight_bytes_at(&self, p: Precision) -> u64 {
        self.weight_bytes.iter().find(|w| w.0 == p).map_or(0, |w| w.1)
    }

    /// Weight bytes on the GPU at a (mixed) plan, norms included.
    pub fn weight_bytes_of(&self, plan: &Plan) -> u64 {
        let groups: u64 =
            self.group_bytes.iter().filter(|(g, p, _)| plan.get(*g) == *p).map(|(_, _, b)| b).sum();
        groups + self.config.as_ref().map_or(0, Config::vector_bytes)
    }

    /// An error when a group of `plan` has, at the precision the plan gives it, a buffer larger
    /// than the adapter allows.
    pub fn check_fit(&self, adapter: &AdapterSummary, plan: &Plan) -> Result<()> {
        let limit = adapter.binding_limit();
        match self.group_largest.iter().find(|&&(g, p, bytes)| plan.get(g) == p && bytes > limit) {
            Some(&(g, p, needed)) => Err(Error::TooLarge { what: format!("{} weights at {p}", g.label().to_lowercase()), needed, limit }),
            None => Ok(()),
        }
    }

    /// Whether every buffer fits the adapter's limits at each precision, in plain words.
    pub fn fit(&self, adapter: &AdapterSummary) -> Vec<Fit> {
        fit_of(&self.largest_buffer, adapter)
    }
}

/// [`ModelInfo::fit`] from the largest buffer at each precision.
pub fn fit_of(largest_buffer: &[(Precision, u64)], adapter: &AdapterSummary) -> Vec<Fit> {
    let limit = adapter.binding_limit();
    let mb = |b: u64| b as f64 / 1e6;
    largest_buffer
        .iter()
        .map(|&(precision, largest)| {
            let fits = largest <= limit;
            let message = if fits {
                format!("fits: largest buffer {:.1} MB of the {:.0} MB this GPU allows", mb(largest), mb(limit))
            } else {
                format!("too large: one weight matrix needs {:.1} MB but this GPU allows at most {:.0} MB per buffer", mb(largest), mb(limit))
            };
            Fit { precision, fits, largest_buffer: largest, limit, message }
        })
        .collect()
}

/// The fit check of one precision against the adapter's buffer limits.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Fit {
    pub precision: Precision,
    pub fits: bool,
    pub largest_buffer: u64,
    pub limit: u64,
    pub message: String,
}

/// Weight bytes per precision from the config's shapes alone: `(total, largest buffer, per group,
/// largest buffer per group)`.
#[allow(clippy::type_complexity)]
pub fn weight_sizes(cfg: &Config) -> (Vec<(Precision, u64)>, Vec<(Precision, u64)>, Vec<(Group, Precision, u64)>, Vec<(Group, Precision, u64)>) {
    let mats: Vec<(Option<Mat>, Group, (usize, usize))> = Mat::all(cfg.n_layers)
        .into_iter()
        .filter(|&m| !(m == Mat::Output && cfg.tied_output))
        .map(|m| (Some(m), Group::of(m)))
        .chain([(None, Group::Embeddings)])
        .map(|(m, grp)| (m, grp, cfg.matrix_shape(m)))
        .collect();
    let shapes: Vec<(Group, (usize, usize))> = mats.iter().map(|&(_, grp, shape)| (grp, shape)).collect();
    // The GPU stacks Q, K, V into one buffer, and gate and up: rows of one unit add up.
    let mut units: Vec<(Unit, (usize, usize))> = vec![];
    for &(m, _, (r, c)) in &mats {
        match units.iter_mut().find(|u| u.0 == Unit::of(m)) {
            Some(u) => u.1 .0 += r,
            None => units.push((Unit::of(m), (r, c))),
        }
    }
    let norms = cfg.vector_bytes();
    let (mut total, mut largest, mut groups, mut group_largest) = (vec![], vec![], vec![], vec![]);
    let group_of = |u: Unit| u.first().map_or(Group::Embeddings, Group::of);
    for p in Precision::ALL {
        let size = |&(_, (r, c)): &(Group, (usize, usize))| crate::quant::matrix_bytes(r, c, p);
        total.push((p, shapes.iter().map(size).sum::<u64>() + norms));
        // The embedding and the output head are split over bindings when one is not enough.
        let bound = || units.iter().filter(|u| !matches!(u.0, Unit::Embedding | Unit::Output));
        largest.push((p, bound().map(|&(_, (r, c))| crate::quant::matrix_bytes(r, c, p)).max().unwrap_or(0)));
        for grp in Group::ALL {
            groups.push((grp, p, shapes.iter().filter(|s| s.0 == grp).map(size).sum()));
            let unit_bytes = bound().filter(|u| group_of(u.0) == grp).map(|&(_, (r, c))| crate::quant::matrix_bytes(r, c, p));
            group_largest.push((grp, p, unit_bytes.max().unwrap_or(0)));
        }
    }
    (total, largest, groups, group_largest)
}

/// The finest source dtype among each group's matrices (the embedding counts for the embeddings
/// group, tied output head or not), with its bits per weight.
fn group_dtypes(cfg: &Config, g: &Gguf) -> Vec<(Group, String, f64)> {
    let mut out: Vec<(Group, String, f64)> = vec![];
    let names = Mat::all(cfg.n_layers).into_iter().map(|m| (Group::of(m), m.tensor_name(cfg.tied_output)));
    for (group, name) in names.chain([(Group::Embeddings, "token_embd.weight".to_string())]) {
        let Ok(t) = g.tensor(&name) else { continue };
        let (weights, bytes) = t.ggml_type.block();
        let bits = bytes as f64 * 8.0 / weights as f64;
        match out.iter_mut().find(|o| o.0 == group) {
            Some(o) if o.2 >= bits => {}
            Some(o) => *o = (group, t.ggml_type.name().to_string(), bits),
            None => out.push((group, t.ggml_type.name().to_string(), bits)),
        }
    }
    out
}

/// Statistics of one reply.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ReplyStats {
    pub plan: Option<Plan>,
    pub prompt_tokens: usize,
    /// Prompt tokens whose keys and values were already in the cache (not prefilled again).
    pub reused_tokens: usize,
    pub prefill_tokens: usize,
    pub generated_tokens: usize,
    pub prefill_tokens_per_second: f64,
    pub decode_tokens_per_second: f64,
    pub time_to_first_token_ms: f64,
    /// Tokens in the KV cache after the reply, and its room.
    pub context_used: usize,
    pub context_size: usize,
    /// Ended at an end-of-turn or end-of-text token (false: max tokens or stopped).
    pub end_of_turn: bool,
    /// The oldest messages after the system prompt that the model did not read: the
    /// conversation outgrew the context ([`Session::fit_context`]).
    #[serde(default)]
    pub dropped_messages: usize,
}

/// A stage of loading a model (see [`Loader`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Stage {
    Download,
    Parse,
    Requantize,
    Upload,
    Compile,
}

impl Stage {
    pub const ALL: [Stage; 5] = [Stage::Download, Stage::Parse, Stage::Requantize, Stage::Upload, Stage::Compile];
    pub fn label(self) -> &'static str {
        match self {
            Stage::Download => "download",
            Stage::Parse => "parse",
            Stage::Requantize => "requantize",
            Stage::Upload => "GPU upload",
            Stage::Compile => "shader compile",
        }
    }
}

/// Progress of one stage: `done` of `total` units (bytes, or kernels for `Compile`).
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Progress {
    pub stage: Stage,
    pub done: u64,
    pub total: u64,
}

/// A model loaded on the GPU, with its conversation state.
pub struct Session {
    bytes: Vec<u8>,
    pub cfg: Config,
    pub info: ModelInfo,
    pub tok: Tokenizer,
    template: ChatTemplate,
    backend: GpuBackend,
    /// Tokens whose keys and values are in the KV cache, from position 0.
    cached: Vec<u32>,
}

/// Loads a [`Session`] a step at a time, so the caller can show progress and cancel.
pub struct Loader {
    gpu: Gpu,
    bytes: Vec<u8>,
    cfg: Config,
    tok: Tokenizer,
    template: ChatTemplate,
    info: ModelInfo,
    n_ctx: usize,
    rq: Requantizer,
}

impl Loader {
    /// Parse the file (header, tokenizer, template) and check it fits the adapter at `plan`
    /// (`None`: the file's [`ModelInfo::suggested_plan`]).
    pub fn new(gpu: &Gpu, bytes: Vec<u8>, plan: Option<Plan>, n_ctx: usize) -> Result<Self> {
        let g = Gguf::parse(&bytes)?;
        let (cfg, tok) = (Config::from_gguf(&g), tokenizer_and_template(&g));
        let info = ModelInfo::from_parts(&g, bytes.len() as u64, &cfg, &tok);
        // The vocabulary first, as the CLI reads it: an empty or inconsistent one is the cause
        // of the embedding's shape disagreeing with the metadata, not the other way round.
        let (tok, template) = tok?;
        let cfg = cfg?;
        let plan = plan.unwrap_or_else(|| info.suggested_plan().0);
        info.check_fit(&gpu.info, &plan)?;
        let rq = Requantizer::new(&cfg, &g, plan)?;
        drop(g);
        Ok(Loader { gpu: gpu.clone(), bytes, cfg, tok, template, info, n_ctx, rq })
    }

    /// The model file.
    pub fn bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// The plan the weights are being loaded at.
    pub fn plan(&self) -> Plan {
        self.rq.plan
    }

    pub fn progress(&self) -> [Progress; 2] {
        let rq = &self.rq;
        let upload_total = self.info.weight_bytes_of(&rq.plan);
        [
            Progress { stage: Stage::Requantize, done: rq.source_bytes_done, total: rq.source_bytes_total },
            Progress { stage: Stage::Upload, done: rq.uploaded_bytes, total: upload_total.max(rq.uploaded_bytes) },
        ]
    }

    /// Requantize and upload one tensor; false when all are done.
    pub fn step(&mut self) -> Result<bool> {
        self.rq.step(&self.gpu, &self.bytes)
    }

    /// Build the session (norms, KV cache, tokenizer) once every step is done.
    pub fn finish(self) -> Result<Session> {
        let g = Gguf::parse(&self.bytes)?;
        let weights = self.rq.finish()?;
        let backend = GpuBackend::with_weights(&self.gpu, &g, weights, self.n_ctx)?;
        drop(g);
        Ok(Session { bytes: self.bytes, cfg: self.cfg, info: self.info, tok: self.tok, template: self.template, backend, cached: vec![] })
    }
}

/// Switches a [`Session`]'s weights to another precision a step at a time.
pub struct Switch(Requantizer);

impl Switch {
    pub fn progress(&self) -> Progress {
        Progress { stage: Stage::Requantize, done: self.0.source_bytes_done, total: self.0.source_bytes_total }
    }
}

impl Session {
    /// Load at once (no progress): the CLI and tests.
    pub fn load(gpu: &Gpu, bytes: Vec<u8>, plan: impl Into<Plan>, n_ctx: usize) -> Result<Self> {
        let mut l = Loader::new(gpu, bytes, Some(plan.into()), n_ctx)?;
        while l.step()? {}
        l.finish()
    }

    /// The model file.
    pub fn bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// The weights on the GPU (shared buffers).
    pub fn weights(&self) -> crate::model::gpu::Weights {
        self.backend.weights()
    }

    pub fn gguf(&self) -> Result<Gguf<'_>> {
        Gguf::parse(&self.bytes)
    }

    pub fn plan(&self) -> Plan {
        self.backend.plan
    }

    /// How the KV cache stores keys and values.
    pub fn kv(&self) -> crate::KvPrecision {
        self.backend.kv
    }

    /// Store the KV cache as `kv`. The cache is made anew, so the next reply prefills the whole
    /// conversation again.
    pub fn set_kv(&mut self, kv: crate::KvPrecision) -> Result<()> {
        if kv == self.backend.kv {
            return Ok(());
        }
        self.cached.clear();
        self.backend.set_kv(kv)
    }

    /// The device the model is on.
    /// The model file, giving the session up (to load it again on a new device after a loss).
    pub fn into_bytes(self) -> Vec<u8> {
        self.bytes
    }

    pub fn gpu(&self) -> &Gpu {
        &self.backend.gpu
    }

    pub fn weight_bytes(&self) -> u64 {
        self.backend.weight_bytes()
    }

    pub fn kv_bytes(&self) -> u64 {
        self.backend.kv_bytes()
    }

    pub fn context_size(&self) -> usize {
        self.backend.n_ctx
    }

    /// Tokens whose keys and values are in the cache.
    pub fn context_used(&self) -> usize {
        self.cached.len()
    }

    pub fn kernels(&self) -> Vec<crate::gpu::Kernel> {
        self.backend.kernels()
    }

    /// Start switching to `plan` (step it, then [`Session::finish_switch`]). The KV cache is
    /// kept; matrices whose precision does not change are kept too.
    pub fn begin_switch(&self, plan: Plan) -> Result<Switch> {
        self.info.check_fit(&self.backend.gpu.info, &plan)?;
        Ok(Switch(Requantizer::new(&self.cfg, &self.gguf()?, plan)?.reusing(&self.backend.weights())))
    }

    pub fn step_switch(&self, s: &mut Switch) -> Result<bool> {
        s.0.step(&self.backend.gpu, &self.bytes)
    }

    pub fn finish_switch(&mut self, s: Switch) -> Result<()> {
        let w = s.0.finish()?;
        self.backend.set_weights(w);
        Ok(())
    }

    /// Switch at once.
    pub fn set_precision(&mut self, plan: impl Into<Plan>) -> Result<()> {
        let mut s = self.begin_switch(plan.into())?;
        while self.step_switch(&mut s)? {}
        self.finish_switch(s)
    }

    /// Make the KV cache hold `n_ctx` tokens (at most the model's context length); the
    /// conversation's cached tokens are kept as far as they fit.
    pub fn set_context(&mut self, n_ctx: usize) -> Result<()> {
        let kept = self.backend.set_context(n_ctx, self.cached.len());
        match kept {
            Ok(n) => self.cached.truncate(n),
            // The backend went back to its previous size with the cache restored, unless even
            // that failed (then it has no cache: the error says so, and the session must not
            // be used for a reply).
            Err(Error::TooLarge { .. }) => {}
            Err(_) => self.cached.clear(),
        }
        kept.map(|_| ())
    }

    /// Forget the conversation (the cache is overwritten from position 0 by the next prompt).
    pub fn reset(&mut self) {
        self.cached.clear();
    }

    /// The prompt tokens for `messages` (the model's chat template, assistant turn opened).
    pub fn prompt(&self, messages: &[Message]) -> Result<Vec<u32>> {
        let text = self.template.render(messages, true)?;
        Ok(self.tok.encode_with_bos(&text, true))
    }

    /// The prompt for `messages` with room left for a reply of `max_tokens` (at least a quarter
    /// of the context, or `max_tokens` if less): when the conversation is too long, the oldest
    /// turns after the system prompt are left out, a whole exchange at a time, so what the model
    /// reads still starts with a user message. Returns the prompt and how many messages were left
    /// out; [`Error::ContextFull`] when even the system prompt and the last message do not fit.
    pub fn fit_context(&self, messages: &[Message], max_tokens: usize) -> Result<(Vec<u32>, usize)> {
        let n_ctx = self.backend.n_ctx;
        let room = max_tokens.clamp(1, (n_ctx / 4).max(1));
        let system = usize::from(messages.first().is_some_and(|m| m.role == "system"));
        let mut dropped = 0;
        loop {
            let kept: Vec<Message> = messages[..system].iter().chain(&messages[system + dropped..]).cloned().collect();
            let prompt = self.prompt(&kept)?;
            if prompt.len() + room <= n_ctx {
                return Ok((prompt, dropped));
            }
            // Leave out the oldest message, and any replies after it, up to the next user message.
            let rest = &messages[system + dropped..];
            match rest.iter().skip(1).position(|m| m.role == "user") {
                Some(i) => dropped += i + 1,
                None if prompt.len() < n_ctx => return Ok((prompt, dropped)),
                None => return Err(Error::ContextFull { needed: prompt.len() + 1, size: n_ctx }),
            }
        }
    }

    /// Answer the last message of `messages`, streaming text and the prompt's reading through
    /// `on_step` (return false to stop, while the prompt is read too). Only the tokens that differ
    /// from what the KV cache already holds are prefilled: earlier turns of the same conversation
    /// are not computed again, nor the part of a prompt read before a stop.
    pub async fn reply(
        &mut self,
        messages: &[Message],
        sampling: &SamplerConfig,
        max_tokens: usize,
        on_step: impl FnMut(Step<'_>) -> bool,
    ) -> Result<(Generation, ReplyStats)> {
        let (prompt, dropped) = self.fit_context(messages, max_tokens)?;
        let n_ctx = self.backend.n_ctx;
        let max_tokens = max_tokens.min(n_ctx - prompt.len());
        // Reuse the longest cached prefix, but always prefill at least one token for logits.
        let reused = common_prefix(&self.cached, &prompt).min(prompt.len() - 1);
        self.cached.truncate(reused);
        let mut sampler = Sampler::new(sampling.clone());
        let plan = self.plan();
        let gen = model::generate(
            &self.cfg,
            &mut self.backend,
            &self.tok,
            &prompt[..reused],
            &prompt[reused..],
            max_tokens,
            &mut sampler,
            Prefill::Sliced { slice_ms: PREFILL_SLICE_MS },
            on_step,
        )
        .await;
        let gen = match gen {
            Ok(g) => g,
            Err(e) => {
                // What the cache holds is unknown after a failure: start over next time.
                self.cached.clear();
                return Err(e);
            }
        };
        // The generated tokens that were fed back are in the cache: all of them after an end of
        // turn (the last one produced the logits that chose the end), else all but the last.
        match gen.end_pos.checked_sub(prompt.len()) {
            Some(fed) => {
                self.cached = prompt.clone();
                self.cached.extend(&gen.ids[..fed]);
            }
            // Stopped while reading the prompt: what was read stays for the next reply.
            None => self.cached = prompt[..gen.end_pos].to_vec(),
        }
        let stats = ReplyStats {
            plan: Some(plan),
            prompt_tokens: prompt.len(),
            reused_tokens: reused,
            prefill_tokens: gen.prefill_tokens,
            generated_tokens: gen.ids.len(),
            prefill_tokens_per_second: gen.prefill_tokens_per_second,
            decode_tokens_per_second: gen.decode_tokens_per_second,
            time_to_first_token_ms: gen.time_to_first_token_ms,
            context_used: self.cached.len(),
            context_size: n_ctx,
            end_of_turn: gen.stopped,
            dropped_messages: dropped,
        };
        Ok((gen, stats))
    }
}

impl Session {
    /// Lend the GPU backend and the parsed file to a measurement that requantizes and overwrites
    /// the KV cache. The conversation's part of the cache is copied aside first; the plan, the KV
    /// format and that part are put back afterwards, whatever the measurement did, so the next
    /// reply reads only its own new tokens.
    async fn with_backend<T>(&mut self, f: impl AsyncFnOnce(&mut GpuBackend, &Gguf<'_>) -> Result<T>) -> Result<T> {
        let (was, kv) = (self.plan(), self.kv());
        let snapshot = self.backend.save_kv(self.cached.len());
        let g = Gguf::parse(&self.bytes)?;
        let r = f(&mut self.backend, &g).await;
        let restored = self.backend.set_precision(&g, was).and_then(|_| self.backend.set_kv(kv));
        match (&restored, &snapshot) {
            (Ok(()), Ok(s)) if r.is_ok() => {
                if self.backend.restore_kv(s).is_err() {
                    self.cached.clear();
                }
            }
            // After a failure, what the cache holds is unknown: the next reply starts over.
            _ => self.cached.clear(),
        }
        let r = r?;
        restored?;
        Ok(r)
    }

    /// Perplexity, KL vs FP16 and top-1 agreement of each precision on `text` (cut to
    /// `max_tokens` and to the context). Runs in the KV cache; the conversation's part of it, the
    /// precision and the KV format are restored afterwards.
    pub async fn quality(
        &mut self,
        text: &str,
        max_tokens: usize,
        plans: &[crate::plan::Variant],
        on_plan: impl FnMut(crate::plan::Variant),
    ) -> Result<(usize, Vec<crate::quality::Quality>)> {
        let mut toks = self.tok.encode_with_bos(text, false);
        toks.truncate(max_tokens.min(self.backend.n_ctx));
        if toks.len() < 2 {
            return Err(Error::Usage("the text needs at least 2 tokens".into()));
        }
        let n = toks.len();
        let rows = self.with_backend(async |b, g| crate::quality::compare_on(b, g, &toks, n, plans, on_plan).await).await?;
        Ok((toks.len(), rows))
    }
}

impl Session {
    /// Time one decode step at the current plan (after the conversation, which it keeps): its
    /// wall time, every kernel's GPU time, and the copy bandwidth to compare its bytes with.
    pub async fn profile_decode(&mut self) -> Result<crate::bench::DecodeProfile> {
        let n_ctx = self.backend.n_ctx;
        // The step writes the cache slot after the conversation, which holds nothing yet.
        let pos = self.cached.len().min(n_ctx - 1);
        self.cached.truncate(pos);
        let token = self.cached.last().copied().unwrap_or(0);
        let cfg = self.cfg.clone();
        let mut wall = vec![];
        for _ in 0..3 {
            let t0 = crate::util::now_ms();
            let l = model::forward(&cfg, &mut self.backend, &[token], pos, false)?;
            self.backend.read(&l).await?;
            wall.push(crate::util::now_ms() - t0);
        }
        let t0 = crate::util::now_ms();
        let passes = self.backend.profile_step(token, pos).await?;
        let timed_wall_ms = passes.as_ref().map(|_| crate::util::now_ms() - t0);
        let kernels = passes.as_deref().map(crate::bench::by_kernel).unwrap_or_default();
        let bytes_per_token = self.backend.bytes_per_token(pos);
        let (copy_gbps, _) = crate::bench::copy_bandwidth(&self.backend.gpu, 32 << 20, 10).await?;
        Ok(crate::bench::DecodeProfile {
            plan: self.plan(),
            kv: self.kv(),
            position: pos,
            gpu_ms: passes.map(|p| p.iter().map(|x| x.1).sum()),
            kernels,
            wall_ms: crate::util::median(&wall),
            timed_wall_ms,
            bytes_per_token,
            copy_gbps,
        })
    }
}

impl Session {
    /// The model benchmark ([`crate::bench::model_on`]) on the loaded model: prefill
    /// `prompt_tokens` and decode `decode_tokens` greedily at each precision. Uses the KV cache
    /// like [`Session::quality`] and restores it (the conversation's part), the precision and the
    /// KV format afterwards.
    pub async fn bench(&mut self, name: &str, precisions: &[crate::Precision], prompt_tokens: usize, decode_tokens: usize) -> Result<crate::bench::ModelBench> {
        let prompt = crate::bench::bench_prompt(Some(&self.tok), self.cfg.vocab, prompt_tokens);
        self.with_backend(async |b, g| crate::bench::model_on(b, g, name, precisions, prompt, decode_tokens).await).await
    }
}

impl Session {
    /// Each layer's output error at `variants` vs FP16 on `text` (cut to `max_tokens`). Uses the
    /// KV cache like [`Session::quality`] and restores it (the conversation's part), the precision and
    /// the KV format afterwards.
    pub async fn layer_errors(
        &mut self,
        text: &str,
        max_tokens: usize,
        variants: &[crate::plan::Variant],
        on_variant: impl FnMut(crate::plan::Variant),
    ) -> Result<crate::inspect::LayerErrors> {
        let mut toks = self.tok.encode_with_bos(text, false);
        toks.truncate(max_tokens.min(self.backend.n_ctx));
        if toks.is_empty() {
            return Err(Error::Usage("the text is empty".into()));
        }
        self.with_backend(async |b, g| crate::inspect::layer_errors(b, g, &toks, variants, on_variant).await).await
    }
}

fn common_prefix(a: &[u32], b: &[u32]) -> usize {
    a.iter().zip(b).take_while(|(x, y)| x == y).count()
}

/// `name` without a trailing quantization label (`.Q4_K_M`, `-q8_0`, `.f16`, `-BF16`, `.IQ4_NL`).
fn strip_quant_suffix(name: &str) -> &str {
    let is_quant = |s: &str| {
        let l = s.to_ascii_lowercase();
        ["f16", "f32", "bf16", "fp16", "fp32"].contains(&l.as_str())
            || ((l.starts_with('q') || l.starts_with("iq")) && l.chars().nth(if l.starts_with("iq") { 2 } else { 1 }).is_some_and(|c| c.is_ascii_digit()))
    };
    match name.rfind(['.', '-']) {
        Some(i) if is_quant(&name[i + 1..]) => &name[..i],
        _ => name,
    }
}

fn capitalize(s: &str) -> String {
    let mut c = s.chars();
    c.next().map(|f| f.to_uppercase().chain(c).collect()).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info(name: Option<&str>, basename: Option<&str>, size: Option<&str>, finetune: Option<&str>) -> ModelInfo {
        let bytes = crate::synth::bare(&crate::synth::Shape::TINY, 64, 1).unwrap();
        let g = Gguf::parse(&bytes).unwrap();
        let mut i = ModelInfo::from_gguf(&g, 0);
        i.name = name.map(str::to_string);
        i.basename = basename.map(str::to_string);
        i.size_label = size.map(str::to_string);
        i.finetune = finetune.map(str::to_string);
        i
    }

    #[test]
    fn titles_read_like_the_model_not_like_its_training_run() {
        let smol = info(Some("Smollm2 135M 8k Lc100K Mix1 Ep2"), Some("smollm2"), Some("135M"), Some("8k-lc100k-mix1-ep2"));
        assert_eq!(smol.title("SmolLM2-135M-Instruct.Q4_1.gguf"), "SmolLM2 135M Instruct");
        // A renamed file falls back to the metadata; a multi-word finetune label is left out.
        assert_eq!(smol.title("model.gguf"), "Smollm2 135M");
        let qwen = info(Some("Qwen2.5 0.5B Instruct"), Some("Qwen2.5"), Some("0.5B"), Some("Instruct"));
        assert_eq!(qwen.title("qwen2.5-0.5b-instruct-q4_k_m.gguf"), "Qwen2.5 0.5B Instruct");
        assert_eq!(qwen.title("Qwen2.5-0.5B-Instruct-IQ4_NL.gguf"), "Qwen2.5 0.5B Instruct");
        assert_eq!(info(Some("lowbit synthetic 2x96"), None, None, None).title("lowbit-tiny.gguf"), "lowbit synthetic 2x96");
        assert_eq!(info(None, None, None, None).title("Llama-3.2-1B-Instruct-f16.gguf"), "Llama 3.2 1B Instruct");
    }
}
