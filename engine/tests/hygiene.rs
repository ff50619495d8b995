//! Resource hygiene: what a model holds on the GPU is given back. A test binary of its own with
//! one test, because the device count is per process and other tests make devices in parallel.

mod common;

use lowbit::chat::Message;
use lowbit::gpu::{live_devices, Live};
use lowbit::plan::{Group, Plan};
use lowbit::sampler::SamplerConfig;
use lowbit::session::Session;
use lowbit::{KvPrecision, Precision};
use pollster::block_on;

fn reply(s: &mut Session) {
    let greedy = SamplerConfig { temperature: 0.0, ..Default::default() };
    block_on(s.reply(&[Message::new("user", "Hi")], &greedy, 3, |_| true)).unwrap();
}

#[test]
fn switches_reloads_and_a_lost_device_give_back_every_buffer_and_device() {
    let Some(bytes) = common::tiny_model() else { return };
    let devices = live_devices();
    let Some(gpu) = common::gpu() else { return };
    assert_eq!(live_devices(), devices + 1);
    // Setting the device up (measuring which kernels to run) keeps no buffer.
    assert_eq!(gpu.live(), Live::default());

    let mut s = Session::load(&gpu, bytes.clone(), Precision::Fp16, 64).unwrap();
    reply(&mut s);
    let base = gpu.live();
    println!("one model at FP16 after a reply: {base:?}");
    assert!(base.buffers > 0 && base.bytes >= s.weight_bytes() + s.kv_bytes());

    let mixed = Plan::uniform(Precision::Fp16).with(Group::Ffn, Precision::Int4);
    let plans = [Plan::uniform(Precision::Int8), Plan::uniform(Precision::Int4), mixed, Plan::uniform(Precision::Fp16)];
    for (i, plan) in plans.iter().cycle().take(20).enumerate() {
        s.set_precision(*plan).unwrap();
        if i % 3 == 0 {
            s.set_kv([KvPrecision::F16, KvPrecision::Int8, KvPrecision::F32][i % 9 / 3]).unwrap();
        }
        reply(&mut s);
    }
    s.set_kv(KvPrecision::F32).unwrap();
    assert_eq!(s.plan(), Plan::uniform(Precision::Fp16));
    reply(&mut s);
    assert_eq!(gpu.live(), base, "20 precision switches at FP16 again");

    for _ in 0..5 {
        drop(s);
        s = Session::load(&gpu, bytes.clone(), Precision::Fp16, 64).unwrap();
        reply(&mut s);
        assert_eq!(gpu.live(), base, "a model loaded again");
    }
    drop(s);
    assert_eq!(gpu.live(), Live::default(), "no model");

    // A lost device: the session and the page's handle dropped, the device goes with them.
    let s = Session::load(&gpu, bytes, Precision::Int4, 64).unwrap();
    gpu.destroy();
    drop(s);
    drop(gpu);
    assert_eq!(live_devices(), devices);
}
