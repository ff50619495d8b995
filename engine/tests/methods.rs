//! Quantization methods end to end: calibration through the CPU reference, the calibrated
//! methods on the GPU (lavapipe in CI), scored against FP16 as `lowbit compare` does.

mod common;

use std::sync::Arc;

use common::golden_text;
use lowbit::gguf::Gguf;
use lowbit::method::{calibration, Calibration, Method};
use lowbit::plan::{Plan, Variant};
use lowbit::quality::{compare, Quality};
use lowbit::tokenizer::Tokenizer;
use lowbit::Precision;

/// KL vs FP16 of INT4 by each method on `eval` tokens of the golden text, calibrated on the first
/// `calib` tokens of the built-in calibration text.
fn int4_kl_by_method(bytes: &[u8], eval: usize, calib: usize) -> Option<Vec<(Method, Quality)>> {
    let gpu = common::gpu()?;
    let g = Gguf::parse(bytes).unwrap();
    let tok = Tokenizer::from_gguf(&g).unwrap();
    let ctoks = calibration::text_tokens(&tok, calibration::TEXT, calib);
    let c = Calibration::collect(&g, &ctoks).unwrap();
    assert_eq!(c.tokens, ctoks.len());
    let mut toks = tok.encode_with_bos(&golden_text("ppl-text.txt"), false);
    toks.truncate(eval);
    let plans: Vec<Variant> = Method::ALL.iter().map(|&m| Plan::uniform(Precision::Int4).with_method(m).into()).collect();
    let rows = pollster::block_on(compare(&gpu, &g, &toks, eval, false, &plans, Some(Arc::new(c)))).unwrap();
    Some(Method::ALL.iter().map(|&m| (m, rows.iter().find(|r| r.precision.variant().is_some_and(|v| v.plan.method == m && v.plan != Plan::uniform(Precision::Fp16))).unwrap().clone())).collect())
}

fn kl(rows: &[(Method, Quality)], m: Method) -> f64 {
    rows.iter().find(|r| r.0 == m).unwrap().1.kl_vs_fp16.unwrap()
}

#[test]
fn calibrated_methods_beat_rounding_on_the_tiny_model() {
    // Random weights: every layer is requantized from its stored blocks, so every method acts.
    let Some(bytes) = common::tiny_model() else { return };
    let Some(rows) = int4_kl_by_method(&bytes, 64, 256) else { return };
    for (m, r) in &rows {
        println!("tiny INT4 {m}: ppl {:.4} KL {:.5} top-1 {:.3}", r.ppl, r.kl_vs_fp16.unwrap(), r.top1_vs_fp16.unwrap());
    }
    // Measured: KL rtn 0.101, search 0.087, imatrix 0.076, gptq 0.117. Random weights give
    // inputs with no shared structure, so 256 tokens estimate XᵀX's off-diagonal poorly and
    // GPTQ's feedback fits that noise; it wins on real models (the next test, and the README).
    assert!(kl(&rows, Method::Search) < kl(&rows, Method::Rtn));
    assert!(kl(&rows, Method::Imatrix) < kl(&rows, Method::Search));
}

#[test]
fn gptq_calibrates_the_default_models_tied_output_head() {
    // Its layers are stored at Q4_1 and kept as stored by every method; only the tied
    // embedding / output head (Q8_0) is requantized at INT4. Measured on these 128 tokens: KL
    // rtn 0.074, search 0.070, imatrix 0.039, gptq 0.027.
    let Some(bytes) = common::default_model() else { return };
    let Some(rows) = int4_kl_by_method(&bytes, 128, 256) else { return };
    for (m, r) in &rows {
        println!("default model INT4 {m}: ppl {:.4} KL {:.5} top-1 {:.3}", r.ppl, r.kl_vs_fp16.unwrap(), r.top1_vs_fp16.unwrap());
    }
    assert!(kl(&rows, Method::Imatrix) < 0.7 * kl(&rows, Method::Rtn));
    assert!(kl(&rows, Method::Gptq) < 0.5 * kl(&rows, Method::Rtn));
}

#[test]
fn a_calibrated_method_without_calibration_is_a_usage_error() {
    let Some(bytes) = common::tiny_model() else { return };
    let Some(gpu) = common::gpu() else { return };
    let g = Gguf::parse(&bytes).unwrap();
    let plan = Plan::uniform(Precision::Int4).with_method(Method::Gptq);
    let e = lowbit::model::gpu::GpuBackend::load(&gpu, &g, plan, 16).err().expect("gptq without calibration");
    assert!(e.to_string().contains("calibration"), "{e}");
    // The data-free search needs none.
    assert!(lowbit::model::gpu::GpuBackend::load(&gpu, &g, Plan::uniform(Precision::Int4).with_method(Method::Search), 16).is_ok());
}

#[test]
fn calibration_is_asked_for_only_where_a_tensor_is_requantized() {
    // The tiny model's layers are Q4_1 and its embedding Q8_0: at its own precisions every block
    // is kept as stored, and no method changes anything there.
    let Some(bytes) = common::tiny_model() else { return };
    let Some(gpu) = common::gpu() else { return };
    let s = lowbit::session::Session::load(&gpu, bytes, Plan::parse("int4-int4-int8").unwrap(), 32).unwrap();
    assert!(!s.needs_calibration(Plan::parse("int4-int4-int8@gptq").unwrap()).unwrap());
    assert!(!s.needs_calibration(Plan::parse("int4@search").unwrap()).unwrap());
    assert!(s.needs_calibration(Plan::parse("int4@gptq").unwrap()).unwrap());
    assert!(s.needs_calibration(Plan::parse("int8-int8-int8@imatrix").unwrap()).unwrap());
}
