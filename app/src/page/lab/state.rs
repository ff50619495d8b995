//! The lab's state: the last quality measurement, the comparison (its form and run), the speed
//! profiles and benchmark, the inspector's tensors and results; the commands that start each
//! measurement; and their events from the worker.

use leptos::prelude::*;
use lowbit::bench::{ContextSweep, DecodeProfile, ModelBench};
use lowbit::inspect::{Inspection, LayerErrors, TensorEntry};
use lowbit::lockstep::{CompareSettings, CompareStep, LaneSummary, Mode};
use lowbit::plan::Variant;
use lowbit::quality::Quality;
use lowbit::{KvPrecision, Precision};
use lowbit_app::job::JobKind;
use lowbit_app::protocol::{Job, LabEvent, LabJob};
use lowbit_app::share::Shared;

use crate::model::state::Loaded;

/// Tokens the speed-vs-context sweep decodes (timed from the second) at each context.
pub const SWEEP_DECODE_TOKENS: usize = 16;

/// What a speed-vs-context sweep of `ticked` formats on `m` runs: the formats its rows can hold,
/// and the contexts its cache measures at (the button's label and the job).
pub fn sweep_request(m: &Loaded, ticked: Vec<KvPrecision>) -> (Vec<KvPrecision>, Vec<usize>) {
    let kvs = ticked.into_iter().filter(|&k| m.kv_unfit(k).is_none()).collect();
    (kvs, lowbit::bench::sweep_contexts(m.context_size, SWEEP_DECODE_TOKENS))
}

use crate::chat::ChatState;
use crate::model::ModelState;
use super::speed::BENCH_REPEATS;

/// A lock-step comparison the page ran (or is running).
#[derive(Clone, Debug, PartialEq)]
pub struct CompareRun {
    pub settings: CompareSettings,
    /// The lanes, the reference first (empty until the worker has them).
    pub lanes: Vec<Variant>,
    pub prompt_tokens: usize,
    pub weight_bytes: Vec<u64>,
    pub steps: Vec<CompareStep>,
    pub summaries: Option<Vec<LaneSummary>>,
    pub stopped: bool,
}

/// The compare view's form.
#[derive(Clone, Copy)]
pub struct CompareForm {
    pub prompt: RwSignal<String>,
    pub chat: RwSignal<bool>,
    pub mode: RwSignal<Mode>,
    pub max_tokens: RwSignal<usize>,
    /// The variants compared with FP16.
    pub lanes: RwSignal<Vec<Variant>>,
}

#[derive(Clone, Copy)]
pub struct LabState {
    pub model: ModelState,
    pub chat: ChatState,
    /// The quality measurement's last result: tokens scored and a row per variant.
    pub quality: RwSignal<Option<(usize, Vec<Quality>)>>,
    pub compare_form: CompareForm,
    pub compare: RwSignal<Option<CompareRun>>,
    /// A shared link asked for a comparison: run it once a model is loaded.
    pub compare_pending: RwSignal<bool>,
    pub profiles: RwSignal<Vec<DecodeProfile>>,
    /// The benchmark's prompt and decode lengths, and its last result.
    pub bench_tokens: (RwSignal<usize>, RwSignal<usize>),
    /// Read every token back before recording the next step (the benchmark's chain of 1), to
    /// measure what a round trip per token costs.
    pub bench_one_at_a_time: RwSignal<bool>,
    /// Whether the benchmark runs INT8 and INT4 with 8-bit activations too.
    pub bench_acts: RwSignal<bool>,
    pub bench: RwSignal<Option<ModelBench>>,
    /// The KV formats the speed-vs-context sweep runs, and its last result.
    pub sweep_kvs: RwSignal<Vec<KvPrecision>>,
    pub sweep: RwSignal<Option<ContextSweep>>,
    pub tensors: RwSignal<Vec<TensorEntry>>,
    pub inspection: RwSignal<Option<Inspection>>,
    pub layer_errors: RwSignal<Option<LayerErrors>>,
}

impl LabState {
    pub fn new(model: ModelState, chat: ChatState) -> Self {
        LabState {
            model,
            chat,
            quality: RwSignal::new(None),
            compare_form: CompareForm {
                prompt: RwSignal::new("Explain in one sentence why the sky is blue.".into()),
                chat: RwSignal::new(true),
                mode: RwSignal::new(Mode::SameContext),
                max_tokens: RwSignal::new(16),
                lanes: RwSignal::new(vec![Precision::Int8.into(), Precision::Int4.into()]),
            },
            compare: RwSignal::new(None),
            compare_pending: RwSignal::new(false),
            profiles: RwSignal::new(vec![]),
            bench_tokens: (RwSignal::new(64), RwSignal::new(32)),
            bench_one_at_a_time: RwSignal::new(false),
            bench_acts: RwSignal::new(false),
            bench: RwSignal::new(None),
            sweep_kvs: RwSignal::new(vec![KvPrecision::F16, KvPrecision::Int8, KvPrecision::Int4Rot]),
            sweep: RwSignal::new(None),
            tensors: RwSignal::new(vec![]),
            inspection: RwSignal::new(None),
            layer_errors: RwSignal::new(None),
        }
    }

    /// A new model is loaded: what was measured on the one before goes.
    pub fn clear(&self) {
        self.quality.set(None);
        self.compare.set(None);
        self.profiles.set(vec![]);
        self.bench.set(None);
        self.sweep.set(None);
        self.inspection.set(None);
        self.layer_errors.set(None);
    }

    /// Start a lab job when a model is loaded and the engine is free.
    fn start(&self, kind: JobKind, job: LabJob) {
        if self.model.can_run() {
            self.model.engine.start(kind, Job::Lab(job), &[]);
        }
    }

    /// The file's own mixed precisions ("As stored"), if the loaded model has them.
    pub fn stored(&self) -> Option<Variant> {
        self.model.model.get_untracked().and_then(|m| m.info.stored_plan()).map(Variant::from)
    }

    /// A model is loaded: the comparison's lanes include its file's own setting, and no longer a
    /// mix that was the previous model's (unless a shared link chose the lanes).
    pub fn model_loaded(&self) {
        if self.compare_pending.get_untracked() {
            return;
        }
        let stored = self.stored();
        self.compare_form.lanes.update(|v| {
            v.retain(|l| l.plan.uniform_precision().is_some() || Some(*l) == stored);
            if let Some(s) = stored.filter(|s| !v.contains(s)) {
                v.push(s)
            }
        });
    }

    /// The variant the chat runs at now (its method left out where it changes nothing, so the
    /// file's own setting is not measured twice under two names).
    fn current(&self) -> Variant {
        let plan = self.model.plan.get_untracked();
        let plan = self.model.model.with_untracked(|m| m.as_ref().map_or(plan, |m| m.info.canonical(plan)));
        Variant::new(plan, self.model.kv.get_untracked()).with_act(self.model.act.get_untracked())
    }

    /// Measure the quality of FP16, INT8, INT4 (and the current variant when it is another) on
    /// `text`; `methods`: INT4 by every quantization method too; `ladder`: INT3 and INT2 too;
    /// `kv`: FP16 weights with every KV cache format the model's rows hold; `acts`: INT8 and INT4
    /// with 8-bit activations.
    pub fn measure_quality(&self, text: &str, max_tokens: usize, methods: bool, ladder: bool, kv: bool, acts: bool) {
        let mut plans = lowbit::quality::uniform_plans();
        if ladder {
            plans.extend([Precision::Int3, Precision::Int2].map(|p| Variant::from(p)));
        }
        if methods {
            let int4 = lowbit::plan::Plan::uniform(Precision::Int4);
            plans.extend(lowbit::method::Method::ALL.iter().skip(1).map(|&m| Variant::from(int4.with_method(m))));
        }
        if kv {
            let m = self.model.model.get_untracked();
            plans.extend(
                KvPrecision::ALL
                    .into_iter()
                    .filter(|&k| k != KvPrecision::F32 && m.as_ref().is_some_and(|m| m.kv_unfit(k).is_none()))
                    .map(|k| Variant::new(Precision::Fp16, k)),
            );
        }
        if acts {
            plans.extend([Precision::Int8, Precision::Int4].map(|p| Variant::from(p).with_act(lowbit::Activations::Int8)));
        }
        // The setting the chat runs at, and the file's own (where the chat loads by default).
        for v in [self.current()].into_iter().chain(self.stored()) {
            if !plans.contains(&v) {
                plans.push(v);
            }
        }
        self.start(JobKind::Quality { calibrating: None }, LabJob::Quality { text: text.to_string(), max_tokens, plans });
    }

    /// Each layer's output error at INT8, INT4 (and the current variant) vs FP16 on `text`.
    pub fn measure_layers(&self, text: &str, max_tokens: usize) {
        let mut variants: Vec<Variant> = vec![Precision::Int8.into(), Precision::Int4.into()];
        let current = self.current();
        if current != Variant::REFERENCE && !variants.contains(&current) {
            variants.push(current);
        }
        self.start(JobKind::Layers, LabJob::LayerErrors { text: text.to_string(), max_tokens, variants });
    }

    /// Profile one decode step at the current plan.
    pub fn profile(&self) {
        self.start(JobKind::Profile, LabJob::Profile);
    }

    /// Benchmark the loaded model at FP16, INT8 and INT4 (prefill and greedy decode).
    pub fn run_bench(&self) {
        let Some(name) = self.model.model.get_untracked().map(|m| m.name) else { return };
        let settings = lowbit::bench::BenchSettings {
            precisions: vec![Precision::Fp16, Precision::Int8, Precision::Int4],
            prompt_tokens: self.bench_tokens.0.get_untracked(),
            decode_tokens: self.bench_tokens.1.get_untracked(),
            repeats: BENCH_REPEATS,
            // Decode right after the prompt, in the KV format the model is at.
            context: 0,
            kv: None,
            activations: if self.bench_acts.get_untracked() { lowbit::Activations::ALL.to_vec() } else { vec![] },
            chain: self.bench_one_at_a_time.get_untracked().then_some(1),
        };
        self.start(JobKind::Bench, LabJob::Bench { name, settings });
    }

    /// Decode speed at 256, 1k, 2k, 4k… tokens of context (those the cache holds) per ticked KV
    /// format the model can store, at the current plan.
    pub fn run_sweep(&self) {
        let Some(m) = self.model.model.get_untracked() else { return };
        let (kvs, contexts) = sweep_request(&m, self.sweep_kvs.get_untracked());
        if !kvs.is_empty() && !contexts.is_empty() {
            self.start(JobKind::ContextSweep, LabJob::ContextSweep { kvs, contexts, decode_tokens: SWEEP_DECODE_TOKENS });
        }
    }

    pub fn inspect(&self, tensor: &str) {
        if !tensor.is_empty() {
            self.start(JobKind::Inspect, LabJob::Inspect { tensor: tensor.to_string() });
        }
    }

    /// The comparison the form describes, with the chat's system prompt and sampling settings.
    pub fn compare_settings(&self) -> CompareSettings {
        let f = self.compare_form;
        CompareSettings {
            prompt: f.prompt.get_untracked(),
            chat: f.chat.get_untracked(),
            system: self.chat.system_prompt.get_untracked(),
            sampling: self.chat.sampling.get_untracked(),
            max_tokens: f.max_tokens.get_untracked(),
            lanes: f.lanes.get_untracked(),
            mode: f.mode.get_untracked(),
        }
    }

    /// What a shared link of the current form holds.
    pub fn shared(&self) -> Shared {
        let m = self.model;
        Shared { settings: self.compare_settings(), plan: m.plan.get_untracked(), kv: m.kv.get_untracked(), act: m.act.get_untracked() }
    }

    /// Fill the form, sampling settings and precision from a shared link; the comparison runs
    /// once a model is loaded.
    pub fn apply_shared(&self, sh: Shared) {
        let f = self.compare_form;
        let s = sh.settings;
        f.prompt.set(s.prompt);
        f.chat.set(s.chat);
        f.mode.set(s.mode);
        f.max_tokens.set(s.max_tokens);
        f.lanes.set(s.lanes);
        self.model.kv.set(sh.kv);
        self.model.act.set(sh.act);
        self.chat.system_prompt.set(s.system);
        self.chat.sampling.set(s.sampling);
        self.model.plan.set(sh.plan);
        self.model.plan_chosen.set(true);
        self.compare_pending.set(true);
    }

    /// Run the comparison a shared link asked for, if it waits.
    pub fn run_pending(&self) {
        if self.compare_pending.get_untracked() {
            self.run_compare();
        }
    }

    /// Run the form's comparison.
    pub fn run_compare(&self) {
        let settings = self.compare_settings();
        if !self.model.can_run() || settings.prompt.trim().is_empty() {
            return;
        }
        self.compare_pending.set(false);
        let run = CompareRun { settings: settings.clone(), lanes: vec![], prompt_tokens: 0, weight_bytes: vec![], steps: vec![], summaries: None, stopped: false };
        self.compare.set(Some(run));
        self.start(JobKind::Compare, LabJob::Compare { settings });
    }

    fn update_compare(&self, f: impl FnOnce(&mut CompareRun)) {
        self.compare.update(|c| {
            if let Some(c) = c {
                f(c)
            }
        });
    }

    /// A measurement was cancelled or failed: a comparison that ended while it made its lanes
    /// leaves nothing (not a view stuck at "preparing").
    pub fn ended_without_result(&self, kind: Option<&JobKind>) {
        if matches!(kind, Some(JobKind::Compare)) && self.compare.get_untracked().is_some_and(|c| c.lanes.is_empty()) {
            self.compare.set(None);
        }
    }

    /// Take one of the lab's events.
    pub fn apply(&self, e: LabEvent) {
        match e {
            LabEvent::Step { step } => self.model.engine.step(step),
            LabEvent::Calibrated { tokens, seconds } => self.model.calibrated.set(Some((tokens, seconds))),
            LabEvent::Calibrating { done, total } => self.model.engine.update_job(|k| {
                if let JobKind::Quality { calibrating, .. } = k {
                    *calibrating = Some((done, total));
                }
            }),
            // The engine gave the conversation its KV cache back: the context bar stands.
            LabEvent::QualityDone { n_tokens, rows } => self.quality.set(Some((n_tokens, rows))),
            LabEvent::CompareStarted { lanes, prompt_tokens, weight_bytes } => self.update_compare(|c| {
                c.lanes = lanes;
                c.prompt_tokens = prompt_tokens;
                c.weight_bytes = weight_bytes;
            }),
            LabEvent::CompareStep { step } => self.update_compare(|c| c.steps.push(step)),
            LabEvent::CompareDone { summaries, stopped } => self.update_compare(|c| {
                c.summaries = Some(summaries);
                c.stopped = stopped;
            }),
            // Keep the latest profile of each plan.
            LabEvent::Profile { profile } => self.profiles.update(|v| {
                v.retain(|p| p.plan != profile.plan);
                v.push(profile);
            }),
            LabEvent::Bench { bench } => self.bench.set(Some(bench)),
            LabEvent::ContextSweep { sweep } => self.sweep.set(Some(sweep)),
            LabEvent::Tensors { tensors } => self.tensors.set(tensors),
            LabEvent::LayerErrors { errors } => self.layer_errors.set(Some(errors)),
            LabEvent::Inspection { inspection } => self.inspection.set(Some(inspection)),
        }
    }
}
