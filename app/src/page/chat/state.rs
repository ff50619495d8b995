//! The chat feature's state: the conversation on screen, the system prompt, sampling and reply
//! length, the last reply's measurements; the commands that send, edit and regenerate; and the
//! reply's events from the worker.

use std::cell::RefCell;

use leptos::prelude::*;
use lowbit::plan::Plan;
use lowbit::sampler::SamplerConfig;
use lowbit::session::ReplyStats;
use lowbit::{Activations, KvPrecision};
use lowbit_app::job::JobKind;
use lowbit_app::protocol::{ChatEvent, ChatJob, Job, Role};

use super::saved::Saved;
use crate::model::ModelState;
use crate::worker::Engine;

/// Max tokens of a reply by default, and on a software GPU.
pub const DEFAULT_MAX_TOKENS: usize = 256;
pub const FALLBACK_MAX_TOKENS: usize = 128;

thread_local! {
    /// The owner the page's state was made under (the app's root).
    static ROOT: RefCell<Option<Owner>> = const { RefCell::new(None) };
}

/// One chat message. The assistant's text streams into `text`.
#[derive(Clone, Debug)]
pub struct ChatMsg {
    pub id: u64,
    pub role: Role,
    pub text: RwSignal<String>,
    /// The precisions and the KV cache format that produced an assistant message.
    pub plan: Option<Plan>,
    pub kv: Option<KvPrecision>,
    pub act: Option<Activations>,
    pub done: RwSignal<bool>,
    pub stats: RwSignal<Option<ReplyStats>>,
    pub stopped: RwSignal<bool>,
}

impl ChatMsg {
    /// Its signals belong to the page's root, not to whatever created the message: a message
    /// made by a button inside another message (Regenerate) must outlive that message's view.
    pub fn new(id: u64, role: Role, text: &str, plan: Option<Plan>, kv: Option<KvPrecision>, act: Option<Activations>, done: bool) -> Self {
        let make = || ChatMsg {
            id,
            role,
            text: RwSignal::new(text.to_string()),
            plan,
            kv,
            act,
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

#[derive(Clone, Copy)]
pub struct ChatState {
    pub engine: Engine,
    pub model: ModelState,
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
    /// The saved chats (`saved.rs`).
    pub saved: Saved,
}

impl ChatState {
    /// Made under the app's root owner, which every chat message's signals then belong to.
    pub fn new(engine: Engine, model: ModelState) -> Self {
        ROOT.with(|r| *r.borrow_mut() = Owner::current());
        ChatState {
            engine,
            model,
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
            saved: Saved::new(),
        }
    }

    /// A software GPU writes a few tokens a second: a shorter default reply (the field beside the
    /// input changes it).
    pub fn on_adapter(&self, is_fallback: bool) {
        if is_fallback && self.max_tokens.get_untracked() == DEFAULT_MAX_TOKENS {
            self.max_tokens.set(FALLBACK_MAX_TOKENS);
        }
    }

    /// Another model (or none) now answers: the conversation stays (New chat clears it) and the
    /// new model reads it from the start with the next message.
    pub fn model_changed(&self) {
        self.last_stats.set(None);
        self.forgotten.set(0);
    }

    /// The KV cache was remade (another format): the next reply reads the conversation again.
    pub fn cache_cleared(&self) {
        self.last_stats.set(None);
    }

    /// The KV cache now holds `context_size` tokens, `context_used` of them the conversation's.
    pub fn context_set(&self, context_size: usize, context_used: usize) {
        self.last_stats.update(|s| {
            if let Some(s) = s {
                s.context_used = context_used;
                s.context_size = context_size;
            }
        });
    }

    /// Send the user's text and start the assistant's reply.
    pub fn send_message(&self, text: &str) {
        let text = text.trim();
        if text.is_empty() || !self.model.can_run() {
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
        let id = self.engine.id();
        self.messages.update(|m| m.push(ChatMsg::new(id, Role::User, text, None, None, None, true)));
        self.save_chat();
        self.start_reply();
    }

    /// The conversation as the model reads it: the system prompt, then every message except a
    /// reply stopped before its first token and the question it did not answer (templates want
    /// user and assistant turns to alternate); with the ids of the messages sent.
    fn history(&self) -> (Vec<lowbit::chat::Message>, Vec<u64>) {
        let mut history = vec![];
        let system = self.system_prompt.get_untracked();
        if !system.trim().is_empty() {
            history.push(Role::System.message(system.trim()));
        }
        let mut sent = vec![];
        self.messages.with_untracked(|m| {
            for (i, c) in m.iter().enumerate() {
                let text = c.text.get_untracked();
                let unanswered = |j: usize| m.get(j).is_some_and(|n| n.role == Role::Assistant && n.text.with_untracked(|t| t.is_empty()));
                if (c.role == Role::Assistant && text.is_empty()) || (c.role == Role::User && unanswered(i + 1)) {
                    continue;
                }
                history.push(c.role.message(&text));
                sent.push(c.id);
            }
        });
        (history, sent)
    }

    /// Generate a new assistant message for the conversation as it stands.
    fn start_reply(&self) {
        let id = self.engine.id();
        let (messages, sent) = self.history();
        self.sent.set(sent);
        let (plan, kv, act) = (self.model.plan.get_untracked(), self.model.kv.get_untracked(), self.model.act.get_untracked());
        self.messages.update(|m| m.push(ChatMsg::new(id, Role::Assistant, "", Some(plan), Some(kv), Some(act), false)));
        self.live.set(None);
        let job = ChatJob::Reply { messages, sampling: self.sampling.get_untracked(), max_tokens: self.max_tokens.get_untracked() };
        self.engine.start(JobKind::Reply { msg: id, reading: None }, Job::Chat(job), &[]);
    }

    /// Replace the last assistant message with a new reply.
    pub fn regenerate(&self) {
        if let Some(id) = self.messages.with_untracked(|m| m.last().filter(|c| c.role == Role::Assistant).map(|c| c.id)) {
            self.regenerate_at(id);
        }
    }

    /// Write the assistant message `id` again: it and every message after it are replaced by a
    /// new reply to the conversation before it.
    pub fn regenerate_at(&self, id: u64) {
        if !self.model.can_run() {
            return;
        }
        let Some(at) = self.messages.with_untracked(|m| m.iter().position(|c| c.id == id && c.role == Role::Assistant)) else { return };
        self.messages.update(|m| m.truncate(at));
        self.editing.set(None);
        self.start_reply();
    }

    /// Put the user message `id` into the input to be changed; sending it replaces that message
    /// and everything after it.
    pub fn edit(&self, id: u64) {
        let Some(text) = self.messages.with_untracked(|m| m.iter().find(|c| c.id == id && c.role == Role::User).map(|c| c.text.get_untracked())) else {
            return;
        };
        self.draft.set(text);
        self.editing.set(Some(id));
    }

    pub fn new_chat(&self) {
        if self.engine.running(|k| matches!(k, JobKind::Reply { .. })) {
            return;
        }
        // The conversation on screen is saved already; the next message starts another.
        self.saved.start_new();
        self.messages.set(vec![]);
        self.editing.set(None);
        self.forgotten.set(0);
        self.last_stats.set(None);
    }

    fn with_msg(&self, id: u64, f: impl FnOnce(&ChatMsg)) {
        self.messages.with_untracked(|m| {
            if let Some(msg) = m.iter().find(|c| c.id == id) {
                f(msg)
            }
        });
    }

    /// Take one of the reply's events; `msg`: the assistant message it writes.
    pub fn apply(&self, e: ChatEvent, msg: Option<u64>) {
        match e {
            ChatEvent::Reading { done, total } => self.engine.update_job(|k| {
                if let JobKind::Reply { reading, .. } = k {
                    *reading = Some((done, total));
                }
            }),
            ChatEvent::Token { text, tokens, decode_tps } => {
                self.engine.update_job(|k| {
                    if let JobKind::Reply { reading, .. } = k {
                        *reading = None;
                    }
                });
                if let (Some(id), false) = (msg, text.is_empty()) {
                    self.with_msg(id, |m| m.text.update(|t| t.push_str(&text)));
                }
                self.live.set(Some((tokens, decode_tps)));
            }
            ChatEvent::ReplyDone { stats, stopped } => {
                let Some(id) = msg else { return };
                self.with_msg(id, |m| {
                    m.stats.set(Some(stats.clone()));
                    m.stopped.set(stopped);
                    m.done.set(true);
                });
                self.reply_done(stats);
            }
        }
    }

    /// What a finished reply tells the conversation: which messages fell out of the context, the
    /// speed measured; then the chat is saved.
    fn reply_done(&self, stats: ReplyStats) {
        // The first message the model read, and every message before it is out of context.
        let first_read = self.sent.with_untracked(|s| s.get(stats.dropped_messages).copied());
        let before = self.messages.with_untracked(|m| first_read.and_then(|f| m.iter().position(|c| c.id == f)).unwrap_or(0));
        self.forgotten.set(if stats.dropped_messages > 0 { before } else { 0 });
        if stats.generated_tokens >= 2 {
            let plan = stats.plan.unwrap_or(self.model.plan.get_untracked());
            self.speed.set(Some((plan, stats.decode_tokens_per_second, stats.prefill_tokens_per_second)));
        }
        self.last_stats.set(Some(stats));
        self.save_chat();
    }

    /// A job ended without its own last event (an error, a crashed worker): a reply keeps what
    /// it wrote, as written.
    pub fn ended(&self, kind: Option<JobKind>) {
        if let Some(JobKind::Reply { msg, .. }) = kind {
            self.with_msg(msg, |m| m.done.set(true));
            self.save_chat();
        }
    }
}
