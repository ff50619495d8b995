//! The messages between the page (main thread) and the engine worker. Both sides are Rust; the
//! messages travel as JSON strings through `postMessage` (a picked file travels beside the JSON
//! as a `File`, which `postMessage` hands over without copying).
//!
//! Jobs and events are grouped by the page's features, one file each: [`model`] (load, switch,
//! KV cache, the model cache), [`chat`] (a reply), [`lab`] (quality, compare, speed, inspector)
//! and [`diagnostics`] (self-test, kernel benchmark, GPU resources, a lost device). A feature's
//! state on the page takes its own events (`page/<feature>/state.rs`), the worker answers its
//! own jobs (`worker/<feature>.rs`).

pub mod chat;
pub mod diagnostics;
pub mod lab;
pub mod model;

use lowbit::gpu::AdapterSummary;
use serde::{Deserialize, Serialize};

pub use chat::{ChatEvent, ChatJob, Role};
pub use diagnostics::{DiagnosticsEvent, DiagnosticsJob};
pub use lab::{LabEvent, LabJob};
pub use model::{CachedModel, ModelEvent, ModelJob};

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
    /// Cancel `job` if it is a load, a precision switch or a self-test (what was there before stays).
    Cancel { job: JobId },
    /// Stop `job` if it is a reply or a comparison (what was generated is kept).
    Stop { job: JobId },
    ListCache,
    DeleteCache { key: String },
    /// Count the GPU devices and buffers the worker holds ([`DiagnosticsEvent::Resources`]).
    Resources,
}

/// The work the page asks of the worker, one at a time, by feature.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub enum Job {
    Model(ModelJob),
    Chat(ChatJob),
    Lab(LabJob),
    Diagnostics(DiagnosticsJob),
}

/// Worker → page: an event, and the job it is about (`None`: not about a job, such as `Ready`,
/// the cache list or the resources).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct FromWorker {
    pub job: Option<JobId>,
    pub event: Event,
}

/// Worker → page.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub enum Event {
    /// The worker has a GPU device and takes requests.
    Ready { adapter: AdapterSummary },
    Model(ModelEvent),
    Chat(ChatEvent),
    Lab(LabEvent),
    Diagnostics(DiagnosticsEvent),
    /// The job was cancelled; what was there before it (a model, its precision) is still there.
    Cancelled,
    /// The device was lost during the job: the worker loads `name` again on a new device, as
    /// this same job (its progress and `Loaded` follow).
    Reloading { name: String },
    Error { kind: ErrorKind, message: String },
}

impl Event {
    /// Whether this is the last event of its job (it ends the job's pending state). Exhaustive:
    /// a new event must say here whether it ends its job, or the page would wait forever.
    pub fn ends_job(&self) -> bool {
        match self {
            Event::Model(e) => e.ends_job(),
            Event::Chat(e) => e.ends_job(),
            Event::Lab(e) => e.ends_job(),
            Event::Diagnostics(e) => e.ends_job(),
            Event::Cancelled | Event::Error { .. } => true,
            Event::Ready { .. } | Event::Reloading { .. } => false,
        }
    }
}

impl From<ModelEvent> for Event {
    fn from(e: ModelEvent) -> Self {
        Event::Model(e)
    }
}

impl From<ChatEvent> for Event {
    fn from(e: ChatEvent) -> Self {
        Event::Chat(e)
    }
}

impl From<LabEvent> for Event {
    fn from(e: LabEvent) -> Self {
        Event::Lab(e)
    }
}

impl From<DiagnosticsEvent> for Event {
    fn from(e: DiagnosticsEvent) -> Self {
        Event::Diagnostics(e)
    }
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
    /// The file is larger than the page's engine can hold ([`model::MAX_FILE_BYTES`]).
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_jobs_last_event_ends_it() {
        assert!(Event::Error { kind: ErrorKind::Internal, message: String::new() }.ends_job());
        assert!(Event::Cancelled.ends_job());
        assert!(!Event::from(ChatEvent::Token { text: String::new(), tokens: 1, decode_tps: 0.0 }).ends_job());
        assert!(!Event::Reloading { name: String::new() }.ends_job());
        assert!(!Event::from(LabEvent::Tensors { tensors: vec![] }).ends_job());
        assert!(!Event::from(ModelEvent::Cache { entries: vec![] }).ends_job());
        assert!(Event::from(DiagnosticsEvent::SelfTestDone { passed: 1, total: 1 }).ends_job());
    }

    #[test]
    fn events_travel_as_json_and_back() {
        let e = FromWorker { job: Some(3), event: ChatEvent::Token { text: "hi".into(), tokens: 2, decode_tps: 1.5 }.into() };
        let back: FromWorker = serde_json::from_str(&serde_json::to_string(&e).unwrap()).unwrap();
        assert!(matches!(back.event, Event::Chat(ChatEvent::Token { ref text, tokens: 2, .. }) if text == "hi"));
    }
}
