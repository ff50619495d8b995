#!/usr/bin/env bash
# Installs what the tests need (skipping what is present), then runs every test:
# cargo test --workspace (GPU kernels on lavapipe) and the Playwright e2e suite in headless
# Chromium with WebGPU (SwiftShader) against a release build.
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
(cd "$ROOT" && cargo test --workspace)
phase "e2e: Playwright (builds and serves with trunk serve --release)"
(cd "$ROOT/e2e" && npx playwright test)
phase_end
