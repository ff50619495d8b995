//! Gemma 3 on a real file: Gemma 3 270M Q4_K_M (Q4_K, Q5_0, Q6_K, Q8_0 tensors; a 262,144-token
//! SentencePiece vocabulary whose 168 M-weight embedding is also the output head). Its layer:
//! pre- and post-norms around attention and the feed-forward, per-head q/k norms, GeGLU, a
//! √dim-scaled embedding, and sliding-window attention (512 keys, RoPE base 10,000) on 5 of every
//! 6 layers. Against llama.cpp's golden perplexity and next-token logits on the CPU at the source
//! precision, and the GPU at FP16 against the CPU.

use crate::common;

use common::{golden, golden_text, ids};
use lowbit::chat::{ChatTemplate, Message};
use lowbit::gguf::Gguf;
use lowbit::model::{cpu::CpuBackend, forward, gpu::GpuBackend, perplexity, perplexity_of, Activation, Backend, Family};
use lowbit::tokenizer::Tokenizer;
use lowbit::Precision;
use pollster::block_on;

/// Tokens the GPU scores (lavapipe runs this model's 168 M-weight output head at a few tokens per
/// second; the CPU scores all 406).
const GPU_TOKENS: usize = 96;

fn agreement(a: &[u32], b: &[u32]) -> f64 {
    a.iter().zip(b).filter(|(x, y)| x == y).count() as f64 / b.len().max(1) as f64
}

#[test]
fn gemma3_matches_llama_cpp_on_the_cpu_and_the_gpu() {
    let Some(path) = common::gemma_model_path() else { return };
    let bytes = std::fs::read(path).unwrap();
    let g = Gguf::parse(&bytes).unwrap();
    let tok = Tokenizer::from_gguf(&g).unwrap();
    let gold = golden("gemma3-270m-q4_k_m.llamacpp.json");
    let toks = tok.encode_with_bos(&golden_text("ppl-text.txt"), false);
    assert_eq!(toks, ids(&gold["perplexity"]["token_ids"]), "the perplexity text's tokens");

    // The file carries no chat template: Gemma's turns, from its vocabulary, with the system prompt
    // opening the first user message and `<end_of_turn>` ending a reply.
    let template = ChatTemplate::from_gguf(&g, &tok);
    assert_eq!((template.from_file, template.builtin, template.fold_system), (false, "Gemma", true));
    let chat = [Message::new("system", "Be brief."), Message::new("user", "Hi"), Message::new("assistant", "Hello!"), Message::new("user", "Bye")];
    assert_eq!(
        template.render(&chat, true).unwrap(),
        "<start_of_turn>user\nBe brief.\n\nHi<end_of_turn>\n<start_of_turn>model\nHello!<end_of_turn>\n<start_of_turn>user\nBye<end_of_turn>\n<start_of_turn>model\n"
    );
    assert!(tok.is_stop(tok.encode("<end_of_turn>", true)[0]));

    let mut cpu = CpuBackend::load(&g).unwrap();
    let cfg = cpu.cfg.clone();
    assert_eq!((cfg.family, cfg.activation, cfg.qk_norm, cfg.rope_neox), (Family::Gemma, Activation::Gelu, true, true));
    assert_eq!((cfg.sliding_window, cfg.rope_base, cfg.rope_base_local), (512, 1e6, 1e4));
    let local: Vec<bool> = (0..cfg.n_layers).map(|l| cfg.is_local(l)).collect();
    assert_eq!(local.iter().filter(|&&x| !x).count(), 3, "layers 5, 11 and 17 are global: {local:?}");
    assert!((cfg.embed_scale - 640f32.sqrt()).abs() < 1e-6);

    // The source precision on the CPU: llama.cpp's perplexity within 1 %, its teacher-forced
    // argmax at ≥ 97 % of positions (llama.cpp rounds activations to 8 bits inside its dot
    // products, the KV cache and GELU to f16: near-ties go either way).
    let src = block_on(perplexity(&cfg, &mut cpu, &toks, 512)).unwrap();
    let ppl_gold = gold["perplexity"]["ppl"].as_f64().unwrap();
    let agree = agreement(&src.argmax, &ids(&gold["perplexity"]["argmax_per_position"]));
    println!("source (CPU): perplexity {:.3} vs llama.cpp {ppl_gold:.3} ({:+.2} %), argmax agreement {agree:.4}", src.ppl, (src.ppl / ppl_gold - 1.0) * 100.0);
    assert!((src.ppl / ppl_gold - 1.0).abs() < 0.01, "perplexity {} vs llama.cpp {ppl_gold}", src.ppl);
    assert!(agree >= 0.97, "argmax agreement {agree}");

    // The next token's top 10 after each golden prompt.
    for case in gold["greedy"].as_array().unwrap() {
        let prompt = ids(&case["prompt_ids"]);
        let l = forward(&cfg, &mut cpu, &prompt, 0, false).unwrap();
        let logits = block_on(cpu.read(&l)).unwrap();
        common::check_top10(&logits, &case["top10_next"], &format!("cpu source, prompt of {} tokens", prompt.len()));
    }
    drop(cpu);

    // The GPU at FP16 against the CPU on the same positions.
    let Some(gpu) = common::gpu() else { return };
    let mut b = GpuBackend::load(&gpu, &g, Precision::Fp16, GPU_TOKENS).unwrap();
    let r = block_on(perplexity(&cfg, &mut b, &toks[..GPU_TOKENS], GPU_TOKENS)).unwrap();
    let src_ppl = perplexity_of(&src.target_logprob[..GPU_TOKENS - 1]);
    let agree = agreement(&r.argmax, &src.argmax[..GPU_TOKENS - 1]);
    println!("fp16 (GPU): perplexity {:.3} vs source {src_ppl:.3} on {GPU_TOKENS} tokens, argmax agreement {agree:.4}", r.ppl);
    assert!((r.ppl / src_ppl - 1.0).abs() < 0.01, "fp16 perplexity {} vs source {src_ppl}", r.ppl);
    assert!(agree >= 0.97, "fp16 argmax agreement {agree}");
}
