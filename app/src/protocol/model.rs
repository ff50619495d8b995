//! The model feature's jobs and events: loading a file (by URL, from a picked file or from the
//! model cache), switching its precisions, its KV cache's format and size, and the cache itself.
//! Also what the page says about a download that cannot happen.

use lowbit::plan::Plan;
use lowbit::info::{Fit, ModelInfo};
use lowbit::session::Progress;
use lowbit::{Activations, KvPrecision};
use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, Serialize, Deserialize)]
pub enum ModelJob {
    /// Load a model from a URL: from the model cache when it holds the URL, else downloaded
    /// (and then cached).
    /// `plan: None` loads at the plan the file suggests (`ModelInfo::suggested_plan`).
    LoadUrl { url: String, name: String, plan: Option<Plan>, n_ctx: usize },
    /// Load a Hugging Face checkpoint (`config.json`, `tokenizer.json`, … and its safetensors,
    /// as `lowbit::hf` reads them) whose files are at `base` + their names (a repository's
    /// `…/resolve/REVISION/`): each from the model cache when it holds it, else downloaded and
    /// cached; converted to GGUF in the worker, its matrices as stored (BF16 mostly).
    LoadCheckpoint { base: String, name: String, plan: Option<Plan>, n_ctx: usize },
    /// Load the Hugging Face checkpoint whose files are sent beside this message (picked or
    /// dropped: its config.json, tokenizer files and safetensors), converted in the worker; the
    /// converted GGUF is cached as a file the user opened, under `name`.
    LoadCheckpointFiles { name: String, plan: Option<Plan>, n_ctx: usize },
    /// Load the `File` sent beside this message (file picker or drag and drop); it is cached too.
    LoadFile { name: String, plan: Option<Plan>, n_ctx: usize },
    /// Load a model from the cache by its key.
    LoadCached { key: String, plan: Option<Plan>, n_ctx: usize },
    /// Requantize the loaded model to another plan of precisions (uniform or mixed per tensor
    /// group), keeping the conversation.
    SetPrecision { plan: Plan },
    /// Store the KV cache as f32, f16 or INT8 (the conversation is prefilled again next turn).
    SetKv { kv: KvPrecision },
    /// Multiply 8-bit activations (INT8 and INT4 matrices) or f32 ones, keeping the conversation.
    SetActivations { act: Activations },
    /// Make the KV cache hold `n_ctx` tokens (the conversation's cached tokens are kept as far as
    /// they fit).
    SetContext { n_ctx: usize },
    /// Write the loaded model at its current plan as a GGUF file (`lowbit::export`).
    Export,
}

/// A model the worker has loaded, as `Loaded` reports it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LoadedModel {
    pub name: String,
    pub info: ModelInfo,
    pub fit: Vec<Fit>,
    pub plan: Plan,
    /// Why the file chose `plan` (when the request left the choice to it).
    pub plan_reason: Option<String>,
    pub weight_bytes: u64,
    pub kv_bytes: u64,
    pub context_size: usize,
    pub from_cache: bool,
    pub load_ms: f64,
    /// The calibration the load made (its plan's method needed one).
    #[serde(default)]
    pub calibration: Option<Calibrated>,
}

/// A calibration the worker ran: tokens of calibration text through the model, and how long.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Calibrated {
    pub tokens: usize,
    pub seconds: f64,
}

impl From<&lowbit::method::Calibration> for Calibrated {
    fn from(c: &lowbit::method::Calibration) -> Self {
        Calibrated { tokens: c.tokens, seconds: c.seconds }
    }
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub enum ModelEvent {
    /// A load or switch stage advanced (`name`: the model being loaded; empty for a switch).
    Progress { name: String, progress: Progress },
    Loaded(Box<LoadedModel>),
    /// The KV cache format changed (`kv_bytes`: the whole cache).
    KvSwitched { kv: KvPrecision, kv_bytes: u64 },
    /// The activations' format changed.
    ActivationsSwitched { act: Activations },
    /// The KV cache holds `context_size` tokens now (`kv_bytes`: the whole cache), of which
    /// `context_used` are the conversation's.
    ContextSet { context_size: usize, kv_bytes: u64, context_used: usize },
    /// The precision switch is done (`calibration`: the model's, if one was made so far).
    Switched { plan: Plan, weight_bytes: u64, ms: f64, calibration: Option<Calibrated> },
    /// The export has written `done` of `total` tensors.
    ExportProgress { done: usize, total: usize },
    /// The export is ready to save: a `blob:` URL the worker made (valid until the next export),
    /// the file name to offer, its size.
    Exported { url: String, name: String, bytes: u64 },
    /// The model cache's entries (answering `ListCache` and `DeleteCache`: about no job).
    Cache { entries: Vec<CachedModel> },
}

impl ModelEvent {
    pub fn ends_job(&self) -> bool {
        match self {
            ModelEvent::Loaded(_) | ModelEvent::KvSwitched { .. } | ModelEvent::ActivationsSwitched { .. } | ModelEvent::ContextSet { .. } | ModelEvent::Switched { .. } | ModelEvent::Exported { .. } => true,
            ModelEvent::Progress { .. } | ModelEvent::ExportProgress { .. } | ModelEvent::Cache { .. } => false,
        }
    }
}

/// Cache key path prefix for files the user opened (the Cache API keys are URLs).
pub const LOCAL_FILE_KEY: &str = "/lowbit-local-file/";

/// The model cache's record of a checkpoint whose files it holds (beside them, at their base
/// URL + this name): the model's name and its files, written once they converted. A cache entry
/// whose key ends in `/` is such a checkpoint.
pub const CHECKPOINT_MANIFEST: &str = "lowbit-checkpoint.json";

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CheckpointManifest {
    pub name: String,
    pub files: Vec<String>,
}

/// One cached model file, or one checkpoint (its key ends in `/`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CachedModel {
    pub key: String,
    pub name: String,
    pub bytes: u64,
}

/// The hosts a model may be downloaded from besides the page's own origin (a leading `*.` covers
/// subdomains). The page's Content-Security-Policy (`connect-src` in www/_headers and Trunk.toml)
/// allows these and nothing else, so nothing typed into the page can be sent anywhere else; a
/// test checks the two lists agree.
pub const DOWNLOAD_HOSTS: [&str; 4] = ["huggingface.co", "*.hf.co", "cdn-lfs.huggingface.co", "cdn-lfs-us-1.huggingface.co"];

/// Whether `host` is one of [`DOWNLOAD_HOSTS`].
pub fn download_allowed(host: &str) -> bool {
    let host = host.to_ascii_lowercase();
    DOWNLOAD_HOSTS.iter().any(|h| match h.strip_prefix("*.") {
        Some(domain) => host.strip_suffix(domain).is_some_and(|sub| sub.ends_with('.') && sub.len() > 1),
        None => host == *h,
    })
}

/// What an HTTP error status means for a model download, and what to do.
pub fn http_status_message(url: &str, status: u16, text: &str) -> String {
    let what = match status {
        401 | 403 => "the file needs a signed-in account (on Hugging Face: a gated model whose licence must be accepted first). \
                      Download it in your browser where you are signed in, then open it with “Open a .gguf file…”",
        404 | 410 => "there is no file at this address: check the repository and file name (on Hugging Face, copy the link \
                      of the file's download button)",
        429 => "the server is limiting requests: wait a minute and try again",
        500..=599 => "the server had a problem: try again later",
        _ => "the server would not send the file",
    };
    format!("{url} answered HTTP {status}{}{}: {what}.", if text.is_empty() { "" } else { " " }, text)
}

/// The largest model file the page loads. The engine worker is a 32-bit WebAssembly program: its
/// memory ends at 4 GiB, and it holds the file (to switch precisions from the original weights)
/// beside the work of requantizing one tensor at a time. Past half of that a load would run out
/// of memory part way, so such a file is refused before it is read.
pub const MAX_FILE_BYTES: u64 = 2 << 30;

/// What the page says when a file is larger than [`MAX_FILE_BYTES`].
pub fn file_too_large_message(name: &str, bytes: u64) -> String {
    format!(
        "{name} is {:.2} GB; the page's engine holds the model file in its memory, which ends at 4 GiB, so it loads \
         files up to {:.2} GB. Choose a smaller quantization of the model (Q4_K_M or Q8_0 instead of F16), or run \
         the file with the lowbit command-line tool, which has no such limit.",
        bytes as f64 / 1e9,
        MAX_FILE_BYTES as f64 / 1e9
    )
}

/// What the page says when a model URL is on another host.
pub fn blocked_host_message(host: &str) -> String {
    format!(
        "{host} is not a host this page may download from. To keep everything you do here on your device, the page's \
         security policy lets it fetch only from its own site and from Hugging Face ({}). Download the file from {host} \
         yourself and open it with “Open a .gguf file…” (or drop it on the model panel).",
        DOWNLOAD_HOSTS.join(", ")
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn http_errors_say_what_to_do() {
        let m = http_status_message("https://huggingface.co/x/y.gguf", 403, "Forbidden");
        assert!(m.starts_with("https://huggingface.co/x/y.gguf answered HTTP 403 Forbidden: ") && m.contains("gated model"), "{m}");
        assert!(http_status_message("u", 404, "").contains("HTTP 404: there is no file"));
        assert!(http_status_message("u", 503, "").contains("try again later"));
    }

    #[test]
    fn download_hosts_are_exactly_what_the_shipped_csp_allows() {
        let headers = include_str!("../../../www/_headers");
        let csp = headers.lines().find_map(|l| l.trim().strip_prefix("Content-Security-Policy:")).expect("a CSP line");
        let connect = csp.split(';').map(str::trim).find_map(|d| d.strip_prefix("connect-src ")).expect("connect-src");
        let mut sources: Vec<&str> = connect.split_whitespace().collect();
        assert_eq!(sources.remove(0), "'self'");
        let hosts: Vec<&str> = sources.iter().map(|s| s.strip_prefix("https://").expect("https only")).collect();
        assert_eq!(hosts, DOWNLOAD_HOSTS);
        // No directive may open a way out that connect-src closes.
        for d in ["object-src 'none'", "base-uri 'none'", "form-action 'none'", "frame-ancestors 'none'", "default-src 'self'"] {
            assert!(csp.split(';').any(|x| x.trim() == d), "{d} missing from {csp}");
        }
    }

    #[test]
    fn a_file_too_large_says_its_size_and_what_to_do() {
        let m = file_too_large_message("big.gguf", 3_400_000_000);
        assert!(m.starts_with("big.gguf is 3.40 GB;") && m.contains("up to 2.15 GB") && m.contains("Q4_K_M"), "{m}");
    }

    #[test]
    fn download_hosts_match_by_name_and_subdomain_only() {
        for ok in ["huggingface.co", "HuggingFace.co", "cas-bridge.xethub.hf.co", "cdn-lfs.huggingface.co"] {
            assert!(download_allowed(ok), "{ok}");
        }
        for no in ["hf.co", "evilhf.co", "huggingface.co.evil.com", "example.com", "xhuggingface.co", ""] {
            assert!(!download_allowed(no), "{no}");
        }
    }
}
