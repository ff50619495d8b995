//! The model picker's list against the real files the suite has: the published shapes it sizes
//! each model by are the ones the files' own metadata gives.

use crate::common;

use lowbit::catalog::{Entry, MODELS};
use lowbit::gguf::Gguf;
use lowbit::model::Config;
use lowbit::info::weight_sizes;

fn check_against_file(entry: &Entry, bytes: &[u8]) {
    let file = Config::from_gguf(&Gguf::parse(bytes).unwrap()).unwrap();
    let listed = entry.config();
    let shape = |c: &Config| {
        (c.architecture.clone(), c.n_layers, c.dim, c.ffn_dim, c.n_heads, c.n_kv_heads, c.head_dim, c.vocab, c.tied_output, c.qkv_bias, c.qk_norm, c.family)
    };
    assert_eq!(shape(&listed), shape(&file), "{}", entry.id);
    assert_eq!(weight_sizes(&listed), weight_sizes(&file), "{}: GPU bytes", entry.id);
}

fn entry(id: &str) -> &'static Entry {
    MODELS.iter().find(|e| e.id == id).unwrap()
}

#[test]
fn listed_shapes_match_the_real_files() {
    // The instruction-tuned Gemma 3 270M has the base model's shape.
    if let Some(path) = common::gemma_model_path() {
        check_against_file(entry("gemma-3-270m-it"), &std::fs::read(path).unwrap());
    }
    if let Some(bytes) = common::qwen_model() {
        // Its BF16 sibling's parameters are the file's, less the output head the GGUF stores
        // apart and the checkpoint ties to the embedding.
        let g = Gguf::parse(&bytes).unwrap();
        let bf16 = entry("qwen2.5-0.5b-instruct-bf16");
        let head = (bf16.vocab * bf16.dim) as u64;
        assert_eq!(bf16.parameters() + head, lowbit::info::ModelInfo::from_gguf(&g, bytes.len() as u64).n_params, "Qwen2.5 0.5B parameters");
        let coder = entry("qwen2.5-coder-0.5b-instruct");
        check_against_file(coder, &bytes);
        // The download size listed is the file's.
        assert_eq!(coder.file_mb, (bytes.len() as f64 / 1e6).round() as u32);
    }
}

#[test]
fn the_default_models_full_precision_entry_is_its_shape() {
    let Some(bytes) = common::default_model() else { return };
    let e = entry("smollm2-135m-instruct-bf16");
    check_against_file(e, &bytes);
    let g = Gguf::parse(&bytes).unwrap();
    assert_eq!(e.parameters(), lowbit::info::ModelInfo::from_gguf(&g, bytes.len() as u64).n_params);
    assert_eq!(e.file(), "SmolLM2-135M-Instruct");
}

#[test]
fn every_entry_is_a_downloadable_gguf_the_page_can_hold() {
    // The architectures lowbit lists are the ones it knows the features of, and no other.
    for a in lowbit::model::ARCHITECTURES {
        assert!(lowbit::model::Features::of(a).is_some(), "{a}");
    }
    assert!(lowbit::model::Features::of("mamba").is_none());
    let mut ids = std::collections::HashSet::new();
    for e in MODELS {
        assert!(ids.insert(e.id), "{} listed twice", e.id);
        if e.is_checkpoint() {
            // A published checkpoint: BF16, the listed size that of its weights at 2 bytes each.
            assert_eq!(e.format, "BF16", "{}", e.id);
            assert_eq!(e.file_mb as u64, (e.parameters() * 2 + 500_000) / 1_000_000, "{}", e.id);
        } else {
            assert!(e.url.starts_with("https://huggingface.co/") && e.url.contains("/resolve/main/") && e.url.ends_with(".gguf"), "{}", e.url);
        }
        // Under the page's 2 GiB file limit (the app's MAX_FILE_BYTES).
        assert!((e.file_mb as u64) * 1_000_000 < 2 << 30, "{}", e.id);
        assert!(lowbit::model::ARCHITECTURES.contains(&e.architecture), "{}", e.id);
        assert!(lowbit::model::Features::of(e.architecture).is_some(), "{}", e.id);
        assert_eq!(e.dim % 32, 0, "{}", e.id);
    }
}

/// Before a download, each precision is checked against this GPU's buffer limit: Llama 3.2 1B's
/// stacked gate and up projections (2 × 8,192 × 2,048 weights) are 67 MB at FP16, 36 MB at INT8
/// and 19 MB at INT4 (scales included), so a GPU that binds 32 MiB takes it at INT4 only.
#[test]
fn the_fit_before_download_follows_the_gpu_limit() {
    use lowbit::Precision;
    let llama = entry("llama-3.2-1b-instruct");
    let small = lowbit::gpu::AdapterSummary { max_buffer_size: 1 << 30, max_storage_buffer_binding_size: 32 << 20, ..Default::default() };
    let needs = llama.needs(&small);
    let fits: Vec<(Precision, bool)> = needs.iter().map(|n| (n.precision, n.fit.fits)).collect();
    assert_eq!(fits, [(Precision::Fp16, false), (Precision::Int8, false), (Precision::Int4, true)]);
    assert!(needs[0].fit.message.contains("too large"), "{}", needs[0].fit.message);
    // 1.24 B weights: about 2.5 GB at FP16, and each precision smaller than the one before.
    let bytes: Vec<u64> = needs.iter().map(|n| n.weight_bytes).collect();
    assert!((2.4e9..2.6e9).contains(&(bytes[0] as f64)) && bytes[0] > bytes[1] && bytes[1] > bytes[2], "{bytes:?}");
    let big = lowbit::gpu::AdapterSummary { max_buffer_size: 1 << 30, max_storage_buffer_binding_size: 1 << 30, ..Default::default() };
    assert!(llama.needs(&big).iter().all(|n| n.fit.fits));
}
