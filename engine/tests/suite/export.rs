//! `lowbit quantize`'s GGUF export: gguf-py (ggml's own dequantizers) reads back exactly the
//! weights lowbit runs, and lowbit loading the export scores exactly as the variant that wrote it.

use crate::common;

use lowbit::export::export;
use lowbit::gguf::Gguf;
use lowbit::method::Method;
use lowbit::model::{Config, Mat};
use lowbit::plan::Plan;
use lowbit::Precision;

fn read_f32(path: &std::path::Path) -> Vec<f32> {
    std::fs::read(path).unwrap().chunks_exact(4).map(|c| f32::from_le_bytes(c.try_into().unwrap())).collect()
}

fn same_bits(a: &[f32], b: &[f32]) -> bool {
    a.len() == b.len() && a.iter().zip(b).all(|(x, y)| x.to_bits() == y.to_bits() || (*x == 0.0 && *y == 0.0))
}

#[test]
fn gguf_py_reads_the_exported_weights_to_the_bit() {
    let (Some(bytes), Some(_)) = (common::tiny_model(), common::gguf_py()) else { return };
    let g = Gguf::parse(&bytes).unwrap();
    let cfg = Config::from_gguf(&g).unwrap();
    let plan = Plan::uniform(Precision::Int4).with(lowbit::plan::Group::Embeddings, Precision::Int8).with_method(Method::Search);
    let mut reported = vec![];
    let out = export(&g, &plan, None, |done, total| reported.push((done, total))).unwrap();
    let n = g.tensors.len();
    assert_eq!(reported, (1..=n).map(|i| (i, n)).collect::<Vec<_>>(), "one report per tensor, the last included");
    let e = Gguf::parse(&out).unwrap();
    assert_eq!(e.get_str("general.quantized_by"), Some("lowbit"));
    assert_eq!(e.get_str("lowbit.quantization.plan"), Some("int4-int4-int8@search"));
    assert_eq!(e.get_str("tokenizer.ggml.model"), g.get_str("tokenizer.ggml.model"));
    let dir = std::env::temp_dir().join(format!("lowbit-export-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("export.gguf");
    std::fs::write(&path, &out).unwrap();
    let mats = cfg.matrices();
    let names: Vec<String> = mats.iter().map(|m| m.tensor_name(false)).collect();
    let py = common::gguf_py().unwrap().arg("tensors").arg(&path).arg("1000000").arg(&dir).args(&names).output().unwrap();
    assert!(py.status.success(), "gguf-py: {}", String::from_utf8_lossy(&py.stderr));
    for (m, name) in mats.iter().zip(&names) {
        let t = g.tensor(name).unwrap();
        let ours = lowbit::method::requantize(&bytes, t, *m, &plan, None).unwrap();
        let want = if *m == Mat::Embedding { lowbit::gguf::GgmlType::Q8_0 } else { lowbit::gguf::GgmlType::Q4_1 };
        assert_eq!(e.tensor(name).unwrap().ggml_type, want, "{name}");
        assert!(same_bits(&ours.dequantize(), &read_f32(&dir.join(format!("{name}.f32")))), "{name}: gguf-py reads other values");
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn the_export_loads_with_the_variants_own_perplexity() {
    let (Some(bytes), Some(gpu)) = (common::tiny_model(), common::gpu()) else { return };
    let g = Gguf::parse(&bytes).unwrap();
    let cfg = Config::from_gguf(&g).unwrap();
    let tok = lowbit::tokenizer::Tokenizer::from_gguf(&g).unwrap();
    let toks = tok.encode_with_bos(&common::golden_text("ppl-text.txt"), false)[..48].to_vec();
    for plan in [Plan::uniform(Precision::Int4).with_method(Method::Search), Plan::uniform(Precision::Int8)] {
        let out = export(&g, &plan, None, |_, _| {}).unwrap();
        let e = Gguf::parse(&out).unwrap();
        let ppl = |g: &Gguf, p: Plan| {
            let mut b = lowbit::model::gpu::GpuBackend::load(&gpu, g, p, toks.len()).unwrap();
            pollster::block_on(lowbit::model::perplexity(&cfg, &mut b, &toks, 48)).unwrap().ppl
        };
        let (variant, exported) = (ppl(&g, plan), ppl(&e, plan.with_method(Method::Rtn)));
        println!("{}: variant {variant:.6}, its export {exported:.6}", plan.code());
        assert_eq!(variant.to_bits(), exported.to_bits(), "{}", plan.code());
    }
}

#[test]
fn an_awq_export_carries_its_folded_norms_and_scores_as_the_variant() {
    // The tiny model's layers are Q4_1: at INT8 every matrix is requantized, so AWQ scales its
    // sites and folds 1/s into the norms; loading the export at INT8 keeps every block, and
    // only the norms written with it can give the variant's perplexity back.
    let (Some(bytes), Some(gpu)) = (common::tiny_model(), common::gpu()) else { return };
    let g = Gguf::parse(&bytes).unwrap();
    let cfg = Config::from_gguf(&g).unwrap();
    let tok = lowbit::tokenizer::Tokenizer::from_gguf(&g).unwrap();
    let ctoks = lowbit::method::calibration::text_tokens(&tok, lowbit::method::calibration::TEXT, 256);
    let calib = std::sync::Arc::new(lowbit::method::Calibration::collect(&g, &ctoks).unwrap());
    let plan = Plan::uniform(Precision::Int8).with_method(Method::Awq);
    let q = lowbit::method::Quantizer::new(&cfg, &g, plan).unwrap();
    let norms: Vec<_> = (0..cfg.n_layers).flat_map(|l| [lowbit::model::Vector::Attn(l), lowbit::model::Vector::Ffn(l)]).collect();
    let folded = norms.iter().filter(|v| q.vector(&bytes, **v, Some(&calib)).unwrap().is_some()).count();
    println!("AWQ scaled {folded} of {} norms", norms.len());
    assert!(folded > 0, "AWQ scaled no site of the tiny model at INT8");
    let out = export(&g, &plan, Some(&calib), |_, _| {}).unwrap();
    let e = Gguf::parse(&out).unwrap();
    let changed = norms.iter().filter(|v| e.dequantize_tensor(e.tensor(&v.tensor_name()).unwrap()).unwrap() != g.dequantize_tensor(g.tensor(&v.tensor_name()).unwrap()).unwrap()).count();
    assert_eq!(changed, folded, "the export writes every folded norm");
    let toks = tok.encode_with_bos(&common::golden_text("ppl-text.txt"), false)[..48].to_vec();
    let ppl = |g: &Gguf, p: Plan, c: Option<std::sync::Arc<lowbit::method::Calibration>>| {
        let mut b = lowbit::model::gpu::GpuBackend::load_calibrated(&gpu, g, p, toks.len(), c).unwrap();
        pollster::block_on(lowbit::model::perplexity(&cfg, &mut b, &toks, 48)).unwrap().ppl
    };
    let (variant, exported) = (ppl(&g, plan, Some(calib.clone())), ppl(&e, plan.with_method(Method::Rtn), None));
    let unscaled = ppl(&g, plan.with_method(Method::Imatrix), Some(calib));
    println!("int8@awq: variant {variant:.6}, its export {exported:.6}, imatrix {unscaled:.6}");
    assert_eq!(variant.to_bits(), exported.to_bits());
}
