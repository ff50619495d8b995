//! Tokenizer ids identical to llama.cpp's for every golden string of the default model.

use crate::common;

use common::{golden, golden_text, ids, SMOLLM_GOLDEN};
use lowbit::gguf::Gguf;
use lowbit::tokenizer::{StreamDecoder, Tokenizer};

fn smollm() -> Option<(Vec<u8>,)> {
    common::default_model().map(|b| (b,))
}

#[test]
fn bpe_matches_llama_cpp_on_every_golden_string() {
    let Some((bytes,)) = smollm() else { return };
    let g = Gguf::parse(&bytes).unwrap();
    let tok = Tokenizer::from_gguf(&g).unwrap();
    let gold = golden(SMOLLM_GOLDEN);
    let mut n = 0;
    for case in gold["tokenize"].as_array().unwrap() {
        let text = case["text"].as_str().unwrap();
        assert_eq!(tok.encode(text, true), ids(&case["ids"]), "tokenize {text:?}");
        assert_eq!(tok.decode(&tok.encode(text, false)), text, "round trip {text:?}");
        n += 1;
    }
    for case in gold["greedy"].as_array().unwrap() {
        let prompt = case["prompt"].as_str().unwrap();
        assert_eq!(tok.encode_with_bos(prompt, true), ids(&case["prompt_ids"]), "prompt {prompt:?}");
        n += 1;
    }
    let ppl = &gold["perplexity"];
    let want = ids(&ppl["token_ids"]);
    let got = tok.encode_with_bos(&golden_text("ppl-text.txt"), false);
    assert_eq!(&got[..want.len().min(got.len())], &want[..], "perplexity text");
    assert!(n >= 12);
}

#[test]
fn stream_decoder_never_splits_a_character() {
    let Some((bytes,)) = smollm() else { return };
    let g = Gguf::parse(&bytes).unwrap();
    let tok = Tokenizer::from_gguf(&g).unwrap();
    let text = "Zürich 東京 🙂👍 done";
    let ids = tok.encode(text, false);
    let mut dec = StreamDecoder::default();
    let mut out = String::new();
    for id in ids {
        let piece = dec.push(&tok, id);
        assert!(!piece.contains('\u{FFFD}'), "emitted a broken character: {piece:?}");
        out += &piece;
    }
    out += &dec.finish();
    assert_eq!(out, text);
    // Control tokens decode to nothing; stop tokens are known.
    let im_end = tok.token_id("<|im_end|>").unwrap();
    assert!(tok.token_bytes(im_end).is_empty());
    assert!(tok.is_stop(im_end));
}

#[test]
fn the_benchmark_prompt_is_exactly_n_tokens_and_its_text_tokenizes_back_to_them() {
    let Some((bytes,)) = smollm() else { return };
    let g = Gguf::parse(&bytes).unwrap();
    let tok = Tokenizer::from_gguf(&g).unwrap();
    for n in [1, 7, 128, 300] {
        let (ids, text) = lowbit::bench::text_prompt(&tok, n).expect("the model's tokenizer makes a text prompt");
        assert_eq!(ids.len(), n);
        // What a peer runtime (llama.cpp) reads: the text, with the model's BOS rule.
        assert_eq!(tok.encode_with_bos(&text, false), ids, "n = {n}: {text:?}");
    }
}

/// Gemma 3's SentencePiece vocabulary (262,144 tokens) gives llama.cpp's ids for every golden
/// string, prompt and the perplexity text (the architecture itself is not supported yet).
#[test]
fn gemma3_spm_matches_llama_cpp_on_every_golden_string() {
    let Some(path) = common::gemma_model_path() else { return };
    let bytes = std::fs::read(path).unwrap();
    let g = Gguf::parse(&bytes).unwrap();
    let tok = Tokenizer::from_gguf(&g).unwrap();
    assert_eq!(tok.vocab_size(), 262_144);
    let gold = golden("gemma3-270m-q4_k_m.llamacpp.json");
    let mut wrong = vec![];
    for case in gold["tokenize"].as_array().unwrap() {
        let text = case["text"].as_str().unwrap();
        let (got, want) = (tok.encode(text, true), ids(&case["ids"]));
        if got != want {
            wrong.push(format!("{text:?}: {got:?}, expected {want:?}"));
        }
    }
    for case in gold["greedy"].as_array().unwrap() {
        let prompt = case["prompt"].as_str().unwrap();
        let (got, want) = (tok.encode_with_bos(prompt, true), ids(&case["prompt_ids"]));
        if got != want {
            wrong.push(format!("prompt {prompt:?}: {got:?}, expected {want:?}"));
        }
    }
    let want = ids(&gold["perplexity"]["token_ids"]);
    let got = tok.encode_with_bos(&golden_text("ppl-text.txt"), false);
    if got[..want.len().min(got.len())] != want[..] {
        wrong.push("the perplexity text".into());
    }
    assert!(wrong.is_empty(), "{wrong:#?}");
}
