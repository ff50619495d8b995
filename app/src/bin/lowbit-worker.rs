//! The engine worker: a dedicated Web Worker that owns the GPU device and the loaded model, so
//! the page stays responsive while a model loads or a reply is generated. It takes
//! jobs and control messages ([`ToWorker`]) and answers with [`Event`]s, each naming the job it
//! is about (see `protocol.rs`).

use std::cell::{Cell, RefCell};

use js_sys::{Array, Uint8Array};
use lowbit::gpu::Gpu;
use lowbit::session::{Loader, Progress, Session, Stage};
use lowbit::util::now_ms;
use lowbit::lockstep::{CompareSettings, LockStep};
use lowbit::model::Step;
use lowbit::plan::Plan;
use lowbit::Error;
use lowbit_app::protocol::{
    blocked_host_message, download_allowed, file_too_large_message, http_status_message, CachedModel, Control, ErrorKind, Event, FromWorker, Job, JobId, ToWorker,
    LOCAL_FILE_KEY, MAX_FILE_BYTES,
};
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;
use wasm_bindgen_futures::{spawn_local, JsFuture};
use web_sys::{DedicatedWorkerGlobalScope, MessageEvent};

/// The Cache API cache holding model files.
const CACHE: &str = "lowbit-models-v1";
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
fn post(ev: &Event) {
    send(None, ev)
}

/// Send an event about the job running.
fn emit(ev: &Event) {
    send(STATE.with(|s| s.borrow().job), ev)
}

fn send(job: Option<JobId>, event: &Event) {
    match serde_json::to_string(&FromWorker { job, event: event.clone() }) {
        Ok(s) => {
            let _ = scope().post_message(&JsValue::from_str(&s));
        }
        Err(e) => web_sys::console::error_1(&format!("lowbit worker: cannot encode event: {e}").into()),
    }
}

fn post_err(f: Fail) {
    post(&Event::Error { kind: f.0, message: f.1 });
}

fn emit_err(f: Fail) {
    emit(&Event::Error { kind: f.0, message: f.1 });
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
    if CANCEL.with(|c| c.get()) {
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
        let (json, file) = match data.dyn_ref::<Array>() {
            Some(a) => (a.get(0).as_string(), a.get(1).dyn_into::<web_sys::File>().ok()),
            None => (data.as_string(), None),
        };
        match json.as_deref().map(serde_json::from_str::<ToWorker>) {
            Some(Ok(ToWorker::Control(c))) => control(c),
            Some(Ok(ToWorker::Job { id, job })) => start(id, job, file),
            _ => post_err(Fail(ErrorKind::Internal, "unreadable request".into())),
        }
    });
    scope().set_onmessage(Some(on_message.as_ref().unchecked_ref()));
    on_message.forget();
    spawn_local(async {
        match Gpu::new().await {
            Ok(gpu) => {
                post(&Event::Ready { adapter: gpu.info.clone() });
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
            match list_cache().await {
                Ok(entries) => post(&Event::Cache { entries }),
                Err(f) => post_err(f),
            }
        }),
        Control::DeleteCache { key } => spawn_local(async move {
            let r = async {
                let cache = open_cache().await?;
                JsFuture::from(cache.delete_with_str(&key)).await.map_err(|e| js_err("cache", e))?;
                list_cache().await
            };
            match r.await {
                Ok(entries) => post(&Event::Cache { entries }),
                Err(f) => post_err(f),
            }
        }),
        Control::Resources => {
            let live = STATE.with(|s| s.borrow().gpu.as_ref().map(|g| g.live())).unwrap_or_default();
            post(&Event::Resources { devices: lowbit::gpu::live_devices(), live });
        }
    }
}

/// Run job `id`; a job sent while another runs is refused (the page sends one at a time).
fn start(id: JobId, job: Job, file: Option<web_sys::File>) {
    if let Some(running) = STATE.with(|s| s.borrow().job) {
        let why = format!("job {id} arrived while job {running} runs: wait for the current load, switch or reply to finish");
        return send(Some(id), &Event::Error { kind: ErrorKind::Busy, message: why });
    }
    STATE.with(|s| s.borrow_mut().job = Some(id));
    CANCEL.with(|c| c.set(false));
    STOP.with(|c| c.set(false));
    spawn_local(async move {
        let r = run(job, file).await;
        match r {
            Ok(()) => {}
            Err(Fail(ErrorKind::Cancelled, _)) => emit(&Event::Cancelled),
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
    emit(&Event::Reloading { name: name.clone() });
    spawn_local(async move {
        let r = load(name, bytes, Some(plan), n_ctx, Origin::Reloaded).await;
        if let Err(f) = r {
            emit_err(Fail(f.0, format!("loading the model again on a new GPU device failed: {}", f.1)));
        }
        STATE.with(|s| s.borrow_mut().job = None);
    });
}

async fn run(job: Job, file: Option<web_sys::File>) -> Result<(), Fail> {
    match job {
        Job::LoadUrl { url, name, plan, n_ctx } => {
            let url = hugging_face_file_url(&url);
            match cached_bytes(&url, &name).await? {
                Some(b) => load(name, b, plan, n_ctx, Origin::Cache).await,
                None => {
                    let b = download(&url, &name).await?;
                    load(name, b, plan, n_ctx, Origin::Fetched { cache_key: url }).await
                }
            }
        }
        Job::LoadFile { name, plan, n_ctx } => {
            let file = file.ok_or_else(|| Fail(ErrorKind::Internal, "no file sent with LoadFile".into()))?;
            let bytes = read_file(&file, &name).await?;
            let cache_key = format!("{LOCAL_FILE_KEY}{}", js_sys::encode_uri_component(&name));
            load(name, bytes, plan, n_ctx, Origin::Fetched { cache_key }).await
        }
        Job::LoadCached { key, plan, n_ctx } => {
            let name = key_name(&key);
            let bytes = cached_bytes(&key, &name)
                .await?
                .ok_or_else(|| Fail(ErrorKind::FetchFailed, format!("{name} is no longer in the cache")))?;
            load(name, bytes, plan, n_ctx, Origin::Cache).await
        }
        Job::SetPrecision { plan } => switch(plan).await,
        Job::SetKv { kv } => {
            let (kv, kv_bytes) = with_session(async |s| {
                let before = s.kv();
                remake_kv(s, &format!("a {kv} KV cache"), |s| s.set_kv(kv), |s| s.set_kv(before)).await?;
                compile_kernels(s).await?;
                Ok((s.kv(), s.kv_bytes()))
            })
            .await?;
            emit(&Event::KvSwitched { kv, kv_bytes });
            Ok(())
        }
        Job::SetContext { n_ctx } => {
            let (context_size, kv_bytes, context_used) = with_session(async |s| {
                let before = s.context_size();
                remake_kv(s, &format!("a KV cache of {n_ctx} tokens"), |s| s.set_context(n_ctx), |s| s.set_context(before)).await?;
                s.gpu().check()?;
                Ok((s.context_size(), s.kv_bytes(), s.context_used()))
            })
            .await?;
            emit(&Event::ContextSet { context_size, kv_bytes, context_used });
            Ok(())
        }
        Job::Chat { messages, sampling, max_tokens } => {
            let (mut tokens, mut first_ms) = (0usize, 0.0);
            let stats = with_session(async |s| {
                let r = s
                    .reply(&messages, &sampling, max_tokens, |step| {
                        match step {
                            Step::Read { done, total } => emit(&Event::Reading { done, total }),
                            Step::Text(text) => {
                                tokens += 1;
                                if tokens == 1 {
                                    first_ms = now_ms();
                                }
                                let decode_tps = (tokens - 1) as f64 / ((now_ms() - first_ms) / 1e3).max(1e-9);
                                emit(&Event::Token { text: text.to_string(), tokens, decode_tps });
                            }
                        }
                        !STOP.with(|c| c.get())
                    })
                    .await;
                let gpu_fault = s.gpu().check();
                let (_, stats) = r?;
                gpu_fault?;
                Ok(stats)
            })
            .await?;
            emit(&Event::ReplyDone { stats, stopped: STOP.with(|c| c.get()) });
            Ok(())
        }
        Job::Compare { settings } => with_session(async |s| compare(s, settings).await).await,
        Job::Profile => {
            let profile = with_session(async |s| Ok(s.profile_decode().await?)).await?;
            emit(&Event::Profile { profile });
            Ok(())
        }
        Job::Bench { name, precisions, prompt_tokens, decode_tokens } => {
            let bench = with_session(async |s| Ok(s.bench(&name, &precisions, prompt_tokens, decode_tokens).await?)).await?;
            emit(&Event::Bench { bench });
            Ok(())
        }
        Job::Inspect { tensor } => {
            let inspection = with_session(async |s| Ok(lowbit::inspect::inspect(&s.gguf()?, &tensor, 48)?)).await?;
            emit(&Event::Inspection { inspection });
            Ok(())
        }
        Job::LayerErrors { text, max_tokens, variants } => {
            let errors = with_session(async |s| Ok(s.layer_errors(&text, max_tokens, &variants, |_| {}).await?)).await?;
            emit(&Event::LayerErrors { errors });
            Ok(())
        }
        Job::Quality { text, max_tokens, plans } => {
            let (n_tokens, rows) = with_session(async |s| {
                Ok(s.quality(&text, max_tokens, &plans, |plan| emit(&Event::QualityProgress { plan })).await?)
            })
            .await?;
            emit(&Event::QualityDone { n_tokens, rows });
            Ok(())
        }
        Job::LoseDevice => {
            let gpu = session_gpu().ok_or_else(|| Fail(ErrorKind::Internal, "no GPU device to lose".into()))?;
            gpu.destroy();
            Err(Fail(ErrorKind::DeviceLost, "the GPU device was destroyed on request (Diagnostics: simulate a lost GPU)".into()))
        }
    }
}

/// Remake the KV cache with `change` inside an out-of-memory scope; if the new one does not fit,
/// `undo` makes the one before again (it fitted).
async fn remake_kv(
    s: &mut Session,
    what: &str,
    change: impl FnOnce(&mut Session) -> lowbit::Result<()>,
    undo: impl FnOnce(&mut Session) -> lowbit::Result<()>,
) -> Result<(), Fail> {
    let oom = s.gpu().oom_scope(what);
    change(s)?;
    if let Err(e) = oom.check().await {
        undo(s)?;
        return Err(e.into());
    }
    Ok(())
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

/// Compile the kernels the session's forward pass runs now (after a precision or KV change),
/// so the next token does not stall on them.
async fn compile_kernels(session: &Session) -> Result<(), Fail> {
    let gpu = session.gpu();
    for k in session.kernels() {
        gpu.pipeline(k);
    }
    gpu.wait().await?;
    gpu.check()?;
    Ok(())
}

async fn gpu() -> Result<Gpu, Fail> {
    if let Some(g) = session_gpu() {
        return Ok(g);
    }
    let g = Gpu::new().await?;
    STATE.with(|s| s.borrow_mut().gpu = Some(g.clone()));
    Ok(g)
}

fn progress(name: &str, stage: Stage, done: u64, total: u64) {
    emit(&Event::Progress { name: name.to_string(), progress: Progress { stage, done, total } });
}

/// Where the bytes of a model came from.
enum Origin {
    Cache,
    /// The model that was loaded, again (after the device was lost).
    Reloaded,
    /// Downloaded or opened: cached under `cache_key` once the file parses.
    Fetched { cache_key: String },
}

/// Parse, requantize, upload and compile, reporting each stage; the previous model is replaced
/// only once the new one is ready (a failed or cancelled load leaves it in place).
async fn load(name: String, bytes: Vec<u8>, plan: Option<Plan>, n_ctx: usize, origin: Origin) -> Result<(), Fail> {
    let t0 = now_ms();
    let gpu = gpu().await?;
    let mut last = now_ms();
    progress(&name, Stage::Parse, 0, bytes.len() as u64);
    checkpoint(&mut last).await?;
    let n = bytes.len() as u64;
    let mut loader = Loader::new(&gpu, bytes, plan, n_ctx)?;
    progress(&name, Stage::Parse, n, n);
    // Everything the new model allocates, in one out-of-memory scope: if it does not fit, it goes
    // and the model loaded before stays (both are on the device until the new one is ready).
    let oom = gpu.oom_scope(&format!("loading {name}"));
    // Cached once it parses (a download cancelled later need not be fetched again), and taken out
    // of the cache again if a later stage finds it cannot be loaded.
    let cached = match &origin {
        Origin::Fetched { cache_key } => {
            store(cache_key, &name, loader.bytes()).await;
            Some(cache_key.clone())
        }
        _ => None,
    };
    let weights = async {
        loop {
            for p in loader.progress() {
                progress(&name, p.stage, p.done, p.total);
            }
            checkpoint(&mut last).await?;
            if !loader.step()? {
                break;
            }
        }
        for p in loader.progress() {
            progress(&name, p.stage, p.done, p.total);
        }
        Ok::<_, Fail>(())
    }
    .await;
    if let (Err(f), Some(key)) = (&weights, &cached) {
        if f.0 == ErrorKind::BadFile {
            unstore(key).await;
        }
    }
    weights?;
    let chosen = loader.plan();
    let session = loader.finish()?;
    oom.check().await?;
    let kernels = session.kernels();
    for (i, k) in kernels.iter().enumerate() {
        progress(&name, Stage::Compile, i as u64, kernels.len() as u64);
        checkpoint(&mut last).await?;
        gpu.pipeline(*k);
    }
    gpu.wait().await?;
    gpu.check()?;
    progress(&name, Stage::Compile, kernels.len() as u64, kernels.len() as u64);
    STATE.with(|s| s.borrow_mut().name = name.clone());
    // The tensor list first: `Loaded` ends the job, and the page takes no event of it after that.
    if let Ok(g) = session.gguf() {
        emit(&Event::Tensors { tensors: lowbit::inspect::tensors(&g) });
    }
    emit(&Event::Loaded {
        name,
        fit: session.info.fit(&gpu.info),
        info: session.info.clone(),
        plan: chosen,
        plan_reason: plan.is_none().then(|| session.info.suggested_plan().1),
        weight_bytes: session.weight_bytes(),
        kv_bytes: session.kv_bytes(),
        context_size: session.context_size(),
        from_cache: matches!(origin, Origin::Cache | Origin::Reloaded),
        load_ms: now_ms() - t0,
    });
    STATE.with(|s| s.borrow_mut().session = Some(session));
    Ok(())
}

async fn switch(plan: Plan) -> Result<(), Fail> {
    let t0 = now_ms();
    let (plan, weight_bytes) = with_session(async |session| {
        let mut sw = session.begin_switch(plan)?;
        // The new weights are made beside the old ones, which stay if they do not fit.
        let oom = session.gpu().oom_scope(&format!("switching to {plan}"));
        let mut last = now_ms();
        loop {
            let p = sw.progress();
            progress("", p.stage, p.done, p.total);
            checkpoint(&mut last).await?;
            if !session.step_switch(&mut sw)? {
                break;
            }
        }
        oom.check().await?;
        session.finish_switch(sw)?;
        compile_kernels(session).await?;
        Ok((session.plan(), session.weight_bytes()))
    })
    .await?;
    emit(&Event::Switched { plan, weight_bytes, ms: now_ms() - t0 });
    Ok(())
}

/// Run a lock-step comparison, posting every position; Stop ends it after the current one.
async fn compare(session: &Session, settings: CompareSettings) -> Result<(), Fail> {
    let mut ls = LockStep::new(session, settings)?;
    emit(&Event::CompareStarted { lanes: ls.variants(), prompt_tokens: ls.prompt_tokens, weight_bytes: ls.weight_bytes() });
    yield_now().await;
    ls.prefill().await?;
    let mut stopped = false;
    while let Some(step) = ls.step().await? {
        emit(&Event::CompareStep { step });
        yield_now().await;
        if STOP.with(|c| c.get()) {
            stopped = true;
            break;
        }
    }
    session.gpu().check()?;
    emit(&Event::CompareDone { summaries: ls.summaries(), stopped });
    Ok(())
}

// ---- model bytes: download, file, cache -------------------------------------------------------

async fn response_bytes(resp: web_sys::Response, name: &str, what: &str) -> Result<Vec<u8>, Fail> {
    let total = resp
        .headers()
        .get("content-length")
        .ok()
        .flatten()
        .and_then(|v| v.parse::<u64>().ok())
        .unwrap_or(0);
    // Refused before a byte is read when the size is known, else as soon as it is passed: the
    // worker's memory would run out part way and take the loaded model with it.
    let too_large = |bytes: u64| Fail(ErrorKind::FileTooLarge, file_too_large_message(name, bytes));
    if total > MAX_FILE_BYTES {
        return Err(too_large(total));
    }
    let body = resp.body().ok_or_else(|| Fail(ErrorKind::FetchFailed, format!("{what}: empty response")))?;
    let reader: web_sys::ReadableStreamDefaultReader = body.get_reader().unchecked_into();
    let mut out = Vec::with_capacity(total as usize);
    let mut last = now_ms();
    progress(name, Stage::Download, 0, total);
    loop {
        if CANCEL.with(|c| c.get()) {
            let _ = reader.cancel();
            return Err(Fail::cancelled());
        }
        let chunk = JsFuture::from(reader.read()).await.map_err(|e| js_err(what, e))?;
        let done = js_sys::Reflect::get(&chunk, &"done".into()).ok().and_then(|v| v.as_bool()).unwrap_or(true);
        if done {
            break;
        }
        let value: Uint8Array = js_sys::Reflect::get(&chunk, &"value".into()).map_err(|e| js_err(what, e))?.unchecked_into();
        let start = out.len();
        if (start + value.length() as usize) as u64 > MAX_FILE_BYTES {
            let _ = reader.cancel();
            return Err(too_large((start + value.length() as usize) as u64));
        }
        out.resize(start + value.length() as usize, 0);
        value.copy_to(&mut out[start..]);
        if now_ms() - last > 100.0 {
            progress(name, Stage::Download, out.len() as u64, total.max(out.len() as u64));
            last = now_ms();
        }
    }
    progress(name, Stage::Download, out.len() as u64, out.len() as u64);
    Ok(out)
}

/// A Hugging Face file page (`…/blob/main/x.gguf`) as its download link (`…/resolve/main/x.gguf`).
fn hugging_face_file_url(url: &str) -> String {
    match url.split_once("huggingface.co/") {
        Some((head, tail)) if tail.contains("/blob/") => format!("{head}huggingface.co/{}", tail.replacen("/blob/", "/resolve/", 1)),
        _ => url.to_string(),
    }
}

/// Refuses, with the reason, a URL the page's security policy would block (another host than the
/// page's own and Hugging Face's): the browser would only say "Failed to fetch".
fn check_host(url: &str) -> Result<(), Fail> {
    let here = scope().location();
    let parsed = web_sys::Url::new_with_base(url, &here.href())
        .map_err(|_| Fail(ErrorKind::NotAnAddress, format!("“{url}” is not a web address: paste the file's full https:// link")))?;
    let own = parsed.origin() == here.origin();
    if own || (parsed.protocol() == "https:" && download_allowed(&parsed.hostname())) {
        return Ok(());
    }
    Err(Fail(ErrorKind::HostBlocked, blocked_host_message(&parsed.host())))
}

async fn download(url: &str, name: &str) -> Result<Vec<u8>, Fail> {
    check_host(url)?;
    // fetch rejects (a TypeError, "Failed to fetch") only when no answer came at all.
    let resp = JsFuture::from(scope().fetch_with_str(url)).await.map_err(|e| {
        let Fail(_, why) = js_err("", e);
        Fail(ErrorKind::Unreachable, format!("{url} did not answer ({}): check the connection and the address", why.trim_start_matches(": ")))
    })?;
    let resp: web_sys::Response = resp.unchecked_into();
    if !resp.ok() {
        return Err(Fail(ErrorKind::HttpStatus, http_status_message(url, resp.status(), &resp.status_text())));
    }
    let kind = resp.headers().get("content-type").ok().flatten().unwrap_or_default();
    if kind.starts_with("text/html") {
        return Err(Fail(
            ErrorKind::NotAFile,
            format!("{url} answered with a web page, not a model file (on Hugging Face, use the file's resolve/main/… link)"),
        ));
    }
    response_bytes(resp, name, &format!("downloading {url}")).await
}

async fn read_file(file: &web_sys::File, name: &str) -> Result<Vec<u8>, Fail> {
    let resp = web_sys::Response::new_with_opt_blob(Some(file)).map_err(|e| js_err("reading the file", e))?;
    let headers = resp.headers();
    let _ = headers.set("content-length", &file.size().to_string());
    let bytes = response_bytes(resp, name, &format!("reading {name}")).await?;
    if (bytes.len() as f64) != file.size() {
        return Err(Fail(ErrorKind::BadFile, format!("read {} of {} bytes of {name}", bytes.len(), file.size())));
    }
    Ok(bytes)
}

async fn open_cache() -> Result<web_sys::Cache, Fail> {
    let caches = scope().caches().map_err(|e| js_err("the model cache", e))?;
    let c = JsFuture::from(caches.open(CACHE)).await.map_err(|e| js_err("the model cache", e))?;
    Ok(c.unchecked_into())
}

/// The display name stored with a cache entry (falls back to the key's last path segment).
fn key_name(key: &str) -> String {
    let last = key.rsplit('/').next().unwrap_or(key);
    js_sys::decode_uri_component(last).ok().and_then(|s| s.as_string()).unwrap_or_else(|| last.to_string())
}

async fn cached_bytes(key: &str, name: &str) -> Result<Option<Vec<u8>>, Fail> {
    let cache = open_cache().await?;
    let hit = JsFuture::from(cache.match_with_str(key)).await.map_err(|e| js_err("the model cache", e))?;
    if hit.is_undefined() || hit.is_null() {
        return Ok(None);
    }
    let resp: web_sys::Response = hit.unchecked_into();
    Ok(Some(response_bytes(resp, name, "reading the model cache").await?))
}

/// Take a file that turned out not to load out of the model cache.
async fn unstore(key: &str) {
    if let Ok(cache) = open_cache().await {
        let _ = JsFuture::from(cache.delete_with_str(key)).await;
    }
}

/// Keep a copy in the cache (best effort: a full disk only means the next visit downloads again).
async fn store(key: &str, name: &str, bytes: &[u8]) {
    let r = async {
        let cache = open_cache().await?;
        let init = web_sys::ResponseInit::new();
        let headers = web_sys::Headers::new().map_err(|e| js_err("cache", e))?;
        headers.set("content-type", "application/octet-stream").map_err(|e| js_err("cache", e))?;
        headers.set("content-length", &bytes.len().to_string()).map_err(|e| js_err("cache", e))?;
        headers.set("x-lowbit-name", &js_sys::encode_uri_component(name).as_string().unwrap_or_default()).map_err(|e| js_err("cache", e))?;
        init.set_headers(&headers);
        let body = Uint8Array::from(bytes);
        let resp = web_sys::Response::new_with_opt_buffer_source_and_init(Some(&body), &init).map_err(|e| js_err("cache", e))?;
        JsFuture::from(cache.put_with_str(key, &resp)).await.map_err(|e| js_err("cache", e))?;
        Ok::<_, Fail>(())
    };
    if let Err(Fail(_, m)) = r.await {
        web_sys::console::warn_1(&format!("lowbit: could not cache {name}: {m}").into());
    }
}

async fn list_cache() -> Result<Vec<CachedModel>, Fail> {
    let cache = open_cache().await?;
    let keys: Array = JsFuture::from(cache.keys()).await.map_err(|e| js_err("the model cache", e))?.unchecked_into();
    let mut out = Vec::new();
    for req in keys.iter() {
        let req: web_sys::Request = req.unchecked_into();
        let key = req.url();
        let hit = JsFuture::from(cache.match_with_request(&req)).await.map_err(|e| js_err("the model cache", e))?;
        if hit.is_undefined() {
            continue;
        }
        let resp: web_sys::Response = hit.unchecked_into();
        let h = resp.headers();
        let bytes = h.get("content-length").ok().flatten().and_then(|v| v.parse().ok()).unwrap_or(0);
        let name = h
            .get("x-lowbit-name")
            .ok()
            .flatten()
            .and_then(|n| js_sys::decode_uri_component(&n).ok().and_then(|s| s.as_string()))
            .unwrap_or_else(|| key_name(&key));
        out.push(CachedModel { key, name, bytes });
    }
    Ok(out)
}
