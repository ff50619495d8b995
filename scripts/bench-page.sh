#!/usr/bin/env bash
# Decode and prefill speed of the default model in the page, in headless Chromium (WebGPU on this
# machine's adapter: SwiftShader without a GPU), at each precision. Run scripts/test.sh first
# (it builds dist/ and installs Playwright).   PRECISIONS=int4 TOKENS=64 scripts/bench-page.sh
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
build_app
cd "$ROOT/e2e" && npx playwright test --config bench.config.mjs
