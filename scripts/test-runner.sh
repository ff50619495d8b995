#!/usr/bin/env bash
# cargo test's runner, set by scripts/test.sh: each test binary reports every test's time
# (libtest's --report-time; RUSTC_BOOTSTRAP lets the stable harness take it, and only the test
# processes see it, so nothing is compiled differently). Doc tests run without it.
exe=$1
shift
RUSTC_BOOTSTRAP=1 exec "$exe" "$@" -Z unstable-options --report-time
