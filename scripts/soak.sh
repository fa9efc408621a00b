#!/usr/bin/env bash
# Soak test: a fresh openpush (release build of a fresh clone of the repository) under MINUTES
# of churn: ~2,000 subscribers reconnecting at random (half with Last-Event-ID), posts at a
# steady rate to random clients, and a bounded stream of garbage (malformed and oversized
# requests, invalid JSON, unknown tokens, random bytes, abrupt closes, slowloris heads).
# The server's VmRSS, fds and threads are sampled every 10 s; at the end every acknowledged
# message must have reached its client, none another client, the server must be the same
# process, RSS flat after warm-up and the fd count back to its baseline once all disconnect.
#
#   scripts/soak.sh [MINUTES]          (default 10)
#
# Environment: SOAK_CLIENTS (2000), SOAK_RATE (200 msg/s), SOAK_GARBAGE_RATE (20/s),
# SOAK_PORT (18090), SOAK_DIR (work dir, default /tmp/soak), SOAK_SRC (/tmp/soaksrc),
# SOAK_REPO (the repository to clone: this one), CARGO_TARGET_DIR (/tmp/soaktarget, kept
# between runs so a rebuild is incremental), SOAK_NICE (10).
# Only 127.0.0.0/8 is used; everything is bounded by MINUTES plus a few minutes of drain.
set -euo pipefail

MINUTES=${1:-10}
HERE=$(cd "$(dirname "$0")/.." && pwd)
REPO=${SOAK_REPO:-$HERE}
SRC=${SOAK_SRC:-/tmp/soaksrc}
DIR=${SOAK_DIR:-/tmp/soak}
PORT=${SOAK_PORT:-18090}
CLIENTS=${SOAK_CLIENTS:-2000}
RATE=${SOAK_RATE:-200}
GARBAGE=${SOAK_GARBAGE_RATE:-20}
NICE=${SOAK_NICE:-10}
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-/tmp/soaktarget}

echo "== fresh clone of $REPO into $SRC" >&2
rm -rf "$SRC"
git clone -q "$REPO" "$SRC"
echo "   at $(git -C "$SRC" log --oneline -1)" >&2
echo "== release builds (server and bench)" >&2
(cd "$SRC" && nice -n "$NICE" cargo build --release -q)
(cd "$SRC/bench" && CARGO_TARGET_DIR="$CARGO_TARGET_DIR/bench" nice -n "$NICE" cargo build --release -q)
OP="$CARGO_TARGET_DIR/release/openpush"
BENCH="$CARGO_TARGET_DIR/bench/release/openpush-bench"

rm -rf "$DIR"; mkdir -p "$DIR"
cat >"$DIR/openpush.conf" <<CONF
# Soak settings: room for the soak's clients and queues; no per-token post limit.
max_connections = 20000
max_clients_per_user = 1000
max_queued_per_client = 100000
posts_per_sec_per_token = 0
# The subscribers and the garbage come from 127.0.1.x-127.0.3.x, which are not trusted
# proxies: the per-address limiter stays on, above what ~8 subscribers per address need.
requests_per_sec_per_addr = 200
request_burst_per_addr = 2000
log_level = warn
CONF
USERS=$(( (CLIENTS + 499) / 500 ))
for u in $(seq 0 $((USERS - 1))); do
    printf 'soakpw' | "$OP" user add "soak$u" --password-stdin --db "$DIR/db.redb" >/dev/null
done

ulimit -n "$(ulimit -Hn)"
nice -n "$NICE" "$OP" serve --db "$DIR/db.redb" --listen "127.0.0.1:$PORT" --config "$DIR/openpush.conf" 2>"$DIR/serve.log" &
SERVER_PID=$!
trap 'kill "$SERVER_PID" 2>/dev/null || true' EXIT
for _ in $(seq 100); do
    (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null && break
    sleep 0.1
done
kill -0 "$SERVER_PID"
echo "== openpush pid $SERVER_PID on 127.0.0.1:$PORT; soak for $MINUTES min" >&2
curl -s "http://127.0.0.1:$PORT/metrics" >"$DIR/metrics-start.txt" 2>/dev/null || true

set +e
nice -n "$NICE" "$BENCH" soak --addr "127.0.0.1:$PORT" --pid "$SERVER_PID" --minutes "$MINUTES" \
    --clients "$CLIENTS" --rate "$RATE" --garbage-rate "$GARBAGE" \
    --creds "$DIR/creds" --users "soak:$USERS:soakpw" --per-user 500 \
    --samples "$DIR/samples.jsonl" >"$DIR/result.json" 2> >(tee "$DIR/soak.log" >&2)
RC=$?
set -e
curl -s "http://127.0.0.1:$PORT/metrics" >"$DIR/metrics-end.txt" 2>/dev/null || true
if kill -0 "$SERVER_PID" 2>/dev/null; then
    kill -TERM "$SERVER_PID"
    for _ in $(seq 100); do kill -0 "$SERVER_PID" 2>/dev/null || break; sleep 0.1; done
    wait "$SERVER_PID" 2>/dev/null
    echo "== server stopped, exit code $?" >&2
else
    echo "== server was not running at the end" >&2
fi
trap - EXIT
echo "== server log: $(wc -l <"$DIR/serve.log") lines ($DIR/serve.log); samples: $DIR/samples.jsonl" >&2
cat "$DIR/result.json"
exit "$RC"
