//! The chat panel: its head, the system prompt, the messages (followed as they grow unless the
//! reader scrolled up) and the composer.

use leptos::prelude::*;
use lowbit_app::protocol::Role;

use super::composer::{Composer, Follow};
use super::message::{message_view, open_links_elsewhere};
use super::state::{ChatMsg, ChatState};
use crate::ui::fmt;
use crate::ui::layout::{remember, remembered};

#[component]
pub fn ChatPanel() -> impl IntoView {
    let chat = expect_context::<ChatState>();
    let (engine, model) = (chat.engine, chat.model);
    let pane = NodeRef::<leptos::html::Div>::new();
    let follow = Follow::new();
    follow_replies(chat, pane, follow);
    // Esc stops the reply (or the comparison) being generated, wherever the focus is (`stop`
    // stops only a job that Stop ends).
    let esc = window_event_listener(leptos::ev::keydown, move |ev| {
        if ev.key() == "Escape" {
            engine.stop();
        }
    });
    on_cleanup(move || esc.remove());
    view! {
        <section class="chat" id="chat" data-testid="chat">
            <div class="chat-head">
                <h2>"Chat"</h2>
                <div class="chat-actions">
                    <button class="ghost small" data-testid="regenerate" disabled=move || !model.can_run() || chat.messages.get().is_empty()
                        on:click=move |_| chat.regenerate()>"Regenerate"</button>
                    <button class="ghost small" data-testid="new-chat" disabled=move || engine.generating().is_some()
                        on:click=move |_| chat.new_chat()>"New chat"</button>
                </div>
            </div>
            <label class="system">
                <span>"System prompt"</span>
                <textarea rows="2" data-testid="system-prompt" prop:value=move || chat.system_prompt.get()
                    on:input=move |ev| chat.system_prompt.set(event_target_value(&ev))></textarea>
            </label>
            <div class="messages" data-testid="messages" node_ref=pane
                on:click=open_links_elsewhere
                on:scroll=move |_| if let Some(el) = pane.get_untracked() { follow.scrolled(&el) }>
                {move || chat.messages.get().is_empty().then(|| view! {
                    <p class="hint empty">{move || if model.loaded() { "Ask something." } else { "Load a model to start." }}</p>
                })}
                <For each=move || chat.messages.get() key=|m| m.id children=move |m: ChatMsg| message_view(m)/>
            </div>
            <SmallModelNote/>
            <Composer follow=follow/>
        </section>
    }
}

/// Models under this many parameters get the note that they are weak at facts at any precision.
const SMALL_MODEL_PARAMS: u64 = 2_000_000_000;
/// Where the browser remembers that the note was read.
const NOTE_KEY: &str = "lowbit-small-model-note";

/// Said once, under the first finished reply of a small model: a model this size gets facts
/// wrong at every precision, FP16 too, so a wrong answer at INT4 is not INT4's doing; the lab
/// measures what precision changes, and the picker has larger models.
#[component]
fn SmallModelNote() -> impl IntoView {
    let chat = expect_context::<ChatState>();
    let read = RwSignal::new(remembered(NOTE_KEY).is_some());
    let params = move || chat.model.model.with(|m| m.as_ref().map(|m| m.info.n_params)).filter(|n| *n < SMALL_MODEL_PARAMS);
    let replied = move || chat.messages.with(|ms| ms.iter().any(|m| m.role == Role::Assistant && m.done.get() && m.text.with(|t| !t.is_empty())));
    move || {
        let n = params()?;
        (!read.get() && replied()).then(|| view! {
            <p class="hint small-model-note" data-testid="small-model-note" role="note">
                {format!("A model of {} parameters is small: it often gets facts wrong at every precision, FP16 included, \
                    so a wrong answer is rarely the precision's doing. What precision changes is measured below, side by side \
                    and in the quality panel; larger models are under “More models”. ", fmt::count(n))}
                <button class="ghost small" data-testid="small-model-note-dismiss"
                    on:click=move |_| { remember(NOTE_KEY, "read"); read.set(true); }>"Got it"</button>
            </p>
        })
    }
}

/// Keep the newest text in view as a reply streams, unless the reader scrolled up; a new reply
/// (sent, regenerated, edited) is followed from its start.
fn follow_replies(chat: ChatState, pane: NodeRef<leptos::html::Div>, follow: Follow) {
    let engine = chat.engine;
    Effect::new(move |prev: Option<Option<u64>>| {
        chat.messages.with(|m| m.last().map(|c| c.text.track()));
        engine.job.track();
        let generating = engine.generating();
        if generating.is_some() && prev != Some(generating) {
            follow.reset();
        }
        if let Some(el) = pane.get_untracked() {
            follow.grown(&el);
        }
        generating
    });
}
