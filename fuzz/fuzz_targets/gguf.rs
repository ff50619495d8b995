//! Any bytes as a GGUF file: parse, then everything the page does with a file before the GPU
//! (model info, config, tokenizer, the first rows of every tensor dequantized). Never a panic, an
//! abort or unbounded memory: a bad file is an `Error`. (Chat templates have their own target:
//! one that runs out of fuel takes seconds, which would starve this one.)
#![no_main]

use libfuzzer_sys::fuzz_target;
use lowbit::gguf::Gguf;
use lowbit::model::Config;
use lowbit::info::ModelInfo;
use lowbit::tokenizer::Tokenizer;

fuzz_target!(|data: &[u8]| {
    let Ok(g) = Gguf::parse(data) else { return };
    let _ = ModelInfo::from_gguf(&g, data.len() as u64);
    let _ = Config::from_gguf(&g);
    for t in &g.tensors {
        let _ = g.dequantize_rows(t, 0, 2);
    }
    if let Ok(tok) = Tokenizer::from_gguf(&g) {
        let ids = tok.encode("Hello, world! <|im_start|>user\n", true);
        let _ = tok.decode(&ids);
        let _ = tok.decode(&[0, 1, 2, u32::MAX]);
    }
});
