//! `lowbit convert`: F16 and Q8_0 re-encodings of a model in the default model's formats are valid
//! GGUF files that keep the metadata and the model's quality.

use crate::common;

use common::golden_text;
use lowbit::gguf::{self, ConvertTo, GgmlType, Gguf};
use lowbit::model::{cpu::CpuBackend, perplexity};
use lowbit::tokenizer::Tokenizer;

fn ppl(bytes: &[u8], text: &str) -> f64 {
    let g = Gguf::parse(bytes).unwrap();
    let toks = Tokenizer::from_gguf(&g).unwrap().encode_with_bos(text, false);
    let mut b = CpuBackend::load(&g).unwrap();
    let cfg = b.cfg.clone();
    pollster::block_on(perplexity(&cfg, &mut b, &toks, 512)).unwrap().ppl
}

#[test]
fn converted_models_keep_metadata_and_perplexity() {
    // The tiny model: the default model's metadata and formats (Q4_1 layers, Q8_0 embedding).
    let Some(bytes) = common::tiny_model() else { return };
    let text = golden_text("ppl-text.txt");
    let g = Gguf::parse(&bytes).unwrap();
    let base = ppl(&bytes, &text);
    for (to, ty, budget) in [(ConvertTo::F16, GgmlType::F16, 0.005), (ConvertTo::Q8_0, GgmlType::Q8_0, 0.01)] {
        let out = gguf::convert(&g, to).unwrap();
        let c = Gguf::parse(&out).unwrap();
        assert_eq!(c.tensors.len(), g.tensors.len());
        for (a, b) in g.tensors.iter().zip(&c.tensors) {
            assert_eq!((&a.name, &a.dims), (&b.name, &b.dims));
            let want = if a.dims.len() >= 2 { ty } else { a.ggml_type };
            assert_eq!(b.ggml_type, want, "{}", a.name);
        }
        for (k, v) in &g.metadata {
            if k != "general.file_type" {
                assert_eq!(c.get(k), Some(v), "metadata {k}");
            }
        }
        let p = ppl(&out, &text);
        println!("{to:?}: {} bytes, ppl {p:.4} vs the Q4_1 original {base:.4} ({:+.3}%)", out.len(), (p / base - 1.0) * 100.0);
        assert!((p / base - 1.0).abs() < budget, "{to:?} perplexity {p} vs {base}");
    }
}
