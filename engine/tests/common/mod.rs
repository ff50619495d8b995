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
