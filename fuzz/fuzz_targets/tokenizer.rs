//! Any text through the default model's tokenizer (encode with and without special tokens, then
//! decode), and any ids decoded. Skips when the default model is absent (www/models/, fetched by
//! README's commands, or $LOWBIT_MODEL).
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use lowbit::gguf::Gguf;
use lowbit::tokenizer::Tokenizer;

fn tokenizer() -> Option<&'static Tokenizer> {
    static TOK: OnceLock<Option<Tokenizer>> = OnceLock::new();
    TOK.get_or_init(|| {
        let path = std::env::var("LOWBIT_MODEL").unwrap_or_else(|_| "../www/models/SmolLM2-135M-Instruct.Q4_1.gguf".into());
        let bytes = std::fs::read(path).ok()?;
        let g = Gguf::parse(&bytes).ok()?;
        Tokenizer::from_gguf(&g).ok()
    })
    .as_ref()
}

fuzz_target!(|data: &[u8]| {
    let Some(tok) = tokenizer() else { return };
    let text = String::from_utf8_lossy(data);
    // SmolLM2's vocabulary has no token for 21 byte values: six control characters (0x04, 0x06,
    // 0x13, 0x14, 0x16, 0x1D), the lead bytes 0xF1 and 0xF2 of planes 4-12 (U+40000-U+BFFFF, where
    // no character is assigned), and bytes that never occur in UTF-8. Encoding drops them, as
    // llama.cpp's does. Text made of characters that survive on their own round-trips.
    let representable = text.chars().all(|c| {
        let s = c.to_string();
        tok.decode(&tok.encode(&s, false)) == s
    });
    for special in [false, true] {
        let ids = tok.encode(&text, special);
        let back = tok.decode(&ids);
        // Without special tokens, text round-trips (invalid UTF-8 came in as U+FFFD already).
        if !special && representable {
            assert_eq!(back, text, "round trip");
        }
    }
    let ids: Vec<u32> = data.chunks(4).map(|c| c.iter().fold(0u32, |a, &b| a << 8 | b as u32)).collect();
    let _ = tok.decode(&ids);
});
