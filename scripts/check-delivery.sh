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
# schedule. The server is $OPENPUSH_BIN, else this checkout's debug build (`cargo build`;
# with CHECK_NODES >= 2, `cargo build --features redis`).
# Environment: CHECK_DIR (work directory, default a new one under /tmp, removed on success),
# CARGO_TARGET_DIR (if set, both builds go there; else target/ and bench/target/),
# CHECK_NODES (default 1: one server on its redb file; N >= 2: N nodes on one Redis that
# the checker starts, CHECK_REDIS_SERVER or redis-server from PATH, with its data in
# redis/ and its log in redis.log; the nodes' files are node0.conf, node0.log, …).
# Only 127.0.0.1 is used; the run is bounded by SECONDS plus the drains (at most a few
# minutes). The last line is "N passed, M failed"; the exit status is non-zero on any
# failure, and the work directory (server.log, history.tsv) is then kept.
set -euo pipefail

SECS=${1:-60}
SEED=${2:-}
HERE=$(cd "$(dirname "$0")/.." && pwd)
NODES=${CHECK_NODES:-1}
FEATURES=
[ "$NODES" = 1 ] || FEATURES=redis

if [ -z "${OPENPUSH_BIN:-}" ]; then
    echo "== cargo build${FEATURES:+ --features $FEATURES} (the server, debug)" >&2
    (cd "$HERE" && cargo build -q ${FEATURES:+--features "$FEATURES"})
    OPENPUSH_BIN="${CARGO_TARGET_DIR:-$HERE/target}/debug/openpush"
fi
echo "== cargo build --release (bench)" >&2
(cd "$HERE/bench" && cargo build --release --locked -q)
BENCH="${CARGO_TARGET_DIR:-$HERE/bench/target}/release/openpush-bench"

DIR=${CHECK_DIR:-$(mktemp -d /tmp/openpush-check.XXXXXX)}
mkdir -p "$DIR"
cleanup() {
    # The checker stops its servers and Redis; if it died first, they may still run.
    for f in "$DIR/server.pid" "$DIR"/node*.pid "$DIR/redis.pid"; do
        [ -f "$f" ] || continue
        pid=$(cat "$f")
        [ -n "$pid" ] || continue
        case "$(cat "/proc/$pid/comm" 2>/dev/null)" in
        openpush | redis-server | valkey-server) kill -9 "$pid" 2>/dev/null || true ;;
        esac
    done
}
trap cleanup EXIT

ARGS=(check --bin "$OPENPUSH_BIN" --dir "$DIR" --secs "$SECS" --nodes "$NODES")
[ -n "$SEED" ] && ARGS+=(--seed "$SEED")
[ -n "${CHECK_REDIS_SERVER:-}" ] && ARGS+=(--redis-server "$CHECK_REDIS_SERVER")
echo "== $BENCH ${ARGS[*]}" >&2
set +e
"$BENCH" "${ARGS[@]}"
RC=$?
set -e
if [ "$RC" = 0 ] && [ -z "${CHECK_DIR:-}" ]; then
    rm -rf "$DIR"
else
    if [ "$NODES" = 1 ]; then
        echo "== work directory kept: $DIR (server.log, openpush.conf, db.redb)" >&2
    else
        echo "== work directory kept: $DIR (node*.log, node*.conf, redis.log, redis/)" >&2
    fi
fi
exit "$RC"
