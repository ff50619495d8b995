//! Any bytes as one file of a Hugging Face checkpoint: the first byte picks the file (config.json,
//! tokenizer.json, tokenizer_config.json, the shard index or a shard), the rest replaces it in a
//! small valid checkpoint; then the conversion to GGUF, and on success the tokenizer and chat
//! template the page would use. Never a panic, an abort or unbounded memory: a bad checkpoint is
//! an `Error`. Seeds: `cargo run --bin checkpoint_seeds` (each base file behind its pick byte).
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use lowbit::chat::{ChatTemplate, Message};
use lowbit::gguf::Gguf;
use lowbit::hf::{self, Files};
use lowbit::tokenizer::Tokenizer;

#[path = "../src/checkpoint_base.rs"]
mod checkpoint_base;

fuzz_target!(|data: &[u8]| {
    static BASE: OnceLock<Files> = OnceLock::new();
    let Some((&pick, rest)) = data.split_first() else { return };
    let mut files = BASE.get_or_init(checkpoint_base::base).clone();
    let name = checkpoint_base::TARGETS[pick as usize % checkpoint_base::TARGETS.len()];
    files.insert(name.to_string(), rest.to_vec());
    let _ = lowbit::safetensors::SafeTensors::parse(rest);
    let Ok(bytes) = hf::to_gguf(&files, "fuzz", hf::OutType::AsStored) else { return };
    // What the converter accepts is a GGUF lowbit runs.
    let g = Gguf::parse(&bytes).expect("the converter's GGUF parses");
    lowbit::model::Config::from_gguf(&g).expect("the converter checked the config");
    if let Ok(tok) = Tokenizer::from_gguf(&g) {
        let ids = tok.encode("ab ab <|endoftext|>", true);
        let _ = tok.decode(&ids);
        let t = ChatTemplate::from_gguf(&g, &tok);
        let _ = t.render(&[Message::new("user", "Hi")], true);
    }
});
