//! The chat feature's job and events: one reply to a conversation, streamed.

use lowbit::chat::Message;
use lowbit::sampler::SamplerConfig;
use lowbit::session::ReplyStats;
use serde::{Deserialize, Serialize};

/// Who wrote a message. Chat messages on the page, saved chats and the history sent to the
/// engine all use it (saved as `"user"`, `"assistant"`, `"system"`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    System,
    User,
    Assistant,
}

impl Role {
    /// The role's name in chat templates.
    pub fn name(self) -> &'static str {
        match self {
            Role::System => "system",
            Role::User => "user",
            Role::Assistant => "assistant",
        }
    }

    /// A message of this role for the engine's chat template.
    pub fn message(self, text: &str) -> Message {
        Message::new(self.name(), text)
    }
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub enum ChatJob {
    /// Answer the last message of `messages` (the whole conversation, system prompt first).
    Reply { messages: Vec<Message>, sampling: SamplerConfig, max_tokens: usize },
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub enum ChatEvent {
    /// The reply has read `done` of its prompt's `total` new tokens (sent between the slices a
    /// long prompt is read in; Stop takes effect at the next one).
    Reading { done: usize, total: usize },
    /// A piece of the reply, with the decode rate so far (tokens per second since the first
    /// token; 0 until the second).
    Token { text: String, tokens: usize, decode_tps: f64 },
    ReplyDone { stats: ReplyStats, stopped: bool },
}

impl ChatEvent {
    pub fn ends_job(&self) -> bool {
        match self {
            ChatEvent::ReplyDone { .. } => true,
            ChatEvent::Reading { .. } | ChatEvent::Token { .. } => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_are_saved_by_their_template_names() {
        for r in [Role::System, Role::User, Role::Assistant] {
            assert_eq!(serde_json::to_string(&r).unwrap(), format!("\"{}\"", r.name()));
        }
        assert_eq!(Role::User.message("hi"), Message::new("user", "hi"));
    }
}
