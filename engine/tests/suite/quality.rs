//! Quality per precision on the golden text (lavapipe in CI): what `lowbit compare` reports.

use crate::common;

use common::golden_text;
use lowbit::gguf::Gguf;
use lowbit::quality::compare;
use lowbit::tokenizer::Tokenizer;

#[test]
fn compare_orders_the_precisions_by_quality() {
    let Some(bytes) = common::default_model() else { return };
    let Some(gpu) = common::gpu() else { return };
    let g = Gguf::parse(&bytes).unwrap();
    let tok = Tokenizer::from_gguf(&g).unwrap();
    let toks = tok.encode_with_bos(&golden_text("ppl-text.txt"), false);
    let rows = pollster::block_on(compare(&gpu, &g, &toks[..64], 64, true, &lowbit::quality::uniform_plans(), None)).unwrap();
    for r in &rows {
        println!("{r:?}");
    }
    let names: Vec<String> = rows.iter().map(|r| r.precision.code()).collect();
    assert_eq!(names, ["source", "fp16", "int8", "int4"]);
    let (src, fp16, int8, int4) = (&rows[0], &rows[1], &rows[2], &rows[3]);
    // FP16 holds a Q4_1 file's values almost exactly: the same perplexity as the source.
    assert!((fp16.ppl / src.ppl - 1.0).abs() < 0.01, "fp16 {} vs source {}", fp16.ppl, src.ppl);
    assert_eq!((fp16.kl_vs_fp16, fp16.top1_vs_fp16), (Some(0.0), Some(1.0)));
    let (kl8, kl4) = (int8.kl_vs_fp16.unwrap(), int4.kl_vs_fp16.unwrap());
    // Measured on 128 tokens: INT8 0.0012 nats, INT4 0.074 nats; top-1 0.97 and 0.72.
    assert!(kl8 > 0.0 && kl8 < 0.01, "int8 KL {kl8}");
    assert!(kl4 > 5.0 * kl8 && kl4 < 0.5, "int4 KL {kl4} vs int8 {kl8}");
    assert!(int8.top1_vs_fp16.unwrap() > 0.9);
    assert!(int4.top1_vs_fp16.unwrap() < int8.top1_vs_fp16.unwrap());
    assert!(fp16.weight_bytes > int8.weight_bytes && int8.weight_bytes > int4.weight_bytes);
}

#[test]
fn a_q4_0_file_at_int4_has_the_files_own_perplexity() {
    // The default model written as ggml's reference Q4_0 (symmetric blocks, d = max / −8): INT4
    // keeps those blocks as they are (scale d, min −8d), so the GPU at INT4 scores the golden text
    // as the CPU does on the file's own weights. Requantizing them by min and max, as loads did
    // before, moved most weights.
    let Some(bytes) = common::default_model() else { return };
    let Some(gpu) = common::gpu() else { return };
    let q4_0 = lowbit::gguf::convert(&Gguf::parse(&bytes).unwrap(), lowbit::gguf::ConvertTo::Q4_0).unwrap();
    let g = Gguf::parse(&q4_0).unwrap();
    let tok = Tokenizer::from_gguf(&g).unwrap();
    let toks = tok.encode_with_bos(&golden_text("ppl-text.txt"), false);
    let plans = [lowbit::Precision::Int4.into()];
    let rows = pollster::block_on(compare(&gpu, &g, &toks[..64], 64, true, &plans, None)).unwrap();
    let ppl = |code: &str| rows.iter().find(|r| r.precision.code() == code).unwrap().ppl;
    let (source, fp16, int4) = (ppl("source"), ppl("fp16"), ppl("int4"));
    println!("Q4_0 file: source (CPU) {source:.4}, FP16 {fp16:.4}, INT4 {int4:.4}");
    assert!((int4 / source - 1.0).abs() < 0.003, "INT4 {int4} vs the file's own {source}");
}
