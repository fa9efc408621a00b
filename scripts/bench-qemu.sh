#!/usr/bin/env bash
# The load benchmark against a cross-built openpush running under qemu-user (default: mipsel,
# the OpenWrt ramips build), 1,000 subscribers. Numbers under emulation are indicative only:
# qemu translates every instruction, so CPU and latency are many times a real router's.
# usage: scripts/bench-qemu.sh [TARGET]   (builds with scripts/cross-build.sh if needed)
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
TARGET=${1:-mipsel-unknown-linux-musl}
export CROSS_DIR=${CROSS_DIR:-$ROOT/target/cross}
BIN="$CROSS_DIR/out/$TARGET/openpush"
[ -x "$BIN" ] || bash "$ROOT/scripts/cross-build.sh" "$TARGET" >&2
QEMU="qemu-${TARGET%%-*}-static"
command -v "$QEMU" >/dev/null || { apt-get update >/dev/null; apt-get install -y qemu-user-static >/dev/null; }
cargo build --release --manifest-path "$ROOT/bench/Cargo.toml" >&2
BENCH="$ROOT/bench/target/release/openpush-bench"
SUBS=1000 PORT=18180
WORK=$(mktemp -d /tmp/openpush-qemu.XXXXXX)
SERVER_PID=""
trap '[ -n "$SERVER_PID" ] && kill "$SERVER_PID" 2>/dev/null; wait 2>/dev/null; cat "$WORK/serve.log" >&2; rm -rf "$WORK"' EXIT
cat >"$WORK/openpush.conf" <<CONF
max_clients_per_user = 1000
max_queued_per_client = 100000
max_queued_bytes_per_client = 1000000000
max_connections_per_addr = 1000000
requests_per_sec_per_addr = 0
posts_per_sec_per_token = 0
log_level = warn
CONF
for u in 0 1; do
    printf 'benchpw' | "$QEMU" "$BIN" user add "bench$u" --password-stdin --db "$WORK/db.redb" >/dev/null
done
"$QEMU" "$BIN" serve --db "$WORK/db.redb" --listen "127.0.0.1:$PORT" --config "$WORK/openpush.conf" 2>>"$WORK/serve.log" &
SERVER_PID=$!
for _ in $(seq 100); do (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null && break; sleep 0.1; done
kill -0 "$SERVER_PID" 2>/dev/null || { echo "the server did not start" >&2; exit 1; }
A=(--target openpush --addr "127.0.0.1:$PORT" --pids "$SERVER_PID" --creds "$WORK/creds" --users bench:2:benchpw --per-user 500)
"$BENCH" run "${A[@]}" --label "qemu setup" --subs $SUBS --messages 0 --settle-secs 0 >/dev/null
echo "# $TARGET under $("$QEMU" --version | head -1), $SUBS subscribers, $(date -u +%F)"
"$BENCH" run "${A[@]}" --label "$TARGET qemu idle $SUBS" --subs $SUBS --messages 0 --settle-secs 3
"$BENCH" run "${A[@]}" --label "$TARGET qemu 200 msg/s" --subs $SUBS --messages 2000 --rate 200 --posters 4
"$BENCH" run "${A[@]}" --label "$TARGET qemu flat c=1" --subs $SUBS --messages 300 --posters 1
"$BENCH" run "${A[@]}" --label "$TARGET qemu flat c=16" --subs $SUBS --messages 2000 --posters 16
