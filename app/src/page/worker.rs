//! The page's side of the engine worker: starts it, sends it messages, and holds the one job it
//! runs for the page ([`Engine::job`]) with what every feature shows while it runs. The events
//! that come back are handed to `main.rs`'s dispatch.

use std::cell::{Cell, RefCell};

use leptos::prelude::*;
use lowbit::gpu::AdapterSummary;
use lowbit::plan::Plan;
use lowbit::session::Progress;
use lowbit_app::job::{JobKind, Running};
use lowbit_app::protocol::{Control, ErrorKind, FromWorker, Job, JobId, ToWorker};
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;

/// The worker's loader script, written by Trunk next to index.html.
const WORKER_URL: &str = "./lowbit-worker_loader.js";

/// Restarts after a worker crash before the page gives up (a worker that cannot even start
/// would otherwise be restarted forever).
const MAX_RESTARTS: u32 = 3;

thread_local! {
    static WORKER: RefCell<Option<web_sys::Worker>> = const { RefCell::new(None) };
    static RESTARTS: Cell<u32> = const { Cell::new(0) };
}

/// The engine as the page sees it: the adapter, the job running, the last error.
#[derive(Clone, Copy)]
pub struct Engine {
    pub adapter: RwSignal<Option<AdapterSummary>>,
    pub error: RwSignal<Option<(ErrorKind, String)>>,
    /// The job the worker runs for the page (one at a time), with what it shows while it runs.
    pub job: RwSignal<Option<Running>>,
    next_id: RwSignal<u64>,
}

impl Engine {
    pub fn new() -> Self {
        Engine { adapter: RwSignal::new(None), error: RwSignal::new(None), job: RwSignal::new(None), next_id: RwSignal::new(1) }
    }

    /// A new id, for a job or a chat message.
    pub fn id(&self) -> u64 {
        let id = self.next_id.get_untracked();
        self.next_id.set(id + 1);
        id
    }

    /// Start `job`, shown as `kind` until its last event; nothing else starts meanwhile.
    /// Start `job` (`files`: the files it reads, sent beside it).
    pub fn start(&self, kind: JobKind, job: Job, files: &[web_sys::File]) {
        let id = self.id();
        self.error.set(None);
        self.job.set(Some(Running::new(id, kind)));
        send(&ToWorker::Job { id, job }, files);
    }

    /// Change what the running job shows.
    pub fn update_job(&self, f: impl FnOnce(&mut JobKind)) {
        self.job.update(|j| {
            if let Some(r) = j {
                f(&mut r.kind)
            }
        });
    }

    /// The running measurement reached `step`.
    pub fn step(&self, step: lowbit::session::RunStep) {
        self.job.update(|j| {
            if let Some(r) = j {
                r.stepped(step, js_sys::Date::now())
            }
        });
    }

    /// The worker took a GPU device.
    pub fn ready(&self) -> bool {
        self.adapter.with(|a| a.is_some())
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

    /// What the running job shows, when `pick` finds its kind.
    pub fn running_as<T>(&self, pick: impl Fn(&JobKind) -> Option<T>) -> Option<T> {
        self.job.with(|j| j.as_ref().and_then(|r| pick(&r.kind)))
    }

    /// The model being loaded and the latest progress of each stage.
    pub fn loading(&self) -> Option<(String, Vec<Progress>)> {
        self.running_as(|k| match k {
            JobKind::Load { name, stages } => Some((name.clone(), stages.clone())),
            _ => None,
        })
    }

    /// The precision switch in progress: its target and progress.
    pub fn switching(&self) -> Option<(Plan, Option<Progress>)> {
        self.running_as(|k| match k {
            JobKind::Switch { target, progress } => Some((*target, *progress)),
            _ => None,
        })
    }

    /// The assistant message being written.
    pub fn generating(&self) -> Option<u64> {
        self.running_as(|k| match k {
            JobKind::Reply { msg, .. } => Some(*msg),
            _ => None,
        })
    }

    /// The reply being written is reading its prompt: tokens read, of how many.
    pub fn reading(&self) -> Option<(usize, usize)> {
        self.running_as(|k| match k {
            JobKind::Reply { reading, .. } => *reading,
            _ => None,
        })
    }

    /// The quality measurement runs: the step it is at, once it scores (before, it may calibrate).
    pub fn quality_step(&self) -> Option<Option<lowbit::session::RunStep>> {
        self.job.with(|j| j.as_ref().filter(|r| matches!(r.kind, JobKind::Quality { .. })).map(|r| r.step.clone()))
    }

    /// The quality run's calibration, while it runs (before it scores): tokens done, of how many.
    pub fn quality_calibrating(&self) -> Option<(u64, u64)> {
        self.quality_step().filter(Option::is_none).and_then(|_| {
            self.running_as(|k| match k {
                JobKind::Quality { calibrating } => *calibrating,
                _ => None,
            })
        })
    }

    /// Cancel the job running if Cancel undoes it (a load, a switch, a self-test).
    pub fn cancel(&self) {
        if let Some(r) = self.job.get_untracked() {
            send(&ToWorker::Control(Control::Cancel { job: r.id }), &[]);
        }
    }

    /// Stop the reply or comparison running (what it wrote is kept).
    pub fn stop(&self) {
        if let Some(r) = self.job.get_untracked().filter(|r| r.kind.stoppable()) {
            send(&ToWorker::Control(Control::Stop { job: r.id }), &[]);
        }
    }

    /// Ask the worker something beside the job (the cache, the resources).
    pub fn control(&self, c: Control) {
        send(&ToWorker::Control(c), &[]);
    }

    /// The worker started a job of its own (the reload after a lost device): show it as a load.
    pub fn reloading(&self, job: Option<JobId>, name: String) {
        if let Some(id) = job {
            self.job.set(Some(Running::new(id, JobKind::Load { name, stages: vec![] })));
        }
    }
}

impl Default for Engine {
    fn default() -> Self {
        Self::new()
    }
}

/// Send a request to the worker (with a file beside it when given).
/// Post `msg` to the worker as `[json, file…]`.
fn send(msg: &ToWorker, files: &[web_sys::File]) {
    let Ok(json) = serde_json::to_string(msg) else { return };
    WORKER.with(|w| {
        if let Some(w) = w.borrow().as_ref() {
            let msg = js_sys::Array::of1(&JsValue::from_str(&json));
            for f in files {
                msg.push(f);
            }
            if let Err(e) = w.post_message(&msg) {
                web_sys::console::error_1(&e);
            }
        }
    });
}

/// What the page does with the worker's messages and its crashes.
pub trait Handler: Copy + 'static {
    fn on_event(self, m: FromWorker);
    /// The worker stopped (`message` says whether a fresh one is starting).
    fn on_crash(self, message: String);
}

/// Start the engine worker; a crash of the worker is shown and a fresh one started.
pub fn start_worker(h: impl Handler) {
    let opts = web_sys::WorkerOptions::new();
    opts.set_type(web_sys::WorkerType::Classic);
    let worker = match web_sys::Worker::new_with_options(WORKER_URL, &opts) {
        Ok(w) => w,
        Err(e) => return h.on_crash(format!("cannot start the engine worker: {e:?}")),
    };
    let on_message = Closure::<dyn FnMut(web_sys::MessageEvent)>::new(move |e: web_sys::MessageEvent| {
        match e.data().as_string().map(|s| serde_json::from_str::<FromWorker>(&s)) {
            Some(Ok(m)) => h.on_event(m),
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
        let restarts = RESTARTS.with(|r| {
            r.set(r.get() + 1);
            r.get()
        });
        if restarts <= MAX_RESTARTS {
            h.on_crash(format!("the engine stopped unexpectedly ({}); it was restarted: load a model again", e.message()));
            start_worker(h);
        } else {
            h.on_crash(format!("the engine keeps stopping ({}); reload the page", e.message()));
        }
    });
    worker.set_onerror(Some(on_error.as_ref().unchecked_ref()));
    on_error.forget();
    WORKER.with(|w| *w.borrow_mut() = Some(worker));
}
