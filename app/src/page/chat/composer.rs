//! The composer: the message input with Send and Stop, the reply length, the context in use, the
//! slow-GPU notice and the last reply's speed.

use leptos::prelude::*;

use super::state::ChatState;
use crate::ui::fmt;

/// Whether the messages pane follows new text: `pinned` is where it was last scrolled to; above
/// it, the reader has moved up to read something earlier.
#[derive(Clone, Copy)]
pub struct Follow {
    follow: StoredValue<bool>,
    pinned: StoredValue<i32>,
}

impl Follow {
    pub fn new() -> Self {
        Follow { follow: StoredValue::new(true), pinned: StoredValue::new(0) }
    }

    /// Follow again from the top of what comes next (a message sent, a new reply).
    pub fn reset(&self) {
        self.follow.set_value(true);
        self.pinned.set_value(0);
    }

    /// The pane's content grew: scroll to its end when following.
    pub fn grown(&self, el: &web_sys::HtmlDivElement) {
        if el.scroll_top() < self.pinned.get_value() - 2 {
            self.follow.set_value(false);
        }
        if self.follow.get_value() {
            el.set_scroll_top(el.scroll_height());
            self.pinned.set_value(el.scroll_top());
        }
    }

    /// The reader scrolled: near the end follows again, above the pinned place stops following.
    pub fn scrolled(&self, el: &web_sys::HtmlDivElement) {
        if el.scroll_height() - el.scroll_top() - el.client_height() < 40 {
            self.follow.set_value(true);
            self.pinned.set_value(el.scroll_top());
        } else if el.scroll_top() < self.pinned.get_value() - 2 {
            self.follow.set_value(false);
        }
    }
}

#[component]
pub fn Composer(follow: Follow) -> impl IntoView {
    let chat = expect_context::<ChatState>();
    let (engine, model) = (chat.engine, chat.model);
    let input = chat.draft;
    let input_ref = NodeRef::<leptos::html::Textarea>::new();
    let send = move || {
        let text = input.get_untracked();
        if model.can_run() && !text.trim().is_empty() {
            follow.reset();
            chat.send_message(&text);
            input.set(String::new());
        }
    };
    focus_input(chat, input_ref);
    view! {
        <div class="composer-meta">
            <ContextBar/>
            <label class="inline max-tokens" title="The longest reply, in tokens (a token is about three quarters of a word)">
                <span>"max tokens"</span>
                <input type="number" step="1" min="1" data-testid="max-tokens" prop:value=move || chat.max_tokens.get().to_string()
                    on:change=move |ev| { if let Ok(v) = event_target_value(&ev).parse::<usize>() { chat.max_tokens.set(v.max(1)) } }/>
            </label>
        </div>
        {move || chat.editing.get().map(|_| view! {
            <p class="hint editing" data-testid="editing">"Editing an earlier message: sending replaces it and everything after it. "
                <button type="button" class="ghost small" on:click=move |_| { chat.editing.set(None); input.set(String::new()); }>"Cancel"</button>
            </p>
        })}
        <form class="composer" on:submit=move |ev| { ev.prevent_default(); send(); }>
            <textarea rows="2" placeholder="Message (Enter to send, Shift+Enter for a new line, Esc to stop)" data-testid="chat-input"
                aria-label="Message" node_ref=input_ref
                prop:value=move || input.get()
                on:input=move |ev| input.set(event_target_value(&ev))
                on:keydown=move |ev: leptos::ev::KeyboardEvent| {
                    if ev.key() == "Enter" && !ev.shift_key() { ev.prevent_default(); send(); }
                }></textarea>
            {move || if engine.generating().is_some() {
                view! { <button type="button" class="stop" data-testid="stop" on:click=move |_| engine.stop()>"Stop"</button> }.into_any()
            } else {
                view! { <button type="submit" data-testid="send" disabled=move || !model.can_run() || input.get().trim().is_empty()>"Send"</button> }.into_any()
            }}
        </form>
        <SpeedNotice/>
        <Stats/>
    }
}

/// The input takes the focus when a model is ready and when a reply ends (the Stop button it may
/// have had is gone), unless the user is typing somewhere else; and when a message is edited.
fn focus_input(chat: ChatState, input_ref: NodeRef<leptos::html::Textarea>) {
    let engine = chat.engine;
    // Without the browser's own scroll to the box: the whole chat card comes into view instead
    // (on a phone its message list and the box, not the box at the screen's top edge), on the
    // next frame, once the page has moved the chat where a loaded model puts it.
    let focus = move || {
        request_animation_frame(move || {
            if let Some(el) = input_ref.get_untracked() {
                let opts = web_sys::FocusOptions::new();
                opts.set_prevent_scroll(true);
                let _ = el.focus_with_options(&opts);
                let at = web_sys::ScrollIntoViewOptions::new();
                at.set_block(web_sys::ScrollLogicalPosition::Nearest);
                if let Some(card) = el.closest("section").ok().flatten() {
                    card.scroll_into_view_with_scroll_into_view_options(&at);
                }
                // A card taller than the window: the box itself, at least.
                el.scroll_into_view_with_scroll_into_view_options(&at);
            }
        })
    };
    Effect::new(move |prev: Option<(bool, bool)>| {
        let now = (engine.loading().is_some(), engine.generating().is_some());
        let ended = prev.is_some_and(|(loading, generating)| (loading && !now.0) || (generating && !now.1));
        if ended && chat.model.model.with_untracked(|m| m.is_some()) && !typing_elsewhere(input_ref) {
            focus();
        }
        now
    });
    Effect::new(move |_| {
        if chat.editing.get().is_some() {
            focus();
        }
    });
}

/// The user is typing in a field other than the chat input (focus must not be taken from it).
fn typing_elsewhere(input: NodeRef<leptos::html::Textarea>) -> bool {
    let Some(active) = document().active_element() else { return false };
    let tag = active.tag_name().to_lowercase();
    let is_input = input.get_untracked().is_some_and(|i| {
        let i: &web_sys::Element = &i;
        i == &active
    });
    // The model URL field is where a keyboard user pressed Enter to load: the chat comes next.
    let url_field = active.get_attribute("data-testid").as_deref() == Some("model-url-input");
    !is_input && !url_field && (tag == "textarea" || tag == "select" || (tag == "input" && active.get_attribute("type").as_deref() != Some("file")))
}

/// What to expect on a slow GPU: on a software adapter, or once a reply of the chosen max tokens
/// is measured to take more than half a minute, the speed measured here and how long a reply of
/// max tokens takes at it.
#[component]
fn SpeedNotice() -> impl IntoView {
    let chat = expect_context::<ChatState>();
    let (engine, model) = (chat.engine, chat.model);
    move || {
        let adapter = engine.adapter.get()?;
        model.model.get()?;
        let max = chat.max_tokens.get();
        let text = match chat.speed.get() {
            Some((plan, decode, prefill)) if decode > 0.0 => {
                let secs = max as f64 / decode;
                if !adapter.is_fallback && secs < 30.0 {
                    return None;
                }
                format!(
                    "Measured here at {}: {decode:.1} tokens per second written, {prefill:.0} read. A reply of up to {} takes \
                     {}, plus reading the conversation{}. Fewer max tokens, INT4, or a browser with a hardware GPU make \
                     replies quicker; Stop (Esc) ends one at any time.",
                    fmt::plan_name(&plan.into()),
                    fmt::tokens(max),
                    if secs < 1.0 { "under a second".to_string() } else { format!("up to {}", fmt::duration(secs)) },
                    if adapter.is_fallback { " (this is a software GPU: the processor does a graphics card's work)" } else { "" }
                )
            }
            _ if adapter.is_fallback => format!(
                "This page runs on a software GPU, {}: the processor does a graphics card's work, so replies come at a few \
                 tokens per second and reading a long conversation takes a while. The first reply measures the speed; this \
                 note then says how long a reply of up to {} takes. Stop (Esc) ends a reply at any time.",
                fmt::adapter_name(&adapter),
                fmt::tokens(max)
            ),
            _ => return None,
        };
        Some(view! { <p class="hint speed-notice" data-testid="slow-gpu-notice">{text}</p> })
    }
}

#[component]
fn ContextBar() -> impl IntoView {
    let chat = expect_context::<ChatState>();
    let model = chat.model;
    move || {
        let size = model.model.get().map(|m| m.context_size)?;
        let used = chat.last_stats.get().map_or(0, |s| s.context_used);
        let forgotten = chat.forgotten.get();
        // A conversation on screen that this model has not read yet (restored after a reload,
        // opened, or from before a load): its cache starts empty.
        let unread = chat.last_stats.with(|s| s.is_none()) && chat.messages.with(|m| !m.is_empty());
        Some(view! {
            <div class="context-bar" data-testid="context-usage" title="Tokens held in the KV cache">
                <progress max=size value=used></progress>
                <span>{format!("context {used} / {size} tokens")}
                    {unread.then(|| view! { <span data-testid="context-unread">
                        " · empty: the next message reads the conversation above again"</span> })}</span>
            </div>
            {(forgotten > 0).then(|| view! {
                <p class="hint context-notice" data-testid="context-notice">{format!(
                    "The conversation outgrew the model's {size}-token context: the last reply was written without the {} oldest {} \
                     (marked \"out of context\"); the system prompt is always kept. New chat starts afresh.",
                    forgotten, if forgotten == 1 { "message" } else { "messages" })}</p>
            })}
        })
    }
}

#[component]
fn Stats() -> impl IntoView {
    let chat = expect_context::<ChatState>();
    let engine = chat.engine;
    let s = move || chat.last_stats.get();
    view! {
        <div class="stats" data-testid="reply-stats">
            <div><span class="k">"prefill"</span><span data-testid="prefill-tps">{move || s().map_or("–".into(), |s| format!("{:.1} tok/s", s.prefill_tokens_per_second))}</span></div>
            <div><span class="k">"decode"</span><span data-testid="decode-tps">{move || match (engine.generating(), chat.live.get(), s()) {
                // While a reply streams: its running rate (from the second token on).
                (Some(_), Some((n, tps)), _) if n > 1 => format!("{tps:.2} tok/s"),
                (Some(_), _, _) => "…".into(),
                (None, _, Some(s)) => format!("{:.2} tok/s", s.decode_tokens_per_second),
                (None, _, None) => "–".into(),
            }}</span></div>
            <div><span class="k">"first token"</span><span data-testid="ttft">{move || s().map_or("–".into(), |s| format!("{:.0} ms", s.time_to_first_token_ms))}</span></div>
            <div><span class="k">"prompt"</span><span data-testid="prompt-tokens">{move || s().map_or("–".into(), |s| format!("{} ({} reused from the cache)", fmt::tokens(s.prompt_tokens), s.reused_tokens))}</span></div>
        </div>
    }
}
