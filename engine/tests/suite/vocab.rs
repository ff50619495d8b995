//! Tokenizers and chat templates people's files carry, from llama.cpp's own test data (the
//! `models/` directory of the PyPI source package llama-cpp-python 0.3.36): every vocab-only GGUF
//! with `.inp`/`.out` pairs (texts and the ids Hugging Face's tokenizers give them), and every
//! `.jinja` chat template.

use crate::common;

use lowbit::chat::{ChatTemplate, Message};
use lowbit::gguf::Gguf;
use lowbit::tokenizer::Tokenizer;

/// The vocabularies that must tokenize every test text exactly as llama.cpp's tests expect.
const REQUIRED: [&str; 5] = ["gpt-2", "qwen2", "llama-spm", "llama-bpe", "phi-3"];

#[test]
fn tokenizers_give_the_ids_llama_cpp_tests_expect() {
    let Some(dir) = common::llama_cpp_models() else { return };
    let mut names: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter_map(|f| Some(f.strip_prefix("ggml-vocab-")?.strip_suffix(".gguf.inp")?.to_string()))
        .collect();
    names.sort();
    let mut failed = vec![];
    for name in &names {
        let (bytes, texts, want) = common::vocab_test(&dir, name);
        let tok = match Gguf::parse(&bytes).and_then(|g| Tokenizer::from_gguf(&g)) {
            Ok(t) => t,
            Err(e) => {
                println!("{name:16} not supported: {e}");
                if REQUIRED.contains(&name.as_str()) {
                    failed.push(format!("{name}: {e}"));
                }
                continue;
            }
        };
        let wrong: Vec<String> = texts
            .iter()
            .zip(&want)
            .filter_map(|(t, w)| {
                let got = tok.encode(t, false);
                (&got != w).then(|| format!("{t:?}: {got:?}, expected {w:?}"))
            })
            .collect();
        println!("{name:16} {}/{} texts identical{}", texts.len() - wrong.len(), texts.len(), wrong.first().map_or(String::new(), |w| format!("; first difference {w}")));
        if REQUIRED.contains(&name.as_str()) && !wrong.is_empty() {
            failed.push(format!("{name}: {} of {} differ, first {}", wrong.len(), texts.len(), wrong[0]));
        }
    }
    assert!(failed.is_empty(), "{failed:#?}");
}

#[test]
fn every_chat_template_renders_or_falls_back_with_its_reason() {
    let Some(dir) = common::llama_cpp_models() else { return };
    let mut files: Vec<_> = std::fs::read_dir(dir.join("templates")).unwrap().filter_map(|e| Some(e.ok()?.path())).collect();
    files.retain(|p| p.extension().is_some_and(|e| e == "jinja"));
    files.sort();
    let conversation = [
        Message::new("system", "You are a careful assistant."),
        Message::new("user", "What is 2 + 2?"),
        Message::new("assistant", "It is 4."),
        Message::new("user", "And 3 + 3?"),
    ];
    let (mut rendered, mut fell_back) = (0, vec![]);
    for f in &files {
        let name = f.file_name().unwrap().to_string_lossy().to_string();
        let t = ChatTemplate::from_source(&std::fs::read_to_string(f).unwrap(), "<s>", "</s>");
        let text = t.render(&conversation, true).unwrap_or_else(|e| panic!("{name}: the template (or ChatML) failed: {e}"));
        // Whatever renders must carry the conversation: both questions and the answer.
        for part in ["What is 2 + 2?", "It is 4.", "And 3 + 3?"] {
            assert!(text.contains(part), "{name} lost {part:?}: {text}");
        }
        match &t.fallback {
            None => rendered += 1,
            Some(why) => {
                assert!(!t.from_file && !why.is_empty());
                fell_back.push(format!("{name}: {why}"));
            }
        }
    }
    println!("{rendered} of {} templates render; ChatML for the others:\n  {}", files.len(), fell_back.join("\n  "));
    assert!(files.len() >= 60, "{} templates", files.len());
    // Most templates render as their authors meant; a drop here is a regression to look at.
    assert!(rendered * 10 >= files.len() * 8, "only {rendered} of {} render", files.len());
}
