//! Chat prompts: the model's own `tokenizer.chat_template` rendered with minijinja, with the
//! Hugging Face conventions (`messages`, `add_generation_prompt`, `bos_token`, `eos_token`,
//! `raise_exception`, `strftime_now`); ChatML when the file has no template.

use minijinja::{Environment, Error as JinjaError, ErrorKind, Value};
use serde::{Deserialize, Serialize};

use crate::gguf::Gguf;
use crate::tokenizer::Tokenizer;
use crate::{Error, Result};

pub const CHATML: &str = "{% for message in messages %}{{ '<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n' }}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}";

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Message {
    pub role: String,
    pub content: String,
}

impl Message {
    pub fn new(role: &str, content: &str) -> Self {
        Message { role: role.into(), content: content.into() }
    }
}

pub struct ChatTemplate {
    source: String,
    /// The file had its own template (false: the ChatML fallback).
    pub from_file: bool,
    bos: String,
    eos: String,
}

impl ChatTemplate {
    pub fn from_gguf(g: &Gguf, tok: &Tokenizer) -> Self {
        let name = |id: Option<u32>| id.and_then(|i| tok.tokens.get(i as usize)).cloned().unwrap_or_default();
        let file = g.get_str("tokenizer.chat_template");
        ChatTemplate {
            source: file.unwrap_or(CHATML).to_string(),
            from_file: file.is_some(),
            bos: name(tok.bos),
            eos: name(tok.eos),
        }
    }

    /// The prompt text for `messages`, ending with the assistant's turn opener when asked.
    pub fn render(&self, messages: &[Message], add_generation_prompt: bool) -> Result<String> {
        let mut env = Environment::new();
        env.set_unknown_method_callback(minijinja_contrib::pycompat::unknown_method_callback);
        env.add_function("raise_exception", |msg: String| -> std::result::Result<Value, JinjaError> {
            Err(JinjaError::new(ErrorKind::InvalidOperation, msg))
        });
        env.add_function("strftime_now", |fmt: String| -> String { crate::util::strftime(&fmt, crate::util::unix_seconds()) });
        env.add_template("chat", &self.source).map_err(|e| Error::Malformed(format!("chat template: {e}")))?;
        let tmpl = env.get_template("chat").map_err(|e| Error::Malformed(format!("chat template: {e}")))?;
        tmpl.render(minijinja::context! {
            messages => messages,
            add_generation_prompt => add_generation_prompt,
            bos_token => self.bos,
            eos_token => self.eos,
        })
        .map_err(|e| Error::Malformed(format!("chat template: {e}")))
    }
}
