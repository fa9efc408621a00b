#!/usr/bin/env bash
# smoke-qemu.sh — run a cross-built openpush under qemu-user and use it as a person would.
#
# Usage: scripts/smoke-qemu.sh [--canary] TARGET [BINARY]
#   BINARY defaults to target/cross/out/TARGET/openpush (built by cross-build.sh if missing).
#   --canary runs scripts/canary instead: timers, loopback TCP, getrandom, redb.
#
# The server run, on 127.0.0.1 with a temporary database and a 1 s keepalive:
#   1. `user add --password-stdin` and `client add` with the CLI (server stopped),
#   2. `serve`; POST /application with the client key -> routing token,
#   3. GET /subscribe (SSE) while POST /message is sent from the host -> the event arrives,
#   4. a `: keepalive` comment arrives (async-io timers fire: the 32-bit MIPS time64 bug),
#   5. a second message is posted with no stream open (queued), the server is killed with
#      SIGKILL and started again: the stream replays the queued message, and not the one
#      its Last-Event-ID confirmed,
#   6. SIGTERM stops the server within 10 s.
# Prints "smoke TARGET: N passed, 0 failed" and exits 0 when all steps pass.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
CANARY=0
[ "${1:-}" = --canary ] && { CANARY=1; shift; }
[ $# -ge 1 ] || { echo "usage: $0 [--canary] TARGET [BINARY]" >&2; exit 2; }
T=$1
CROSS_DIR=${CROSS_DIR:-$ROOT/target/cross}
NAME=openpush; [ $CANARY = 1 ] && NAME=openpush-canary
BIN=${2:-$CROSS_DIR/out/$T/$NAME}
KEEPALIVE_SECS=1
passed=0

log() { echo "smoke $T: $*" >&2; }
fail() {
  echo "smoke $T: FAIL: $*" >&2
  for f in "${TMP:-/nonexistent}"/server*.log; do
    [ -f "$f" ] && { echo "--- $f (last 30 lines)" >&2; tail -30 "$f" >&2; }
  done
  echo "smoke $T: $passed passed, 1 failed" >&2
  exit 1
}
ok() { passed=$((passed + 1)); log "ok: $*"; }

case $T in
  aarch64-unknown-linux-musl) QEMU=qemu-aarch64-static ;;
  armv7-unknown-linux-musleabihf) QEMU=qemu-arm-static ;;
  # The Pi 1's and Zero's core: an ARMv7 (or Thumb-2) instruction would be SIGILL here.
  arm-unknown-linux-musleabihf) QEMU=qemu-arm-static; export QEMU_CPU=arm1176 ;;
  mipsel-unknown-linux-musl) QEMU=qemu-mipsel-static ;;
  mips-unknown-linux-musl) QEMU=qemu-mips-static ;;
  x86_64-unknown-linux-musl) QEMU= ;;
  *) echo "unknown target $T" >&2; exit 2 ;;
esac
missing=()
[ -z "$QEMU" ] || command -v "$QEMU" >/dev/null || missing+=(qemu-user-static)
command -v curl >/dev/null || missing+=(curl)
if [ ${#missing[@]} -gt 0 ]; then
  log "apt-get install ${missing[*]}"
  apt-get update -qq || true
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
if [ ! -x "$BIN" ]; then
  if [ $CANARY = 1 ]; then "$ROOT/scripts/cross-build.sh" --canary "$T"; else "$ROOT/scripts/cross-build.sh" "$T"; fi
fi
# An array, not a function: `"${RUN[@]}" serve &` must leave $! = the server itself.
RUN=("$BIN"); [ -n "$QEMU" ] && RUN=("$QEMU" "$BIN")
run() { "${RUN[@]}" "$@"; }

if [ $CANARY = 1 ]; then
  out=$(timeout 60 "${QEMU:-env}" "$BIN" 2>&1) || fail "canary exited $? (a hang is the time64 timer bug): $out"
  echo "$out" | grep -q '^OK ' || fail "canary: $out"
  echo "$out" | sed 's/^/  /' >&2
  echo "smoke $T: 1 passed, 0 failed"
  exit 0
fi

TMP=$(mktemp -d /tmp/openpush-smoke.XXXXXX)
PIDS=()
cleanup() {
  local p
  for p in "${PIDS[@]}"; do kill -9 "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  [ "${KEEP_TMP:-}" = 1 ] || rm -rf "$TMP"
}
trap cleanup EXIT

# A free loopback port: ask the kernel for one through a throwaway listener.
free_port() {
  local p
  for _ in $(seq 50); do
    p=$(( 20000 + RANDOM % 40000 ))
    (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null || { echo "$p"; return; }
  done
  fail "no free port"
}
PORT=$(free_port)
URL=http://127.0.0.1:$PORT
CFG=$TMP/openpush.conf
cat > "$CFG" <<EOF
# smoke test config
listen = 127.0.0.1:$PORT
db = $TMP/openpush.redb
keepalive_secs = $KEEPALIVE_SECS
log_level = debug
EOF

# wait_for FILE REGEX SECONDS: true once a line of FILE matches.
wait_for() {
  local deadline=$(( $(date +%s%N) / 1000000 + $3 * 1000 ))
  while [ $(( $(date +%s%N) / 1000000 )) -lt $deadline ]; do
    grep -qE "$2" "$1" 2>/dev/null && return 0
    sleep 0.1
  done
  return 1
}

SERVER_PID=
start_server() {
  local n=$1
  "${RUN[@]}" serve --config "$CFG" > "$TMP/server$n.log" 2>&1 &
  SERVER_PID=$!; PIDS+=("$SERVER_PID")
  local deadline=$(( $(date +%s) + 60 ))
  until curl -s -o /dev/null --max-time 2 "$URL/"; do
    kill -0 "$SERVER_PID" 2>/dev/null || fail "server exited at start (run $n)"
    [ "$(date +%s)" -lt $deadline ] || fail "server not answering on $URL after 60 s (run $n)"
    sleep 0.2
  done
}

# http METHOD PATH BODY -> sets STATUS and BODY
http() {
  local args=(-s -o "$TMP/body" -w '%{http_code}' --max-time 20 -X "$1" -H "X-Openpush-Key: $KEY")
  [ -n "${3:-}" ] && args+=(-H 'Content-Type: application/json' --data-binary "$3")
  STATUS=$(curl "${args[@]}" "$URL$2") || STATUS=000
  BODY=$(cat "$TMP/body" 2>/dev/null || true)
}

subscribe() { # subscribe OUTFILE [LAST_EVENT_ID]
  local args=(-s -N --max-time 120 -H "X-Openpush-Key: $KEY" -H 'Accept: text/event-stream')
  [ -n "${2:-}" ] && args+=(-H "Last-Event-ID: $2")
  curl "${args[@]}" "$URL/subscribe" > "$1" 2>/dev/null &
  STREAM_PID=$!; PIDS+=("$STREAM_PID")
}

log "binary $BIN ($(stat -c %s "$BIN") bytes) under ${QEMU:-native}${QEMU_CPU:+ -cpu $QEMU_CPU}, port $PORT"

# 1. CLI: user and client, as the README tells a new user to do.
printf 'correct horse battery staple\n' | run user add alice --password-stdin --config "$CFG" \
  > "$TMP/user.out" 2>&1 || fail "user add: $(cat "$TMP/user.out")"
run client add --user alice phone --config "$CFG" > "$TMP/client.out" 2> "$TMP/client.err" ||
  fail "client add: $(cat "$TMP/client.out" "$TMP/client.err")"
# The key is the last word printed on stdout.
KEY=$(awk 'NF { k = $NF } END { print k }' "$TMP/client.out")
[ -n "$KEY" ] || fail "client add printed no key"
ok "CLI created user alice and client phone"

# 2. Server and application registration.
start_server 1
ok "server answers on $URL"
http POST /application '{"registration_id":"app1"}'
[ "$STATUS" = 201 ] || fail "POST /application: $STATUS $BODY"
TOKEN=$(printf '%s' "$BODY" | sed -n 's/.*"routing_token" *: *"\([^"]*\)".*/\1/p')
[ -n "$TOKEN" ] || fail "no routing_token in $BODY"
ok "application registered"

# 3. Live delivery over SSE.
subscribe "$TMP/sse1"
sleep 1
http POST /message "{\"token\":\"$TOKEN\",\"data\":{\"k\":\"v1\"}}"
[ "$STATUS" = 200 ] || fail "POST /message v1: $STATUS $BODY"
wait_for "$TMP/sse1" '^data:.*"k":"v1"' 20 || fail "v1 not received on the stream: $(cat "$TMP/sse1")"
grep -q '"registration_id":"app1"' "$TMP/sse1" || fail "event lacks registration_id: $(cat "$TMP/sse1")"
ID1=$(sed -n 's/^id: *//p' "$TMP/sse1" | head -1 | tr -d '\r')
[ -n "$ID1" ] || fail "event without id: $(cat "$TMP/sse1")"
ok "message v1 received on the SSE stream (id $ID1)"

# 4. Timers: keepalive comments.
wait_for "$TMP/sse1" '^: ?keepalive' $(( KEEPALIVE_SECS * 5 + 5 )) ||
  fail "no keepalive within $(( KEEPALIVE_SECS * 5 + 5 )) s: timers do not fire"
ok "keepalive comment arrived (timers fire)"
kill "$STREAM_PID" 2>/dev/null || true

# 5. Queued message survives a crash; Last-Event-ID confirms v1.
http POST /message "{\"token\":\"$TOKEN\",\"data\":{\"k\":\"v2\"}}"
[ "$STATUS" = 200 ] || fail "POST /message v2: $STATUS $BODY"
kill -9 "$SERVER_PID"; wait "$SERVER_PID" 2>/dev/null || true
curl -s -o /dev/null --max-time 2 "$URL/" && fail "something still answers on $URL after kill -9"
start_server 2
subscribe "$TMP/sse2" "$ID1"
wait_for "$TMP/sse2" '^data:.*"k":"v2"' 20 || fail "queued v2 lost across kill -9 + restart: $(cat "$TMP/sse2")"
grep -q '"k":"v1"' "$TMP/sse2" && fail "v1 replayed although Last-Event-ID $ID1 confirmed it"
ok "queued message v2 survived kill -9 and restart; v1 stayed confirmed"
kill "$STREAM_PID" 2>/dev/null || true

# 6. Clean stop.
kill -TERM "$SERVER_PID" || fail "server had already exited before SIGTERM"
for _ in $(seq 100); do kill -0 "$SERVER_PID" 2>/dev/null || break; sleep 0.1; done
kill -0 "$SERVER_PID" 2>/dev/null && fail "server still running 10 s after SIGTERM"
ok "SIGTERM stopped the server"

echo "smoke $T: $passed passed, 0 failed"
