//! Any text as a chat template: rendered within its fuel and output budget, or refused with a
//! reason (the page then uses ChatML). Never a hang, a panic or unbounded memory.
#![no_main]

use libfuzzer_sys::fuzz_target;
use lowbit::chat::{ChatTemplate, Message};

fuzz_target!(|data: &[u8]| {
    let Ok(source) = std::str::from_utf8(data) else { return };
    let t = ChatTemplate::from_source(source, "<s>", "</s>");
    let msgs = [Message::new("system", "Be brief."), Message::new("user", "Hi"), Message::new("assistant", "Hello!"), Message::new("user", "Bye")];
    if let Ok(out) = t.render(&msgs, true) {
        assert!(out.len() <= lowbit::chat::MAX_OUTPUT, "output cap");
    }
});
