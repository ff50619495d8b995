//! Chat template, sampler and the `lowbit` command line.

use crate::common;

use common::{golden, SMOLLM_GOLDEN};
use lowbit::chat::{ChatTemplate, Message};
use lowbit::gguf::Gguf;
use lowbit::sampler::{Sampler, SamplerConfig};
use lowbit::tokenizer::Tokenizer;
use std::process::Command;

#[test]
fn the_models_own_template_renders_the_golden_prompt() {
    let Some(bytes) = common::default_model() else { return };
    let g = Gguf::parse(&bytes).unwrap();
    let tok = Tokenizer::from_gguf(&g).unwrap();
    let t = ChatTemplate::from_gguf(&g, &tok);
    assert!(t.from_file);
    let text = t.render(&[Message::new("user", "What is the capital of France?")], true).unwrap();
    let gold = golden(SMOLLM_GOLDEN);
    assert_eq!(text, gold["greedy"][0]["prompt"].as_str().unwrap());
    let ids = tok.encode_with_bos(&text, true);
    assert_eq!(ids, common::ids(&gold["greedy"][0]["prompt_ids"]));
}

#[test]
fn strftime_formats_utc_dates() {
    // 2026-11-23 18:54:07 UTC
    assert_eq!(lowbit::util::strftime("%d %b %Y %H:%M:%S", 1795460047), "23 Nov 2026 18:54:07");
    assert_eq!(lowbit::util::strftime("%B %e, %y %%", 0), "January  1, 70 %");
}

#[test]
fn sampler_is_greedy_at_zero_temperature_and_deterministic_per_seed() {
    let logits: Vec<f32> = (0..50).map(|i| ((i * 37) % 50) as f32 / 10.0).collect();
    let best = lowbit::model::argmax(&logits) as u32;
    let mut greedy = Sampler::new(SamplerConfig::default());
    assert_eq!(greedy.sample(&logits, &[]), best);
    let cfg = SamplerConfig { temperature: 1.0, top_k: 0, top_p: 1.0, min_p: 0.0, seed: 42, ..Default::default() };
    let draw = |c: &SamplerConfig| {
        let mut s = Sampler::new(c.clone());
        (0..200).map(|_| s.sample(&logits, &[])).collect::<Vec<u32>>()
    };
    assert_eq!(draw(&cfg), draw(&cfg), "same seed, same tokens");
    assert_ne!(draw(&cfg), draw(&SamplerConfig { seed: 43, ..cfg.clone() }), "another seed, other tokens");
    assert!(draw(&cfg).iter().collect::<std::collections::HashSet<_>>().len() > 5, "temperature 1 explores");
    // top-k 1 is greedy; top-k 3 stays in the top three.
    assert!(draw(&SamplerConfig { top_k: 1, ..cfg.clone() }).iter().all(|&t| t == best));
    let mut order: Vec<u32> = (0..50).collect();
    order.sort_by(|&a, &b| logits[b as usize].total_cmp(&logits[a as usize]));
    assert!(draw(&SamplerConfig { top_k: 3, ..cfg.clone() }).iter().all(|t| order[..3].contains(t)));
    // min-p 0.95 keeps only tokens within 5% of the best probability (here only the best).
    assert!(draw(&SamplerConfig { min_p: 0.95, ..cfg.clone() }).iter().all(|&t| t == best));
    // A strong repetition penalty moves greedy off a token already said.
    let mut pen = Sampler::new(SamplerConfig { repetition_penalty: 100.0, ..SamplerConfig::default() });
    assert_ne!(pen.sample(&logits, &[best]), best);
}

fn lowbit(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_lowbit")).args(args).output().expect("run lowbit");
    (out.status.code().unwrap_or(-1), String::from_utf8_lossy(&out.stdout).into(), String::from_utf8_lossy(&out.stderr).into())
}

#[test]
fn cli_info_tokenize_and_errors() {
    let (code, _, err) = lowbit(&["info", "/nonexistent.gguf"]);
    assert_eq!(code, 1);
    assert!(err.starts_with("lowbit: ") && !err.contains("panicked"), "{err}");
    let (code, _, err) = lowbit(&["info", concat!(env!("CARGO_MANIFEST_DIR"), "/tests/suite/chat_sampler_cli.rs")]);
    assert_eq!(code, 1);
    assert!(err.contains("not a GGUF file"), "{err}");
    let (code, _, err) = lowbit(&["frobnicate"]);
    assert_eq!(code, 1);
    assert!(err.contains("usage"), "{err}");
    let Some(_) = common::default_model() else { return };
    let model = concat!(env!("CARGO_MANIFEST_DIR"), "/../www/models/SmolLM2-135M-Instruct.Q4_1.gguf");
    let (code, out, _) = lowbit(&["info", model]);
    assert_eq!(code, 0);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["architecture"], "llama");
    assert_eq!(v["n_layers"], 30);
    assert_eq!(v["n_vocab"], 49152);
    assert_eq!(v["context_length"], 8192);
    assert_eq!(v["chat_template"], true);
    assert_eq!(v["source_dtypes"]["Q4_1"], 210);
    assert_eq!(v["n_params"], 134515008);
    let (code, out, _) = lowbit(&["tokenize", model, "--text", "<|im_start|>user\nWhat is 2+2?<|im_end|>\n<|im_start|>assistant\n"]);
    assert_eq!(code, 0);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(common::ids(&v["ids"]), vec![1, 4093, 198, 1780, 314, 216, 34, 27, 34, 47, 2, 198, 1, 520, 9531, 198]);
    let (code, _, err) = lowbit(&["perplexity", model, "--file", "/nonexistent.txt"]);
    assert_eq!(code, 1, "{err}");
    let (code, _, err) = lowbit(&["generate", model, "--prompt", "hi", "--precision", "int5"]);
    assert_eq!(code, 1);
    assert!(err.contains("unknown precision"), "{err}");
}

#[test]
fn cli_generate_chat_answers_on_the_cpu_reference() {
    let Some(_) = common::default_model() else { return };
    let model = concat!(env!("CARGO_MANIFEST_DIR"), "/../www/models/SmolLM2-135M-Instruct.Q4_1.gguf");
    let (code, out, err) = lowbit(&["generate", model, "--chat", "--prompt", "What is the capital of France?", "--max-tokens", "16", "--json"]);
    assert_eq!(code, 0, "{err}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    let text = v["text"].as_str().unwrap();
    println!("source: {text}");
    assert!(text.contains("Paris"), "{text}");
    assert!(v["decode_tokens_per_second"].as_f64().unwrap() > 0.0);
}

#[test]
fn cli_bench_model_at_a_shape_reports_every_precision_and_creates_nothing_per_token() {
    // Random weights at the tiny shape: no model file. On lavapipe in CI; skipped without a GPU.
    if common::gpu().is_none() {
        return;
    }
    let (code, out, err) =
        lowbit(&["bench", "model", "--shape", "tiny", "--prompt-tokens", "5", "--tokens", "4", "--repeats", "2", "--activations", "f32,int8", "--json"]);
    assert_eq!(code, 0, "{err}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    let rows = v["rows"].as_array().unwrap();
    // Each precision with f32 activations, and INT8 and INT4 with 8-bit ones too.
    let names: Vec<String> = rows.iter().map(|r| format!("{} {}", r["precision"].as_str().unwrap(), r["activations"].as_str().unwrap())).collect();
    assert_eq!(names, ["fp16 f32", "int8 f32", "int8 int8", "int4 f32", "int4 int8"]);
    assert_eq!(v["repeats"], 2);
    for r in rows {
        // 2 layers: 9 dispatches each (attention is 4), plus the embedding, the output head and the
        // argmax; with 8-bit activations each of the 9 matvecs quantizes its input first.
        let q8 = if r["activations"] == "int8" { 9 } else { 0 };
        assert_eq!(r["dispatches_per_token"], 21 + q8, "{r}");
        assert_eq!(r["buffers_per_token"], 0.0, "{r}");
        assert_eq!(r["bind_groups_per_token"], 0.0, "{r}");
        assert!(r["decode_tokens_per_second"].as_f64().unwrap() > 0.0);
        assert!(r["prefill_tokens_per_second"].as_f64().unwrap() > 0.0);
        assert!(r["bytes_per_token"].as_u64().unwrap() > 0);
        // Every run is kept, and the figure shown is their median.
        let runs: Vec<f64> = r["decode_runs"].as_array().unwrap().iter().map(|x| x.as_f64().unwrap()).collect();
        assert_eq!(runs.len(), 2, "{r}");
        let median = r["decode_tokens_per_second"].as_f64().unwrap();
        assert!((median - (runs[0] + runs[1]) / 2.0).abs() < 1e-9 * median, "{r}");
    }
    let (code, _, err) = lowbit(&["bench", "model", "--shape", "no-such-model"]);
    assert_ne!(code, 0);
    assert!(err.contains("unknown shape"), "{err}");
}

#[test]
fn cli_methods_calibrate_only_what_they_requantize() {
    let Some(_) = common::default_model() else { return };
    let Some(_) = common::gpu() else { return };
    let model = concat!(env!("CARGO_MANIFEST_DIR"), "/../www/models/SmolLM2-135M-Instruct.Q4_1.gguf");
    let text = std::env::temp_dir().join(format!("lowbit-cli-methods-{}.txt", std::process::id()));
    std::fs::write(&text, common::golden_text("ppl-text.txt")).unwrap();
    let text = text.to_str().unwrap();
    let run = |args: &[&str]| -> serde_json::Value {
        let mut all = vec!["perplexity", model, "--file", text, "--max-tokens", "16"];
        all.extend(args);
        let (code, out, err) = lowbit(&all);
        assert_eq!(code, 0, "{err}");
        serde_json::from_str(&out).unwrap()
    };
    // At the file's own precisions every tensor is kept as stored: nothing to calibrate.
    let kept = run(&["--precision", "int4-int4-int8", "--method", "gptq"]);
    assert_eq!(kept["precision"], "int4-int4-int8@gptq");
    assert!(kept["calibration"].is_null(), "{kept}");
    // Uniform INT4 requantizes the Q8_0 embedding: calibrated on the tokens asked for.
    let head = run(&["--precision", "int4@imatrix", "--calib-tokens", "32"]);
    assert_eq!(head["calibration"]["tokens"], 32, "{head}");
    // FP16 is the same by every method: --method leaves it the one FP16.
    let fp16 = run(&["--precision", "fp16", "--method", "gptq"]);
    assert_eq!(fp16["precision"], "fp16");
    assert!(fp16["calibration"].is_null(), "{fp16}");
    let (code, _, err) = lowbit(&["perplexity", model, "--file", text, "--precision", "int4", "--method", "awq9"]);
    assert_eq!(code, 1);
    assert!(err.contains("unknown method"), "{err}");
    let _ = std::fs::remove_file(text);
}

/// `bench model --context N --kv F`: decode measured from position N (the KV cache filled first,
/// in slices), in that KV format, and the report says both; the tiny model also runs as a
/// Hugging Face checkpoint folder (`lowbit checkpoint`), as every MODEL may be.
#[test]
fn cli_bench_model_at_a_long_context_and_on_a_checkpoint_folder() {
    let Some(bytes) = common::tiny_model() else { return };
    let dir = std::env::temp_dir().join(format!("lowbit-cli-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let model = dir.join("tiny.gguf");
    std::fs::write(&model, bytes).unwrap();
    let m = model.to_str().unwrap();
    // 600 positions: past two fill slices and one binding's worth of a whole-prompt prefill.
    let (code, out, err) = lowbit(&["bench", "model", m, "--precision", "int8", "--kv", "int8", "--context", "600", "--prompt-tokens", "8", "--tokens", "4", "--repeats", "1", "--json"]);
    assert_eq!(code, 0, "{err}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!((v["context"].as_u64(), v["kv"].as_str()), (Some(600), Some("int8")));
    assert!(v["rows"][0]["decode_tokens_per_second"].as_f64().unwrap() > 0.0);
    let (code, out, err) = lowbit(&["bench", "model", m, "--precision", "int4", "--prompt-tokens", "8", "--tokens", "4", "--repeats", "1", "--markdown"]);
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains("from position 8 (f32 KV cache; tokens read back a batch at a time"),
        "{out}"
    );
    let ckpt = dir.join("tiny-checkpoint");
    let (code, _, err) = lowbit(&["checkpoint", m, "-o", ckpt.to_str().unwrap(), "--dtype", "bf16"]);
    assert_eq!(code, 0, "{err}");
    let (code, out, err) = lowbit(&["info", ckpt.to_str().unwrap()]);
    assert_eq!(code, 0, "{err}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert!(v["source_dtypes"]["BF16"].as_u64().unwrap() > 0, "{out}");
    let gguf = dir.join("converted.gguf");
    let (code, _, err) = lowbit(&["convert", ckpt.to_str().unwrap(), "-o", gguf.to_str().unwrap(), "--to", "f16"]);
    assert_eq!(code, 0, "{err}");
    let converted = std::fs::read(&gguf).unwrap();
    let g = lowbit::gguf::Gguf::parse(&converted).unwrap();
    assert_eq!(g.tensor("blk.0.attn_q.weight").unwrap().ggml_type, lowbit::gguf::GgmlType::F16);
    std::fs::remove_dir_all(&dir).ok();
}
