#!/usr/bin/env bash
# Runs the decode_request fuzz target for N seconds (default 30), seeded with every
# frame of the golden fixtures (net/tests/golden/*.hex). Exits non-zero if libFuzzer
# finds a crash; the input that crashed is left in net/fuzz/artifacts/.
#
#   net/fuzz/run-short.sh [SECONDS]
#
# Needs cargo-fuzz (installed from crates.io if missing) and the sanitizer flags that
# only nightly accepts: the machine's stable toolchain is told to accept them with
# RUSTC_BOOTSTRAP=1, so no other toolchain is needed.
set -euo pipefail

seconds="${1:-30}"
here="$(cd "$(dirname "$0")" && pwd)"
golden="$here/../tests/golden"
corpus="$here/corpus/decode_request"

if ! cargo fuzz --version >/dev/null 2>&1; then
    cargo install cargo-fuzz --locked
fi

# One seed file per captured frame (length prefix included), named after its line.
mkdir -p "$corpus"
for fixture in "$golden"/*.hex; do
    name="$(basename "$fixture" .hex)"
    n=0
    grep -v '^#' "$fixture" | while read -r label hex; do
        n=$((n + 1))
        printf '%s' "$hex" | perl -ne 'print pack("H*", $_)' >"$corpus/$name-$n-$label"
    done
done

cd "$here"
export RUSTC_BOOTSTRAP=1
# -max_len 4096: golden frames are small; longer inputs only slow the search down.
# -malloc_limit_mb 64: a 4 KiB input that makes any decoder ask for 64 MiB at once is
# a crash (over-allocation), not just a slow run.
cargo fuzz run decode_request "$corpus" -- \
    -max_total_time="$seconds" -max_len=4096 -malloc_limit_mb=64 -print_final_stats=1
