//! The messages between the page (main thread) and the engine worker. Both sides are Rust; the
//! messages travel as JSON strings through `postMessage` (a picked file travels beside the JSON
//! as a `File`, which `postMessage` hands over without copying).

use lowbit::chat::Message;
use lowbit::gpu::{AdapterSummary, Live};
use lowbit::quality::Quality;
use lowbit::sampler::SamplerConfig;
use lowbit::session::{Fit, ModelInfo, Progress, ReplyStats};
use lowbit::bench::{DecodeProfile, ModelBench};
use lowbit::inspect::{Inspection, LayerErrors, TensorEntry};
use lowbit::lockstep::{CompareSettings, CompareStep, LaneSummary};
use lowbit::plan::{Plan, Variant};
use lowbit::KvPrecision;
use serde::{Deserialize, Serialize};

/// Page → worker: a job, or a control message about the job running or about the cache.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub enum ToWorker {
    /// Run `job`. The worker runs one job at a time; every event about it carries `id`.
    Job { id: JobId, job: Job },
    /// Answered at once, also while a job runs.
    Control(Control),
}

/// Names a job: the page numbers them, the worker's events about a job carry its number, so an
/// event about a job the page has finished with (a token after an error) is told apart.
pub type JobId = u64;

/// What the worker does beside a job.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub enum Control {
    /// Cancel `job` if it is a load or a precision switch (the model before it stays).
    Cancel { job: JobId },
    /// Stop `job` if it is a reply or a comparison (what was generated is kept).
    Stop { job: JobId },
    ListCache,
    DeleteCache { key: String },
    /// Count the GPU devices and buffers the worker holds ([`Event::Resources`]).
    Resources,
}

/// The work the page asks of the worker, one at a time.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub enum Job {
    /// Load a model from a URL: from the model cache when it holds the URL, else downloaded
    /// (and then cached).
    /// `plan: None` loads at the plan the file suggests (`ModelInfo::suggested_plan`).
    LoadUrl { url: String, name: String, plan: Option<Plan>, n_ctx: usize },
    /// Load the `File` sent beside this message (file picker or drag and drop); it is cached too.
    LoadFile { name: String, plan: Option<Plan>, n_ctx: usize },
    /// Load a model from the cache by its key.
    LoadCached { key: String, plan: Option<Plan>, n_ctx: usize },
    /// Requantize the loaded model to another plan of precisions (uniform or mixed per tensor
    /// group), keeping the conversation.
    SetPrecision { plan: Plan },
    /// Answer the last message of `messages` (the whole conversation, system prompt first).
    Chat { messages: Vec<Message>, sampling: SamplerConfig, max_tokens: usize },
    /// Store the KV cache as f32, f16 or INT8 (the conversation is prefilled again next turn).
    SetKv { kv: KvPrecision },
    /// Make the KV cache hold `n_ctx` tokens (the conversation's cached tokens are kept as far as
    /// they fit).
    SetContext { n_ctx: usize },
    /// Run one prompt at FP16 and other plans in lock-step (see `lowbit::lockstep`); Stop ends it.
    Compare { settings: CompareSettings },
    /// Time one decode step at the current plan, per kernel, with the copy bandwidth.
    Profile,
    /// The model benchmark on the loaded model (`lowbit bench model` in the page): prefill
    /// `prompt_tokens`, decode `decode_tokens` greedily, at each of `precisions`; the plan, KV
    /// format and the conversation's KV cache are kept.
    Bench { name: String, precisions: Vec<lowbit::Precision>, prompt_tokens: usize, decode_tokens: usize },
    /// Histograms and requantization errors of one weight tensor.
    Inspect { tensor: String },
    /// Each layer's output error at `variants` vs FP16 on `text`.
    LayerErrors { text: String, max_tokens: usize, variants: Vec<Variant> },
    /// Perplexity, KL vs FP16 and top-1 agreement of each plan on `text` (FP16 always first).
    Quality { text: String, max_tokens: usize, plans: Vec<Variant> },
    /// Destroy the GPU device, as a driver reset would (Diagnostics → simulate a lost GPU): the
    /// worker then recovers as from a real loss, on a new device with the same model.
    LoseDevice,
}

/// Worker → page: an event, and the job it is about (`None`: not about a job, such as `Ready`,
/// `Cache` or `Resources`).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct FromWorker {
    pub job: Option<JobId>,
    pub event: Event,
}

/// Cache key path prefix for files the user opened (the Cache API keys are URLs).
pub const LOCAL_FILE_KEY: &str = "/lowbit-local-file/";

/// One cached model file.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CachedModel {
    pub key: String,
    pub name: String,
    pub bytes: u64,
}

/// What went wrong, by kind, so the page can name it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ErrorKind {
    NoWebgpu,
    BadFile,
    /// The download stopped part way, or the browser could not fetch for another reason.
    FetchFailed,
    /// The URL is on a host the page's security policy does not let it fetch from.
    HostBlocked,
    /// What was typed is not a web address.
    NotAnAddress,
    /// The server could not be reached (offline, unknown name, refused connection).
    Unreachable,
    /// The server answered with an HTTP error status (the message gives it and what it means).
    HttpStatus,
    /// The URL answered with a web page instead of a file.
    NotAFile,
    TooLarge,
    /// The file is larger than the page's engine can hold ([`MAX_FILE_BYTES`]).
    FileTooLarge,
    OutOfMemory,
    DeviceLost,
    ContextFull,
    Busy,
    /// The user cancelled (answered with [`Event::Cancelled`], never shown as an error).
    Cancelled,
    Internal,
}

impl ErrorKind {
    pub fn title(self) -> &'static str {
        match self {
            ErrorKind::NoWebgpu => "WebGPU is not available",
            ErrorKind::BadFile => "This file is not a model lowbit can read",
            ErrorKind::FetchFailed => "The download failed",
            ErrorKind::HostBlocked => "The page may not download from this site",
            ErrorKind::NotAnAddress => "That is not a web address",
            ErrorKind::Unreachable => "The server could not be reached",
            ErrorKind::HttpStatus => "The server refused the download",
            ErrorKind::NotAFile => "That link is a web page, not a model file",
            ErrorKind::TooLarge => "The model does not fit this GPU",
            ErrorKind::FileTooLarge => "The file is too large for the page",
            ErrorKind::OutOfMemory => "The GPU ran out of memory",
            ErrorKind::DeviceLost => "The GPU device was lost",
            ErrorKind::ContextFull => "The conversation is longer than the context",
            ErrorKind::Busy => "The engine is busy",
            ErrorKind::Cancelled => "Cancelled",
            ErrorKind::Internal => "Something went wrong in the engine",
        }
    }
}

/// Worker → page.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub enum Event {
    /// The worker has a GPU device and takes requests.
    Ready { adapter: AdapterSummary },
    /// A load stage advanced (`name`: the model being loaded).
    Progress { name: String, progress: Progress },
    Loaded {
        name: String,
        info: ModelInfo,
        fit: Vec<Fit>,
        plan: Plan,
        /// Why the file chose `plan` (when the request left the choice to it).
        plan_reason: Option<String>,
        weight_bytes: u64,
        kv_bytes: u64,
        context_size: usize,
        from_cache: bool,
        load_ms: f64,
    },
    /// The KV cache format changed (`kv_bytes`: the whole cache).
    KvSwitched { kv: KvPrecision, kv_bytes: u64 },
    /// The KV cache holds `context_size` tokens now (`kv_bytes`: the whole cache), of which
    /// `context_used` are the conversation's.
    ContextSet { context_size: usize, kv_bytes: u64, context_used: usize },
    /// The precision switch is done.
    Switched { plan: Plan, weight_bytes: u64, ms: f64 },
    /// The reply has read `done` of its prompt's `total` new tokens (sent between the slices a
    /// long prompt is read in; Stop takes effect at the next one).
    Reading { done: usize, total: usize },
    /// A piece of the reply, with the decode rate so far (tokens per second since the first
    /// token; 0 until the second).
    Token { text: String, tokens: usize, decode_tps: f64 },
    ReplyDone { stats: ReplyStats, stopped: bool },
    Cache { entries: Vec<CachedModel> },
    /// The quality measurement moved on to `plan`.
    QualityProgress { plan: Variant },
    QualityDone { n_tokens: usize, rows: Vec<Quality> },
    /// A lock-step comparison has its lanes (FP16 first) and is reading the prompt.
    CompareStarted { lanes: Vec<Variant>, prompt_tokens: usize, weight_bytes: Vec<u64> },
    /// Every lane's token at one position.
    CompareStep { step: CompareStep },
    CompareDone { summaries: Vec<LaneSummary>, stopped: bool },
    Profile { profile: DecodeProfile },
    Bench { bench: ModelBench },
    /// The loaded model's weight tensors (sent after `Loaded`).
    Tensors { tensors: Vec<TensorEntry> },
    Inspection { inspection: Inspection },
    LayerErrors { errors: LayerErrors },
    /// The load or switch was cancelled; the model loaded before (if any) is still there.
    Cancelled,
    /// The device was lost during the job: the worker loads `name` again on a new device, as
    /// this same job (its progress and `Loaded` follow).
    Reloading { name: String },
    /// The GPU devices the worker holds and the buffers on them (what a switch or a reload must
    /// leave as it found).
    Resources { devices: usize, live: Live },
    Error { kind: ErrorKind, message: String },
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
        let headers = include_str!("../../www/_headers");
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
