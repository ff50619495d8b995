#!/usr/bin/env bash
# Installs what the tests need (skipping what is present), then runs every test:
# cargo test --workspace (GPU kernels on lavapipe) and the Playwright e2e suite in headless
# Chromium with WebGPU (SwiftShader) against one release build.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

phase "install: Rust wasm target, npm tools (Playwright, wasm-opt)"
ensure_rust
ensure_node_tools
phase "fetch: default model (the app's build copies www/models)"
fetch_model
phase "install: Trunk and wasm-bindgen-cli, then the app's release build (in the background)"
mkdir -p "$ROOT/target"
# Compiling Trunk and wasm-bindgen-cli takes minutes of CPU; the downloads below mostly wait on
# the network, and the wasm release build shares no artifacts with the native tests: on 2 cores
# each fills the other's idle time (downloads, linking, single-threaded CPU references, lavapipe's
# waits).
(ensure_trunk && build_app) > "$ROOT/target/app-build.log" 2>&1 &
app_build=$!
phase "install: Debian packages (Chromium, lavapipe)"
ensure_chromium
ensure_vulkan
phase "fetch: Gemma 3 270M and Qwen2.5-Coder-0.5B (Q4_K_M), gguf-py (reference block decoding), Hugging Face's tokenizers"
fetch_gemma
fetch_qwen
ensure_gguf_py
ensure_hf_tokenizers
phase "fetch: llama.cpp's tokenizer tests and chat templates (llama-cpp-python sdist)"
fetch_llama_cpp_models
phase "cargo test --workspace (Trunk's install and the app's release build run beside it)"
host=$(rustc -vV | sed -n 's/^host: //p' | tr 'a-z.-' 'A-Z__')
# CI builds from a clean clone: incremental compilation's bookkeeping would only slow it down.
if [ -n "${CI:-}" ]; then export CARGO_INCREMENTAL=0; fi
(cd "$ROOT" && env "CARGO_TARGET_${host}_RUNNER=$ROOT/scripts/test-runner.sh" cargo test --workspace 2>&1) \
  | tee "$ROOT/target/cargo-test.log"
echo "[lowbit] slowest Rust tests:"
slowest_tests "$ROOT/target/cargo-test.log" 10
phase "build: Trunk's install and the app (trunk build --release), if still running"
if ! wait "$app_build"; then
  cat "$ROOT/target/app-build.log"
  echo "[lowbit] installing Trunk or trunk build --release failed" >&2
  exit 1
fi
grep -E 'dist/ is current|Finished|success' "$ROOT/target/app-build.log" || true
phase "synth: the tiny test model"
make_tiny_model
phase "e2e: Playwright (serves dist/)"
(cd "$ROOT/e2e" && npx playwright test)
phase_end
