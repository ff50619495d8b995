//! The page's side of the engine worker: starts it, starts [`Job`]s (one at a time: [`Store::job`])
//! and turns the worker's [`Event`]s into changes of the page's state ([`Store`]).

use std::cell::RefCell;

use leptos::prelude::*;
use lowbit::chat::Message;
use lowbit::gpu::{AdapterSummary, Live};
use lowbit::quality::Quality;
use lowbit::sampler::SamplerConfig;
use lowbit::session::{Fit, ModelInfo, Progress, ReplyStats};
use lowbit::plan::{Plan, Variant};
use lowbit::KvPrecision;
use lowbit::bench::{DecodeProfile, ModelBench};
use lowbit::inspect::{Inspection, LayerErrors, TensorEntry};
use lowbit::lockstep::{CompareSettings, CompareStep, LaneSummary, Mode};
use lowbit_app::job::{self, JobKind, Running};
use lowbit_app::protocol::{CachedModel, Control, ErrorKind, Event, FromWorker, Job, JobId, ToWorker};
use lowbit_app::share::Shared;
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;

/// The worker's loader script, written by Trunk next to index.html.
const WORKER_URL: &str = "./lowbit-worker_loader.js";
/// Tokens the KV cache holds room for, unless the user chooses another size.
pub const N_CTX: usize = 2048;
/// The context sizes the page offers.
pub const CONTEXT_SIZES: [usize; 7] = [256, 512, 1024, 2048, 4096, 8192, 16384];

/// Restarts after a worker crash before the page gives up (a worker that cannot even start
/// would otherwise be restarted forever).
const MAX_RESTARTS: u32 = 3;

thread_local! {
    /// The owner the page's [`Store`] was made under (the app's root).
    static ROOT: RefCell<Option<Owner>> = const { RefCell::new(None) };
    static WORKER: RefCell<Option<web_sys::Worker>> = const { RefCell::new(None) };
    static RESTARTS: std::cell::Cell<u32> = const { std::cell::Cell::new(0) };
}

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

/// Max tokens of a reply by default, and on a software GPU.
pub const DEFAULT_MAX_TOKENS: usize = 256;
pub const FALLBACK_MAX_TOKENS: usize = 128;

/// One chat message. The assistant's text streams into `text`.
#[derive(Clone, Debug)]
pub struct ChatMsg {
    pub id: u64,
    pub role: &'static str,
    pub text: RwSignal<String>,
    /// The precisions and the KV cache format that produced an assistant message.
    pub plan: Option<Plan>,
    pub kv: Option<KvPrecision>,
    pub done: RwSignal<bool>,
    pub stats: RwSignal<Option<ReplyStats>>,
    pub stopped: RwSignal<bool>,
}

impl ChatMsg {
    /// Its signals belong to the page's root, not to whatever created the message: a message
    /// made by a button inside another message (Regenerate) must outlive that message's view.
    pub(crate) fn new(id: u64, role: &'static str, text: &str, plan: Option<Plan>, kv: Option<KvPrecision>, done: bool) -> Self {
        let make = || ChatMsg {
            id,
            role,
            text: RwSignal::new(text.to_string()),
            plan,
            kv,
            done: RwSignal::new(done),
            stats: RwSignal::new(None),
            stopped: RwSignal::new(false),
        };
        match ROOT.with(|r| r.borrow().clone()) {
            Some(owner) => owner.with(make),
            None => make(),
        }
    }
}

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

/// Everything the page shows, as signals.
#[derive(Clone, Copy)]
pub struct Store {
    pub adapter: RwSignal<Option<AdapterSummary>>,
    pub error: RwSignal<Option<(ErrorKind, String)>>,
    /// The job the worker runs for the page (one at a time), with what it shows while it runs.
    pub job: RwSignal<Option<Running>>,
    pub model: RwSignal<Option<Loaded>>,
    /// The active precisions (the ones the next load uses when no model is loaded).
    pub plan: RwSignal<Plan>,
    /// The user chose `plan` (a precision button, a shared link): loads use it. Until then each
    /// file loads at its own suggested precision.
    pub plan_chosen: RwSignal<bool>,
    /// Why the loaded file chose its precision (when the user had not).
    pub plan_reason: RwSignal<Option<String>>,
    pub weight_bytes: RwSignal<u64>,
    /// How the KV cache is stored, and its bytes.
    pub kv: RwSignal<KvPrecision>,
    /// Tokens the KV cache holds room for (the next load's, or the loaded model's).
    pub n_ctx: RwSignal<usize>,
    pub last_switch_ms: RwSignal<Option<f64>>,
    pub messages: RwSignal<Vec<ChatMsg>>,
    pub system_prompt: RwSignal<String>,
    pub sampling: RwSignal<SamplerConfig>,
    pub max_tokens: RwSignal<usize>,
    pub last_stats: RwSignal<Option<ReplyStats>>,
    /// The last reply's measured speed, kept across switches: (plan, decode tok/s, prefill tok/s).
    pub speed: RwSignal<Option<(Plan, f64, f64)>>,
    /// Tokens so far and the decode rate of the reply being generated.
    pub live: RwSignal<Option<(usize, f64)>>,
    /// What the user is writing in the chat input.
    pub draft: RwSignal<String>,
    /// The user message being edited (sending replaces it and what follows).
    pub editing: RwSignal<Option<u64>>,
    /// How many of the oldest messages the last reply's model did not read (the conversation
    /// outgrew the context).
    pub forgotten: RwSignal<usize>,
    /// The ids of the messages the reply being generated was asked with (system prompt aside).
    sent: RwSignal<Vec<u64>>,
    pub cache: RwSignal<Vec<CachedModel>>,
    /// The quality measurement's last result.
    pub quality: RwSignal<Option<(usize, Vec<Quality>)>>,
    pub compare_form: CompareForm,
    pub compare: RwSignal<Option<CompareRun>>,
    /// A shared link asked for a comparison: run it once a model is loaded.
    pub compare_pending: RwSignal<bool>,
    pub profiles: RwSignal<Vec<DecodeProfile>>,
    /// The benchmark's prompt and decode lengths, and its last result.
    pub bench_tokens: (RwSignal<usize>, RwSignal<usize>),
    pub bench: RwSignal<Option<ModelBench>>,
    pub tensors: RwSignal<Vec<TensorEntry>>,
    pub inspection: RwSignal<Option<Inspection>>,
    pub layer_errors: RwSignal<Option<LayerErrors>>,
    next_id: RwSignal<u64>,
    /// The conversation on screen as saved (`saved.rs`): its id and when it was started.
    pub chat_id: RwSignal<String>,
    pub chat_created_ms: RwSignal<f64>,
    /// Every saved chat, the most recent first.
    pub chats: RwSignal<Vec<lowbit_app::history::SavedChat>>,
    /// Whether the browser keeps this site's storage, the bytes used and the quota.
    pub storage: RwSignal<Option<(bool, f64, f64)>>,
    /// What the last import, export or save said.
    pub history_note: RwSignal<Option<String>>,
    /// The worker's GPU devices and buffers, when last counted (Diagnostics).
    pub resources: RwSignal<Option<(usize, Live)>>,
}

impl Store {
    pub fn new() -> Self {
        ROOT.with(|r| *r.borrow_mut() = Owner::current());
        Store {
            adapter: RwSignal::new(None),
            error: RwSignal::new(None),
            job: RwSignal::new(None),
            model: RwSignal::new(None),
            plan: RwSignal::new(Plan::uniform(lowbit::Precision::Fp16)),
            plan_chosen: RwSignal::new(false),
            plan_reason: RwSignal::new(None),
            weight_bytes: RwSignal::new(0),
            kv: RwSignal::new(KvPrecision::F32),
            n_ctx: RwSignal::new(N_CTX),
            last_switch_ms: RwSignal::new(None),
            messages: RwSignal::new(vec![]),
            system_prompt: RwSignal::new("You are a helpful assistant.".into()),
            sampling: RwSignal::new(SamplerConfig {
                temperature: 0.2,
                top_k: 40,
                top_p: 0.95,
                min_p: 0.05,
                repetition_penalty: 1.1,
                repeat_last_n: 64,
                seed: 42,
            }),
            max_tokens: RwSignal::new(DEFAULT_MAX_TOKENS),
            last_stats: RwSignal::new(None),
            speed: RwSignal::new(None),
            live: RwSignal::new(None),
            draft: RwSignal::new(String::new()),
            editing: RwSignal::new(None),
            forgotten: RwSignal::new(0),
            sent: RwSignal::new(vec![]),
            cache: RwSignal::new(vec![]),
            quality: RwSignal::new(None),
            compare_form: CompareForm {
                prompt: RwSignal::new("Explain in one sentence why the sky is blue.".into()),
                chat: RwSignal::new(true),
                mode: RwSignal::new(Mode::SameContext),
                max_tokens: RwSignal::new(16),
                lanes: RwSignal::new(vec![lowbit::Precision::Int8.into(), lowbit::Precision::Int4.into()]),
            },
            compare: RwSignal::new(None),
            compare_pending: RwSignal::new(false),
            profiles: RwSignal::new(vec![]),
            bench_tokens: (RwSignal::new(128), RwSignal::new(64)),
            bench: RwSignal::new(None),
            tensors: RwSignal::new(vec![]),
            inspection: RwSignal::new(None),
            layer_errors: RwSignal::new(None),
            next_id: RwSignal::new(1),
            chat_id: RwSignal::new(crate::saved::new_chat_id()),
            chat_created_ms: RwSignal::new(js_sys::Date::now()),
            chats: RwSignal::new(vec![]),
            storage: RwSignal::new(None),
            history_note: RwSignal::new(None),
            resources: RwSignal::new(None),
        }
    }

    pub(crate) fn id(&self) -> u64 {
        let id = self.next_id.get_untracked();
        self.next_id.set(id + 1);
        id
    }

    /// The model can take a chat message now.
    pub fn can_chat(&self) -> bool {
        self.model.get().is_some() && !self.busy()
    }

    /// A job is pending (Leptos's `Action::pending`): controls that need the engine wait.
    pub fn busy(&self) -> bool {
        self.job.with(|j| j.is_some())
    }

    /// Why controls that need the engine are disabled now (their tooltip), if they are.
    pub fn busy_reason(&self) -> Option<&'static str> {
        self.job.with(|j| j.as_ref().map(|r| r.kind.busy_reason()))
    }

    /// Whether the job running is one `is` accepts.
    pub fn running(&self, is: impl Fn(&JobKind) -> bool) -> bool {
        self.job.with(|j| j.as_ref().is_some_and(|r| is(&r.kind)))
    }

    /// The model being loaded and the latest progress of each stage.
    pub fn loading(&self) -> Option<(String, Vec<Progress>)> {
        self.job.with(|j| match j.as_ref().map(|r| &r.kind) {
            Some(JobKind::Load { name, stages }) => Some((name.clone(), stages.clone())),
            _ => None,
        })
    }

    /// The precision switch in progress: its target and progress.
    pub fn switching(&self) -> Option<(Plan, Option<Progress>)> {
        self.job.with(|j| match j.as_ref().map(|r| &r.kind) {
            Some(JobKind::Switch { target, progress }) => Some((*target, *progress)),
            _ => None,
        })
    }

    /// The assistant message being written.
    pub fn generating(&self) -> Option<u64> {
        self.job.with(|j| match j.as_ref().map(|r| &r.kind) {
            Some(JobKind::Reply { msg, .. }) => Some(*msg),
            _ => None,
        })
    }

    /// The reply being written is reading its prompt: tokens read, of how many.
    pub fn reading(&self) -> Option<(usize, usize)> {
        self.job.with(|j| match j.as_ref().map(|r| &r.kind) {
            Some(JobKind::Reply { reading, .. }) => *reading,
            _ => None,
        })
    }

    /// The quality measurement runs (at which variant, once it has reached one).
    pub fn quality_at(&self) -> Option<Option<Variant>> {
        self.job.with(|j| match j.as_ref().map(|r| &r.kind) {
            Some(JobKind::Quality { at }) => Some(*at),
            _ => None,
        })
    }

    /// Start `job`, shown as `kind` until its last event; nothing else starts meanwhile.
    fn start(&self, kind: JobKind, job: Job, file: Option<&web_sys::File>) {
        let id = self.id();
        self.error.set(None);
        self.job.set(Some(Running { id, kind }));
        send(&ToWorker::Job { id, job }, file);
    }

    /// Change what the running job shows.
    fn update_job(&self, f: impl FnOnce(&mut JobKind)) {
        self.job.update(|j| {
            if let Some(r) = j {
                f(&mut r.kind)
            }
        });
    }

    /// Each layer's output error at INT8, INT4 (and the current variant) vs FP16 on `text`.
    pub fn measure_layers(&self, text: &str, max_tokens: usize) {
        if !self.can_chat() {
            return;
        }
        let mut variants: Vec<Variant> = vec![lowbit::Precision::Int8.into(), lowbit::Precision::Int4.into()];
        let current = Variant { plan: self.plan.get_untracked(), kv: self.kv.get_untracked() };
        if current != Variant::REFERENCE && !variants.contains(&current) {
            variants.push(current);
        }
        self.start(JobKind::Layers, Job::LayerErrors { text: text.to_string(), max_tokens, variants }, None);
    }

    /// Profile one decode step at the current plan.
    pub fn profile(&self) {
        if !self.can_chat() {
            return;
        }
        self.start(JobKind::Profile, Job::Profile, None);
    }

    /// Benchmark the loaded model at FP16, INT8 and INT4 (prefill and greedy decode).
    pub fn run_bench(&self) {
        let Some(name) = self.model.get_untracked().map(|m| m.name) else { return };
        if !self.can_chat() {
            return;
        }
        let precisions = vec![lowbit::Precision::Fp16, lowbit::Precision::Int8, lowbit::Precision::Int4];
        let (prompt_tokens, decode_tokens) = (self.bench_tokens.0.get_untracked(), self.bench_tokens.1.get_untracked());
        self.start(JobKind::Bench, Job::Bench { name, precisions, prompt_tokens, decode_tokens }, None);
    }

    pub fn inspect(&self, tensor: &str) {
        if !self.can_chat() || tensor.is_empty() {
            return;
        }
        self.start(JobKind::Inspect, Job::Inspect { tensor: tensor.to_string() }, None);
    }

    /// The comparison the form describes, with the chat's system prompt and sampling settings.
    pub fn compare_settings(&self) -> CompareSettings {
        let f = self.compare_form;
        CompareSettings {
            prompt: f.prompt.get_untracked(),
            chat: f.chat.get_untracked(),
            system: self.system_prompt.get_untracked(),
            sampling: self.sampling.get_untracked(),
            max_tokens: f.max_tokens.get_untracked(),
            lanes: f.lanes.get_untracked(),
            mode: f.mode.get_untracked(),
        }
    }

    /// What a shared link of the current form holds.
    pub fn shared(&self) -> Shared {
        Shared { settings: self.compare_settings(), plan: self.plan.get_untracked(), kv: self.kv.get_untracked() }
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
        self.kv.set(sh.kv);
        self.system_prompt.set(s.system);
        self.sampling.set(s.sampling);
        self.plan.set(sh.plan);
        self.plan_chosen.set(true);
        self.compare_pending.set(true);
    }

    /// Run the form's comparison.
    pub fn run_compare(&self) {
        if !self.can_chat() {
            return;
        }
        let settings = self.compare_settings();
        if settings.prompt.trim().is_empty() {
            return;
        }
        self.compare_pending.set(false);
        self.compare.set(Some(CompareRun {
            settings: settings.clone(),
            lanes: vec![],
            prompt_tokens: 0,
            weight_bytes: vec![],
            steps: vec![],
            summaries: None,
            stopped: false,
        }));
        self.start(JobKind::Compare, Job::Compare { settings }, None);
    }

    // ---- actions ----------------------------------------------------------------------------

    pub fn load_url(&self, url: &str) {
        let name = lowbit::util::url_file_name(url).to_string();
        let job = Job::LoadUrl { url: url.to_string(), name: name.clone(), plan: self.load_plan(), n_ctx: self.n_ctx.get_untracked() };
        self.start(JobKind::Load { name, stages: vec![] }, job, None);
    }

    pub fn load_file(&self, file: web_sys::File) {
        let name = file.name();
        let job = Job::LoadFile { name: name.clone(), plan: self.load_plan(), n_ctx: self.n_ctx.get_untracked() };
        self.start(JobKind::Load { name, stages: vec![] }, job, Some(&file));
    }

    pub fn load_cached(&self, c: &CachedModel) {
        let job = Job::LoadCached { key: c.key.clone(), plan: self.load_plan(), n_ctx: self.n_ctx.get_untracked() };
        self.start(JobKind::Load { name: c.name.clone(), stages: vec![] }, job, None);
    }

    /// The plan a load asks for: the user's choice, else none (the file suggests one).
    fn load_plan(&self) -> Option<Plan> {
        self.plan_chosen.get_untracked().then(|| self.plan.get_untracked())
    }

    /// Cancel the load or switch running (the model before it stays).
    pub fn cancel(&self) {
        if let Some(r) = self.job.get_untracked() {
            send(&ToWorker::Control(Control::Cancel { job: r.id }), None);
        }
    }

    pub fn set_plan(&self, plan: Plan) {
        if self.model.get_untracked().is_none() {
            self.plan.set(plan);
            self.plan_chosen.set(true);
            return;
        }
        if plan == self.plan.get_untracked() || self.busy() {
            return;
        }
        self.plan_chosen.set(true);
        self.plan_reason.set(None);
        self.start(JobKind::Switch { target: plan, progress: None }, Job::SetPrecision { plan }, None);
    }

    /// Store the KV cache as `kv` (applied after the next load when no model is loaded).
    pub fn set_kv(&self, kv: KvPrecision) {
        if self.model.get_untracked().is_none() {
            self.kv.set(kv);
            return;
        }
        if kv == self.kv.get_untracked() || self.busy() {
            return;
        }
        self.start(JobKind::Kv, Job::SetKv { kv }, None);
    }

    /// Make the KV cache hold `n` tokens (applied at the next load when no model is loaded).
    pub fn set_context(&self, n: usize) {
        if self.model.get_untracked().is_none() {
            self.n_ctx.set(n);
            return;
        }
        if self.model.get_untracked().is_some_and(|m| m.context_size == n) || self.busy() {
            return;
        }
        self.start(JobKind::Kv, Job::SetContext { n_ctx: n }, None);
    }

    /// Send the user's text and start the assistant's reply.
    pub fn send_message(&self, text: &str) {
        let text = text.trim();
        if text.is_empty() || !self.can_chat() {
            return;
        }
        if let Some(edited) = self.editing.get_untracked() {
            self.messages.update(|m| {
                if let Some(at) = m.iter().position(|c| c.id == edited) {
                    m.truncate(at);
                }
            });
            self.editing.set(None);
        }
        let id = self.id();
        self.messages.update(|m| m.push(ChatMsg::new(id, "user", text, None, None, true)));
        self.save_chat();
        self.start_reply();
    }

    /// Generate a new assistant message for the conversation as it stands.
    fn start_reply(&self) {
        let id = self.id();
        let plan = self.plan.get_untracked();
        let mut history = vec![];
        let system = self.system_prompt.get_untracked();
        if !system.trim().is_empty() {
            history.push(Message::new("system", system.trim()));
        }
        let mut sent = vec![];
        self.messages.with_untracked(|m| {
            // A reply stopped before its first token says nothing: the model sees neither it nor
            // the question it did not answer (templates want user and assistant turns to alternate).
            for (i, c) in m.iter().enumerate() {
                let text = c.text.get_untracked();
                let unanswered = |j: usize| m.get(j).is_some_and(|n| n.role == "assistant" && n.text.with_untracked(|t| t.is_empty()));
                if (c.role == "assistant" && text.is_empty()) || (c.role == "user" && unanswered(i + 1)) {
                    continue;
                }
                history.push(Message::new(c.role, &text));
                sent.push(c.id);
            }
        });
        self.sent.set(sent);
        self.messages.update(|m| m.push(ChatMsg::new(id, "assistant", "", Some(plan), Some(self.kv.get_untracked()), false)));
        self.live.set(None);
        let job = Job::Chat { messages: history, sampling: self.sampling.get_untracked(), max_tokens: self.max_tokens.get_untracked() };
        self.start(JobKind::Reply { msg: id, reading: None }, job, None);
    }

    /// Stop the reply or comparison running (what it wrote is kept).
    pub fn stop(&self) {
        if let Some(r) = self.job.get_untracked().filter(|r| r.kind.stoppable()) {
            send(&ToWorker::Control(Control::Stop { job: r.id }), None);
        }
    }

    /// Replace the last assistant message with a new reply.
    pub fn regenerate(&self) {
        if let Some(id) = self.messages.with_untracked(|m| m.last().filter(|c| c.role == "assistant").map(|c| c.id)) {
            self.regenerate_at(id);
        }
    }

    /// Write the assistant message `id` again: it and every message after it are replaced by a
    /// new reply to the conversation before it.
    pub fn regenerate_at(&self, id: u64) {
        if !self.can_chat() {
            return;
        }
        let Some(at) = self.messages.with_untracked(|m| m.iter().position(|c| c.id == id && c.role == "assistant")) else { return };
        self.messages.update(|m| m.truncate(at));
        self.editing.set(None);
        self.start_reply();
    }

    /// Put the user message `id` into the input to be changed; sending it replaces that message
    /// and everything after it.
    pub fn edit(&self, id: u64) {
        let Some(text) = self.messages.with_untracked(|m| m.iter().find(|c| c.id == id && c.role == "user").map(|c| c.text.get_untracked())) else {
            return;
        };
        self.draft.set(text);
        self.editing.set(Some(id));
    }

    pub fn new_chat(&self) {
        if self.running(|k| matches!(k, JobKind::Reply { .. })) {
            return;
        }
        // The conversation on screen is saved already; the next message starts another.
        self.chat_id.set(crate::saved::new_chat_id());
        self.chat_created_ms.set(js_sys::Date::now());
        self.messages.set(vec![]);
        self.editing.set(None);
        self.forgotten.set(0);
        self.last_stats.set(None);
    }

    /// Measure the quality of FP16, INT8, INT4 (and the current plan when it is mixed) on `text`.
    pub fn measure_quality(&self, text: &str, max_tokens: usize) {
        if !self.can_chat() {
            return;
        }
        let mut plans = lowbit::quality::uniform_plans();
        let current = Variant { plan: self.plan.get_untracked(), kv: self.kv.get_untracked() };
        if !plans.contains(&current) {
            plans.push(current);
        }
        self.start(JobKind::Quality { at: None }, Job::Quality { text: text.to_string(), max_tokens, plans }, None);
    }

    pub fn delete_cached(&self, key: &str) {
        send(&ToWorker::Control(Control::DeleteCache { key: key.to_string() }), None);
    }

    // ---- events -----------------------------------------------------------------------------

    /// Take an event: one about a job the page no longer runs is dropped; the last event of the
    /// running job ends it before it is handled (so a handler may start the next job).
    fn on_event(&self, m: FromWorker) {
        let FromWorker { job, event } = m;
        let running = self.job.get_untracked();
        if !job::accepts(running.as_ref(), job, &event) {
            return;
        }
        let mine = running.filter(|r| Some(r.id) == job).map(|r| r.kind);
        let last = job.is_some() && job::is_last(&event);
        if last {
            self.job.set(None);
        }
        self.handle(event, job, mine);
        if last {
            self.count_resources();
        }
    }

    /// `job`: the id the event came with; `mine`: the job it is about, as the page started it.
    fn handle(&self, ev: Event, job: Option<JobId>, mine: Option<JobKind>) {
        let reply_msg = match &mine {
            Some(JobKind::Reply { msg, .. }) => Some(*msg),
            _ => None,
        };
        match ev {
            Event::Ready { adapter } => {
                // A software GPU writes a few tokens a second: a shorter default reply (the field
                // beside the input changes it).
                if adapter.is_fallback && self.max_tokens.get_untracked() == DEFAULT_MAX_TOKENS {
                    self.max_tokens.set(FALLBACK_MAX_TOKENS);
                }
                self.adapter.set(Some(adapter));
                send(&ToWorker::Control(Control::ListCache), None);
                self.count_resources();
            }
            Event::Progress { name: from, progress } => self.update_job(|k| match k {
                JobKind::Switch { progress: p, .. } => *p = Some(progress),
                JobKind::Load { name, stages } => {
                    if !from.is_empty() {
                        *name = from;
                    }
                    *stages = job::with_progress(std::mem::take(stages), progress);
                }
                _ => {}
            }),
            Event::Reloading { name } => {
                if let Some(id) = job {
                    self.job.set(Some(Running { id, kind: JobKind::Load { name, stages: vec![] } }));
                }
            }
            Event::Resources { devices, live } => self.resources.set(Some((devices, live))),
            Event::Loaded { name, info, fit, plan, plan_reason, weight_bytes, kv_bytes, context_size, from_cache, load_ms } => {
                self.plan.set(plan);
                self.plan_reason.set(plan_reason);
                self.weight_bytes.set(weight_bytes);
                // The worker reloads the model by itself after a lost device: the banner that
                // said so has done its work.
                let recovered = self.error.get_untracked().is_some_and(|(k, _)| k == ErrorKind::DeviceLost);
                if recovered {
                    self.error.set(None);
                }
                self.model.set(Some(Loaded { name, info, fit, context_size, kv_bytes, from_cache, load_ms, recovered }));
                self.quality.set(None);
                self.compare.set(None);
                self.profiles.set(vec![]);
                self.bench.set(None);
                self.inspection.set(None);
                self.layer_errors.set(None);
                // The conversation stays (New chat clears it): the new model reads it from the
                // start with the next message.
                self.last_stats.set(None);
                self.forgotten.set(0);
                send(&ToWorker::Control(Control::ListCache), None);
                // A KV format chosen before the load (or by a shared link) applies now.
                if self.kv.get_untracked() != KvPrecision::F32 {
                    let kv = self.kv.get_untracked();
                    self.kv.set(KvPrecision::F32);
                    self.set_kv(kv);
                }
                if self.compare_pending.get_untracked() {
                    self.run_compare();
                }
            }
            Event::KvSwitched { kv, kv_bytes } => {
                self.kv.set(kv);
                self.model.update(|m| {
                    if let Some(m) = m {
                        m.kv_bytes = kv_bytes;
                    }
                });
                self.last_stats.set(None);
                if self.compare_pending.get_untracked() {
                    self.run_compare();
                }
            }
            Event::ContextSet { context_size, kv_bytes, context_used } => {
                self.n_ctx.set(context_size);
                self.model.update(|m| {
                    if let Some(m) = m {
                        m.context_size = context_size;
                        m.kv_bytes = kv_bytes;
                    }
                });
                self.last_stats.update(|s| {
                    if let Some(s) = s {
                        s.context_used = context_used;
                        s.context_size = context_size;
                    }
                });
            }
            Event::Switched { plan, weight_bytes, ms } => {
                self.plan.set(plan);
                self.weight_bytes.set(weight_bytes);
                self.last_switch_ms.set(Some(ms));
            }
            Event::Reading { done, total } => self.update_job(|k| {
                if let JobKind::Reply { reading, .. } = k {
                    *reading = Some((done, total));
                }
            }),
            Event::Token { text, tokens, decode_tps } => {
                self.update_job(|k| {
                    if let JobKind::Reply { reading, .. } = k {
                        *reading = None;
                    }
                });
                if let (Some(id), false) = (reply_msg, text.is_empty()) {
                    self.with_msg(id, |m| m.text.update(|t| t.push_str(&text)));
                }
                self.live.set(Some((tokens, decode_tps)));
            }
            Event::ReplyDone { stats, stopped } => {
                let Some(id) = reply_msg else { return };
                self.with_msg(id, |m| {
                    m.stats.set(Some(stats.clone()));
                    m.stopped.set(stopped);
                    m.done.set(true);
                });
                // The first message the model read, and every message before it is out of context.
                let first_read = self.sent.with_untracked(|s| s.get(stats.dropped_messages).copied());
                let before = self.messages.with_untracked(|m| first_read.and_then(|f| m.iter().position(|c| c.id == f)).unwrap_or(0));
                self.forgotten.set(if stats.dropped_messages > 0 { before } else { 0 });
                if stats.generated_tokens >= 2 {
                    self.speed.set(Some((stats.plan.unwrap_or(self.plan.get_untracked()), stats.decode_tokens_per_second, stats.prefill_tokens_per_second)));
                }
                self.last_stats.set(Some(stats));
                self.save_chat();
            }
            Event::Cache { entries } => self.cache.set(entries),
            Event::QualityProgress { plan } => self.update_job(|k| {
                if let JobKind::Quality { at } = k {
                    *at = Some(plan);
                }
            }),
            Event::QualityDone { n_tokens, rows } => {
                // The engine gave the conversation its KV cache back: the context bar stands.
                self.quality.set(Some((n_tokens, rows)));
            }
            Event::CompareStarted { lanes, prompt_tokens, weight_bytes } => self.compare.update(|c| {
                if let Some(c) = c {
                    c.lanes = lanes;
                    c.prompt_tokens = prompt_tokens;
                    c.weight_bytes = weight_bytes;
                }
            }),
            Event::CompareStep { step } => self.compare.update(|c| {
                if let Some(c) = c {
                    c.steps.push(step);
                }
            }),
            Event::CompareDone { summaries, stopped } => {
                self.compare.update(|c| {
                    if let Some(c) = c {
                        c.summaries = Some(summaries);
                        c.stopped = stopped;
                    }
                });
            }
            Event::Profile { profile } => {
                // Keep the latest profile of each plan.
                self.profiles.update(|v| {
                    v.retain(|p| p.plan != profile.plan);
                    v.push(profile);
                });
            }
            Event::Bench { bench } => self.bench.set(Some(bench)),
            Event::Tensors { tensors } => self.tensors.set(tensors),
            Event::LayerErrors { errors } => self.layer_errors.set(Some(errors)),
            Event::Inspection { inspection } => self.inspection.set(Some(inspection)),
            // A load that got past parsing has cached its file: show the cache as it is now.
            Event::Cancelled => send(&ToWorker::Control(Control::ListCache), None),
            Event::Error { kind, message } => {
                self.ended(mine);
                self.show_error(kind, message);
                send(&ToWorker::Control(Control::ListCache), None);
            }
        }
    }

    fn with_msg(&self, id: u64, f: impl FnOnce(&ChatMsg)) {
        self.messages.with_untracked(|m| {
            if let Some(msg) = m.iter().find(|c| c.id == id) {
                f(msg)
            }
        });
    }

    /// Destroy the GPU device (Diagnostics): the worker recovers as from a real loss.
    pub fn lose_device(&self) {
        if !self.busy() {
            self.start(JobKind::LoseDevice, Job::LoseDevice, None);
        }
    }

    /// Ask the worker to count its GPU devices and buffers ([`Store::resources`]).
    pub fn count_resources(&self) {
        send(&ToWorker::Control(Control::Resources), None);
    }

    /// End the running job, if any, and show an error (the worker stopped).
    pub fn fail(&self, kind: ErrorKind, message: String) {
        let running = self.job.get_untracked().map(|r| r.kind);
        self.job.set(None);
        self.ended(running);
        self.show_error(kind, message);
    }

    /// A job ended without its own last event: a reply keeps what it wrote, as written.
    fn ended(&self, kind: Option<JobKind>) {
        if let Some(JobKind::Reply { msg, .. }) = kind {
            self.with_msg(msg, |m| m.done.set(true));
            self.save_chat();
        }
    }

    fn show_error(&self, kind: ErrorKind, message: String) {
        if kind == ErrorKind::DeviceLost {
            self.model.set(None);
        }
        self.error.set(Some((kind, message)));
    }
}

impl Default for Store {
    fn default() -> Self {
        Self::new()
    }
}

/// Send a request to the worker (with a file beside it when given).
pub fn send(msg: &ToWorker, file: Option<&web_sys::File>) {
    let Ok(json) = serde_json::to_string(msg) else { return };
    WORKER.with(|w| {
        if let Some(w) = w.borrow().as_ref() {
            let msg = js_sys::Array::of2(&JsValue::from_str(&json), &file.map_or(JsValue::NULL, |f| f.into()));
            if let Err(e) = w.post_message(&msg) {
                web_sys::console::error_1(&e);
            }
        }
    });
}

/// Start the engine worker; a crash of the worker is shown and a fresh one started.
pub fn start_worker(store: Store) {
    let opts = web_sys::WorkerOptions::new();
    opts.set_type(web_sys::WorkerType::Classic);
    let worker = match web_sys::Worker::new_with_options(WORKER_URL, &opts) {
        Ok(w) => w,
        Err(e) => {
            store.fail(ErrorKind::Internal, format!("cannot start the engine worker: {e:?}"));
            return;
        }
    };
    let on_message = Closure::<dyn FnMut(web_sys::MessageEvent)>::new(move |e: web_sys::MessageEvent| {
        match e.data().as_string().map(|s| serde_json::from_str::<FromWorker>(&s)) {
            Some(Ok(m)) => store.on_event(m),
            _ => web_sys::console::error_1(&"lowbit: unreadable event from the worker".into()),
        }
    });
    worker.set_onmessage(Some(on_message.as_ref().unchecked_ref()));
    on_message.forget();
    let on_error = Closure::<dyn FnMut(web_sys::ErrorEvent)>::new(move |e: web_sys::ErrorEvent| {
        e.prevent_default();
        WORKER.with(|w| {
            if let Some(w) = w.borrow_mut().take() {
                w.terminate();
            }
        });
        store.model.set(None);
        store.adapter.set(None);
        let restarts = RESTARTS.with(|r| {
            r.set(r.get() + 1);
            r.get()
        });
        if restarts <= MAX_RESTARTS {
            store.fail(ErrorKind::Internal, format!("the engine stopped unexpectedly ({}); it was restarted: load a model again", e.message()));
            start_worker(store);
        } else {
            store.fail(ErrorKind::Internal, format!("the engine keeps stopping ({}); reload the page", e.message()));
        }
    });
    worker.set_onerror(Some(on_error.as_ref().unchecked_ref()));
    on_error.forget();
    WORKER.with(|w| *w.borrow_mut() = Some(worker));
}
