//! The lab's jobs and events: quality per precision, the lock-step comparison, the decode
//! profile and model benchmark, the weight inspector and the layer-by-layer error.

use lowbit::bench::{BenchSettings, ContextSweep, DecodeProfile, ModelBench};
use lowbit::session::RunStep;
use lowbit::inspect::{Inspection, LayerErrors, TensorEntry};
use lowbit::lockstep::{CompareSettings, CompareStep, LaneSummary};
use lowbit::plan::Variant;
use lowbit::quality::Quality;
use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, Serialize, Deserialize)]
pub enum LabJob {
    /// Run one prompt at FP16 and other plans in lock-step (see `lowbit::lockstep`); Stop ends it.
    Compare { settings: CompareSettings },
    /// Time one decode step at the current plan, per kernel, with the copy bandwidth.
    Profile,
    /// The model benchmark on the loaded model (`lowbit bench model` in the page); the plan, KV
    /// format and the conversation's KV cache are kept. Cancel is taken between steps.
    Bench { name: String, settings: BenchSettings },
    /// Decode speed at each of `contexts` per KV format, at the current plan (the speed-vs-context
    /// chart); the plan, KV format and the conversation's KV cache are kept. Cancel is taken
    /// between fill slices.
    ContextSweep { kvs: Vec<lowbit::KvPrecision>, contexts: Vec<usize>, decode_tokens: usize },
    /// Histograms and requantization errors of one weight tensor.
    Inspect { tensor: String },
    /// Each layer's output error at `variants` vs FP16 on `text`.
    LayerErrors { text: String, max_tokens: usize, variants: Vec<Variant> },
    /// Perplexity, KL vs FP16 and top-1 agreement of each plan on `text` (FP16 always first).
    Quality { text: String, max_tokens: usize, plans: Vec<Variant> },
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub enum LabEvent {
    /// A measurement (quality, comparison's preparation, benchmark, layer errors) starts a step.
    Step { step: RunStep },
    /// The quality run is calibrating first (a variant's method needs it): tokens done, of `total`.
    Calibrating { done: u64, total: u64 },
    /// That calibration is made: on `tokens` tokens in `seconds` (the model keeps it).
    Calibrated { tokens: usize, seconds: f64 },
    QualityDone { n_tokens: usize, rows: Vec<Quality> },
    /// A lock-step comparison has its lanes (FP16 first) and is reading the prompt.
    CompareStarted { lanes: Vec<Variant>, prompt_tokens: usize, weight_bytes: Vec<u64> },
    /// Every lane's token at one position.
    CompareStep { step: CompareStep },
    CompareDone { summaries: Vec<LaneSummary>, stopped: bool },
    Profile { profile: DecodeProfile },
    Bench { bench: ModelBench },
    ContextSweep { sweep: ContextSweep },
    /// The loaded model's weight tensors (sent during a load, before `Loaded`).
    Tensors { tensors: Vec<TensorEntry> },
    Inspection { inspection: Inspection },
    LayerErrors { errors: LayerErrors },
}

impl LabEvent {
    pub fn ends_job(&self) -> bool {
        match self {
            LabEvent::QualityDone { .. }
            | LabEvent::CompareDone { .. }
            | LabEvent::Profile { .. }
            | LabEvent::Bench { .. }
            | LabEvent::ContextSweep { .. }
            | LabEvent::Inspection { .. }
            | LabEvent::LayerErrors { .. } => true,
            LabEvent::Step { .. } | LabEvent::Calibrating { .. } | LabEvent::Calibrated { .. } | LabEvent::CompareStarted { .. } | LabEvent::CompareStep { .. } | LabEvent::Tensors { .. } => false,
        }
    }
}
