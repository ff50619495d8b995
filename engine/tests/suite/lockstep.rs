//! The lock-step comparison (lavapipe in CI): FP16's lane writes what a plain FP16 reply
//! writes; in free mode every lane writes what a reply at its own precision writes; the
//! per-position metrics and the summaries agree with each other. On the tiny model (the default
//! model's tokenizer and formats, random weights): the mechanics, not the model's knowledge.

use crate::common;

use lowbit::chat::Message;
use lowbit::lockstep::{CompareSettings, LockStep, Mode};
use lowbit::plan::Variant;
use lowbit::sampler::SamplerConfig;
use lowbit::session::Session;
use lowbit::{KvPrecision, Precision};
use pollster::block_on;

const PROMPT: &str = "What is the capital of France?";
const N: usize = 8;

fn settings(mode: Mode) -> CompareSettings {
    CompareSettings {
        prompt: PROMPT.into(),
        chat: true,
        system: String::new(),
        sampling: SamplerConfig { temperature: 0.0, ..Default::default() },
        max_tokens: N,
        lanes: vec![Precision::Int8.into(), Precision::Int4.into()],
        mode,
    }
}

/// What a plain reply at `p` writes (greedy, `N` tokens).
fn reply_at(s: &mut Session, p: Precision) -> String {
    s.set_precision(p).unwrap();
    s.reset();
    let msgs = [Message::new("user", PROMPT)];
    let sampling = SamplerConfig { temperature: 0.0, ..Default::default() };
    block_on(s.reply(&msgs, &sampling, N, |_| true)).unwrap().0.text
}

#[test]
fn lanes_match_plain_replies_and_metrics_add_up() {
    let Some(bytes) = common::tiny_model() else { return };
    let Some(gpu) = common::gpu() else { return };
    let mut s = Session::load(&gpu, bytes, Precision::Int8, 128).unwrap();
    let fp16_reply = reply_at(&mut s, Precision::Fp16);
    let int4_reply = reply_at(&mut s, Precision::Int4);
    s.set_precision(Precision::Int8).unwrap();

    // Same context: every lane reads FP16's text. The last lane is FP16 weights with an INT8
    // KV cache.
    let mut same = settings(Mode::SameContext);
    same.lanes.push(Variant::new(Precision::Fp16, KvPrecision::Int8));
    let mut ls = LockStep::new(&s, same).unwrap();
    assert_eq!(ls.variants()[0], Variant::REFERENCE);
    block_on(ls.prefill()).unwrap();
    let mut steps = vec![];
    while let Some(st) = block_on(ls.step()).unwrap() {
        steps.push(st);
    }
    let sum = ls.summaries();
    for (i, l) in sum.iter().enumerate() {
        println!("{}: {:?} kl {:.5} top1 {:.3} first divergence {:?} decode {:.1} tok/s, {} B/token",
            l.variant, l.text, l.mean_kl, l.top1_agreement, l.first_divergence, l.decode_tokens_per_second, l.bytes_per_token);
        let kls: Vec<f64> = steps.iter().filter_map(|st| st.lanes[i].kl).collect();
        assert_eq!(kls.len(), l.compared_positions);
        assert!((kls.iter().sum::<f64>() / kls.len() as f64 - l.mean_kl).abs() < 1e-9);
        let same = steps.iter().filter(|st| st.lanes[i].same_as_fp16).count();
        assert_eq!(same as f64 / l.compared_positions as f64, l.top1_agreement);
        let first = steps.iter().position(|st| !st.lanes[i].same_as_fp16);
        assert_eq!(first, l.first_divergence);
    }
    assert_eq!(sum[0].text, fp16_reply, "FP16's lane is a plain FP16 reply");
    assert_eq!(sum[0].mean_kl, 0.0);
    assert_eq!(sum[0].top1_agreement, 1.0);
    assert_eq!(steps.len(), sum[0].tokens.min(N) + usize::from(sum[0].tokens < N));
    assert!(sum[1].mean_kl < sum[2].mean_kl, "INT8 drifts less than INT4");
    assert!(sum[0].bytes_per_token > sum[1].bytes_per_token && sum[1].bytes_per_token > sum[2].bytes_per_token);
    assert!(sum[2].weight_bytes < sum[1].weight_bytes && sum[1].weight_bytes < sum[0].weight_bytes);
    // The INT8 KV cache: same weights as FP16, 1.125 bytes per cached value instead of 4, and a
    // small drift of its own.
    assert_eq!(sum[3].weight_bytes, sum[0].weight_bytes);
    assert_eq!(sum[3].kv_bytes_per_token * 32, sum[0].kv_bytes_per_token * 9);
    assert!(sum[3].mean_kl > 0.0 && sum[3].mean_kl < sum[2].mean_kl, "{} vs {}", sum[3].mean_kl, sum[2].mean_kl);
    drop(ls);

    // Free: every lane writes its own text, the same as a reply at its precision.
    let mut ls = LockStep::new(&s, settings(Mode::Free)).unwrap();
    block_on(ls.prefill()).unwrap();
    while block_on(ls.step()).unwrap().is_some() {}
    let sum = ls.summaries();
    for l in &sum {
        println!("free {}: {:?} first divergence {:?}", l.variant, l.text, l.first_divergence);
    }
    assert_eq!(sum[0].text, fp16_reply);
    assert_eq!(sum[2].text, int4_reply);
    assert_eq!(sum[2].first_divergence.is_some(), int4_reply != fp16_reply);
}
