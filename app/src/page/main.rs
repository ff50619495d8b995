//! lowbit page (Leptos, client-side rendered). One folder per feature, each with its state (a
//! `Copy` struct of signals with its commands and an `apply(event)`), its components and its
//! part of the worker's events: `model/`, `chat/`, `lab/`, `diagnostics/`; `ui/` holds what
//! every panel uses, `worker.rs` the link to the engine worker (`src/worker/`), where the model
//! runs. This file mounts the page, lays out the panels and hands each event to its feature,
//! with the few rules that cross features. All numerics live in the engine.

mod chat;
mod diagnostics;
mod lab;
mod model;
mod ui;
mod worker;

use leptos::prelude::*;
use lowbit_app::job::{self, JobKind};
use lowbit_app::protocol::{ErrorKind, Event, FromWorker, JobId, ModelEvent};
use wasm_bindgen::JsCast;

use chat::ChatState;
use diagnostics::DiagState;
use lab::LabState;
use model::ModelState;
use worker::Engine;

fn main() {
    console_error_panic_hook::set_once();
    leptos::mount::mount_to_body(App);
}

/// Every feature's state, each provided to the components through context.
#[derive(Clone, Copy)]
struct Page {
    engine: Engine,
    model: ModelState,
    chat: ChatState,
    lab: LabState,
    diag: DiagState,
}

impl Page {
    fn new() -> Self {
        let engine = Engine::new();
        let model = ModelState::new(engine);
        let chat = ChatState::new(engine, model);
        Page { engine, model, chat, lab: LabState::new(model, chat), diag: DiagState::new(model) }
    }

    fn provide(&self) {
        provide_context(self.engine);
        provide_context(self.model);
        provide_context(self.chat);
        provide_context(self.lab);
        provide_context(self.diag);
    }

    /// `job`: the id the event came with; `mine`: the job it is about, as the page started it.
    fn handle(self, ev: Event, job: Option<JobId>, mine: Option<JobKind>) {
        match ev {
            Event::Ready { adapter } => {
                self.chat.on_adapter(adapter.is_fallback);
                self.engine.adapter.set(Some(adapter));
                self.model.list_cache();
                self.diag.count_resources();
            }
            Event::Model(e) => self.model_event(e),
            Event::Chat(e) => {
                let msg = match mine {
                    Some(JobKind::Reply { msg, .. }) => Some(msg),
                    _ => None,
                };
                self.chat.apply(e, msg)
            }
            Event::Lab(e) => self.lab.apply(e),
            Event::Diagnostics(e) => self.diag.apply(e),
            Event::Reloading { name } => self.engine.reloading(job, name),
            // A load that got past parsing has cached its file: show the cache as it is now.
            Event::Cancelled => {
                self.diag.ended(mine.as_ref(), "cancelled");
                self.lab.ended_without_result(mine.as_ref());
                self.model.list_cache();
            }
            Event::Error { kind, message } => {
                self.diag.ended(mine.as_ref(), &format!("error: {message}"));
                self.fail(mine, kind, message);
                self.model.list_cache();
            }
        }
    }

    /// A model event, with what it means for the other features: a new model clears the lab and
    /// the chat's measurements and takes the KV format and activations chosen before it; a
    /// comparison a shared link asked for runs once the model (and those settings) are there.
    fn model_event(self, e: ModelEvent) {
        match e {
            ModelEvent::Loaded(_) => {
                // The worker reloads the model by itself after a lost device: the banner that
                // said so has done its work.
                let recovered = self.engine.error.get_untracked().is_some_and(|(k, _)| k == ErrorKind::DeviceLost);
                if recovered {
                    self.engine.error.set(None);
                }
                self.model.apply(e, recovered);
                self.lab.clear();
                self.lab.model_loaded();
                self.chat.model_changed();
                // The file is in the model cache now: the storage line counts it.
                self.chat.refresh_storage_soon();
                self.settings_applied();
            }
            ModelEvent::ActivationsSwitched { .. } => {
                self.model.apply(e, false);
                self.settings_applied();
            }
            ModelEvent::KvSwitched { .. } => {
                self.model.apply(e, false);
                self.chat.cache_cleared();
                self.settings_applied();
            }
            ModelEvent::ContextSet { context_size, context_used, .. } => {
                self.chat.context_set(context_size, context_used);
                self.model.apply(e, false);
            }
            ModelEvent::Progress { .. }
            | ModelEvent::Switched { .. }
            | ModelEvent::Cache { .. }
            | ModelEvent::ExportProgress { .. }
            | ModelEvent::Exported { .. } => self.model.apply(e, false),
        }
    }

    /// After a load or a setting's switch: the next setting chosen before the load, else the
    /// comparison a shared link asked for.
    fn settings_applied(self) {
        if !self.model.apply_chosen() {
            self.lab.run_pending();
        }
    }

    /// A job ended with an error (`running`: what it was): a reply keeps what it wrote; a lost
    /// device takes the model with it; a setting that could not be applied after a load lets the
    /// next one go on.
    fn fail(self, running: Option<JobKind>, kind: ErrorKind, message: String) {
        let setting = matches!(running, Some(JobKind::Kv | JobKind::Activations));
        self.lab.ended_without_result(running.as_ref());
        self.chat.ended(running);
        if kind == ErrorKind::DeviceLost {
            self.model.model.set(None);
        }
        self.engine.error.set(Some((kind, message)));
        if setting && self.model.loaded() {
            self.settings_applied();
        }
    }
}

impl worker::Handler for Page {
    /// Take an event: one about a job the page no longer runs is dropped; the last event of the
    /// running job ends it before it is handled (so a handler may start the next job).
    fn on_event(self, m: FromWorker) {
        let FromWorker { job, event } = m;
        let running = self.engine.job.get_untracked();
        if !job::accepts(running.as_ref(), job, &event) {
            return;
        }
        let mine = running.filter(|r| Some(r.id) == job).map(|r| r.kind);
        let last = job.is_some() && event.ends_job();
        if last {
            self.engine.job.set(None);
        }
        self.handle(event, job, mine);
        if last {
            self.diag.count_resources();
        }
    }

    fn on_crash(self, message: String) {
        self.model.model.set(None);
        self.engine.adapter.set(None);
        let running = self.engine.job.get_untracked().map(|r| r.kind);
        self.engine.job.set(None);
        self.diag.ended(running.as_ref(), "error: the engine stopped");
        self.fail(running, ErrorKind::Internal, message);
    }
}

#[component]
fn App() -> impl IntoView {
    let page = Page::new();
    page.provide();
    lab::share::apply_url(&page.lab);
    worker::start_worker(page);
    page.chat.restore_chats();
    let model = page.model;
    view! {
        <main>
            <SkipLink/>
            <header>
                <h1>"lowbit"</h1>
                <p>"A small quantized language model on your own GPU, in FP16, INT8 or INT4. Nothing you type leaves this page."</p>
            </header>
            <ErrorBanner/>
            <div class="layout" class:loaded=move || model.loaded()>
                <aside>
                    <model::panel::ModelPanel/>
                    <model::precision::PrecisionPanel/>
                    <model::card::ModelCard/>
                </aside>
                <div class="chat-column">
                    <chat::panel::ChatPanel/>
                    <chat::sampling::SamplingPanel/>
                    <chat::chats_panel::ChatsPanel/>
                </div>
            </div>
            <lab::compare::CompareView/>
            <lab::quality::QualityPanel/>
            <lab::speed::SpeedPanel/>
            <lab::inspector::Inspector/>
            <ui::glossary::Glossary/>
            <diagnostics::Diagnostics/>
        </main>
    }
}

/// "Skip to the chat": for keyboard users, straight to the message input.
#[component]
fn SkipLink() -> impl IntoView {
    view! {
        <a class="skip-link" href="#chat" data-testid="skip-to-chat" on:click=move |ev: leptos::ev::MouseEvent| {
            ev.prevent_default();
            if let Some(el) = document().query_selector("[data-testid=chat-input]").ok().flatten() {
                if let Ok(el) = el.dyn_into::<web_sys::HtmlElement>() {
                    el.scroll_into_view();
                    let _ = el.focus();
                }
            }
        }>"Skip to the chat"</a>
    }
}

#[component]
fn ErrorBanner() -> impl IntoView {
    let engine = expect_context::<Engine>();
    move || {
        engine.error.get().map(|(kind, msg)| {
            view! {
                <div class="error-banner" role="alert" data-testid="error-message" data-kind=format!("{kind:?}")>
                    <strong>{kind.title()}</strong>
                    <span>{msg}</span>
                    <button class="ghost" data-testid="error-dismiss" on:click=move |_| engine.error.set(None)>"Dismiss"</button>
                </div>
            }
        })
    }
}
