//! What a model file is, read from its GGUF header alone (no weights touched): its name and
//! architecture, its tokenizer and chat template, and the bytes its weights take on the GPU at
//! each precision, so the page can say whether and how it fits before loading it.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::chat::ChatTemplate;
use crate::gguf::Gguf;
use crate::gpu::AdapterSummary;
use crate::model::gpu::Unit;
use crate::model::{Config, Mat};
use crate::plan::{Group, Plan};
use crate::tokenizer::Tokenizer;
use crate::{Error, Precision, Result};

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
    /// Weight bytes on the GPU at each precision (matrices requantized, vectors in f32).
    pub weight_bytes: Vec<(Precision, u64)>,
    /// The largest single weight buffer at each precision (what the adapter's per-buffer limits
    /// must hold; the embedding and output head are split over bindings when one is not enough).
    pub largest_buffer: Vec<(Precision, u64)>,
    /// Weight bytes of each tensor group at each precision (vectors not included).
    pub group_bytes: Vec<(Group, Precision, u64)>,
    /// The largest buffer of each tensor group at each precision (what a mixed plan must fit).
    #[serde(default)]
    pub group_largest: Vec<(Group, Precision, u64)>,
    /// The finest source dtype in each tensor group, and its bits per weight.
    #[serde(default)]
    pub group_dtypes: Vec<(Group, String, f64)>,
    /// The groups and precisions at which every matrix of the group is kept as the file stores
    /// it ([`crate::QuantMatrix::keeps`]): there no quantization method changes a number.
    #[serde(default)]
    pub kept: Vec<(Group, Precision)>,
}

/// The file's tokenizer and its chat template (tried once: see [`ChatTemplate::from_gguf`]).
pub(crate) fn tokenizer_and_template(g: &Gguf) -> Result<(Tokenizer, ChatTemplate)> {
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
    pub(crate) fn from_parts(g: &Gguf, file_bytes: u64, cfg: &Result<Config>, tok: &Result<(Tokenizer, ChatTemplate)>) -> Self {
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
        let WeightSizes { weight_bytes, largest_buffer, group_bytes, group_largest } = cfg.as_ref().map(weight_sizes).unwrap_or_default();
        let group_dtypes = cfg.as_ref().map(|c| group_dtypes(c, g)).unwrap_or_default();
        let kept = cfg.as_ref().map(|c| kept_groups(c, g)).unwrap_or_default();
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
            kept,
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

    /// The file's own precisions when they differ between groups: the page's "As stored" setting
    /// (a file stored at one precision is simply that precision).
    pub fn stored_plan(&self) -> Option<Plan> {
        let own = self.suggested_plan().0;
        own.uniform_precision().is_none().then_some(own)
    }

    /// The one name of a setting on this model, for people ([`Variant::name_in`]): `As stored
    /// (INT4 layers, INT8 embeddings)` for the file's own mixed precisions, and a method only
    /// where it changes something here.
    pub fn name_of(&self, v: &crate::plan::Variant) -> String {
        v.name_in(self.stored_plan(), self.method_matters(&v.plan))
    }

    /// [`ModelInfo::name_of`] for tables and chart axes ([`Variant::short_name_in`]).
    pub fn short_name_of(&self, v: &crate::plan::Variant) -> String {
        v.short_name_in(self.stored_plan(), self.method_matters(&v.plan))
    }

    /// `plan` as its one name names it: without its method where the method changes nothing on
    /// this file (every quantized group kept as stored), so it is the same setting as rounding.
    pub fn canonical(&self, plan: Plan) -> Plan {
        if self.method_matters(&plan) { plan } else { plan.with_method(crate::method::Method::Rtn) }
    }

    /// Whether the quantization method changes any number of `plan` on this file: some group is
    /// requantized (neither FP16 nor kept as stored).
    pub fn method_matters(&self, plan: &Plan) -> bool {
        Group::ALL.iter().any(|&g| {
            let p = plan.get(g);
            p != Precision::Fp16 && !self.kept.contains(&(g, p))
        })
    }

    pub fn weight_bytes_at(&self, p: Precision) -> u64 {
        self.weight_bytes.iter().find(|w| w.0 == p).map_or(0, |w| w.1)
    }

    /// Weight bytes on the GPU at a (mixed) plan, vectors included.
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

/// What a model's weights take on the GPU at each precision ([`weight_sizes`]): the sizes
/// [`ModelInfo`] reports, under the same names.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct WeightSizes {
    /// Weight bytes at each uniform precision: every matrix at that precision, the vectors in f32.
    pub weight_bytes: Vec<(Precision, u64)>,
    /// The largest single weight buffer at each precision (the embedding and the output head not
    /// counted: they are split over bindings when one is not enough).
    pub largest_buffer: Vec<(Precision, u64)>,
    /// Matrix bytes of each tensor group at each precision (vectors not included).
    pub group_bytes: Vec<(Group, Precision, u64)>,
    /// The largest buffer of each tensor group at each precision (what a mixed plan must fit).
    pub group_largest: Vec<(Group, Precision, u64)>,
}

/// Weight bytes per precision from the config's shapes alone (no tensor read), as the GPU backend
/// lays the matrices out.
pub fn weight_sizes(cfg: &Config) -> WeightSizes {
    let mats: Vec<(Mat, Group, (usize, usize))> = cfg.matrices().into_iter().map(|m| (m, Group::of(m), cfg.matrix_shape(m))).collect();
    let shapes: Vec<(Group, (usize, usize))> = mats.iter().map(|&(_, grp, shape)| (grp, shape)).collect();
    // The GPU stacks Q, K, V into one buffer, and gate and up: rows of one unit add up.
    let mut units: Vec<(Unit, (usize, usize))> = vec![];
    for &(m, _, (r, c)) in &mats {
        match units.iter_mut().find(|u| u.0 == Unit::of(m)) {
            Some(u) => u.1 .0 += r,
            None => units.push((Unit::of(m), (r, c))),
        }
    }
    let vectors = cfg.vector_bytes();
    let mut sizes = WeightSizes::default();
    let group_of = |u: Unit| Group::of(u.first());
    for p in Precision::ALL {
        let size = |&(_, (r, c)): &(Group, (usize, usize))| crate::layout::matrix_bytes(r, c, p);
        sizes.weight_bytes.push((p, shapes.iter().map(size).sum::<u64>() + vectors));
        // The embedding and the output head are split over bindings when one is not enough.
        let bound = || units.iter().filter(|u| !matches!(u.0, Unit::Embedding | Unit::Output));
        sizes.largest_buffer.push((p, bound().map(|&(_, (r, c))| crate::layout::matrix_bytes(r, c, p)).max().unwrap_or(0)));
        for grp in Group::ALL {
            sizes.group_bytes.push((grp, p, shapes.iter().filter(|s| s.0 == grp).map(size).sum()));
            let unit_bytes = bound().filter(|u| group_of(u.0) == grp).map(|&(_, (r, c))| crate::layout::matrix_bytes(r, c, p));
            sizes.group_largest.push((grp, p, unit_bytes.max().unwrap_or(0)));
        }
    }
    sizes
}

/// [`ModelInfo::kept`].
fn kept_groups(cfg: &Config, g: &Gguf) -> Vec<(Group, Precision)> {
    let mats = cfg.matrices();
    let mut out = vec![];
    for group in Group::ALL {
        for p in [Precision::Int8, Precision::Int4] {
            let all = mats.iter().filter(|m| Group::of(**m) == group).all(|m| {
                g.tensor(&m.tensor_name(false)).is_ok_and(|t| crate::QuantMatrix::keeps(t.ggml_type, t.matrix_shape().1, p))
            });
            if all {
                out.push((group, p));
            }
        }
    }
    out
}

/// The finest source dtype among each group's matrices (the embedding counts for the embeddings
/// group, tied output head or not), with its bits per weight.
fn group_dtypes(cfg: &Config, g: &Gguf) -> Vec<(Group, String, f64)> {
    let mut out: Vec<(Group, String, f64)> = vec![];
    // The embedding last: where it and the output head are as fine, the head's dtype is named.
    let mut mats = Mat::all(cfg.n_layers);
    mats.rotate_left(1);
    for (group, name) in mats.into_iter().map(|m| (Group::of(m), m.tensor_name(cfg.tied_output))) {
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
