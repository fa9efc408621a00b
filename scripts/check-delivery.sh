#!/usr/bin/env bash
# Black-box delivery check: drives the real openpush binary through every front door
# (OpenPush, ntfy, autopush, NextPush; Web Push and the Matrix gateway into each) with
# concurrent senders and subscribers that reconnect at random, under kill -9, clean
# restarts, reloads, commit windows and confirmation delays at their edges and full queues,
# then checks that nothing acknowledged was lost (bench/src/check/, SOAK.md).
#
#   scripts/check-delivery.sh [SECONDS] [SEED]     (default 60 s of load; seed random)
#
# The seed is printed first and with every failure; the same SECONDS and SEED replay the same
# schedule. The server is $OPENPUSH_BIN, else this checkout's debug build (`cargo build`).
# Environment: CHECK_DIR (work directory, default a new one under /tmp, removed on success),
# CARGO_TARGET_DIR (if set, both builds go there; else target/ and bench/target/).
# Only 127.0.0.1 is used; the run is bounded by SECONDS plus the drains (at most a few
# minutes). The last line is "N passed, M failed"; the exit status is non-zero on any
# failure, and the work directory (server.log, history.tsv) is then kept.
set -euo pipefail

SECS=${1:-60}
SEED=${2:-}
HERE=$(cd "$(dirname "$0")/.." && pwd)

if [ -z "${OPENPUSH_BIN:-}" ]; then
    echo "== cargo build (the server, debug)" >&2
    (cd "$HERE" && cargo build -q)
    OPENPUSH_BIN="${CARGO_TARGET_DIR:-$HERE/target}/debug/openpush"
fi
echo "== cargo build --release (bench)" >&2
(cd "$HERE/bench" && cargo build --release --locked -q)
BENCH="${CARGO_TARGET_DIR:-$HERE/bench/target}/release/openpush-bench"

DIR=${CHECK_DIR:-$(mktemp -d /tmp/openpush-check.XXXXXX)}
mkdir -p "$DIR"
cleanup() {
    # The checker stops its server; if it died first, the server may still run.
    if [ -f "$DIR/server.pid" ]; then
        pid=$(cat "$DIR/server.pid")
        if [ -n "$pid" ] && [ "$(cat "/proc/$pid/comm" 2>/dev/null)" = openpush ]; then
            kill -9 "$pid" 2>/dev/null || true
        fi
    fi
}
trap cleanup EXIT

ARGS=(check --bin "$OPENPUSH_BIN" --dir "$DIR" --secs "$SECS")
[ -n "$SEED" ] && ARGS+=(--seed "$SEED")
echo "== $BENCH ${ARGS[*]}" >&2
set +e
"$BENCH" "${ARGS[@]}"
RC=$?
set -e
if [ "$RC" = 0 ] && [ -z "${CHECK_DIR:-}" ]; then
    rm -rf "$DIR"
else
    echo "== work directory kept: $DIR (server.log, openpush.conf, db.redb)" >&2
fi
exit "$RC"
