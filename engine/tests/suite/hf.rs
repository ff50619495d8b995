//! Hugging Face checkpoints (`hf`): no internet here, so the suite writes checkpoints from GGUF
//! files (`hf::from_gguf`, every converter transform undone) and checks that reading them back
//! (`hf::to_gguf`) gives the same model: tokens, chat template, configuration and logits, for
//! every architecture lowbit runs, on the CPU and on the GPU at every precision; the default model
//! from BF16 weights scores the same perplexity; tokenizer.json written from llama.cpp's test
//! vocabularies gives the ids Hugging Face's tokenizers give, and Hugging Face's own library reads it
//! the same way. Hostile checkpoints are in `hostile.rs`.

use crate::common;

use lowbit::chat::{ChatTemplate, Message};
use lowbit::gguf::Gguf;
use lowbit::hf::{self, OutType};
use lowbit::model::{cpu::CpuBackend, forward, gpu::GpuBackend, perplexity, Backend, Config};
use lowbit::safetensors::Dtype;
use lowbit::tokenizer::Tokenizer;
use lowbit::Precision;
use pollster::block_on;

const TEXTS: [&str; 6] = [
    "Hello world",
    "  leading spaces and 12345 digits, 3.14159!",
    "Zürich 東京 🙂👍 done\n\n\ttabs",
    "<|im_start|>user\nHi<|im_end|>",
    "don't won't I'm they're",
    "",
];

fn logits_cpu(g: &Gguf, ids: &[u32]) -> Vec<f32> {
    let mut b = CpuBackend::load(g).unwrap();
    let cfg = b.cfg.clone();
    let x = forward(&cfg, &mut b, ids, 0, true).unwrap();
    block_on(b.read(&x)).unwrap()
}

/// The largest difference between two logit vectors, relative to the largest logit.
fn rel_diff(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len());
    let scale = a.iter().fold(0f32, |m, x| m.max(x.abs())).max(1e-6);
    a.iter().zip(b).fold(0f32, |m, (x, y)| m.max((x - y).abs())) / scale
}

fn same_tokenizer(a: &Gguf, b: &Gguf, what: &str) {
    let (ta, tb) = (Tokenizer::from_gguf(a).unwrap(), Tokenizer::from_gguf(b).unwrap());
    assert_eq!(ta.tokens, tb.tokens, "{what}: tokens");
    assert_eq!(ta.token_types, tb.token_types, "{what}: token types");
    assert_eq!((ta.bos, ta.eos, ta.eot, ta.add_bos), (tb.bos, tb.eos, tb.eot, tb.add_bos), "{what}: special tokens");
    for t in TEXTS {
        assert_eq!(ta.encode(t, true), tb.encode(t, true), "{what}: {t:?}");
        assert_eq!(ta.encode_with_bos(t, false), tb.encode_with_bos(t, false), "{what}: {t:?}");
    }
    let chat = [Message::new("system", "Be brief."), Message::new("user", "Hi")];
    let (ca, cb) = (ChatTemplate::from_gguf(a, &ta), ChatTemplate::from_gguf(b, &tb));
    assert_eq!(ca.render(&chat, true).unwrap(), cb.render(&chat, true).unwrap(), "{what}: chat template");
}

fn round_trip(g: &Gguf, dtype: Dtype, shards: usize) -> Vec<u8> {
    let files = hf::from_gguf(g, dtype, shards).unwrap();
    assert_eq!(files.contains_key(hf::INDEX), shards > 1);
    hf::to_gguf(&files, "test", OutType::AsStored).unwrap()
}

#[test]
fn every_architecture_reads_back_from_its_checkpoint() {
    for arch in lowbit::synth::ARCHITECTURES {
        let Some(bytes) = common::tiny_model_of(arch) else { return };
        let g = Gguf::parse(&bytes).unwrap();
        let ids: Vec<u32> = Tokenizer::from_gguf(&g).unwrap().encode_with_bos("The quick brown fox jumps over the lazy dog again and again", false);
        let want = logits_cpu(&g, &ids);
        // F32 weights hold the GGUF's dequantized values exactly: the same model to float
        // rounding (the CPU runs F32 and Q4_1 matrices through different loops).
        let back = round_trip(&g, Dtype::F32, if arch == "llama" { 3 } else { 1 });
        let gb = Gguf::parse(&back).unwrap();
        let (ca, cb) = (Config::from_gguf(&g).unwrap(), Config::from_gguf(&gb).unwrap());
        assert_eq!(ca, cb, "{arch}: config");
        same_tokenizer(&g, &gb, arch);
        let d = rel_diff(&want, &logits_cpu(&gb, &ids));
        println!("{arch:7} F32 checkpoint: largest logit difference {d:.2e} of the largest logit");
        assert!(d < 1e-4, "{arch}: F32 checkpoint logits differ by {d}");
        // BF16 rounds every weight to 8 bits of mantissa: close, not equal.
        let bf_bytes = round_trip(&g, Dtype::BF16, 1);
        let bf = Gguf::parse(&bf_bytes).unwrap();
        assert_eq!(bf.tensor("blk.0.attn_q.weight").unwrap().ggml_type, lowbit::gguf::GgmlType::BF16);
        let d = rel_diff(&want, &logits_cpu(&bf, &ids));
        println!("{arch:7} BF16 checkpoint: largest logit difference {d:.2e} of the largest logit");
        assert!(d > 0.0 && d < 0.05, "{arch}: BF16 checkpoint logits differ by {d}");
    }
}

/// A model with a SentencePiece vocabulary (Llama 2's, from llama.cpp's tests) reads back from its
/// checkpoint: its tokenizer.json is SentencePiece-style BPE (byte fallback, `▁` for spaces,
/// merges in score order).
#[test]
fn a_sentencepiece_model_reads_back_from_its_checkpoint() {
    let Some(dir) = common::llama_cpp_models() else { return };
    let vocab = std::fs::read(dir.join("ggml-vocab-llama-spm.gguf")).unwrap();
    let bytes = lowbit::synth::model_of(&Gguf::parse(&vocab).unwrap(), &lowbit::synth::Shape::TINY, 5, "llama").unwrap();
    let g = Gguf::parse(&bytes).unwrap();
    let back = round_trip(&g, Dtype::F32, 1);
    let gb = Gguf::parse(&back).unwrap();
    assert_eq!(gb.get_str("tokenizer.ggml.model"), Some("llama"));
    same_tokenizer(&g, &gb, "llama-spm");
    let ids = Tokenizer::from_gguf(&g).unwrap().encode_with_bos("Zürich is 42 km from here, isn't it?", false);
    let d = rel_diff(&logits_cpu(&g, &ids), &logits_cpu(&gb, &ids));
    assert!(d < 1e-4, "logits differ by {d}");
}

#[test]
fn a_checkpoint_runs_on_the_gpu_at_every_precision_like_its_gguf() {
    let Some(bytes) = common::tiny_model() else { return };
    let g = Gguf::parse(&bytes).unwrap();
    let back = round_trip(&g, Dtype::F32, 1);
    let gb = Gguf::parse(&back).unwrap();
    let ids: Vec<u32> = Tokenizer::from_gguf(&g).unwrap().encode_with_bos("Once upon a time, in a small village by the sea,", false);
    let Some(gpu) = common::gpu() else { return };
    for p in [Precision::Fp16, Precision::Int8, Precision::Int4] {
        let run = |g: &Gguf| {
            let mut b = GpuBackend::load(&gpu, g, p, 64).unwrap();
            let cfg = Config::from_gguf(g).unwrap();
            let x = forward(&cfg, &mut b, &ids, 0, true).unwrap();
            block_on(b.read(&x)).unwrap()
        };
        let d = rel_diff(&run(&g), &run(&gb));
        println!("{p:?}: GGUF vs its checkpoint, largest logit difference {d:.2e}");
        // FP16 and INT8 quantize the same values the same way. INT4 keeps the GGUF's Q4_1 blocks
        // as stored, and requantizes the checkpoint's values (the same grid, scales rounded
        // through f16 again).
        let tol = if p == Precision::Int4 { 2e-2 } else { 1e-4 };
        assert!(d < tol, "{p:?}: logits differ by {d}");
    }
}

#[test]
fn the_default_model_from_bf16_weights_scores_the_same_perplexity() {
    let Some(bytes) = common::default_model() else { return };
    let g = Gguf::parse(&bytes).unwrap();
    let files = hf::from_gguf(&g, Dtype::BF16, 1).unwrap();
    let back = hf::to_gguf(&files, "SmolLM2-135M-Instruct (BF16 checkpoint)", OutType::AsStored).unwrap();
    drop(files);
    let gb = Gguf::parse(&back).unwrap();
    same_tokenizer(&g, &gb, "default model");
    let text = common::golden_text("ppl-text.txt");
    let mut toks = Tokenizer::from_gguf(&g).unwrap().encode_with_bos(&text, false);
    toks.truncate(256);
    let ppl = |g: &Gguf| {
        let mut b = CpuBackend::load(g).unwrap();
        let cfg = b.cfg.clone();
        block_on(perplexity(&cfg, &mut b, &toks, 256)).unwrap().ppl
    };
    let (a, b) = (ppl(&g), ppl(&gb));
    let rel = (b - a).abs() / a;
    println!("default model: perplexity {a:.4} from GGUF, {b:.4} from its BF16 checkpoint ({:.3} %)", 100.0 * rel);
    assert!(rel < 1e-3, "perplexity {a} vs {b}");
}

/// llama.cpp's test vocabularies (`.inp` texts, `.out` ids from Hugging Face's tokenizers): each
/// byte-level one written as tokenizer.json and read back gives the expected ids.
#[test]
fn tokenizer_json_gives_hugging_faces_ids_on_llama_cpps_test_texts() {
    let Some(dir) = common::llama_cpp_models() else { return };
    for name in ["gpt-2", "llama-bpe", "qwen2", "starcoder", "llama-spm", "phi-3"] {
        let (bytes, texts, want) = common::vocab_test(&dir, name);
        let g = Gguf::parse(&bytes).unwrap();
        let files = hf::tokenizer_files(&g).unwrap();
        let tok_bytes = hf::tokenizer_gguf(&files).unwrap();
        let tok = Tokenizer::from_gguf(&Gguf::parse(&tok_bytes).unwrap()).unwrap();
        for (t, w) in texts.iter().zip(&want) {
            assert_eq!(&tok.encode(t, false), w, "{name}: {t:?}");
        }
        println!("{name:10} {} texts", texts.len());
    }
}

/// Hugging Face's own `tokenizers` reads the tokenizer.json lowbit writes (the default model's and
/// llama.cpp's byte-level test vocabularies) to the same ids lowbit reads from it, and that the
/// GGUF tokenizer gives, on varied texts.
#[test]
fn hugging_faces_tokenizers_agree_with_lowbit_on_its_tokenizer_json() {
    let Some(model) = common::default_model() else { return };
    let Some(dir) = common::llama_cpp_models() else { return };
    if common::hf_tokenizers().is_none() {
        return;
    }
    let mut texts: Vec<String> = TEXTS.iter().map(|t| t.to_string()).collect();
    let gold = common::golden(common::SMOLLM_GOLDEN);
    texts.extend(gold["tokenize"].as_array().unwrap().iter().map(|c| c["text"].as_str().unwrap().to_string()));
    texts.push(common::golden_text("ppl-text.txt"));
    texts.extend(common::vocab_test(&dir, "llama-bpe").1);
    let tmp = std::env::temp_dir().join(format!("lowbit-hf-tok-{}", std::process::id()));
    std::fs::create_dir_all(&tmp).unwrap();
    let texts_path = tmp.join("texts.json");
    std::fs::write(&texts_path, serde_json::to_vec(&texts).unwrap()).unwrap();
    let mut vocabs = vec![("default model".to_string(), model)];
    for name in ["gpt-2", "llama-bpe", "qwen2", "starcoder", "llama-spm", "phi-3"] {
        vocabs.push((name.to_string(), std::fs::read(dir.join(format!("ggml-vocab-{name}.gguf"))).unwrap()));
    }
    // Gemma 3's 262,144-token SentencePiece vocabulary (no space prefix).
    if let Some(path) = common::gemma_model_path() {
        vocabs.push(("gemma-3-270m".to_string(), std::fs::read(path).unwrap()));
    }
    for (name, bytes) in &vocabs {
        let g = Gguf::parse(bytes).unwrap();
        let files = hf::tokenizer_files(&g).unwrap();
        let path = tmp.join("tokenizer.json");
        std::fs::write(&path, &files[hf::TOKENIZER]).unwrap();
        let out = common::hf_tokenizers().unwrap().arg(&path).arg(&texts_path).output().unwrap();
        assert!(out.status.success(), "{name}: {}", String::from_utf8_lossy(&out.stderr));
        let want: Vec<Vec<u32>> = serde_json::from_slice(&out.stdout).unwrap();
        let read = Tokenizer::from_gguf(&Gguf::parse(&hf::tokenizer_gguf(&files).unwrap()).unwrap()).unwrap();
        let own = Tokenizer::from_gguf(&g).unwrap();
        for (t, w) in texts.iter().zip(&want) {
            assert_eq!(&read.encode(t, true), w, "{name}: lowbit's reading of tokenizer.json vs tokenizers on {t:?}");
            assert_eq!(&own.encode(t, true), w, "{name}: the GGUF tokenizer vs tokenizers on {t:?}");
        }
        println!("{name:14} {} texts: identical ids", texts.len());
    }
    std::fs::remove_dir_all(&tmp).ok();
}
