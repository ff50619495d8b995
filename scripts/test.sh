#!/usr/bin/env bash
# Installs what the tests need (skipping what is present), then runs every test:
# cargo test --workspace (GPU kernels on lavapipe) and the Playwright e2e suite in headless
# Chromium with WebGPU (SwiftShader) against one release build.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

phase "install: Debian packages (Chromium, lavapipe)"
ensure_chromium
ensure_vulkan
phase "install: Rust wasm target"
ensure_rust
phase "install: Trunk and wasm-bindgen-cli"
ensure_trunk
phase "install: npm tools (Playwright, wasm-opt)"
ensure_node_tools
phase "fetch: default model"
fetch_model
phase "cargo test --workspace"
mkdir -p "$ROOT/target"
host=$(rustc -vV | sed -n 's/^host: //p' | tr 'a-z.-' 'A-Z__')
(cd "$ROOT" && env "CARGO_TARGET_${host}_RUNNER=$ROOT/scripts/test-runner.sh" cargo test --workspace 2>&1) \
  | tee "$ROOT/target/cargo-test.log"
echo "[lowbit] slowest Rust tests:"
slowest_tests "$ROOT/target/cargo-test.log" 10
phase "synth: the tiny test model"
make_tiny_model
phase "build: the app (trunk build --release)"
build_app
phase "e2e: Playwright (serves dist/)"
(cd "$ROOT/e2e" && npx playwright test)
phase_end
