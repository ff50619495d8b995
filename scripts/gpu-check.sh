#!/usr/bin/env bash
# Everything worth knowing about lowbit on a real GPU, in one command and one JSON, for a machine
# with a GPU and no Rust (issue 29): build `lowbit` here (`cargo build --release`, x86-64), carry
# it there with this script, and run
#   scripts/gpu-check.sh [OUT.json]            # default gpu-check.json; a summary on stderr
# It runs, each step recorded even when another fails:
#   - `lowbit selftest --json`: every kernel against its CPU reference on this GPU;
#   - `lowbit bench kernels --json`: the matvec kernels and the copy roofline;
#   - `lowbit bench model --shape S --json` for each shape in SHAPES at every precision (random
#     weights at a real model's shape: no model file travels), decode from the prompt;
#   - the same at the first shape with each token read back before the next step (`--chain 1`),
#     to set against the chained decode above: what a CPU round trip per token costs here;
#   - the same at the first shape from CONTEXT tokens of context, for each KV format in KVS.
# Settings (environment): LOWBIT (default target/release/lowbit, else ./lowbit), SHAPES
# ("smollm2-135m llama-3.2-1b"), PRECISIONS (fp16,int8,int4,int3,int2), PROMPT and TOKENS (128),
# REPEATS (3), CONTEXT (4096), KVS ("f16 int8 int4-rot"), REPS (bench kernels, 20).
# Vulkan on a bare machine: Debian's loader packages unpacked from .gl/*.deb when libvulkan is
# missing (see the device notes), and NVIDIA's driver manifest when VK_DRIVER_FILES is unset.
set -uo pipefail
# Paths the caller gave are the caller's: resolved before moving to the repository's root.
OUT=$(realpath -m "${1:-gpu-check.json}")
[ -n "${LOWBIT:-}" ] && LOWBIT=$(realpath -m "$LOWBIT")
cd "$(dirname "${BASH_SOURCE[0]}")/.."
LOWBIT=${LOWBIT:-$( [ -x target/release/lowbit ] && echo "$PWD/target/release/lowbit" || echo "$PWD/lowbit" )}
SHAPES=${SHAPES:-"smollm2-135m llama-3.2-1b"}
PRECISIONS=${PRECISIONS:-fp16,int8,int4,int3,int2}
PROMPT=${PROMPT:-128}
TOKENS=${TOKENS:-128}
REPEATS=${REPEATS:-3}
CONTEXT=${CONTEXT:-4096}
KVS=${KVS:-"f16 int8 int4-rot"}
REPS=${REPS:-20}

libs=$(ldconfig -p 2>/dev/null || true)
if [[ "$libs" != *libvulkan* ]] && compgen -G ".gl/*.deb" >/dev/null; then
    for f in .gl/*.deb; do dpkg -x "$f" /; done
    ldconfig
fi
nvidia_icd=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json
if [ -z "${VK_DRIVER_FILES:-}" ] && [ -f "$nvidia_icd" ]; then
    export VK_DRIVER_FILES=$nvidia_icd
fi
if [ ! -x "$LOWBIT" ]; then
    echo "gpu-check: no lowbit at $LOWBIT (build it with cargo build --release and carry it)" >&2
    exit 2
fi

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
failures=0

# step NAME COMMAND…: under "NAME", the command's exit status and seconds, its JSON output as
# "result" when it printed one (a failing self-test prints its rows, then exits 1), and the end
# of its stderr as "error" when it failed.
step() {
    local name=$1
    shift
    local t0=$SECONDS rc=0
    echo "[gpu-check] $name: $*" >&2
    "$@" >"$work/out" 2>"$work/err" || rc=$?
    printf '"%s": {"exit": %d, "seconds": %d' "$name" "$rc" $((SECONDS - t0)) >>"$work/steps"
    local first
    first=$(head -c 1 "$work/out")
    if [ "$first" = "{" ] || [ "$first" = "[" ]; then
        printf ', "result": ' >>"$work/steps"
        cat "$work/out" >>"$work/steps"
    fi
    if [ "$rc" -ne 0 ]; then
        failures=$((failures + 1))
        # JSON-safe: ASCII only, no control characters, backslashes and quotes escaped.
        local msg
        msg=$(tail -c 2000 "$work/err" | LC_ALL=C tr -c '\040-\176' ' ' | sed 's/\\/\\\\/g; s/"/\\"/g')
        printf ', "error": "%s"' "$msg" >>"$work/steps"
        echo "[gpu-check] $name failed: $msg" >&2
    fi
    printf '},\n' >>"$work/steps"
}

: >"$work/steps"
step selftest "$LOWBIT" selftest --json
step kernels "$LOWBIT" bench kernels --reps "$REPS" --json
first=""
for shape in $SHAPES; do
    first=${first:-$shape}
    step "model_$shape" "$LOWBIT" bench model --shape "$shape" --precision "$PRECISIONS" \
        --prompt-tokens "$PROMPT" --tokens "$TOKENS" --repeats "$REPEATS" --json
done
step "one_at_a_time_$first" "$LOWBIT" bench model --shape "$first" --precision "$PRECISIONS" \
    --prompt-tokens "$PROMPT" --tokens "$TOKENS" --repeats "$REPEATS" --chain 1 --json
for kv in $KVS; do
    step "context_${first}_${kv}" "$LOWBIT" bench model --shape "$first" --precision int4 \
        --prompt-tokens 64 --tokens 64 --repeats 1 --context "$CONTEXT" --kv "$kv" --json
done

{
    printf '{\n"generated": "%s",\n"lowbit": "%s",\n' "$(date -u +%FT%TZ)" "$LOWBIT"
    printf '"gpu": "%s",\n' "$( (nvidia-smi --query-gpu=name,driver_version --format=csv,noheader 2>/dev/null || echo unknown) | head -1 | tr -d '"')"
    cat "$work/steps"
    printf '"failed_steps": %d\n}\n' "$failures"
} >"$OUT"

# A summary a person reads first: the self-test's count and each model row's decode speed.
if command -v python3 >/dev/null; then
    python3 - "$OUT" <<'EOF' >&2
import json, sys
r = json.load(open(sys.argv[1]))
st = r.get("selftest", {}).get("result")
if isinstance(st, list):
    bad = [f"{x['kernel']} {x['dtype']} {x['shape']}" for x in st if not x.get("pass")]
    print(f"self-test: {len(st) - len(bad)} of {len(st)} pass" + (": failing " + "; ".join(bad) if bad else ""))
kern = r.get("kernels", {}).get("result")
if isinstance(kern, dict):
    rows = ", ".join(f"{x['precision']} {x['k']}x{x['n']} {x['ratio_to_copy'] * 100:.0f}%" for x in kern.get("rows", []))
    print(f"copy {kern.get('copy_gbps', 0):.0f} GB/s; matvec of copy: {rows}")
for k, v in r.items():
    if k.startswith(("model_", "one_at_a_time_", "context_")) and isinstance(v, dict) and isinstance(v.get("result"), dict):
        m = v["result"]
        rows = ", ".join(f"{x['precision']} {x['decode_tokens_per_second']:.1f} ({x.get('round_trips_per_token', 1):.2f} trips, "
                         f"{x.get('host_ms_per_token') or 0:.2f} host ms)" for x in m["rows"])
        print(f"{k} ({m.get('kv', '')} KV, decode from {m.get('context', 0)}): decode tok/s {rows}")
print(f"failed steps: {r['failed_steps']}")
EOF
fi
echo "gpu-check: wrote $OUT ($failures failed steps)" >&2
[ "$failures" -eq 0 ]
