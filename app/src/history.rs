//! Saved conversations: what the page keeps in IndexedDB (one record per chat, written as it
//! happens) and what "Export" writes and "Import" reads. Plain data, so the merge rules are tested
//! natively; the IndexedDB calls are in the page (`idb.rs`).

use lowbit::plan::Plan;
use lowbit::sampler::SamplerConfig;
use lowbit::session::ReplyStats;
use lowbit::KvPrecision;
use serde::{Deserialize, Serialize};

use crate::protocol::Role;

/// The version of [`SavedChat`]'s layout in storage and in export files. An import of a file with
/// a larger one is refused (it was written by a newer page); smaller ones are read as they are.
pub const SCHEMA: u32 = 1;

/// What an export file says it is.
pub const FORMAT: &str = "lowbit-chats";

/// One conversation as saved.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SavedChat {
    /// Unique per chat (the time it was started and a random part).
    pub id: String,
    pub title: String,
    /// Milliseconds since 1970.
    pub created_ms: f64,
    pub updated_ms: f64,
    pub system_prompt: String,
    /// The model file the last reply came from.
    #[serde(default)]
    pub model: Option<String>,
    pub sampling: SamplerConfig,
    pub max_tokens: usize,
    pub messages: Vec<SavedMessage>,
}

/// One message, with what wrote it when it is a reply.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SavedMessage {
    /// `user` or `assistant` in storage and exports.
    pub role: Role,
    pub text: String,
    /// The weights' precisions and the KV cache format that wrote a reply.
    #[serde(default)]
    pub plan: Option<Plan>,
    #[serde(default)]
    pub kv: Option<KvPrecision>,
    /// The activations' format that wrote a reply (f32 when not saved).
    #[serde(default)]
    pub act: Option<lowbit::Activations>,
    #[serde(default)]
    pub stats: Option<ReplyStats>,
    /// The reply was stopped before its end.
    #[serde(default)]
    pub stopped: bool,
}

/// An export file: every chat, with the schema that wrote them.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Export {
    pub format: String,
    pub schema: u32,
    pub exported_ms: f64,
    pub chats: Vec<SavedChat>,
}

/// A chat's title: its first question, on one line, cut at a word near 60 characters.
pub fn title_of(messages: &[SavedMessage]) -> String {
    let first = messages.iter().find(|m| m.role == Role::User).map(|m| m.text.as_str()).unwrap_or("");
    let line = first.split_whitespace().collect::<Vec<_>>().join(" ");
    if line.is_empty() {
        return "New chat".into();
    }
    if line.chars().count() <= 60 {
        return line;
    }
    let cut: String = line.chars().take(60).collect();
    let at = cut.rfind(' ').filter(|&i| i > 30).unwrap_or(cut.len());
    format!("{}…", &cut[..at])
}

/// The export file of `chats`.
pub fn export(chats: &[SavedChat], now_ms: f64) -> String {
    let e = Export { format: FORMAT.into(), schema: SCHEMA, exported_ms: now_ms, chats: chats.to_vec() };
    serde_json::to_string_pretty(&e).unwrap_or_default()
}

/// What an import brings: the chats to store (new ones, and newer versions of ones here) and how
/// many were skipped because this page already has them as they are (or newer).
#[derive(Clone, Debug, PartialEq)]
pub struct Imported {
    pub chats: Vec<SavedChat>,
    pub added: usize,
    pub updated: usize,
    pub skipped: usize,
}

impl Imported {
    /// "Imported 2 chats (1 updated); skipped 3 already here."
    pub fn summary(&self) -> String {
        let n = |k: usize| if k == 1 { "1 chat".to_string() } else { format!("{k} chats") };
        let mut s = format!("Imported {}", n(self.added + self.updated));
        if self.updated > 0 {
            s += &format!(" ({} updated)", self.updated);
        }
        if self.skipped > 0 {
            s += &format!("; skipped {} already here", n(self.skipped));
        }
        s + "."
    }
}

/// Read an export file against the chats this page has. A file that is not an export, or was
/// written by a newer schema, is refused with the reason.
pub fn import(existing: &[SavedChat], json: &str) -> Result<Imported, String> {
    let value: serde_json::Value = serde_json::from_str(json).map_err(|e| format!("not a JSON file: {e}"))?;
    if value.get("format").and_then(|f| f.as_str()) != Some(FORMAT) {
        return Err(format!("not a lowbit chats export (its \"format\" is not \"{FORMAT}\")"));
    }
    let schema = value.get("schema").and_then(|s| s.as_u64()).unwrap_or(0);
    if schema > SCHEMA as u64 {
        return Err(format!("written by a newer lowbit (schema {schema}; this page reads up to {SCHEMA})"));
    }
    let e: Export = serde_json::from_value(value).map_err(|e| format!("the file's chats cannot be read: {e}"))?;
    let mut out = Imported { chats: vec![], added: 0, updated: 0, skipped: 0 };
    for c in e.chats {
        match existing.iter().find(|x| x.id == c.id) {
            Some(x) if x.updated_ms >= c.updated_ms => out.skipped += 1,
            Some(_) => {
                out.updated += 1;
                out.chats.push(c);
            }
            None if out.chats.iter().any(|x| x.id == c.id) => out.skipped += 1,
            None => {
                out.added += 1;
                out.chats.push(c);
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chat(id: &str, updated_ms: f64, question: &str) -> SavedChat {
        SavedChat {
            id: id.into(),
            title: question.into(),
            created_ms: 1.0,
            updated_ms,
            system_prompt: "You are a helpful assistant.".into(),
            model: Some("lowbit-tiny.gguf".into()),
            sampling: SamplerConfig::default(),
            max_tokens: 64,
            messages: vec![
                SavedMessage { role: Role::User, text: question.into(), plan: None, kv: None, act: None, stats: None, stopped: false },
                SavedMessage { role: Role::Assistant, text: "Paris.".into(), plan: Some(Plan::uniform(lowbit::Precision::Int4)), kv: Some(KvPrecision::F16), act: None, stats: None, stopped: true },
            ],
        }
    }

    #[test]
    fn an_export_imports_once_then_is_skipped() {
        let here = vec![chat("a", 5.0, "Capital of France?")];
        let theirs = vec![chat("b", 7.0, "And of Spain?"), chat("c", 9.0, "Why is the sky blue?")];
        let file = export(&theirs, 10.0);
        let first = import(&here, &file).unwrap();
        assert_eq!((first.added, first.updated, first.skipped), (2, 0, 0));
        assert_eq!(first.chats, theirs, "every field survives the round trip");
        let mut all = here.clone();
        all.extend(first.chats);
        let again = import(&all, &file).unwrap();
        assert_eq!((again.added, again.skipped), (0, 2));
        assert!(again.chats.is_empty());
        assert_eq!(again.summary(), "Imported 0 chats; skipped 2 chats already here.");
        // A newer version of a chat here replaces it; an older one is skipped.
        let newer = import(&all, &export(&[chat("a", 6.0, "Capital of France?"), chat("b", 1.0, "old")], 11.0)).unwrap();
        assert_eq!((newer.added, newer.updated, newer.skipped), (0, 1, 1));
        assert_eq!(newer.summary(), "Imported 1 chat (1 updated); skipped 1 chat already here.");
    }

    #[test]
    fn files_that_are_not_exports_are_refused_with_the_reason() {
        assert!(import(&[], "{").unwrap_err().starts_with("not a JSON file"));
        assert!(import(&[], "{\"chats\": []}").unwrap_err().contains("not a lowbit chats export"));
        let future = export(&[], 1.0).replace("\"schema\": 1", "\"schema\": 99");
        assert!(import(&[], &future).unwrap_err().contains("newer lowbit (schema 99"));
        let broken = export(&[chat("a", 1.0, "q")], 1.0).replace("\"messages\"", "\"mess\"");
        assert!(import(&[], &broken).unwrap_err().contains("cannot be read"));
    }

    #[test]
    fn titles_are_the_first_question_on_one_line() {
        let m = |t: &str| vec![SavedMessage { role: Role::User, text: t.into(), plan: None, kv: None, act: None, stats: None, stopped: false }];
        assert_eq!(title_of(&m("What is\nthe capital  of France?")), "What is the capital of France?");
        assert_eq!(title_of(&[]), "New chat");
        let long = title_of(&m("Please explain in a few sentences how a bicycle turns pedalling into forward motion"));
        assert!(long.ends_with('…') && long.chars().count() <= 61, "{long}");
    }
}
