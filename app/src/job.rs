//! The page's one job state: which job the worker is running for the page, if any. In the spirit
//! of a Leptos `Action`: a job is started with its input, is *pending* until its last event, and
//! only its own events change what the page shows (an event about an earlier job is dropped).

use lowbit::plan::Plan;
use lowbit::session::{Progress, RunStep, Stage};

use crate::protocol::{Event, JobId};

/// A job the page started (or the worker started for it: the reload after a lost device).
#[derive(Clone, Debug, PartialEq)]
pub struct Running {
    pub id: JobId,
    pub kind: JobKind,
    /// The measurement's latest step, for its progress bar.
    pub step: Option<RunStep>,
    /// When its first step began (ms since the epoch): the pace is counted from there, so what ran
    /// before the steps (a calibration, the roofline) does not inflate it.
    pub first_step_ms: Option<f64>,
}

impl Running {
    pub fn new(id: JobId, kind: JobKind) -> Running {
        Running { id, kind, step: None, first_step_ms: None }
    }

    /// The run reached `step` at `now_ms`.
    pub fn stepped(&mut self, step: RunStep, now_ms: f64) {
        if self.first_step_ms.is_none() {
            self.first_step_ms = Some(now_ms);
        }
        self.step = Some(step);
    }

    /// Seconds left by the pace so far, once enough steps are done for the pace to mean something
    /// (`RunStep::settle`; `now_ms`: the clock now).
    pub fn seconds_left(&self, now_ms: f64) -> Option<f64> {
        let s = self.step.as_ref().filter(|s| s.done >= s.settle.max(1) && s.total >= s.done)?;
        let per_step = (now_ms - self.first_step_ms?).max(0.0) / s.done as f64;
        Some(per_step * (s.total - s.done) as f64 / 1e3)
    }
}

/// What the job is, with what the page shows while it runs.
#[derive(Clone, Debug, PartialEq)]
pub enum JobKind {
    /// A model load: its name and the latest progress of each stage.
    Load { name: String, stages: Vec<Progress> },
    /// A precision switch: its target and progress.
    Switch { target: Plan, progress: Option<Progress> },
    /// A change of the KV cache's format or size.
    Kv,
    /// A change of the activations' format (the first to 8 bits measures the integer matvecs).
    Activations,
    /// Writing the model as GGUF: tensors done, of how many.
    Export { done: usize, total: usize },
    /// A reply written into the chat message `msg`; `reading`: prompt tokens read, of how many.
    Reply { msg: u64, reading: Option<(usize, usize)> },
    /// A quality measurement (the variant it has reached is its step, see [`Running::step`]).
    /// `calibrating`: tokens of calibration text done, of how many (before the first variant).
    Quality { calibrating: Option<(u64, u64)> },
    Compare,
    Profile,
    Bench,
    /// Decode speed at growing contexts per KV format.
    ContextSweep,
    Inspect,
    Layers,
    /// The kernel self-test: `done` of `total` cases run, `kernel` next.
    SelfTest { done: usize, total: usize, kernel: Option<String> },
    KernelBench,
    LoseDevice,
}

impl JobKind {
    /// Why the controls that need the engine are disabled while this job runs (their tooltip).
    pub fn busy_reason(&self) -> &'static str {
        match self {
            JobKind::Load { .. } => "Wait for the model to load (or cancel the load)",
            JobKind::Switch { .. } => "Wait for the precision switch to finish (or cancel it)",
            JobKind::Reply { .. } => "Wait for the reply to finish, or press Stop (Esc)",
            JobKind::Compare => "Wait for the comparison to finish, or stop it (Esc)",
            JobKind::LoseDevice => "Wait for the GPU device to come back",
            JobKind::Kv => "Wait for the KV cache to change",
            JobKind::Activations => "Wait for the activations' format to change",
            JobKind::Export { .. } => "Wait for the GGUF file to be written (or cancel it)",
            JobKind::Quality { .. } | JobKind::Profile | JobKind::Bench | JobKind::ContextSweep | JobKind::Inspect | JobKind::Layers | JobKind::KernelBench => {
                "Wait for the measurement in progress to finish"
            }
            JobKind::SelfTest { .. } => "Wait for the kernel self-test to finish (or cancel it)",
        }
    }

    /// What the job is doing, for the model's status line (None for a reply, which the chat shows).
    pub fn doing(&self) -> Option<&'static str> {
        Some(match self {
            JobKind::Kv => "changing the KV cache",
            JobKind::Activations => "changing the activations' format",
            JobKind::Export { .. } => "writing a GGUF file",
            JobKind::Quality { .. } => "measuring quality",
            JobKind::Compare => "comparing precisions",
            JobKind::Profile => "profiling a decode step",
            JobKind::Bench => "benchmarking",
            JobKind::ContextSweep => "measuring decode speed at growing contexts",
            JobKind::Inspect => "inspecting a tensor",
            JobKind::Layers => "measuring each layer's error",
            JobKind::SelfTest { .. } => "running the kernel self-test",
            JobKind::KernelBench => "benchmarking the kernels",
            JobKind::Load { .. } | JobKind::Switch { .. } | JobKind::Reply { .. } | JobKind::LoseDevice => return None,
        })
    }

    /// Whether Stop ends it (keeping what was generated) rather than Cancel (undoing it).
    pub fn stoppable(&self) -> bool {
        matches!(self, JobKind::Reply { .. } | JobKind::Compare)
    }
}

/// Whether an event about `job` is for the page now, while `running` runs: events about no job
/// always are, events about a job only while it is the one running. `Reloading` starts a job of
/// the worker's own, so it is taken when nothing runs.
pub fn accepts(running: Option<&Running>, job: Option<JobId>, event: &Event) -> bool {
    match (job, running) {
        (None, _) => true,
        (Some(j), Some(r)) => r.id == j,
        (Some(_), None) => matches!(event, Event::Reloading { .. }),
    }
}

/// A load's stages after `progress`: each stage once, in load order.
pub fn with_progress(mut stages: Vec<Progress>, progress: Progress) -> Vec<Progress> {
    match stages.iter_mut().find(|s| s.stage == progress.stage) {
        Some(s) => *s = progress,
        None => stages.push(progress),
    }
    stages.sort_by_key(|s| Stage::ALL.iter().position(|x| *x == s.stage));
    stages
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::{ChatEvent, ModelEvent};

    fn running(id: JobId) -> Running {
        Running::new(id, JobKind::Reply { msg: 7, reading: None })
    }

    #[test]
    fn only_the_running_jobs_events_are_taken() {
        let token = Event::from(ChatEvent::Token { text: "x".into(), tokens: 1, decode_tps: 0.0 });
        assert!(accepts(Some(&running(4)), Some(4), &token));
        // A token of the reply before, arriving after it failed and a new one began.
        assert!(!accepts(Some(&running(4)), Some(3), &token));
        assert!(!accepts(None, Some(3), &token));
        // Events about no job (the cache list, the adapter) are always taken.
        assert!(accepts(Some(&running(4)), None, &Event::from(ModelEvent::Cache { entries: vec![] })));
        // The worker's own reload after a lost device starts when nothing runs, and only then.
        let reload = Event::Reloading { name: "m.gguf".into() };
        assert!(accepts(None, Some(9), &reload));
        assert!(!accepts(Some(&running(4)), Some(9), &reload));
    }

    #[test]
    fn load_stages_are_kept_once_each_in_order() {
        let p = |stage, done| Progress { stage, done, total: 10 };
        let s = with_progress(vec![], p(Stage::Upload, 1));
        let s = with_progress(s, p(Stage::Parse, 10));
        let s = with_progress(s, p(Stage::Upload, 5));
        assert_eq!(s, vec![p(Stage::Parse, 10), p(Stage::Upload, 5)]);
    }

    #[test]
    fn time_left_follows_the_pace_so_far() {
        let mut r = Running::new(1, JobKind::Bench);
        assert_eq!(r.seconds_left(5_000.0), None);
        // Counted from the first step (what ran before it is not part of the pace).
        r.stepped(RunStep { done: 0, total: 9, what: "switching to FP16".into(), settle: 3 }, 1_000.0);
        assert_eq!(r.seconds_left(5_000.0), None);
        // Before a whole round of steps the pace says nothing yet.
        r.stepped(RunStep { done: 2, total: 9, what: "FP16, writing".into(), settle: 3 }, 2_000.0);
        assert_eq!(r.seconds_left(2_000.0), None);
        // 3 of 9 steps in 6 s: 12 s to go.
        r.stepped(RunStep { done: 3, total: 9, what: "INT8".into(), settle: 3 }, 7_000.0);
        assert_eq!(r.seconds_left(7_000.0), Some(12.0));
    }

    #[test]
    fn stop_is_for_what_it_keeps() {
        assert!(JobKind::Compare.stoppable());
        assert!(!JobKind::Switch { target: Plan::uniform(lowbit::Precision::Int8), progress: None }.stoppable());
    }
}
