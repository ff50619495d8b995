//! The chat session the page's worker runs (lavapipe in CI): later turns reuse the KV cache and
//! give the same reply as prefilling the whole conversation afresh; a precision switch keeps the
//! conversation; Stop while the prompt is read keeps what was read; a conversation longer than
//! the context is a named error.

use crate::common;

use lowbit::chat::Message;
use lowbit::sampler::SamplerConfig;
use lowbit::plan::{Group, Plan};
use lowbit::info::ModelInfo;
use lowbit::session::Session;
use lowbit::{Error, Precision};
use pollster::block_on;

fn greedy() -> SamplerConfig {
    SamplerConfig { temperature: 0.0, ..Default::default() }
}

#[test]
fn later_turns_reuse_the_cache_and_match_a_fresh_prefill() {
    let Some(bytes) = common::default_model() else { return };
    let Some(gpu) = common::gpu() else { return };
    let mut s = Session::load(&gpu, bytes.clone(), Precision::Int8, 256).unwrap();
    let mut msgs = vec![Message::new("system", "You are a helpful assistant."), Message::new("user", "What is the capital of France?")];
    let (g1, st1) = block_on(s.reply(&msgs, &greedy(), 6, |_| true)).unwrap();
    println!("turn 1: {:?} {st1:?}", g1.text);
    assert_eq!(st1.reused_tokens, 0);
    assert_eq!(st1.generated_tokens, g1.ids.len());
    assert_eq!(st1.context_used, st1.prompt_tokens + g1.ids.len() - 1);
    assert!(g1.text.contains("Paris"), "{:?}", g1.text);

    msgs.push(Message::new("assistant", &g1.text));
    msgs.push(Message::new("user", "And of Germany?"));
    // Switching precision keeps the cache: the second turn is still only its own tokens.
    s.set_precision(Precision::Fp16).unwrap();
    let (g2, st2) = block_on(s.reply(&msgs, &greedy(), 6, |_| true)).unwrap();
    println!("turn 2: {:?} {st2:?}", g2.text);
    assert!(st2.reused_tokens >= st1.prompt_tokens, "first turn's prompt not reused: {st2:?}");
    assert_eq!(st2.prefill_tokens, st2.prompt_tokens - st2.reused_tokens);
    assert_eq!(st2.plan, Some(Plan::uniform(Precision::Fp16)));

    // A fresh session prefilling the same conversation at once, at the precisions each turn had.
    let mut fresh = Session::load(&gpu, bytes, Precision::Fp16, 256).unwrap();
    let (g3, st3) = block_on(fresh.reply(&msgs, &greedy(), 6, |_| true)).unwrap();
    assert_eq!(st3.reused_tokens, 0);
    assert_eq!(st3.prompt_tokens, st2.prompt_tokens);
    println!("fresh: {:?}", g3.text);
    assert!(g2.text.contains("Berlin") && g3.text.contains("Berlin"), "{:?} / {:?}", g2.text, g3.text);

    // Stop after the second piece: the reply ends there and the cache stays consistent.
    msgs.push(Message::new("assistant", &g2.text));
    msgs.push(Message::new("user", "Tell me a story."));
    let mut n = 0;
    let (g4, st4) = block_on(s.reply(&msgs, &greedy(), 50, |step| {
        if let lowbit::model::Step::Text(_) = step {
            n += 1;
        }
        n < 2
    }))
    .unwrap();
    assert_eq!(g4.ids.len(), 2);
    assert!(!st4.end_of_turn);
    assert_eq!(st4.context_used, st4.prompt_tokens + 1);
}

#[test]
fn a_mixed_plan_switches_only_the_groups_that_change() {
    let Some(bytes) = common::tiny_model() else { return };
    let Some(gpu) = common::gpu() else { return };
    let mut s = Session::load(&gpu, bytes.clone(), Precision::Fp16, 64).unwrap();
    let fp16 = s.weight_bytes();
    assert_eq!(fp16, s.info.weight_bytes_of(&Plan::uniform(Precision::Fp16)));
    let mixed = Plan::uniform(Precision::Fp16).with(Group::Ffn, Precision::Int4);
    s.set_precision(mixed).unwrap();
    assert_eq!(s.plan(), mixed);
    let weights = s.weight_bytes();
    assert_eq!(weights, s.info.weight_bytes_of(&mixed));
    let int4 = s.info.weight_bytes_of(&Plan::uniform(Precision::Int4));
    assert!(int4 < weights && weights < fp16, "{int4} < {weights} < {fp16}");
    println!("weights: fp16 {fp16}, {mixed} {weights}, int4 {int4}");
    let msgs = vec![Message::new("user", "What is the capital of France?")];
    let (g, st) = block_on(s.reply(&msgs, &greedy(), 8, |_| true)).unwrap();
    println!("{mixed}: {:?}", g.text);
    assert_eq!(st.plan, Some(mixed));
    assert_eq!(g.ids.len(), st.generated_tokens);
    // The same plan reached from the other side (INT4 everywhere, then attention and embeddings
    // back to FP16) and loaded directly: the same weights, so the same greedy reply.
    let mut from_int4 = Session::load(&gpu, bytes.clone(), Precision::Int4, 64).unwrap();
    from_int4.set_precision(mixed).unwrap();
    let direct = Session::load(&gpu, bytes, mixed, 64).unwrap();
    for mut other in [from_int4, direct] {
        assert_eq!(other.weight_bytes(), weights);
        let (o, _) = block_on(other.reply(&msgs, &greedy(), 8, |_| true)).unwrap();
        assert_eq!(o.ids, g.ids, "{mixed} reached another way writes {:?}, not {:?}", o.text, g.text);
    }
}

#[test]
fn stop_while_reading_the_prompt_keeps_what_was_read_for_the_next_reply() {
    use lowbit::model::{Step, FIRST_SLICE};
    let Some(bytes) = common::tiny_model() else { return };
    let Some(gpu) = common::gpu() else { return };
    let msgs = vec![Message::new("user", "Please describe, in great detail, the history of the city of Paris.")];
    let mut s = Session::load(&gpu, bytes.clone(), Precision::Int4, 128).unwrap();
    // Stop at the first pause: nothing is generated, the first slice stays in the cache.
    let mut reads = vec![];
    let (g, st) = block_on(s.reply(&msgs, &greedy(), 6, |step| match step {
        Step::Read { done, total } => {
            reads.push((done, total));
            false
        }
        Step::Text(_) => panic!("text after a stop"),
    }))
    .unwrap();
    assert!(g.ids.is_empty() && g.text.is_empty());
    assert_eq!(reads.len(), 1);
    assert_eq!(reads[0], (FIRST_SLICE, st.prompt_tokens));
    assert!(st.prompt_tokens > FIRST_SLICE, "{} prompt tokens", st.prompt_tokens);
    assert_eq!(st.context_used, FIRST_SLICE);
    // The next reply reads only the rest, in slices, and writes what a fresh session writes.
    let mut slices = vec![];
    let (g2, st2) = block_on(s.reply(&msgs, &greedy(), 6, |step| {
        if let Step::Read { done, .. } = step {
            slices.push(done);
        }
        true
    }))
    .unwrap();
    assert_eq!(st2.reused_tokens, FIRST_SLICE);
    assert!(slices.windows(2).all(|w| w[0] < w[1]) && slices.iter().all(|&d| d < st2.prompt_tokens), "{slices:?}");
    let mut fresh = Session::load(&gpu, bytes, Precision::Int4, 128).unwrap();
    let (g3, _) = block_on(fresh.reply(&msgs, &greedy(), 6, |_| true)).unwrap();
    assert_eq!(g2.ids, g3.ids, "{:?} vs {:?}", g2.text, g3.text);
    assert_eq!(g2.ids.len(), 6);
}

#[test]
fn measurements_give_the_conversation_its_cache_back() {
    use lowbit::plan::Variant;
    let Some(bytes) = common::tiny_model() else { return };
    let Some(gpu) = common::gpu() else { return };
    let mut s = Session::load(&gpu, bytes.clone(), Precision::Int4, 128).unwrap();
    let mut msgs = vec![Message::new("user", "What is the capital of France?")];
    let (g1, st1) = block_on(s.reply(&msgs, &greedy(), 6, |_| true)).unwrap();
    msgs.push(Message::new("assistant", &g1.text));
    msgs.push(Message::new("user", "And of Germany?"));
    // A quality run over other plans and another KV format, a benchmark and the layer errors:
    // each overwrites the cache, and each gives the conversation's part of it back.
    let kv8 = Variant::parse("fp16+kv-int8").unwrap();
    let text = "The quick brown fox jumps over the lazy dog, again and again, all day long.";
    block_on(s.quality(text, 24, &[Precision::Fp16.into(), Precision::Int8.into(), kv8], |_| true)).unwrap();
    // A quality run cancelled after its first variant ends as cancelled and gives the plan back.
    let mut seen = 0;
    let r = block_on(s.quality(text, 24, &[Precision::Int8.into(), Precision::Int2.into()], |_| {
        seen += 1;
        seen < 2
    }));
    assert!(matches!(r, Err(lowbit::Error::Cancelled)), "{r:?}");
    assert_eq!(seen, 2);
    let settings = lowbit::bench::BenchSettings {
        precisions: vec![Precision::Fp16, Precision::Int4],
        prompt_tokens: 8,
        decode_tokens: 4,
        repeats: 2,
        context: 0,
        kv: None,
        activations: vec![],
        chain: None,
    };
    let mut steps = vec![];
    let bench = block_on(s.bench("tiny", &settings, |st| {
        steps.push(st);
        true
    }))
    .unwrap();
    // Two runs of two precisions, three steps each, announced in order before they run.
    assert_eq!(steps.len(), 12);
    assert!(steps.iter().enumerate().all(|(i, st)| st.done == i && st.total == 12), "{steps:?}");
    assert!(steps[6].what.starts_with("run 2 of 2: switching to FP16"), "{:?}", steps[6]);
    assert!(bench.rows.iter().all(|r| r.decode_runs.len() == 2));
    // Decode chains its steps: 4 tokens in batches of 1, 2 and 1 are 3 read-backs, not 4.
    assert_eq!(bench.chain, lowbit::model::gpu::CHAIN_AHEAD);
    for r in &bench.rows {
        assert_eq!(
            (r.activations.as_str(), r.round_trips_per_token),
            ("f32", 0.75),
            "{:?}",
            r.precision
        );
        assert!(
            r.host_ms_per_token.is_none_or(|h| h >= 0.0),
            "{:?}",
            r.host_ms_per_token
        );
    }
    // The time left is estimated after a whole round of both precisions.
    assert!(steps.iter().all(|st| st.settle == 6), "{steps:?}");
    // Cancelled while FP16 is loaded, a benchmark ends as cancelled and gives the plan, the KV
    // format and the conversation's cache back.
    let (kv, used) = (s.kv(), s.context_used());
    let r = block_on(s.bench("tiny", &settings, |st| st.done < 2));
    assert!(matches!(r, Err(lowbit::Error::Cancelled)), "{r:?}");
    assert_eq!(s.plan(), Plan::uniform(Precision::Int4));
    assert_eq!((s.kv(), s.context_used()), (kv, used));
    // The profile compares with the very roofline the benchmark did: measured once.
    let profile = block_on(s.profile_decode()).unwrap();
    assert_eq!(profile.copy_gbps, bench.copy_gbps);
    block_on(s.layer_errors(text, 16, &[Precision::Int8.into()], |_| true)).unwrap();
    assert_eq!(s.context_used(), st1.context_used);
    // Decode speed as the context grows, per KV format: every point measured, in order, and the
    // KV format and the conversation given back.
    let kvs = [lowbit::KvPrecision::F16, lowbit::KvPrecision::Int8];
    let contexts = lowbit::bench::sweep_contexts(128, 4);
    let mut announced = vec![];
    let sweep = block_on(s.context_sweep(&kvs, &contexts, 4, |st| {
        announced.push(st.what);
        true
    }))
    .unwrap();
    assert_eq!(sweep.plan, Plan::uniform(Precision::Int4));
    assert_eq!(sweep.rows.iter().map(|r| r.kv).collect::<Vec<_>>(), kvs);
    for r in &sweep.rows {
        assert_eq!(r.points.iter().map(|p| p.context).collect::<Vec<_>>(), contexts);
        assert!(r.points.iter().all(|p| p.decode_tokens_per_second > 0.0), "{r:?}");
    }
    assert!(announced.iter().any(|w| w == "int8 KV cache: filling to 64 tokens, then decoding 4"), "{announced:?}");
    assert_eq!((s.kv(), s.context_used()), (kv, st1.context_used));
    // Contexts out of order, or whose decode does not fit, are a usage error.
    for bad in [&[32, 16][..], &[16, 125]] {
        let r = block_on(s.context_sweep(&kvs, bad, 4, |_| true));
        assert!(matches!(r, Err(lowbit::Error::Usage(_))), "{bad:?}: {r:?}");
    }
    assert_eq!(s.plan(), Plan::uniform(Precision::Int4));
    let (g2, st2) = block_on(s.reply(&msgs, &greedy(), 6, |_| true)).unwrap();
    assert_eq!(st2.reused_tokens, st1.context_used, "{st2:?}");
    // The reply is the one a fresh session prefilling the whole conversation writes.
    let mut fresh = Session::load(&gpu, bytes, Precision::Int4, 128).unwrap();
    let (g3, _) = block_on(fresh.reply(&msgs, &greedy(), 6, |_| true)).unwrap();
    assert_eq!(g2.ids, g3.ids, "{:?} vs {:?}", g2.text, g3.text);
}

#[test]
fn a_conversation_that_outgrows_the_context_leaves_out_its_oldest_turns() {
    let Some(bytes) = common::tiny_model() else { return };
    let Some(gpu) = common::gpu() else { return };
    let mut s = Session::load(&gpu, bytes, Precision::Int4, 96).unwrap();
    let system = Message::new("system", "You are terse.");
    let mut msgs = vec![system.clone()];
    let mut dropped = vec![];
    for i in 0..8 {
        msgs.push(Message::new("user", &format!("Question number {i}: what is {i} plus {i}?")));
        let (g, st) = block_on(s.reply(&msgs, &greedy(), 8, |_| true)).unwrap();
        assert!(st.prompt_tokens + g.ids.len() <= 96, "{st:?}");
        dropped.push(st.dropped_messages);
        // What the model read: the system prompt, then whole exchanges from a user message on.
        let kept: Vec<Message> = [system.clone()].into_iter().chain(msgs[1 + st.dropped_messages..].iter().cloned()).collect();
        assert_eq!(s.prompt(&kept).unwrap().len(), st.prompt_tokens);
        assert_eq!(msgs[1 + st.dropped_messages].role, "user");
        msgs.push(Message::new("assistant", &g.text));
    }
    println!("messages left out per turn: {dropped:?}");
    assert_eq!(dropped[0], 0);
    assert!(dropped.windows(2).all(|w| w[0] <= w[1]) && *dropped.last().unwrap() > 0, "{dropped:?}");
    // Room is kept for the reply: a quarter of the context, or max tokens if less.
    let (prompt, _) = s.fit_context(&msgs, 1000).unwrap();
    assert!(prompt.len() + 24 <= 96, "{}", prompt.len());
}

#[test]
fn the_context_changes_size_and_keeps_the_conversation() {
    let Some(bytes) = common::tiny_model() else { return };
    let Some(gpu) = common::gpu() else { return };
    let mut s = Session::load(&gpu, bytes.clone(), Precision::Int4, 64).unwrap();
    let mut msgs = vec![Message::new("user", "What is the capital of France?")];
    let (g1, st1) = block_on(s.reply(&msgs, &greedy(), 6, |_| true)).unwrap();
    let kv64 = s.kv_bytes();
    s.set_context(256).unwrap();
    assert_eq!((s.context_size(), s.kv_bytes()), (256, kv64 * 4));
    assert_eq!(s.context_used(), st1.context_used);
    msgs.push(Message::new("assistant", &g1.text));
    msgs.push(Message::new("user", "And of Germany?"));
    let (g2, st2) = block_on(s.reply(&msgs, &greedy(), 6, |_| true)).unwrap();
    assert_eq!(st2.reused_tokens, st1.context_used);
    let mut fresh = Session::load(&gpu, bytes, Precision::Int4, 256).unwrap();
    let (g3, _) = block_on(fresh.reply(&msgs, &greedy(), 6, |_| true)).unwrap();
    assert_eq!(g2.ids, g3.ids);
    // Smaller than the conversation: what fits is kept.
    s.set_context(16).unwrap();
    assert_eq!((s.context_size(), s.context_used()), (16, 16));
}

#[test]
fn a_conversation_longer_than_the_context_is_a_named_error() {
    let Some(bytes) = common::tiny_model() else { return };
    let Some(gpu) = common::gpu() else { return };
    let mut s = Session::load(&gpu, bytes, Precision::Int4, 16).unwrap();
    let msgs = vec![Message::new("user", "Please describe, in great detail, the history of the city of Paris.")];
    match block_on(s.reply(&msgs, &greedy(), 4, |_| true)) {
        Err(Error::ContextFull { needed, size: 16 }) => assert!(needed > 16),
        other => panic!("expected ContextFull, got {:?}", other.map(|r| r.1)),
    }
}

#[test]
fn model_info_and_fit_check_from_the_header() {
    let Some(bytes) = common::default_model() else { return };
    let g = lowbit::gguf::Gguf::parse(&bytes).unwrap();
    let info = ModelInfo::from_gguf(&g, bytes.len() as u64);
    assert!(info.supported, "{:?}", info.unsupported_reason);
    assert_eq!(info.n_layers, Some(30));
    assert_eq!(info.source_dtypes.get("Q4_1"), Some(&210));
    assert_eq!(info.matrix_dtype, Some(("Q4_1".to_string(), 5.0)));
    // Unless the user chose, a file loads at the precisions it stores each group at: the Q4_1
    // matrices at INT4, the Q8_0 embedding (and tied output head) at INT8.
    let (plan, why) = info.suggested_plan();
    assert_eq!(plan, Plan::uniform(Precision::Int4).with(Group::Embeddings, Precision::Int8));
    assert!(why.contains("Q4_1") && why.contains("Q8_0"), "{why}");
    let f16 = ModelInfo { group_dtypes: Group::ALL.iter().map(|&g| (g, "F16".into(), 16.0)).collect(), ..info.clone() };
    assert_eq!(f16.suggested_plan().0, Plan::uniform(Precision::Fp16));
    assert!(f16.suggested_plan().1.starts_with("FP16"));
    let q4 = ModelInfo { group_dtypes: Group::ALL.iter().map(|&g| (g, "Q4_0".into(), 4.5)).collect(), ..info.clone() };
    assert_eq!(q4.suggested_plan().0, Plan::uniform(Precision::Int4));
    let (fp16, int8, int4) = (info.weight_bytes_at(Precision::Fp16), info.weight_bytes_at(Precision::Int8), info.weight_bytes_at(Precision::Int4));
    assert!(fp16 > int8 && int8 > int4, "{fp16} {int8} {int4}");
    // 134.5 M parameters: FP16 is 2 bytes each, INT8 34/32, INT4 20/32 (plus f32 norms).
    assert!((fp16 as f64 / info.n_params as f64 - 2.0).abs() < 0.01);
    // A GPU allowing 2 MiB per buffer: the FP16 feed-forward gate and up (stacked: 3.5 MB) do not
    // fit, INT8 (1.9 MB) and INT4 do. The 56.6 MB FP16 embedding is no limit: it is split.
    let mut adapter = lowbit::gpu::AdapterSummary {
        name: "test".into(),
        backend: "test".into(),
        device_type: lowbit::gpu::DeviceKind::Cpu,
        driver: String::new(),
        is_fallback: true,
        subgroups: false,
        subgroup_min_size: 0,
        subgroup_max_size: 0,
        timestamp_query: false,
        shader_f16_available: false,
        max_buffer_size: 2 << 20,
        max_storage_buffer_binding_size: 2 << 20,
        matvec_kernel: lowbit::gpu::Reduce::Row,
        matmul_kernel: lowbit::gpu::Tiling::Rows,
    };
    let fits: Vec<bool> = info.fit(&adapter).iter().map(|f| f.fits).collect();
    assert_eq!(fits, [false, true, true, true, true]);
    assert!(info.fit(&adapter)[0].message.starts_with("too large"));
    // A mixed plan is checked group by group: FP16 attention and embeddings with an INT8
    // feed-forward fit.
    match info.check_fit(&adapter, &Plan::uniform(Precision::Fp16)) {
        Err(lowbit::Error::TooLarge { what, .. }) => assert_eq!(what, "feed-forward weights at fp16"),
        other => panic!("{other:?}"),
    }
    info.check_fit(&adapter, &Plan::uniform(Precision::Fp16).with(Group::Ffn, Precision::Int8)).unwrap();
    adapter.max_buffer_size = 1 << 30;
    adapter.max_storage_buffer_binding_size = 1 << 30;
    assert!(info.fit(&adapter).iter().all(|f| f.fits));
}

#[test]
fn a_decode_step_is_profiled_per_kernel() {
    let Some(bytes) = common::tiny_model() else { return };
    let Some(gpu) = common::gpu() else { return };
    let mut s = Session::load(&gpu, bytes, Precision::Int4, 64).unwrap();
    let int4 = block_on(s.profile_decode()).unwrap();
    s.set_precision(Precision::Fp16).unwrap();
    let fp16 = block_on(s.profile_decode()).unwrap();
    for p in [&int4, &fp16] {
        println!("{}: wall {:.2} ms, timed step {:?} ms, gpu {:?} ms, {} B/token, copy {:.2} GB/s, achieved {:.2} GB/s", p.plan, p.wall_ms, p.timed_wall_ms, p.gpu_ms, p.bytes_per_token, p.copy_gbps, p.achieved_gbps());
        for k in &p.kernels {
            println!("  {:<16} {:>4} calls {:>8.3} ms", k.kernel, k.calls, k.ms);
        }
        assert!(p.wall_ms > 0.0 && p.copy_gbps > 0.0);
        if gpu.info.timestamp_query {
            let name = format!("matvec_{}", p.plan.attention.name());
            let calls: usize = p.kernels.iter().filter(|k| k.kernel.starts_with(&name)).map(|k| k.calls).sum();
            // Four matvecs a layer (Q·K·V stacked, O, gate·up stacked, down) and the tied output head.
            assert_eq!(calls, 4 * lowbit::synth::Shape::TINY.layers + 1, "{:?}", p.kernels);
            // Nine dispatches a layer (attention is four), the embedding, the output head and the greedy argmax.
            let dispatches: usize = p.kernels.iter().map(|k| k.calls).sum();
            assert_eq!(dispatches, 9 * lowbit::synth::Shape::TINY.layers + 3, "{:?}", p.kernels);
            let total: f64 = p.kernels.iter().map(|k| k.ms).sum();
            assert!((total - p.gpu_ms.unwrap()).abs() < 1e-6 && total > 0.0);
            // The kernels ran one after another inside the timed step: their GPU time is a part
            // of its wall time (the page's caption says so), up to the two clocks' granularity.
            let timed = p.timed_wall_ms.unwrap();
            assert!(total <= timed + 0.5, "kernels {total} ms in a step of {timed} ms");
        }
    }
    assert!(fp16.bytes_per_token > 3 * int4.bytes_per_token / 2);
}

#[test]
fn a_lost_device_is_a_named_error_not_a_panic() {
    let Some(bytes) = common::tiny_model() else { return };
    let Some(gpu) = common::gpu() else { return };
    let mut s = Session::load(&gpu, bytes, Precision::Int4, 64).unwrap();
    let msgs = [Message::new("user", "Hi")];
    block_on(s.reply(&msgs, &greedy(), 2, |_| true)).unwrap();
    assert!(!gpu.is_lost());
    gpu.destroy();
    // The next use of the device reports the loss as its own kind of error (the page then
    // requests a new device and loads the model again), and keeps reporting it.
    for _ in 0..2 {
        match block_on(s.reply(&msgs, &greedy(), 2, |_| true)) {
            Err(lowbit::Error::DeviceLost(why)) => println!("device lost: {why}"),
            other => panic!("expected DeviceLost, got {:?}", other.map(|r| r.1)),
        }
    }
    assert!(gpu.is_lost());
}
