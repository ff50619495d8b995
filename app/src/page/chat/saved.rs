//! The conversation kept across reloads: the page's side of `history` (what a saved chat holds)
//! and `idb` (where it is kept). Saved when a question is sent and when its reply ends; the most
//! recent chat comes back when the page opens.

use leptos::prelude::*;
use leptos::task::spawn_local;
use lowbit_app::history::{self, SavedChat, SavedMessage};

use super::idb;
use super::state::{ChatMsg, ChatState};

/// A new chat's id: when it was started, and a random part.
pub fn new_chat_id() -> String {
    format!("{:.0}-{:08x}", js_sys::Date::now(), (js_sys::Math::random() * u32::MAX as f64) as u32)
}

/// The saved chats and which of them is on screen.
#[derive(Clone, Copy)]
pub struct Saved {
    /// The conversation on screen as saved: its id and when it was started.
    pub chat_id: RwSignal<String>,
    pub created_ms: RwSignal<f64>,
    /// Every saved chat, the most recent first.
    pub chats: RwSignal<Vec<SavedChat>>,
    /// Whether the browser keeps this site's storage, the bytes used and the quota.
    pub storage: RwSignal<Option<(bool, f64, f64)>>,
    /// What the last import, export or save said.
    pub note: RwSignal<Option<String>>,
}

impl Saved {
    pub fn new() -> Self {
        Saved {
            chat_id: RwSignal::new(new_chat_id()),
            created_ms: RwSignal::new(js_sys::Date::now()),
            chats: RwSignal::new(vec![]),
            storage: RwSignal::new(None),
            note: RwSignal::new(None),
        }
    }

    /// The next message starts another saved chat.
    pub fn start_new(&self) {
        self.chat_id.set(new_chat_id());
        self.created_ms.set(js_sys::Date::now());
    }
}

impl ChatState {
    /// The conversation on screen as a saved chat (None while it is empty).
    fn snapshot(&self) -> Option<SavedChat> {
        let messages: Vec<SavedMessage> = self.messages.with_untracked(|ms| {
            ms.iter()
                .map(|m| SavedMessage {
                    role: m.role,
                    text: m.text.get_untracked(),
                    plan: m.plan,
                    kv: m.kv,
                    act: m.act,
                    stats: m.stats.get_untracked(),
                    stopped: m.stopped.get_untracked(),
                })
                .collect()
        });
        if messages.is_empty() {
            return None;
        }
        Some(SavedChat {
            id: self.saved.chat_id.get_untracked(),
            title: history::title_of(&messages),
            created_ms: self.saved.created_ms.get_untracked(),
            updated_ms: js_sys::Date::now(),
            system_prompt: self.system_prompt.get_untracked(),
            model: self.model.model.with_untracked(|m| m.as_ref().map(|m| m.name.clone())),
            sampling: self.sampling.get_untracked(),
            max_tokens: self.max_tokens.get_untracked(),
            messages,
        })
    }

    /// Save the conversation on screen (a question sent, a reply ended). The list shows it as
    /// saved once IndexedDB has committed it (saves complete in the order they were made).
    pub fn save_chat(&self) {
        let Some(chat) = self.snapshot() else { return };
        let saved = self.saved;
        spawn_local(async move {
            match idb::put(&chat).await {
                Ok(()) => saved.chats.update(|cs| {
                    cs.retain(|c| c.id != chat.id);
                    cs.insert(0, chat);
                }),
                Err(e) => saved.note.set(Some(format!("This chat could not be saved: {e}"))),
            }
        });
    }

    /// Read the saved chats and put the most recent one on screen (when nothing is there yet);
    /// ask the browser to keep the storage.
    pub fn restore_chats(&self) {
        let store = *self;
        spawn_local(async move {
            match idb::all().await {
                Ok(chats) => {
                    let latest = chats.first().map(|c| c.id.clone());
                    store.saved.chats.set(chats);
                    if let Some(id) = latest {
                        if store.messages.with_untracked(|m| m.is_empty()) {
                            store.open_chat(&id);
                        }
                    }
                }
                Err(e) => store.saved.note.set(Some(format!("Saved chats cannot be read here: {e}"))),
            }
            store.refresh_storage().await;
        });
    }

    /// Ask the browser again how much this site stores (after a model was cached, say).
    pub fn refresh_storage_soon(&self) {
        let store = *self;
        spawn_local(async move { store.refresh_storage().await });
    }

    async fn refresh_storage(&self) {
        match idb::persist_and_estimate().await {
            Ok(s) => self.saved.storage.set(Some(s)),
            Err(e) => self.saved.note.set(Some(format!("The browser gives no storage estimate: {e}"))),
        }
    }

    /// Put saved chat `id` on screen (not while a reply is being written). The engine reads it
    /// again with the next message (what its cache holds of it is reused).
    pub fn open_chat(&self, id: &str) {
        if untrack(|| self.engine.generating()).is_some() {
            return;
        }
        let Some(chat) = self.saved.chats.with_untracked(|cs| cs.iter().find(|c| c.id == id).cloned()) else { return };
        let messages: Vec<ChatMsg> = chat
            .messages
            .iter()
            .map(|m| {
                let msg = ChatMsg::new(self.engine.id(), m.role, &m.text, m.plan, m.kv, m.act, true);
                msg.stats.set(m.stats.clone());
                msg.stopped.set(m.stopped);
                msg
            })
            .collect();
        self.saved.chat_id.set(chat.id);
        self.saved.created_ms.set(chat.created_ms);
        self.system_prompt.set(chat.system_prompt);
        self.messages.set(messages);
        self.editing.set(None);
        self.forgotten.set(0);
        self.last_stats.set(None);
    }

    pub fn delete_chat(&self, id: &str) {
        if untrack(|| self.engine.generating()).is_some() && self.saved.chat_id.get_untracked() == id {
            return;
        }
        // Gone from the list (and from the screen) once IndexedDB has committed the delete.
        let (store, id) = (*self, id.to_string());
        spawn_local(async move {
            match idb::delete(&id).await {
                Ok(()) => {
                    store.saved.chats.update(|cs| cs.retain(|c| c.id != id));
                    if store.saved.chat_id.get_untracked() == id {
                        store.new_chat();
                    }
                }
                Err(e) => store.saved.note.set(Some(format!("The chat could not be deleted: {e}"))),
            }
            store.refresh_storage().await;
        });
    }

    /// Every saved chat as one JSON file.
    pub fn export_chats(&self) {
        let now = js_sys::Date::now();
        let day = String::from(js_sys::Date::new(&now.into()).to_iso_string()).chars().take(10).collect::<String>();
        let text = self.saved.chats.with_untracked(|cs| history::export(cs, now));
        let n = self.saved.chats.with_untracked(|cs| cs.len());
        self.saved.note.set(Some(match idb::download(&format!("lowbit-chats-{day}.json"), &text) {
            Ok(()) => format!("Exported {n} chat{} to lowbit-chats-{day}.json.", if n == 1 { "" } else { "s" }),
            Err(e) => format!("The export failed: {e}"),
        }));
    }

    /// Add the chats of an export file (`text`), skipping those this page has already.
    pub fn import_chats(&self, text: &str) {
        let imported = match self.saved.chats.with_untracked(|cs| history::import(cs, text)) {
            Ok(i) => i,
            Err(e) => return self.saved.note.set(Some(format!("This file cannot be imported: {e}"))),
        };
        let store = *self;
        spawn_local(async move {
            // One transaction: the import is saved whole or not at all, and said once committed.
            if let Err(e) = idb::put_all(&imported.chats).await {
                return store.saved.note.set(Some(format!("The import failed, nothing was added: {e}")));
            }
            store.saved.note.set(Some(imported.summary()));
            if let Ok(chats) = idb::all().await {
                store.saved.chats.set(chats);
            }
            store.refresh_storage().await;
        });
    }
}
