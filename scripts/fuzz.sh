#!/usr/bin/env bash
# Runs every fuzz target in fuzz/ for SECONDS each (default 20), one after the other, from
# the seed corpus in fuzz/corpus/<target>. A crash or a broken property fails the script;
# the input is left in fuzz/artifacts/<target>/ (replay: cargo +nightly fuzz run <target> <file>).
#
# Needs the nightly toolchain (libFuzzer's sanitizer flags); installs cargo-fuzz if missing.
# Builds with debug assertions and overflow checks (cargo-fuzz's default).
set -euo pipefail
cd "$(dirname "$0")/.."

secs="${1:-20}"
if ! rustup run nightly rustc --version >/dev/null 2>&1; then
    echo "fuzz: the nightly toolchain is missing (rustup toolchain install nightly)" >&2
    exit 1
fi
if ! cargo +nightly fuzz --version >/dev/null 2>&1; then
    cargo install cargo-fuzz --locked
fi

cargo +nightly fuzz build
passed=0
failed=0
for target in $(cargo +nightly fuzz list); do
    # New inputs go to a scratch corpus, so the committed one stays a small set of seeds.
    scratch="fuzz/target/corpus/$target"
    mkdir -p "$scratch" "fuzz/corpus/$target"
    # Long enough for a chunked body to pass its framing bound (max_chunked_bytes(64)).
    extra=()
    [ "$target" = decode_chunked ] && extra=(-max_len=8192)
    log="fuzz/target/$target.log"
    if cargo +nightly fuzz run "$target" "$scratch" "fuzz/corpus/$target" -- \
        -max_total_time="$secs" -print_final_stats=1 "${extra[@]}" >"$log" 2>&1; then
        runs=$(grep -o 'Done [0-9]* runs in [0-9]* second' "$log" | tail -1)
        rate=$(grep -o 'exec/s: [0-9]*' "$log" | tail -1)
        echo "fuzz $target: ok (${runs:-?}s, ${rate:-?})"
        passed=$((passed + 1))
    else
        echo "fuzz $target: FAILED" >&2
        grep -E -A12 'panicked|ERROR: libFuzzer|SUMMARY' "$log" | head -40 >&2 || tail -40 "$log" >&2
        failed=$((failed + 1))
    fi
done
echo "fuzz: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
