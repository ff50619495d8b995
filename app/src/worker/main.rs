//! The engine worker: a dedicated Web Worker that owns the GPU device and the loaded model, so
//! the page stays responsive while a model loads or a reply is generated. It takes jobs and
//! control messages ([`ToWorker`]) and answers with [`Event`]s, each naming the job it is about
//! (see `lowbit_app::protocol`). This file holds the worker's state, its messages and the job
//! loop; each feature's jobs are in a file of their own (`model.rs`, `chat.rs`, `lab.rs`,
//! `diagnostics.rs`), a model's bytes in `download.rs` and `cache.rs`.

mod cache;
mod chat;
mod diagnostics;
mod download;
mod lab;
mod model;
mod settings;

use std::cell::{Cell, RefCell};

use js_sys::Array;
use lowbit::gpu::Gpu;
use lowbit::session::Session;
use lowbit::util::now_ms;
use lowbit::Error;
use lowbit_app::protocol::{Control, DiagnosticsEvent, ErrorKind, Event, FromWorker, Job, JobId, ModelEvent, ToWorker};
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;
use wasm_bindgen_futures::{spawn_local, JsFuture};
use web_sys::{DedicatedWorkerGlobalScope, MessageEvent};

/// Give the worker's event loop a turn (to see Cancel and Stop) at least this often.
const YIELD_MS: f64 = 50.0;

#[derive(Default)]
struct State {
    /// The device (a handle the session shares: dropping both frees it).
    gpu: Option<Gpu>,
    session: Option<Session>,
    /// The loaded model's name (what `Loaded` said).
    name: String,
    /// The job running (one at a time): the events it sends carry its id.
    job: Option<JobId>,
}

thread_local! {
    static STATE: RefCell<State> = RefCell::new(State::default());
    static CANCEL: Cell<bool> = const { Cell::new(false) };
    static STOP: Cell<bool> = const { Cell::new(false) };
}

/// A failure on its way to the page.
struct Fail(ErrorKind, String);

impl From<Error> for Fail {
    fn from(e: Error) -> Self {
        let kind = match &e {
            Error::NoAdapter | Error::RequestDevice(_) => ErrorKind::NoWebgpu,
            e if e.is_bad_file() => ErrorKind::BadFile,
            Error::TooLarge { .. } => ErrorKind::TooLarge,
            Error::ContextFull { .. } => ErrorKind::ContextFull,
            Error::OutOfMemory(_) => ErrorKind::OutOfMemory,
            Error::DeviceLost(_) => ErrorKind::DeviceLost,
            Error::Cancelled => ErrorKind::Cancelled,
            _ => ErrorKind::Internal,
        };
        Fail(kind, e.to_string())
    }
}

fn js_err(what: &str, e: JsValue) -> Fail {
    let msg = e
        .dyn_ref::<js_sys::Error>()
        .map(|e| String::from(e.message()))
        .or_else(|| e.as_string())
        .unwrap_or_else(|| format!("{e:?}"));
    Fail(ErrorKind::FetchFailed, format!("{what}: {msg}"))
}

fn scope() -> DedicatedWorkerGlobalScope {
    js_sys::global().unchecked_into()
}

/// Send an event about no job (the adapter, the cache, the resources).
fn post(ev: impl Into<Event>) {
    send(None, ev.into())
}

/// Send an event about the job running.
fn emit(ev: impl Into<Event>) {
    send(STATE.with(|s| s.borrow().job), ev.into())
}

fn send(job: Option<JobId>, event: Event) {
    match serde_json::to_string(&FromWorker { job, event }) {
        Ok(s) => {
            let _ = scope().post_message(&JsValue::from_str(&s));
        }
        Err(e) => web_sys::console::error_1(&format!("lowbit worker: cannot encode event: {e}").into()),
    }
}

fn post_err(f: Fail) {
    post(Event::Error { kind: f.0, message: f.1 });
}

fn emit_err(f: Fail) {
    emit(Event::Error { kind: f.0, message: f.1 });
}

/// Whether Cancel arrived for the job running.
fn cancelled() -> bool {
    CANCEL.with(|c| c.get())
}

/// Whether Stop arrived for the job running.
fn stopped() -> bool {
    STOP.with(|c| c.get())
}

/// Let the event loop run (a resolved-after-0-ms timer).
async fn yield_now() {
    let p = js_sys::Promise::new(&mut |resolve, _| {
        let _ = scope().set_timeout_with_callback_and_timeout_and_arguments_0(&resolve, 0);
    });
    let _ = JsFuture::from(p).await;
}

/// Yields when `last` is more than [`YIELD_MS`] ago, then fails if Cancel arrived.
async fn checkpoint(last: &mut f64) -> Result<(), Fail> {
    if now_ms() - *last > YIELD_MS {
        yield_now().await;
        *last = now_ms();
    }
    if cancelled() {
        return Err(Fail::cancelled());
    }
    Ok(())
}

impl Fail {
    fn cancelled() -> Self {
        Fail(ErrorKind::Cancelled, "cancelled".into())
    }
}

fn main() {
    console_error_panic_hook::set_once();
    let on_message = Closure::<dyn FnMut(MessageEvent)>::new(|e: MessageEvent| {
        let data = e.data();
        let (json, files) = match data.dyn_ref::<Array>() {
            Some(a) => (a.get(0).as_string(), a.iter().skip(1).filter_map(|f| f.dyn_into::<web_sys::File>().ok()).collect()),
            None => (data.as_string(), vec![]),
        };
        match json.as_deref().map(serde_json::from_str::<ToWorker>) {
            Some(Ok(ToWorker::Control(c))) => control(c),
            Some(Ok(ToWorker::Job { id, job })) => start(id, job, files),
            _ => post_err(Fail(ErrorKind::Internal, "unreadable request".into())),
        }
    });
    scope().set_onmessage(Some(on_message.as_ref().unchecked_ref()));
    on_message.forget();
    spawn_local(async {
        match Gpu::new().await {
            Ok(gpu) => {
                post(Event::Ready { adapter: gpu.info.clone() });
                STATE.with(|s| s.borrow_mut().gpu = Some(gpu));
            }
            Err(e) => post_err(Fail(ErrorKind::NoWebgpu, e.to_string())),
        }
    });
}

/// The job running now, if it is `job`.
fn is_running(job: JobId) -> bool {
    STATE.with(|s| s.borrow().job == Some(job))
}

fn control(c: Control) {
    match c {
        Control::Cancel { job } if is_running(job) => CANCEL.with(|c| c.set(true)),
        Control::Stop { job } if is_running(job) => STOP.with(|c| c.set(true)),
        Control::Cancel { .. } | Control::Stop { .. } => {}
        Control::ListCache => spawn_local(async {
            match cache::list_cache().await {
                Ok(entries) => post(ModelEvent::Cache { entries }),
                Err(f) => post_err(f),
            }
        }),
        Control::DeleteCache { key } => spawn_local(async move {
            let r = async {
                cache::delete(&key).await?;
                cache::list_cache().await
            };
            match r.await {
                Ok(entries) => post(ModelEvent::Cache { entries }),
                Err(f) => post_err(f),
            }
        }),
        Control::Resources => {
            let live = STATE.with(|s| s.borrow().gpu.as_ref().map(|g| g.live())).unwrap_or_default();
            post(DiagnosticsEvent::Resources { devices: lowbit::gpu::live_devices(), live });
        }
    }
}

/// Run job `id`; a job sent while another runs is refused (the page sends one at a time).
fn start(id: JobId, job: Job, files: Vec<web_sys::File>) {
    if let Some(running) = STATE.with(|s| s.borrow().job) {
        let why = format!("job {id} arrived while job {running} runs: wait for the current load, switch or reply to finish");
        return send(Some(id), Event::Error { kind: ErrorKind::Busy, message: why });
    }
    STATE.with(|s| s.borrow_mut().job = Some(id));
    CANCEL.with(|c| c.set(false));
    STOP.with(|c| c.set(false));
    spawn_local(async move {
        let r = run(job, files).await;
        match r {
            Ok(()) => {}
            Err(Fail(ErrorKind::Cancelled, _)) => emit(Event::Cancelled),
            Err(f) if f.0 == ErrorKind::DeviceLost => return recover(f),
            Err(f) => emit_err(f),
        }
        STATE.with(|s| s.borrow_mut().job = None);
    });
}

/// After the device was lost: nothing on it can be used again, so ask for a new device and load
/// the same model at the same precision, KV format and context size on it. The page keeps the
/// conversation; the next reply reads it again (the old KV cache went with the device).
/// The job that found the loss ends with the error; the reload goes on under its id (announced
/// by `Reloading`), so the page shows it as a load and no other job starts meanwhile.
fn recover(f: Fail) {
    let (session, name) = STATE.with(|s| {
        let mut s = s.borrow_mut();
        s.gpu = None;
        (s.session.take(), s.name.clone())
    });
    let Some(session) = session else {
        emit_err(Fail(f.0, format!("{}; load the model again", f.1)));
        STATE.with(|s| s.borrow_mut().job = None);
        return;
    };
    // The page sets the KV format again when the model is loaded, as after any load.
    let (plan, n_ctx) = (session.plan(), session.context_size());
    // The old device goes with the session's handle (the worker's own was dropped above).
    let bytes = session.into_bytes();
    emit_err(Fail(f.0, format!("{}. lowbit is asking for a new GPU device and loading {name} again; the conversation is kept.", f.1)));
    emit(Event::Reloading { name: name.clone() });
    spawn_local(async move {
        let r = model::load(name, bytes, Some(plan), n_ctx, model::Origin::Reloaded).await;
        if let Err(f) = r {
            emit_err(Fail(f.0, format!("loading the model again on a new GPU device failed: {}", f.1)));
        }
        STATE.with(|s| s.borrow_mut().job = None);
    });
}


fn session_gpu() -> Option<Gpu> {
    STATE.with(|s| s.borrow().gpu.clone())
}

/// Lend the loaded session to `f`; it goes back to the worker's state whatever `f` returns.
async fn with_session<T>(f: impl AsyncFnOnce(&mut Session) -> Result<T, Fail>) -> Result<T, Fail> {
    let mut session = STATE
        .with(|s| s.borrow_mut().session.take())
        .ok_or_else(|| Fail(ErrorKind::Internal, "no model is loaded".into()))?;
    if session.gpu().is_lost() {
        let e = session.gpu().check().err().map(Fail::from);
        STATE.with(|s| s.borrow_mut().session = Some(session));
        return Err(e.unwrap_or_else(|| Fail(ErrorKind::DeviceLost, "the GPU device was lost".into())));
    }
    let r = f(&mut session).await;
    STATE.with(|s| s.borrow_mut().session = Some(session));
    r
}


async fn gpu() -> Result<Gpu, Fail> {
    if let Some(g) = session_gpu() {
        return Ok(g);
    }
    let g = Gpu::new().await?;
    STATE.with(|s| s.borrow_mut().gpu = Some(g.clone()));
    Ok(g)
}


/// Run one job, by feature.
async fn run(job: Job, files: Vec<web_sys::File>) -> Result<(), Fail> {
    match job {
        Job::Model(j) => model::run(j, files).await,
        Job::Chat(j) => chat::run(j).await,
        Job::Lab(j) => lab::run(j).await,
        Job::Diagnostics(j) => diagnostics::run(j).await,
    }
}

/// The loaded model's name.
fn model_name() -> String {
    STATE.with(|s| s.borrow().name.clone())
}

/// The model just loaded (`name`, as `Loaded` said) replaces the one before.
fn set_model(name: String, session: Session) {
    STATE.with(|s| {
        let mut s = s.borrow_mut();
        s.name = name;
        s.session = Some(session);
    });
}
