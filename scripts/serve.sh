#!/usr/bin/env bash
# Installs the toolchain (skipping what is present), fetches and verifies the default model,
# builds the app in release mode and serves it at http://127.0.0.1:8080.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

phase "install: Rust wasm target"
ensure_rust
phase "install: Trunk and wasm-bindgen-cli"
ensure_trunk
phase "install: npm tools (wasm-opt)"
ensure_node_tools
phase "fetch: default model"
fetch_model
phase "serve: http://127.0.0.1:8080"
cd "$ROOT"
exec trunk serve --release
