//! One chat message: its text (a reply as safe Markdown), what wrote it, its state and stats,
//! and Copy, Edit or Regenerate.

use leptos::prelude::*;
use lowbit_app::protocol::Role;
use wasm_bindgen::JsCast;

use super::state::{ChatMsg, ChatState};
use crate::ui::fmt;

pub fn message_view(m: ChatMsg) -> impl IntoView {
    let chat = expect_context::<ChatState>();
    let (engine, model) = (chat.engine, chat.model);
    let id = m.id;
    let is_assistant = m.role == Role::Assistant;
    let p = m.plan.map(|p| p.code()).unwrap_or_default();
    let badge = if m.plan.is_some_and(|p| p.uniform_precision().is_none()) { "mixed".to_string() } else { p.clone() };
    // The precisions, with ", activations int8" when the reply multiplied 8-bit activations.
    let act = m.act.unwrap_or_default();
    let label = m.plan.map(|p| fmt::plan_name(&lowbit::plan::Variant::from(p).with_act(act)));
    let (done, stats, stopped, text) = (m.done, m.stats, m.stopped, m.text);
    // Out of the context: the last reply's model did not read this message.
    let forgotten = move || chat.messages.with(|ms| ms.iter().position(|c| c.id == id).is_some_and(|i| i < chat.forgotten.get()));
    view! {
        <div class=format!("msg {}", m.role.name()) class:forgotten=forgotten
            data-testid=if is_assistant { "assistant-message" } else { "user-message" }
            data-precision=p.clone()
            data-act=act.name()
            data-done=move || done.get().to_string()>
            <div class="msg-meta">
                <span class="role">{if is_assistant { "assistant" } else { "you" }}</span>
                {label.map(|l| view! { <span class=format!("badge {badge}")>{l}</span> })}
                {move || forgotten().then(|| view! { <span class="hint" data-testid="out-of-context">"out of context"</span> })}
                {move || (!done.get()).then(|| view! { <span class="typing" data-testid="reply-state">{move || match engine.reading() {
                    Some((read, total)) if engine.generating() == Some(id) => format!("reading the prompt: {read} / {total} tokens…"),
                    _ if text.with(|t| t.is_empty()) => "reading the prompt…".to_string(),
                    _ => "generating…".to_string(),
                }}</span> })}
                {move || stopped.get().then(|| view! { <span class="hint">{move || if stats.with(|s| s.as_ref().is_some_and(|s| s.generated_tokens == 0)) {
                    "stopped while reading the prompt"
                } else {
                    "stopped"
                }}</span> })}
                {move || stats.get().map(|s| view! {
                    <span class="hint" data-testid="message-stats">{format!("{} · {:.1} tok/s · first token {:.0} ms", fmt::tokens(s.generated_tokens), s.decode_tokens_per_second, s.time_to_first_token_ms)}</span>
                })}
            </div>
            {if is_assistant {
                view! { <div class="msg-text markdown" data-testid="message-text" inner_html=move || lowbit_app::markdown::to_html(&text.get())></div> }.into_any()
            } else {
                view! { <div class="msg-text" data-testid="message-text">{move || text.get()}</div> }.into_any()
            }}
            <div class="msg-actions">
                <button class="ghost small" data-testid="copy-message" title="Copy this message's text (Markdown as written)"
                    on:click=move |_| crate::ui::layout::copy_text(&text.get_untracked())>"Copy"</button>
                {if is_assistant {
                    view! { <button class="ghost small" data-testid="regenerate-message" disabled=move || !model.can_run() || !done.get()
                        title=move || engine.busy_reason().unwrap_or("Write this reply again (it and everything after it are replaced)")
                        on:click=move |_| chat.regenerate_at(id)>"Regenerate"</button> }.into_any()
                } else {
                    view! { <button class="ghost small" data-testid="edit-message" disabled=move || engine.generating().is_some()
                        title="Change this message and send it again (the replies after it are replaced)"
                        on:click=move |_| chat.edit(id)>"Edit"</button> }.into_any()
                }}
            </div>
        </div>
    }
}

/// A link in a reply opens in a new tab, so the conversation stays on this one.
pub fn open_links_elsewhere(ev: leptos::ev::MouseEvent) {
    let Some(target) = ev.target().and_then(|t| t.dyn_into::<web_sys::Element>().ok()) else { return };
    let Ok(Some(link)) = target.closest("a[href]") else { return };
    ev.prevent_default();
    let href = link.get_attribute("href").unwrap_or_default();
    if href.starts_with("http://") || href.starts_with("https://") || href.starts_with("mailto:") {
        let _ = window().open_with_url_and_target_and_features(&href, "_blank", "noopener,noreferrer");
    }
}
