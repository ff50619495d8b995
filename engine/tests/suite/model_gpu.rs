//! The GPU forward pass (lavapipe in CI) at FP16, INT8 and INT4 against the CPU source-precision
//! reference (tiny model) and llama.cpp's golden perplexity and logits (default model, FP16); the
//! precision switch keeps the context.

use crate::common;

use common::{golden, golden_text, ids, SMOLLM_GOLDEN};
use lowbit::gguf::Gguf;
use lowbit::model::{argmax, cpu::CpuBackend, forward, gpu::GpuBackend, perplexity, Backend};
use lowbit::sampler::{Sampler, SamplerConfig};
use lowbit::tokenizer::Tokenizer;
use lowbit::Precision;

fn agreement(a: &[u32], b: &[u32]) -> f64 {
    a.iter().zip(b).filter(|(x, y)| x == y).count() as f64 / a.len().min(b.len()).max(1) as f64
}

/// Tokens of the golden text the default model scores on the GPU: lavapipe runs it at about one
/// token per second, so CI scores a prefix once, at FP16 (the full text is for `lowbit perplexity`
/// on a faster GPU). Every precision is checked on the tiny model, over the whole text.
const PREFIX: usize = 48;
/// Tokens the KV formats are compared over: enough that a few codes rounded the other way on
/// the two sides (their keys differ in the last bits) average out. Measured over 128 and 256
/// tokens, the GPU stayed within 0.12 % of its reference at INT8 and 1.2 % at 4 and 3 bits, and
/// unrotated INT4 cost 10 % either way; 128 takes half the time.
const KV_PREFIX: usize = 128;

/// The GPU at every precision against the CPU reference on the source weights, on the tiny model
/// (the same Q4_1 layers and Q8_0 embedding as the default model, random values).
#[test]
fn gpu_perplexity_at_each_precision() {
    let Some(bytes) = common::tiny_model() else { return };
    let Some(gpu) = common::gpu() else { return };
    let g = Gguf::parse(&bytes).unwrap();
    let tok = Tokenizer::from_gguf(&g).unwrap();
    let toks = tok.encode_with_bos(&golden_text("ppl-text.txt"), false);
    let n = toks.len();
    let mut cpu = CpuBackend::load(&g).unwrap();
    let cfg = cpu.cfg.clone();
    let src = pollster::block_on(perplexity(&cfg, &mut cpu, &toks, n)).unwrap();
    println!("tiny model, {n} tokens of the golden text");
    println!("{:<7} {:>10} {:>10} {:>8}", "prec", "ppl", "vs source", "argmax");
    println!("{:<7} {:>10.2} {:>10} {:>8}", "source", src.ppl, "", "");
    let mut b = GpuBackend::load(&gpu, &g, Precision::Fp16, n).unwrap();
    for p in Precision::ALL {
        b.set_precision(&g, p).unwrap();
        let r = pollster::block_on(perplexity(&cfg, &mut b, &toks, n)).unwrap();
        let vs_src = r.ppl / src.ppl - 1.0;
        let agree = agreement(&r.argmax, &src.argmax);
        println!("{:<7} {:>10.2} {:>+9.2}% {:>8.4}  ({:.1} MB weights)", p.name(), r.ppl, vs_src * 100.0, agree, b.weight_bytes() as f64 / 1e6);
        match p {
            Precision::Fp16 => {
                assert!(vs_src.abs() < 0.01, "fp16 perplexity {} vs source {}", r.ppl, src.ppl);
                assert!(agree >= 0.93, "fp16 argmax agreement with source {agree}");
            }
            Precision::Int8 => assert!(vs_src.abs() < 0.02, "int8 perplexity {} vs source {}", r.ppl, src.ppl),
            // Reported, not held to a target: INT4 reproduces the Q4_1 tensors exactly, but the
            // tied Q8_0 embedding/output head loses much at 4 bits. The guard catches a broken
            // kernel, not a quality level.
            Precision::Int4 => assert!(vs_src.abs() < 0.3, "int4 perplexity {} vs source {}", r.ppl, src.ppl),
            // The bottom of the ladder: finite and worse than INT4, a guard against a broken kernel.
            Precision::Int3 | Precision::Int2 => assert!(r.ppl.is_finite() && vs_src.abs() < 5.0, "{p} perplexity {} vs source {}", r.ppl, src.ppl),
        }
    }
}

/// 8-bit activations, end to end on the tiny model: the GPU's INT8 scores the text as the CPU
/// source reference does when every matrix's input passes through 8 bits, and a decode step
/// (`act_q8` and the integer matvecs) gives the logits the prefill's path (8 bits and back, then
/// the f32 matmul) gives for the same token, at INT8 and INT4.
#[test]
fn eight_bit_activations_match_their_cpu_reference_and_decode_as_prefill_does() {
    use lowbit::Activations;
    let Some(bytes) = common::tiny_model() else { return };
    let Some(gpu) = common::gpu() else { return };
    let g = Gguf::parse(&bytes).unwrap();
    let tok = Tokenizer::from_gguf(&g).unwrap();
    let toks = tok.encode_with_bos(&golden_text("ppl-text.txt"), false);
    let n = toks.len();
    let mut cpu = CpuBackend::load(&g).unwrap();
    let cfg = cpu.cfg.clone();
    cpu.activations = Activations::Int8;
    let src = pollster::block_on(perplexity(&cfg, &mut cpu, &toks, n)).unwrap();
    let mut b = GpuBackend::load(&gpu, &g, Precision::Int8, n).unwrap();
    let f32_ppl = pollster::block_on(perplexity(&cfg, &mut b, &toks, n)).unwrap().ppl;
    pollster::block_on(b.set_activations(Activations::Int8)).unwrap();
    let r = pollster::block_on(perplexity(&cfg, &mut b, &toks, n)).unwrap();
    println!("tiny model, {n} tokens: cpu source a8 ppl {:.3}, gpu int8 a8 {:.3} (f32 activations {f32_ppl:.3}), argmax agreement {:.3}", src.ppl, r.ppl, agreement(&r.argmax, &src.argmax));
    assert!((r.ppl / src.ppl - 1.0).abs() < 0.02, "int8 a8 perplexity {} vs the cpu's {}", r.ppl, src.ppl);
    assert!(r.ppl != f32_ppl, "8-bit activations changed nothing");
    let m = 24.min(n);
    for p in [Precision::Int8, Precision::Int4] {
        b.set_precision(&g, p).unwrap();
        let whole = forward(&cfg, &mut b, &toks[..m], 0, false).unwrap();
        let want = pollster::block_on(b.read(&whole)).unwrap();
        forward(&cfg, &mut b, &toks[..m - 1], 0, false).unwrap();
        let step = forward(&cfg, &mut b, &toks[m - 1..m], m - 1, false).unwrap();
        let got = pollster::block_on(b.read(&step)).unwrap();
        let big = want.iter().fold(0f32, |a, v| a.max(v.abs()));
        let worst = got.iter().zip(&want).fold(0f32, |a, (x, y)| a.max((x - y).abs()));
        println!("{p} a8: decode vs prefill logits at most {worst:.2e} apart (largest {big:.3})");
        // The two paths quantize inputs computed in different orders, so a code may fall the other
        // way of a tie; a wrong code order or scale in the integer kernels moves logits by far more.
        assert!(worst < 0.005 * big, "{p}: decode logits differ from prefill's by {worst} (largest {big})");
        assert_eq!(argmax(&got), argmax(&want), "{p}: decode and prefill pick different tokens");
    }
}

/// The default model on the GPU at FP16, once: the CPU source reference and llama.cpp's
/// perplexity over the same prefix.
#[test]
fn gpu_fp16_perplexity_of_the_default_model() {
    let Some(bytes) = common::default_model() else { return };
    let Some(gpu) = common::gpu() else { return };
    let g = Gguf::parse(&bytes).unwrap();
    let tok = Tokenizer::from_gguf(&g).unwrap();
    let gold = golden(SMOLLM_GOLDEN);
    let toks = tok.encode_with_bos(&golden_text("ppl-text.txt"), false);
    let toks = &toks[..PREFIX];
    // llama.cpp's perplexity over the same prefix, from its per-position log-probabilities.
    let gold_lp: Vec<f64> = gold["perplexity"]["target_logprob_per_position"].as_array().unwrap()[..PREFIX - 1]
        .iter()
        .map(|v| v.as_f64().unwrap())
        .collect();
    let ppl_gold = (-gold_lp.iter().sum::<f64>() / gold_lp.len() as f64).exp();
    let argmax_gold = &ids(&gold["perplexity"]["argmax_per_position"])[..PREFIX - 1];

    let mut cpu = CpuBackend::load(&g).unwrap();
    let cfg = cpu.cfg.clone();
    let src = pollster::block_on(perplexity(&cfg, &mut cpu, toks, PREFIX)).unwrap();
    let mut b = GpuBackend::load(&gpu, &g, Precision::Fp16, PREFIX).unwrap();
    let r = pollster::block_on(perplexity(&cfg, &mut b, toks, PREFIX)).unwrap();
    println!("first {PREFIX} tokens of the golden text; llama.cpp ppl {ppl_gold:.4}");
    for (name, x) in [("source", &src), ("fp16", &r)] {
        println!("{name:<7} ppl {:.4} ({:+.2}% vs llama.cpp), argmax agreement with llama.cpp {:.4}, {:.2} tok/s",
            x.ppl, (x.ppl / ppl_gold - 1.0) * 100.0, agreement(&x.argmax, argmax_gold), x.tokens_per_second);
    }
    // On a short prefix llama.cpp's own rounding noise (about 0.1 in log-probability per position)
    // does not average out, so the GPU is held to the CPU source reference here; the full text
    // holds the CPU reference to llama.cpp (model_cpu.rs).
    assert!((r.ppl / src.ppl - 1.0).abs() < 0.01, "fp16 perplexity {} vs source {}", r.ppl, src.ppl);
    assert!(agreement(&r.argmax, &src.argmax) >= 0.93, "fp16 argmax agreement with source");
}

/// Every KV cache format end to end: the GPU at FP16 storing keys and values as the format
/// scores the golden text as the CPU source reference does when its keys and values pass through
/// the same format's encode and decode (`CpuBackend::set_kv`), while the formats differ from one
/// another by far more.
#[test]
fn every_kv_format_on_the_gpu_matches_its_cpu_reference() {
    use lowbit::KvPrecision;
    let Some(bytes) = common::default_model() else { return };
    let Some(gpu) = common::gpu() else { return };
    let g = Gguf::parse(&bytes).unwrap();
    let tok = Tokenizer::from_gguf(&g).unwrap();
    let toks = tok.encode_with_bos(&golden_text("ppl-text.txt"), false);
    let n = KV_PREFIX.min(toks.len());
    let toks = &toks[..n];
    let mut cpu = CpuBackend::load(&g).unwrap();
    let cfg = cpu.cfg.clone();
    // The file's own mix (Q4_1 layers at INT4, the Q8_0 embedding at INT8) holds exactly the
    // source's weights, and prefills faster than FP16 on a CPU adapter.
    let mut b = GpuBackend::load(&gpu, &g, lowbit::plan::Plan::parse("int4-int4-int8").unwrap(), n).unwrap();
    let mut seen = vec![];
    let mut f32_ppl = None;
    for kv in [KvPrecision::F32, KvPrecision::Int8, KvPrecision::Int4, KvPrecision::Int3, KvPrecision::Int4Rot, KvPrecision::Int3Rot] {
        cpu.set_kv(&g, kv).unwrap();
        b.set_kv(&g, kv).unwrap();
        let c = pollster::block_on(perplexity(&cfg, &mut cpu, toks, n)).unwrap();
        let r = pollster::block_on(perplexity(&cfg, &mut b, toks, n)).unwrap();
        let agree = agreement(&r.argmax, &c.argmax);
        println!("{kv:<9} cpu ppl {:.4}  gpu ppl {:.4} ({:+.2}%)  argmax agreement {agree:.3}", c.ppl, r.ppl, (r.ppl / c.ppl - 1.0) * 100.0);
        // Both sides round the same codes, but their keys and values differ in the last bits
        // (the same weights, summed in another order), so some codes fall the other
        // way of a midpoint, and at 4 and 3 bits that moves a short text's perplexity by a few per
        // cent (jittering the CPU's own keys and values by 2e-4 moved its INT4-rot figure 3 %).
        // So: within 0.5 % at f32 and INT8, and at 4 and 3 bits within 5 % plus a tenth of the
        // format's cost: a rotation or grid gone wrong on one side costs far more than that.
        let f32_ppl = *f32_ppl.get_or_insert(c.ppl);
        let cost = (c.ppl / f32_ppl - 1.0).abs();
        let tol = if kv.bits() == 0 || kv.bits() == 8 { 0.005 } else { 0.05 + 0.1 * cost };
        assert!((r.ppl / c.ppl - 1.0).abs() < tol, "{kv}: gpu perplexity {} vs its cpu reference {} (the format costs {cost:.3})", r.ppl, c.ppl);
        if kv.bits() == 0 || kv.bits() == 8 {
            assert!(agree >= 0.93, "{kv}: argmax agreement {agree}");
        }
        seen.push((kv, c.ppl));
    }
    // The recent window (4- and 3-bit formats) reads the same keys and values however the text
    // is cut into steps: in steps of 37 positions, a step's first queries read the last positions
    // of the step before from the layer's ring, not from the step's own copies. The CPU gives the
    // same perplexity to the last bits; the GPU stays as close to it as in one step.
    let (kv, whole) = *seen.last().unwrap();
    assert!(kv.recent() > 0 && toks.len() > 2 * 37);
    let c = pollster::block_on(perplexity(&cfg, &mut cpu, toks, 37)).unwrap();
    let r = pollster::block_on(perplexity(&cfg, &mut b, toks, 37)).unwrap();
    println!("{kv:<9} in steps of 37: cpu ppl {:.4}  gpu ppl {:.4}", c.ppl, r.ppl);
    assert!((c.ppl / whole - 1.0).abs() < 1e-4, "{kv}: the CPU's perplexity in steps of 37 {} vs in one step {whole}", c.ppl);
    let cost = (c.ppl / seen[0].1 - 1.0).abs();
    assert!((r.ppl / c.ppl - 1.0).abs() < 0.05 + 0.1 * cost, "{kv} in steps of 37: gpu perplexity {} vs its cpu reference {}", r.ppl, c.ppl);
    // And one token a step, as decode runs (its window from the ring and a one-row stage).
    let few = &toks[..40];
    let c1 = pollster::block_on(perplexity(&cfg, &mut cpu, few, 1)).unwrap();
    let r1 = pollster::block_on(perplexity(&cfg, &mut b, few, 1)).unwrap();
    let c40 = pollster::block_on(perplexity(&cfg, &mut cpu, few, few.len())).unwrap();
    println!("{kv:<9} one token a step: cpu ppl {:.4}  gpu ppl {:.4}  (cpu in one step {:.4})", c1.ppl, r1.ppl, c40.ppl);
    assert!((c1.ppl / c40.ppl - 1.0).abs() < 1e-4, "{kv}: the CPU's perplexity a token a step {} vs in one step {}", c1.ppl, c40.ppl);
    assert!((r1.ppl / c1.ppl - 1.0).abs() < 0.05 + 0.1 * cost, "{kv} a token a step: gpu perplexity {} vs its cpu reference {}", r1.ppl, c1.ppl);
    // Both measured the same mean keys and key scales, to within the last bits of the keys and
    // queries; and a layer's offset into the GPU's statistics (means, then scales) is right.
    let (cm, cs) = (cpu.key_means().expect("the CPU measured mean keys").concat(), cpu.key_scales().expect("the CPU measured key scales").concat());
    let stats = pollster::block_on(gpu.read_f32(&b.key_stats().expect("the GPU measured key statistics"), cm.len() + cs.len())).unwrap();
    for (what, c, g) in [("mean keys", &cm, &stats[..cm.len()]), ("key scales", &cs, &stats[cm.len()..])] {
        let big = c.iter().fold(0f32, |a, v| a.max(v.abs()));
        let worst = g.iter().zip(c).fold(0f32, |a, (g, c)| a.max((g - c).abs()));
        println!("{what}: largest {big:.3}, GPU vs CPU at most {worst:.4} apart");
        assert!(worst < 0.02 * big, "GPU {what} differ from the CPU's by {worst} (largest {big})");
    }
    // The scales are not all one: the test would not see them otherwise.
    assert!(cs.iter().any(|s| (s - 1.0).abs() > 0.2), "key scales all near 1");
    // The formats are told apart: INT3 unrotated costs far more than the tolerance above (40 %
    // over these tokens, keys centered, recent window and all), and rotation recovers most of it.
    let ppl = |k: KvPrecision| seen.iter().find(|s| s.0 == k).unwrap().1;
    assert!(ppl(KvPrecision::Int3) > 1.15 * ppl(KvPrecision::F32), "{seen:?}");
    assert!(ppl(KvPrecision::Int3Rot) < ppl(KvPrecision::Int3), "{seen:?}");
    // A CPU reference refuses a format the model's rows cannot hold, as the GPU does.
    if let Some(t) = common::tiny_model() {
        let tg = Gguf::parse(&t).unwrap();
        let mut c = CpuBackend::load(&tg).unwrap();
        assert!(matches!(c.set_kv(&tg, KvPrecision::Int4Rot), Err(lowbit::Error::Usage(_))));
    }
}

#[test]
fn switching_precision_keeps_the_conversation() {
    let Some(bytes) = common::default_model() else { return };
    let Some(gpu) = common::gpu() else { return };
    let g = Gguf::parse(&bytes).unwrap();
    let gold = golden(SMOLLM_GOLDEN);
    let case = &gold["greedy"][2]; // "The three primary colors are" → " the primary colors …"
    let prompt = ids(&case["prompt_ids"]);
    let greedy = ids(&case["greedy_ids"]);
    let mut b = GpuBackend::load(&gpu, &g, Precision::Fp16, 64).unwrap();
    let cfg = b.cfg.clone();
    let logits = forward(&cfg, &mut b, &prompt, 0, false).unwrap();
    assert_eq!(argmax(&pollster::block_on(b.read(&logits)).unwrap()) as u32, greedy[0]);
    // Switch mid-conversation: the next tokens continue from the cached prompt.
    let mut pos = prompt.len();
    for (i, p) in [Precision::Int8, Precision::Int4].into_iter().enumerate() {
        b.set_precision(&g, p).unwrap();
        let logits = forward(&cfg, &mut b, &[greedy[i]], pos, false).unwrap();
        let next = argmax(&pollster::block_on(b.read(&logits)).unwrap()) as u32;
        assert_eq!(next, greedy[i + 1], "after switching to {p}");
        pos += 1;
    }
    // Without the cached context the same token predicts something else.
    let mut fresh = GpuBackend::load(&gpu, &g, Precision::Int4, 64).unwrap();
    let logits = forward(&cfg, &mut fresh, &[greedy[1]], 0, false).unwrap();
    assert_ne!(argmax(&pollster::block_on(fresh.read(&logits)).unwrap()) as u32, greedy[2]);
}

#[test]
fn gpu_fp16_next_token_top10_matches_llama_cpp() {
    let Some(bytes) = common::default_model() else { return };
    let Some(gpu) = common::gpu() else { return };
    let g = Gguf::parse(&bytes).unwrap();
    let gold = golden(SMOLLM_GOLDEN);
    let mut b = GpuBackend::load(&gpu, &g, Precision::Fp16, 64).unwrap();
    let cfg = b.cfg.clone();
    for case in gold["greedy"].as_array().unwrap() {
        let prompt = ids(&case["prompt_ids"]);
        let logits = forward(&cfg, &mut b, &prompt, 0, false).unwrap();
        let logits = pollster::block_on(b.read(&logits)).unwrap();
        common::check_top10(&logits, &case["top10_next"], &format!("gpu fp16, prompt of {} tokens", prompt.len()));
    }
}

/// A decode step runs the fused kernels over buffers and bind groups built on the first step:
/// its logits match the CPU reference step by step, its argmax is the argmax of those logits,
/// it runs 7 dispatches a layer plus 3, and after the first step it creates nothing.
#[test]
fn decode_steps_match_the_cpu_and_create_nothing_after_the_first() {
    decode_steps_match_the_cpu("llama");
}

/// Llama 3's RoPE frequency divisors (`rope_freqs.weight`), on a tiny model the suite writes.
#[test]
fn llama3_rope_factors_decode_steps_match_the_cpu() {
    decode_steps_match_the_cpu("llama3");
}

/// Qwen3's per-head q/k norms, on a tiny model the suite writes.
#[test]
fn qwen3_decode_steps_match_the_cpu() {
    decode_steps_match_the_cpu("qwen3");
}

/// Gemma 3's layer on a tiny model the suite writes: post-norms, q/k norms, GeGLU, the scaled
/// embedding, and a sliding window of 4 keys on layer 0 (RoPE base 10,000) that the prompt and
/// the decode steps run past, beside a global layer 1 (base 1,000,000).
#[test]
fn gemma3_decode_steps_match_the_cpu() {
    decode_steps_match_the_cpu("gemma3");
}

/// Prefill and 8 decode steps of the tiny model in `arch` on the GPU at every precision against
/// the CPU reference; the GPU's argmax and draws against the CPU's from the same logits; nothing
/// created after the first decode step.
fn decode_steps_match_the_cpu(arch: &str) {
    let Some(bytes) = common::tiny_model_of(arch) else { return };
    let Some(gpu) = common::gpu() else { return };
    let g = Gguf::parse(&bytes).unwrap();
    let tok = Tokenizer::from_gguf(&g).unwrap();
    let prompt = tok.encode_with_bos("The capital of France is", false);
    let mut cpu = CpuBackend::load(&g).unwrap();
    let cfg = cpu.cfg.clone();
    assert_eq!(cfg.architecture, if arch == "llama3" { "llama" } else { arch });
    assert_eq!(cfg.rope_factors, arch == "llama3");
    if arch == "gemma3" {
        assert!(prompt.len() > lowbit::synth::GEMMA_WINDOW && cfg.is_local(0) && !cfg.is_local(1), "{cfg:?}");
    }
    let off = |got: &[f32], want: &[f32]| {
        let spread = want.iter().fold(0f32, |a, v| a.max(v.abs()));
        got.iter().zip(want).fold(0f32, |a, (x, y)| a.max((x - y).abs())) / spread
    };
    for p in Precision::ALL {
        let mut b = GpuBackend::load(&gpu, &g, p, 64).unwrap();
        let l = forward(&cfg, &mut cpu, &prompt, 0, false).unwrap();
        let mut want = pollster::block_on(cpu.read(&l)).unwrap();
        let l = forward(&cfg, &mut b, &prompt, 0, false).unwrap();
        let mut worst = off(&pollster::block_on(b.read(&l)).unwrap(), &want);
        let (mut pos, mut created, mut next) = (prompt.len(), gpu.created(), 0);
        for step in 0..8 {
            // Teacher-forced with the CPU's choice, so both run the same tokens.
            next = argmax(&want) as u32;
            let l = forward(&cfg, &mut cpu, &[next], pos, false).unwrap();
            want = pollster::block_on(cpu.read(&l)).unwrap();
            let l = forward(&cfg, &mut b, &[next], pos, false).unwrap();
            let got = pollster::block_on(b.read(&l)).unwrap();
            let on_gpu = pollster::block_on(b.argmax(&l)).unwrap();
            assert_eq!(on_gpu as usize, argmax(&got), "{p}: the GPU argmax is the argmax of its logits");
            // A random draw on the GPU (penalty, top-k, top-p, min-p, temperature) is the CPU
            // sampler's draw from the same logits.
            let sampling = SamplerConfig { temperature: 0.9, repetition_penalty: 1.2, seed: step, ..SamplerConfig::default() };
            let d = Sampler::new(sampling).draw(&prompt);
            let drawn = pollster::block_on(b.sample(&l, &d)).unwrap();
            assert_eq!(drawn, lowbit::sampler::sample(&got, &d), "{p}: the GPU draw at step {step}");
            worst = worst.max(off(&got, &want));
            if step == 0 {
                created = gpu.created();
            }
            pos += 1;
        }
        let after = gpu.created();
        println!("{arch} {p}: worst |gpu - cpu| / max|logit| over 9 steps {worst:.4}; created after the first decode step {after:?} vs {created:?}");
        assert_eq!(after, created, "{p}: decode steps after the first created GPU objects");
        // FP16 holds the Q4_1 layers and Q8_0 embedding within f16 rounding; INT8 and INT4 add their own.
        let bound = match p {
            Precision::Fp16 => 0.01,
            Precision::Int8 => 0.03,
            Precision::Int4 => 0.3,
            // Random weights at 8 and 4 levels: the guard is against NaN and garbage only
            // (measured 0.63 and 1.27; the kernels themselves match the CPU in tests/suite/kernels.rs).
            Precision::Int3 | Precision::Int2 => 3.0,
        };
        assert!(worst < bound, "{p}: decode logits off the CPU's by {worst} of their range");
        let profile = pollster::block_on(b.profile_step(next, pos)).unwrap();
        if let Some(profile) = profile {
            if arch.starts_with("llama") {
                assert_eq!(profile.len(), 9 * cfg.n_layers + 3, "{p}: dispatches per decode step");
            }
            assert_eq!(profile.len(), b.dispatches_per_token(), "{arch} {p}: dispatches per decode step");
        }
    }
}

/// On a GPU with small bindings the embedding (and the tied output head) is split into parts of
/// consecutive rows: the lookup dispatches once per part, the head writes each part's logits into
/// place. Prefill and decode give the same logits as the whole matrix, at every precision.
#[test]
fn an_embedding_split_over_bindings_gives_the_same_logits() {
    use lowbit::model::gpu::Unit;
    let Some(bytes) = common::tiny_model() else { return };
    let Some(gpu) = common::gpu() else { return };
    let g = Gguf::parse(&bytes).unwrap();
    let tok = Tokenizer::from_gguf(&g).unwrap();
    let mut toks = tok.encode_with_bos(&golden_text("ppl-text.txt"), false);
    // 12 tokens: their logits (12 × 49,152 f32) stay within the lowered limit too.
    toks.truncate(12);
    let cfg = lowbit::model::Config::from_gguf(&g).unwrap();
    let run = |b: &mut GpuBackend| -> (Vec<f32>, Vec<f32>) {
        let prefill = pollster::block_on(perplexity(&cfg, b, &toks, toks.len())).unwrap().target_logprob;
        // Decode steps after a short prompt: one token at a time through the head.
        let x = forward(&cfg, b, &toks[..4], 0, false).unwrap();
        let mut decode = pollster::block_on(b.read(&x)).unwrap();
        for (i, &t) in toks[4..10].iter().enumerate() {
            let x = forward(&cfg, b, &[t], 4 + i, false).unwrap();
            decode.extend(pollster::block_on(b.read(&x)).unwrap());
        }
        (prefill, decode)
    };
    // FP16, INT8 and INT4: the split follows bytes per row, whatever the format; INT3's and
    // INT2's embeddings already fit the lowered limit whole.
    for p in Precision::COMMON {
        let mut whole = GpuBackend::load(&gpu, &g, p, 64).unwrap();
        assert_eq!(whole.weights().get(Unit::Embedding).unwrap().parts().len(), 1);
        let want = run(&mut whole);
        drop(whole);
        gpu.set_binding_limit(5 << 20 >> 1);
        let mut split = GpuBackend::load(&gpu, &g, p, 64).unwrap();
        let parts = split.weights().get(Unit::Embedding).unwrap().parts().len();
        let got = run(&mut split);
        gpu.set_binding_limit(0);
        println!("{p}: the {} MB embedding in {parts} parts", split.weights().get(Unit::Embedding).unwrap().bytes() as f64 / 1e6);
        assert!(parts >= 2, "{p}: {parts} part");
        assert_eq!(got.0, want.0, "{p}: prefill log-probabilities");
        assert_eq!(got.1, want.1, "{p}: decode logits");
    }
}

/// One reply as `generate` writes it: its tokens, where the cache ends, the read-backs, and
/// where the sampler's generator is left.
fn reply(
    b: &mut GpuBackend,
    tok: &Tokenizer,
    context: &[u32],
    prompt: &[u32],
    max_tokens: usize,
    sampling: &SamplerConfig,
    stop_after: usize,
) -> (Vec<u32>, usize, usize, f32) {
    use lowbit::model::{generate, Prefill, Step};
    let cfg = b.cfg.clone();
    let mut sampler = Sampler::new(sampling.clone());
    let mut shown = 0;
    let on_step = |s: Step<'_>| {
        shown += matches!(s, Step::Text(_)) as usize;
        shown < stop_after
    };
    let r = pollster::block_on(generate(
        &cfg,
        b,
        tok,
        context,
        prompt,
        max_tokens,
        &mut sampler,
        Prefill::Whole,
        on_step,
    ))
    .unwrap();
    (r.ids, r.end_pos, r.round_trips, sampler.next_u())
}

/// Chained decoding (tokens picked on the GPU and fed to the next step there, read back a batch
/// at a time) writes the same replies as reading every token back, token for token: greedy, and
/// seeded draws with a repetition penalty whose window spans the batches. Ends that fall inside a
/// batch (the maximum, Stop) leave the cache where one token at a time leaves it, so the next
/// turn continues alike; the generator ends in the same state; and the read-backs per token
/// fall from one to a batch's worth.
#[test]
fn chained_decoding_writes_the_same_tokens_as_one_at_a_time() {
    let Some(bytes) = common::tiny_model() else {
        return;
    };
    let Some(gpu) = common::gpu() else { return };
    let g = Gguf::parse(&bytes).unwrap();
    let tok = Tokenizer::from_gguf(&g).unwrap();
    let mut b = GpuBackend::load(&gpu, &g, Precision::Int4, 256).unwrap();
    let prompt = tok.encode_with_bos("Write a short story about a lighthouse keeper.", false);
    let greedy = SamplerConfig {
        temperature: 0.0,
        ..SamplerConfig::default()
    };
    let drawn = SamplerConfig {
        temperature: 0.9,
        top_k: 40,
        repetition_penalty: 1.3,
        repeat_last_n: 12,
        seed: 7,
        ..SamplerConfig::default()
    };
    // No penalty: a window longer than the GPU's history read must not matter then.
    let unpenalized = SamplerConfig {
        temperature: 0.9,
        repetition_penalty: 1.0,
        repeat_last_n: 1000,
        seed: 3,
        ..SamplerConfig::default()
    };
    for (name, sampling) in [("greedy", &greedy), ("seeded draw", &drawn), ("seeded draw, no penalty", &unpenalized)] {
        // (max tokens, Stop after this many pieces of text)
        for (max_tokens, stop_after) in [(32, usize::MAX), (13, usize::MAX), (32, 11)] {
            let mut runs = vec![];
            for chain in [1, 3, lowbit::model::gpu::CHAIN_AHEAD] {
                b.chain = chain;
                let first = reply(&mut b, &tok, &[], &prompt, max_tokens, sampling, stop_after);
                // The next turn: what the cache lacks of this one, then more prompt.
                let history = [prompt.clone(), first.0.clone()].concat();
                let (context, rest) = history.split_at(first.1);
                let next_prompt = [rest, &tok.encode("And then?", false)].concat();
                let second = reply(
                    &mut b,
                    &tok,
                    context,
                    &next_prompt,
                    12,
                    sampling,
                    usize::MAX,
                );
                println!("{name}, max {max_tokens}, stop after {stop_after}, chain {chain}: {} + {} tokens, {} + {} read-backs", first.0.len(), second.0.len(), first.2, second.2);
                runs.push((chain, first, second));
            }
            let (_, want1, want2) = &runs[0];
            assert_eq!(
                want1.2,
                want1.0.len().max(1),
                "{name}: one read-back per token when not chained"
            );
            for (chain, got1, got2) in &runs[1..] {
                let what =
                    format!("{name}, max {max_tokens}, stop after {stop_after}, chain {chain}");
                assert_eq!(got1.0, want1.0, "{what}: the reply's tokens");
                assert_eq!(got1.1, want1.1, "{what}: where the cache ends");
                assert_eq!(got1.3, want1.3, "{what}: the generator afterwards");
                assert_eq!(got2.0, want2.0, "{what}: the next turn's tokens");
                assert_eq!(got2.1, want2.1, "{what}: where the next turn's cache ends");
                // Batches of 1, 2, 4, … (shorter on a slow machine): fewer reads than tokens.
                assert!(
                    got1.2 < want1.2,
                    "{what}: {} read-backs for {} tokens",
                    got1.2,
                    got1.0.len()
                );
            }
        }
    }
    assert_eq!(gpu.check().err().map(|e| e.to_string()), None);
}
