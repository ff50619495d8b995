//! Chat prompts: the model's own `tokenizer.chat_template` rendered with minijinja, with the
//! Hugging Face conventions (`messages`, `add_generation_prompt`, `bos_token`, `eos_token`,
//! `raise_exception`, `strftime_now`); ChatML when the file has no template.

use minijinja::{Environment, Error as JinjaError, ErrorKind, Value};
use serde::{Deserialize, Serialize};

use crate::gguf::Gguf;
use crate::tokenizer::Tokenizer;
use crate::{Error, Result};

/// Gemma's turn format (`<start_of_turn>user` … `<end_of_turn>`, the assistant is `model`; no
/// system role): for a Gemma file that carries no template.
pub const GEMMA: &str = "{% for message in messages %}{{ '<start_of_turn>' + ('model' if message['role'] == 'assistant' else message['role']) + '\n' + message['content'] | trim + '<end_of_turn>\n' }}{% endfor %}{% if add_generation_prompt %}{{ '<start_of_turn>model\n' }}{% endif %}";

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

/// Template instructions one render may run: a long conversation needs a few thousand; a template
/// that loops stops here instead of hanging the worker.
pub const FUEL: u64 = 5_000_000;
/// The longest prompt text a render may produce (a template that explodes stops here).
pub const MAX_OUTPUT: usize = 8 << 20;

pub struct ChatTemplate {
    source: String,
    /// The file had its own template and it renders (false: a built-in format, `builtin`).
    pub from_file: bool,
    /// The built-in format used when the file's template is absent or fails: "ChatML", or
    /// "Gemma" for a vocabulary with Gemma's turn tokens and no ChatML ones.
    pub builtin: &'static str,
    /// Why the file's template is not used (it failed a trial render), if it is not.
    pub fallback: Option<String>,
    /// The template refuses a system message (Gemma 2's raises "System role not supported"): the
    /// system prompt goes at the start of the first user message instead, as such models expect.
    pub fold_system: bool,
    bos: String,
    eos: String,
}

impl ChatTemplate {
    /// The file's template, tried once on a short conversation; a built-in format for its
    /// vocabulary when the file has none or when it fails (`fallback` says why).
    pub fn from_gguf(g: &Gguf, tok: &Tokenizer) -> Self {
        let name = |id: Option<u32>| id.and_then(|i| tok.tokens.get(i as usize)).cloned().unwrap_or_default();
        let has = |t: &str| tok.token_id(t).is_some();
        let mut t = match g.get_str("tokenizer.chat_template") {
            Some(source) => Self::from_source(source, &name(tok.bos), &name(tok.eos)),
            None => ChatTemplate {
                source: CHATML.into(),
                from_file: false,
                builtin: "ChatML",
                fallback: None,
                fold_system: false,
                bos: name(tok.bos),
                eos: name(tok.eos),
            },
        };
        if !t.from_file && has("<start_of_turn>") && has("<end_of_turn>") && !has("<|im_start|>") {
            (t.source, t.builtin, t.fold_system) = (GEMMA.into(), "Gemma", true);
        }
        t
    }

    /// A file's template `source` (with its BOS and EOS token texts), tried once on a short
    /// conversation; ChatML when it fails (`fallback` says why).
    pub fn from_source(source: &str, bos: &str, eos: &str) -> Self {
        let source = without_generation_tags(source);
        let mut t =
            ChatTemplate { source, from_file: true, builtin: "ChatML", fallback: None, fold_system: false, bos: bos.into(), eos: eos.into() };
        let trial = [
            Message::new("system", "You are helpful."),
            Message::new("user", "Hello"),
            Message::new("assistant", "Hi!"),
            Message::new("user", "Thanks"),
        ];
        if let Err(e) = t.render(&trial, true) {
            t.fold_system = true;
            if t.render(&trial, true).is_err() {
                t = ChatTemplate { source: CHATML.into(), from_file: false, fallback: Some(e.to_string()), fold_system: false, ..t };
            }
        }
        t
    }

    /// The prompt text for `messages`, ending with the assistant's turn opener when asked. At most
    /// [`FUEL`] instructions and [`MAX_OUTPUT`] bytes.
    pub fn render(&self, messages: &[Message], add_generation_prompt: bool) -> Result<String> {
        let folded;
        let messages = match (self.fold_system, messages) {
            (true, [system, user, rest @ ..]) if system.role == "system" && user.role == "user" => {
                folded = [&[Message::new("user", &format!("{}\n\n{}", system.content, user.content))], rest].concat();
                &folded[..]
            }
            (true, [system, rest @ ..]) if system.role == "system" => rest,
            _ => messages,
        };
        let mut env = Environment::new();
        env.set_fuel(Some(FUEL));
        env.set_unknown_method_callback(minijinja_contrib::pycompat::unknown_method_callback);
        env.add_function("raise_exception", |msg: String| -> std::result::Result<Value, JinjaError> {
            Err(JinjaError::new(ErrorKind::InvalidOperation, msg))
        });
        env.add_function("strftime_now", |fmt: String| -> String { crate::util::strftime(&fmt, crate::util::unix_seconds()) });
        let err = |e: JinjaError| Error::Template(e.to_string());
        env.add_template("chat", &self.source).map_err(err)?;
        let tmpl = env.get_template("chat").map_err(err)?;
        let mut out = Capped { buf: Vec::new(), full: false };
        let ctx = minijinja::context! {
            messages => messages,
            add_generation_prompt => add_generation_prompt,
            bos_token => self.bos,
            eos_token => self.eos,
        };
        tmpl.render_captured_to(ctx, &mut out).map_err(|e| match out.full {
            true => Error::Template(format!("the prompt it writes passes {MAX_OUTPUT} bytes")),
            false => err(e),
        })?;
        String::from_utf8(out.buf).map_err(|_| Error::Template("it wrote bytes that are not UTF-8".into()))
    }
}

/// The template without Hugging Face's `{% generation %}` … `{% endgeneration %}` tags, which mark
/// the assistant's text for training masks and render as their contents (Jinja itself has no such
/// statement).
fn without_generation_tags(source: &str) -> String {
    static TAG: std::sync::OnceLock<fancy_regex::Regex> = std::sync::OnceLock::new();
    let tag = TAG.get_or_init(|| fancy_regex::Regex::new(r"\{%-?\s*(?:end)?generation\s*-?%\}").expect("a valid pattern"));
    tag.replace_all(source, "").into_owned()
}

/// A writer that refuses to grow past [`MAX_OUTPUT`] bytes (`full` once it refused).
struct Capped {
    buf: Vec<u8>,
    full: bool,
}

impl std::io::Write for Capped {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        if self.buf.len() + b.len() > MAX_OUTPUT {
            self.full = true;
            return Err(std::io::Error::other("output cap"));
        }
        self.buf.extend_from_slice(b);
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Gemma 2's way: a template that raises on a system message.
    const NO_SYSTEM: &str = "{% if messages[0]['role'] == 'system' %}{{ raise_exception('System role not supported') }}{% endif %}\
        {% for m in messages %}<{{ m['role'] }}>{{ m['content'] }}</{{ m['role'] }}>{% endfor %}\
        {% if add_generation_prompt %}<model>{% endif %}";

    #[test]
    fn a_template_without_system_messages_gets_the_system_prompt_in_the_first_user_turn() {
        let t = ChatTemplate::from_source(NO_SYSTEM, "<s>", "</s>");
        assert!(t.from_file && t.fold_system && t.fallback.is_none());
        let text = t.render(&[Message::new("system", "Be brief."), Message::new("user", "Hi")], true).unwrap();
        assert_eq!(text, "<user>Be brief.\n\nHi</user><model>");
        // Without a system message the conversation is as written.
        assert_eq!(t.render(&[Message::new("user", "Hi")], false).unwrap(), "<user>Hi</user>");
    }

    #[test]
    fn generation_tags_render_as_their_contents_and_loops_can_break() {
        let src = "{% for m in messages %}{% if loop.index > 1 %}{% break %}{% endif %}{% generation %}{{ m['content'] }}{% endgeneration %}{% endfor %}";
        let t = ChatTemplate::from_source(src, "", "");
        assert!(t.fallback.is_none(), "{:?}", t.fallback);
        assert_eq!(t.render(&[Message::new("user", "a"), Message::new("assistant", "b")], false).unwrap(), "a");
    }
}
