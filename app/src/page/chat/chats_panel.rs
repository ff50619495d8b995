//! The saved chats panel: open, delete, export and import; where they are kept and how much room.

use leptos::prelude::*;
use wasm_bindgen_futures::JsFuture;

use super::state::ChatState;
use crate::ui::fmt::megabytes;

/// The saved chats: open, delete, export and import; where they are kept and how much room.
#[component]
pub fn ChatsPanel() -> impl IntoView {
    let chat = expect_context::<ChatState>();
    let engine = chat.engine;
    let on_import = move |ev: leptos::ev::Event| {
        let input: web_sys::HtmlInputElement = event_target(&ev);
        let Some(file) = input.files().and_then(|f| f.get(0)) else { return };
        input.set_value("");
        leptos::task::spawn_local(async move {
            match JsFuture::from(file.text()).await {
                Ok(text) => chat.import_chats(&text.as_string().unwrap_or_default()),
                Err(_) => chat.saved.note.set(Some("The file could not be read.".into())),
            }
        });
    };
    let when = |ms: f64| String::from(js_sys::Date::new(&ms.into()).to_locale_string("en-GB", &wasm_bindgen::JsValue::UNDEFINED));
    view! {
        <details class="chats" data-testid="chats">
            <summary>{move || format!("Saved chats ({})", chat.saved.chats.with(|c| c.len()))}</summary>
            <p class="hint" data-testid="storage-estimate">{move || match chat.saved.storage.get() {
                Some((kept, used, quota)) => format!(
                    "Kept in this browser only (IndexedDB), never sent anywhere: this site uses {} of {} here; {}.",
                    megabytes(used as u64), megabytes(quota as u64),
                    if kept { "the browser keeps it when space runs low" } else { "the browser may clear it when space runs low (export to keep a copy)" }
                ),
                None => "Kept in this browser only (IndexedDB), never sent anywhere.".into(),
            }}</p>
            <ul class="chat-list">
                <For each=move || chat.saved.chats.get() key=|c| (c.id.clone(), c.updated_ms.to_bits()) children=move |c| {
                    let (id, id2) = (c.id.clone(), c.id.clone());
                    let this = StoredValue::new(c.id.clone());
                    let current = move || this.with_value(|id| chat.saved.chat_id.get() == *id);
                    view! {
                        <li data-testid="saved-chat" class:current=current.clone()>
                            <button class="ghost link-like" data-testid="open-chat" aria-current=move || current().then_some("true")
                                disabled=move || engine.generating().is_some()
                                on:click=move |_| chat.open_chat(&id)>{c.title.clone()}</button>
                            <span class="hint">{format!("{} · {} messages", when(c.updated_ms), c.messages.len())}</span>
                            <button class="ghost small" data-testid="delete-chat" aria-label=format!("Delete the chat “{}”", c.title)
                                on:click=move |_| chat.delete_chat(&id2)>"Delete"</button>
                        </li>
                    }
                }/>
            </ul>
            <div class="row">
                <button class="ghost small" data-testid="export-chats" disabled=move || chat.saved.chats.with(|c| c.is_empty())
                    on:click=move |_| chat.export_chats()>"Export all (JSON)"</button>
                <label class="file-button small">
                    "Import chats…"
                    <input type="file" accept=".json,application/json" data-testid="import-chats" on:change=on_import/>
                </label>
            </div>
            {move || chat.saved.note.get().map(|n| view! { <p class="hint" data-testid="history-note" role="status">{n}</p> })}
        </details>
    }
}
