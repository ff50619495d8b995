//! The model feature's state: the loaded model, its precisions (the plan), its KV cache, the
//! model cache; the commands that load and switch; and its events from the worker.

use leptos::prelude::*;
use lowbit::plan::Plan;
use lowbit::info::{Fit, ModelInfo};
use lowbit::{Activations, KvPrecision};
use lowbit_app::job::{self, JobKind};
use lowbit_app::protocol::{CachedModel, Control, Job, ModelEvent, ModelJob};
use lowbit_app::protocol::model::LoadedModel;

use crate::ui::layout::{remember, remembered};
use crate::worker::Engine;

/// Where the browser keeps the precisions the user last chose (a plan's code).
const PLAN_KEY: &str = "lowbit-plan";

/// Tokens the KV cache holds room for, unless the user chooses another size.
pub const N_CTX: usize = 2048;
/// The context sizes the page offers.
pub const CONTEXT_SIZES: [usize; 8] = [256, 512, 1024, 2048, 4096, 8192, 16384, 32768];

/// A model the page has loaded.
#[derive(Clone, Debug, PartialEq)]
pub struct Loaded {
    pub name: String,
    pub info: ModelInfo,
    pub fit: Vec<Fit>,
    pub context_size: usize,
    pub kv_bytes: u64,
    pub from_cache: bool,
    pub load_ms: f64,
    /// Loaded again on a new device after the GPU device was lost.
    pub recovered: bool,
}

impl Loaded {
    /// Why this model's KV rows cannot be stored as `kv`, if they cannot (also when its shape is
    /// not known).
    pub fn kv_unfit(&self, kv: KvPrecision) -> Option<String> {
        match &self.info.config {
            Some(c) => c.kv_unfit(kv),
            None => Some("this model's shape is not known".to_string()),
        }
    }
}

#[derive(Clone, Copy)]
pub struct ModelState {
    pub engine: Engine,
    pub model: RwSignal<Option<Loaded>>,
    /// The active precisions (the ones the next load uses when no model is loaded).
    pub plan: RwSignal<Plan>,
    /// The user chose `plan` (a precision button, a shared link): loads use it. Until then each
    /// file loads at its own suggested precision.
    pub plan_chosen: RwSignal<bool>,
    /// Why the loaded file chose its precision (when the user had not).
    pub plan_reason: RwSignal<Option<String>>,
    pub weight_bytes: RwSignal<u64>,
    /// How the KV cache is stored.
    pub kv: RwSignal<KvPrecision>,
    /// The activations' format the INT8 and INT4 matrices multiply (the next load's when no
    /// model is loaded: it is applied once the model and its KV format are).
    pub act: RwSignal<Activations>,
    /// The KV format and activations chosen before a load (or by a shared link), waiting for
    /// the loaded model to be free to switch to them.
    pending: RwSignal<(Option<KvPrecision>, Option<Activations>)>,
    /// Tokens the KV cache holds room for (the next load's, or the loaded model's).
    pub n_ctx: RwSignal<usize>,
    pub last_switch_ms: RwSignal<Option<f64>>,
    /// The loaded model's calibration, once a calibrated method made one: (tokens, seconds).
    pub calibrated: RwSignal<Option<(usize, f64)>>,
    /// The last GGUF export offered for download: its file name and size.
    pub exported: RwSignal<Option<(String, u64)>>,
    /// The model cache's entries.
    pub cache: RwSignal<Vec<CachedModel>>,
}

impl ModelState {
    /// The precisions the user chose on an earlier visit come back: the next load uses them.
    pub fn new(engine: Engine) -> Self {
        let chosen = remembered(PLAN_KEY).and_then(|c| Plan::parse(&c).ok());
        ModelState {
            engine,
            model: RwSignal::new(None),
            plan: RwSignal::new(chosen.unwrap_or(Plan::uniform(lowbit::Precision::Fp16))),
            plan_chosen: RwSignal::new(chosen.is_some()),
            plan_reason: RwSignal::new(None),
            weight_bytes: RwSignal::new(0),
            kv: RwSignal::new(KvPrecision::F32),
            act: RwSignal::new(Activations::F32),
            pending: RwSignal::new((None, None)),
            n_ctx: RwSignal::new(N_CTX),
            last_switch_ms: RwSignal::new(None),
            calibrated: RwSignal::new(None),
            exported: RwSignal::new(None),
            cache: RwSignal::new(vec![]),
        }
    }

    pub fn loaded(&self) -> bool {
        self.model.with(|m| m.is_some())
    }

    /// The engine has a device and no job runs: a model can be loaded.
    pub fn can_load(&self) -> bool {
        self.engine.ready() && !self.engine.busy()
    }

    /// A model is loaded and no job runs: a reply or a measurement can start.
    pub fn can_run(&self) -> bool {
        self.loaded() && !self.engine.busy()
    }

    fn start(&self, kind: JobKind, job: ModelJob, files: &[web_sys::File]) {
        self.engine.start(kind, Job::Model(job), files);
    }

    /// Load a GGUF file's address, or a Hugging Face model id (`owner/name`, or its page's
    /// address): its checkpoint, converted in the worker.
    pub fn load_url(&self, url: &str) {
        if let Some(repo) = lowbit::hf::Repo::parse(url) {
            let name = repo.name().to_string();
            let job = ModelJob::LoadCheckpoint { base: repo.base_url(), name: name.clone(), plan: self.load_plan(), n_ctx: self.n_ctx.get_untracked() };
            return self.start(JobKind::Load { name, stages: vec![] }, job, &[]);
        }
        let name = lowbit::util::url_file_name(url).to_string();
        let job = ModelJob::LoadUrl { url: url.to_string(), name: name.clone(), plan: self.load_plan(), n_ctx: self.n_ctx.get_untracked() };
        self.start(JobKind::Load { name, stages: vec![] }, job, &[]);
    }

    pub fn load_file(&self, file: web_sys::File) {
        let name = file.name();
        let job = ModelJob::LoadFile { name: name.clone(), plan: self.load_plan(), n_ctx: self.n_ctx.get_untracked() };
        self.start(JobKind::Load { name, stages: vec![] }, job, std::slice::from_ref(&file));
    }

    /// Load a Hugging Face checkpoint from files picked or dropped (a folder's, or several):
    /// those the checkpoint reads go to the worker, which converts them (`name`: the folder's).
    pub fn load_checkpoint_files(&self, name: String, files: Vec<web_sys::File>) {
        let job = ModelJob::LoadCheckpointFiles { name: name.clone(), plan: self.load_plan(), n_ctx: self.n_ctx.get_untracked() };
        self.start(JobKind::Load { name, stages: vec![] }, job, &files);
    }

    pub fn load_cached(&self, c: &CachedModel) {
        let job = ModelJob::LoadCached { key: c.key.clone(), plan: self.load_plan(), n_ctx: self.n_ctx.get_untracked() };
        self.start(JobKind::Load { name: c.name.clone(), stages: vec![] }, job, &[]);
    }

    /// The plan a load asks for: the user's choice, else none (the file suggests one).
    fn load_plan(&self) -> Option<Plan> {
        self.plan_chosen.get_untracked().then(|| self.plan.get_untracked())
    }

    /// The user chose `plan`: switch to it (or load at it next), and remember it for the next visit.
    pub fn set_plan(&self, plan: Plan) {
        remember(PLAN_KEY, &plan.code());
        if !self.model.with_untracked(|m| m.is_some()) {
            self.plan.set(plan);
            self.plan_chosen.set(true);
            return;
        }
        if plan == self.plan.get_untracked() || self.engine.busy() {
            return;
        }
        self.plan_chosen.set(true);
        self.plan_reason.set(None);
        self.start(JobKind::Switch { target: plan, progress: None }, ModelJob::SetPrecision { plan }, &[]);
    }

    /// Write the loaded model at its current plan as a GGUF file, offered for download.
    pub fn export(&self) {
        if self.can_run() {
            self.start(JobKind::Export { done: 0, total: 0 }, ModelJob::Export, &[]);
        }
    }

    /// Store the KV cache as `kv` (applied after the next load when no model is loaded).
    pub fn set_kv(&self, kv: KvPrecision) {
        if !self.model.with_untracked(|m| m.is_some()) {
            self.kv.set(kv);
            return;
        }
        if kv == self.kv.get_untracked() || self.engine.busy() {
            return;
        }
        self.start(JobKind::Kv, ModelJob::SetKv { kv }, &[]);
    }

    /// Multiply 8-bit activations (or f32 ones) from the next token on, keeping the conversation
    /// (applied after the next load when no model is loaded).
    pub fn set_act(&self, act: Activations) {
        if !self.loaded() {
            self.act.set(act);
            return;
        }
        if act == self.act.get_untracked() || self.engine.busy() {
            return;
        }
        self.start(JobKind::Activations, ModelJob::SetActivations { act }, &[]);
    }

    /// The KV format and activations chosen before the load (or by a shared link) apply once a
    /// model is loaded, one job after the other: this starts the first still to do (call it
    /// again when that one ends). Whether it started one.
    pub fn apply_chosen(&self) -> bool {
        if !self.can_run() {
            return false;
        }
        match self.pending.get_untracked() {
            (Some(kv), act) => {
                self.pending.set((None, act));
                self.set_kv(kv);
                true
            }
            (None, Some(act)) => {
                self.pending.set((None, None));
                self.set_act(act);
                true
            }
            (None, None) => false,
        }
    }

    /// Make the KV cache hold `n` tokens (applied at the next load when no model is loaded).
    pub fn set_context(&self, n: usize) {
        match self.model.get_untracked() {
            None => self.n_ctx.set(n),
            Some(m) if m.context_size == n || self.engine.busy() => {}
            Some(_) => self.start(JobKind::Kv, ModelJob::SetContext { n_ctx: n }, &[]),
        }
    }

    pub fn list_cache(&self) {
        self.engine.control(Control::ListCache);
    }

    pub fn delete_cached(&self, key: &str) {
        self.engine.control(Control::DeleteCache { key: key.to_string() });
    }

    /// Take one of the model feature's events. `recovered`: a `Loaded` is the reload after a lost
    /// device.
    pub fn apply(&self, e: ModelEvent, recovered: bool) {
        match e {
            ModelEvent::Progress { name: from, progress } => self.engine.update_job(|k| match k {
                JobKind::Switch { progress: p, .. } => *p = Some(progress),
                JobKind::Load { name, stages } => {
                    if !from.is_empty() {
                        *name = from;
                    }
                    *stages = job::with_progress(std::mem::take(stages), progress);
                }
                _ => {}
            }),
            ModelEvent::Loaded(m) => {
                let LoadedModel { name, info, fit, plan, plan_reason, weight_bytes, kv_bytes, context_size, from_cache, load_ms, calibration } = *m;
                crate::ui::fmt::set_model(Some(info.clone()));
                self.plan.set(plan);
                // A load starts with an f32 KV cache and f32 activations; the formats chosen
                // before it follow (`apply_chosen`).
                let (kv, act) = (self.kv.get_untracked(), self.act.get_untracked());
                self.kv.set(KvPrecision::F32);
                self.act.set(Activations::F32);
                self.pending.set(((kv != KvPrecision::F32).then_some(kv), (act != Activations::F32).then_some(act)));
                self.calibrated.set(calibration.map(|c| (c.tokens, c.seconds)));
                self.exported.set(None);
                self.plan_reason.set(plan_reason);
                self.weight_bytes.set(weight_bytes);
                self.model.set(Some(Loaded { name, info, fit, context_size, kv_bytes, from_cache, load_ms, recovered }));
                self.list_cache();
            }
            ModelEvent::KvSwitched { kv, kv_bytes } => {
                self.kv.set(kv);
                self.model.update(|m| {
                    if let Some(m) = m {
                        m.kv_bytes = kv_bytes;
                    }
                });
            }
            ModelEvent::ActivationsSwitched { act } => self.act.set(act),
            ModelEvent::ContextSet { context_size, kv_bytes, .. } => {
                self.n_ctx.set(context_size);
                self.model.update(|m| {
                    if let Some(m) = m {
                        m.context_size = context_size;
                        m.kv_bytes = kv_bytes;
                    }
                });
            }
            ModelEvent::Switched { plan, weight_bytes, ms, calibration } => {
                // The activations' format is the loaded model's, and a switch keeps it.
                self.plan.set(plan);
                self.calibrated.set(calibration.map(|c| (c.tokens, c.seconds)));
                self.weight_bytes.set(weight_bytes);
                self.last_switch_ms.set(Some(ms));
            }
            ModelEvent::ExportProgress { done, total } => self.engine.update_job(|k| {
                if let JobKind::Export { done: d, total: t } = k {
                    (*d, *t) = (done, total);
                }
            }),
            ModelEvent::Exported { url, name, bytes } => {
                super::export::save(&url, &name);
                self.exported.set(Some((name, bytes)));
            }
            ModelEvent::Cache { entries } => self.cache.set(entries),
        }
    }
}
