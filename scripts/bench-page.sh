#!/usr/bin/env bash
# lowbit's page benchmark (the bench panel: prefill and greedy decode at FP16, INT8 and INT4)
# against wllama (llama.cpp compiled to wasm, 1 and 2 threads) on the default model, the same
# prompt and token count, in one headless Chromium run (WebGPU on this machine's adapter:
# SwiftShader without a GPU). Writes e2e/bench-results/page-vs-wllama.json, which
# scripts/perf.sh puts in README. Run scripts/test.sh first (it builds dist/, installs Playwright
# and wllama, and fetches the model).
#   PROMPT_TOKENS=128 TOKENS=64 THREADS=1,2 scripts/bench-page.sh
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
build_app
cd "$ROOT/e2e" && npx playwright test --config bench.config.mjs page-vs-wllama
node bench/report.mjs
