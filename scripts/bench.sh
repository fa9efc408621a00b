#!/usr/bin/env bash
# Side-by-side load benchmark: openpush, nginx+nchan, Mosquitto (and a tiny_http SSE server
# for the idle-memory comparison), one after the other, with the same loads, on loopback only.
# openpush's other doors are measured too: idle ntfy NDJSON and WebSocket, NextPush SSE and
# autopush WebSocket streams, and Web Push posts to /push/<token> next to its own POST /message.
# Installs nginx, libnginx-mod-nchan and mosquitto from Debian when missing, builds openpush
# and bench/ in release mode, runs everything in a temporary directory, stops every server it
# started, and writes BENCHMARKS.md (plus bench-results.jsonl) at the repository root.
#
# usage: scripts/bench.sh [--quick] [--openpush-only]
#        --quick: smaller N and M, for a smoke run
#        --openpush-only: no peers and no BENCHMARKS.md: the JSON lines go to stdout
# env:   BENCH_MAX_SUBS (default: as many as RLIMIT_NOFILE allows, at most 100000)
#        BENCH_FLAT_MSGS, BENCH_FLAT_MSGS_1: messages of the flat-out runs with 16/64 and 1 posters
#        BENCH_PORT_OP: openpush's port (default 18080)
#        BENCH_OPENPUSH_BIN: an openpush binary to measure instead of building the checkout's
#        BENCH_MUSL_BIN: a second openpush binary (the static musl build, as on routers): every
#            openpush run is repeated with it, its labels prefixed "musl "
#        BENCH_CROSS_BINS: "NAME=PATH ..." more binaries whose sizes the report lists (mipsel, armv7)
#        BENCH_LAT_SUBS: subscribers of the latency run (default 10000)
#        BENCH_COMMIT: the commit the openpush binaries were built from (default: the checkout's HEAD)
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
QUICK=0; OPENPUSH_ONLY=0
for arg in "$@"; do
    case $arg in
        --quick) QUICK=1 ;;
        --openpush-only) OPENPUSH_ONLY=1 ;;
        *) echo "usage: scripts/bench.sh [--quick] [--openpush-only]" >&2; exit 2 ;;
    esac
done

if [ $OPENPUSH_ONLY = 0 ]; then
    need_pkgs=()
    command -v nginx >/dev/null || need_pkgs+=(nginx)
    [ -e /usr/lib/nginx/modules/ngx_nchan_module.so ] || need_pkgs+=(libnginx-mod-nchan)
    command -v mosquitto >/dev/null || need_pkgs+=(mosquitto)
    if [ ${#need_pkgs[@]} -gt 0 ]; then
        echo "installing ${need_pkgs[*]}" >&2
        apt-get update >/dev/null || true   # a mirror mid-sync may fail one index; the rest still works
        DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${need_pkgs[@]}" >/dev/null
    fi
    # Debian's packages start their services where an init system runs; this benchmark starts its own.
    command -v service >/dev/null && { service nginx stop >/dev/null 2>&1 || true; service mosquitto stop >/dev/null 2>&1 || true; }
fi

if [ -n "${BENCH_OPENPUSH_BIN:-}" ]; then
    OP=$(realpath "$BENCH_OPENPUSH_BIN")
    echo "building bench/ (release); openpush: $OP" >&2
else
    echo "building openpush and bench/ (release)" >&2
    cargo build --release --manifest-path "$ROOT/Cargo.toml" >&2
    OP="$ROOT/target/release/openpush"
fi
MUSL=""
[ -n "${BENCH_MUSL_BIN:-}" ] && MUSL=$(realpath "$BENCH_MUSL_BIN")
cargo build --release --manifest-path "$ROOT/bench/Cargo.toml" >&2
BENCH="$ROOT/bench/target/release/openpush-bench"
TINY="$ROOT/bench/target/release/tinyhttp-sse"

# Each process may hold at most the hard RLIMIT_NOFILE descriptors; raise the soft limit to it.
ulimit -n "$(ulimit -Hn)"
NOFILE=$(ulimit -n)
MAX_SUBS=${BENCH_MAX_SUBS:-$(( NOFILE - 300 < 100000 ? NOFILE - 300 : 100000 ))}
LAT_SUBS=10000; LAT_RATE=2000; LAT_MSGS=20000; CONFIRM_MSGS=300; CONFIRM_GAP_MSGS=8
FLAT_SUBS=1000; FLAT_MSGS=20000; FLAT_MSGS_1=3000
TINY_NS="1000 5000 10000 $MAX_SUBS"
if [ $QUICK = 1 ]; then
    MAX_SUBS=2000; LAT_SUBS=1000; CONFIRM_MSGS=50; CONFIRM_GAP_MSGS=2; LAT_MSGS=2000; FLAT_MSGS=2000; FLAT_MSGS_1=300; TINY_NS="500 2000"
fi
FLAT_MSGS=${BENCH_FLAT_MSGS:-$FLAT_MSGS}; FLAT_MSGS_1=${BENCH_FLAT_MSGS_1:-$FLAT_MSGS_1}
LAT_SUBS=${BENCH_LAT_SUBS:-$LAT_SUBS}
[ $LAT_SUBS -gt $MAX_SUBS ] && LAT_SUBS=$MAX_SUBS

WORK=$(mktemp -d /tmp/openpush-bench.XXXXXX)
RESULTS="$WORK/results.jsonl"
: > "$RESULTS"
SERVER_PID=""
cleanup() {
    if [ -n "$SERVER_PID" ]; then kill "$SERVER_PID" 2>/dev/null || true; wait "$SERVER_PID" 2>/dev/null || true; fi
    rm -rf "$WORK"
}
trap cleanup EXIT

PORT_OP=${BENCH_PORT_OP:-18080}; PORT_NCHAN=18081; PORT_MQTT=18883; PORT_TINY=18095

wait_port() {  # bounded: 10 s
    for _ in $(seq 100); do
        (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
        sleep 0.1
    done
    echo "server on port $1 did not start" >&2; return 1
}
stop_server() {
    if [ -n "$SERVER_PID" ]; then kill "$SERVER_PID" 2>/dev/null || true; wait "$SERVER_PID" 2>/dev/null || true; SERVER_PID=""; fi
    sleep 0.5
}
pids_of() {  # the server and its children (nginx workers)
    local p=$1 kids
    kids=$(pgrep -P "$p" | paste -sd, -)
    echo "$p${kids:+,$kids}"
}
# bench ARGS...: one run; the JSON line goes to results.jsonl, the table row to the terminal.
bench() {
    echo "+ openpush-bench $*" >&2
    timeout 600 "$BENCH" run "$@" >>"$RESULTS"
}
LP=""   # label prefix: "musl " while the musl binary runs
baseline() {  # label pids
    sleep 1
    printf '{"label":"%s","baseline":%s}\n' "$1" "$("$BENCH" sample --pids "$2")" >>"$RESULTS"
}
loads() {  # target addr pids extra-args...
    local t=$1 a=$2 p=$3; shift 3
    bench --target "$t" --addr "$a" --pids "$p" --label "$LP$t idle $MAX_SUBS" --subs "$MAX_SUBS" --messages 0 --settle-secs 3 "$@"
    bench --target "$t" --addr "$a" --pids "$p" --label "$LP$t latency" --subs "$LAT_SUBS" --messages "$LAT_MSGS" --rate "$LAT_RATE" --posters 16 "$@"
    bench --target "$t" --addr "$a" --pids "$p" --label "$LP$t flat c=1" --subs "$FLAT_SUBS" --messages "$FLAT_MSGS_1" --posters 1 "$@"
    bench --target "$t" --addr "$a" --pids "$p" --label "$LP$t flat c=16" --subs "$FLAT_SUBS" --messages "$FLAT_MSGS" --posters 16 "$@"
    bench --target "$t" --addr "$a" --pids "$p" --label "$LP$t flat c=64" --subs "$FLAT_SUBS" --messages "$FLAT_MSGS" --posters 64 "$@"
}

# ---- openpush (glibc, then the musl binary if given) ----
start_openpush() {
    if (exec 3<>"/dev/tcp/127.0.0.1/$PORT_OP") 2>/dev/null; then
        echo "port $PORT_OP is already in use (set BENCH_PORT_OP)" >&2; return 1
    fi
    "$OP" serve --db "${1:-$OPD/db.redb}" --listen "127.0.0.1:$PORT_OP" --config "${2:-$OPD/openpush.conf}" 2>>"$OPD/serve.log" &
    SERVER_PID=$!
    wait_port $PORT_OP
}
openpush_runs() {  # binary, label prefix
OP=$1; LP=$2
OPD="$WORK/openpush${LP:+-musl}"; mkdir -p "$OPD"
cat >"$OPD/openpush.conf" <<CONF
# Raised for the benchmark only: connections, clients and topics per user, queue per client.
# The load comes from a few hundred loopback addresses, so the per-address and per-token abuse
# limits (sized for phones on their own addresses) are off.
max_connections = 1000000
max_clients_per_user = 1000
max_topics_per_user = 1000
max_queued_per_client = 100000
max_connections_per_addr = 1000000
max_uaids_per_addr = 1000000
requests_per_sec_per_addr = 0
posts_per_sec_per_token = 0
log_level = warn
CONF
USERS=$(( (MAX_SUBS + 499) / 500 ))
for u in $(seq 0 $((USERS - 1))); do
    printf 'benchpw' | "$OP" user add "bench$u" --password-stdin --db "$OPD/db.redb" >/dev/null
done
OPARGS=(--creds "$OPD/creds" --users "bench:$USERS:benchpw" --per-user 500)
start_openpush
baseline "${LP}openpush" "$SERVER_PID"      # small db: the users only
# Clients and applications through the HTTP API, and the ntfy topics (one endpoint topic per
# stream, owned by the bench users), then a restart, so that each idle run starts from a server
# that has done nothing but open its database. The first 10,000 clients first, then the
# server's RSS once their streams are gone (what a server keeps after that activity).
SETUP_N=$(( 10000 < MAX_SUBS ? 10000 : MAX_SUBS ))
bench --target openpush --addr "127.0.0.1:$PORT_OP" --pids "$SERVER_PID" --label "${LP}openpush setup $SETUP_N" --subs "$SETUP_N" --messages 0 --settle-secs 0 "${OPARGS[@]}" 2>/dev/null
baseline "${LP}openpush after setup $SETUP_N" "$SERVER_PID"
bench --target openpush --addr "127.0.0.1:$PORT_OP" --pids "$SERVER_PID" --label "${LP}openpush setup" --subs "$MAX_SUBS" --messages 0 --settle-secs 0 "${OPARGS[@]}" 2>/dev/null
bench --target ntfy-json --addr "127.0.0.1:$PORT_OP" --pids "$SERVER_PID" --label "${LP}openpush ntfy setup" --subs "$MAX_SUBS" --messages 0 --settle-secs 0 "${OPARGS[@]}" 2>/dev/null
stop_server
# Idle streams of the other doors, each kind on a server of its own: memory freed by an earlier
# run would hide what a stream costs. NextPush streams are the setup's clients (a deviceId is a
# client's key); each autopush stream says hello without a uaid, so the server makes one.
for kind in ntfy-json ntfy-ws nextpush autopush; do
    start_openpush
    bench --target "$kind" --addr "127.0.0.1:$PORT_OP" --pids "$SERVER_PID" --label "${LP}openpush $kind idle $MAX_SUBS" --subs "$MAX_SUBS" --messages 0 --settle-secs 3 "${OPARGS[@]}"
    stop_server
done
start_openpush
loads openpush "127.0.0.1:$PORT_OP" "$SERVER_PID" "${OPARGS[@]}"
# The same flat-out loads as Web Push: a 200-byte binary body to /push/<token>, 201 expected.
for c in 1 16 64; do
    bench --target webpush --addr "127.0.0.1:$PORT_OP" --pids "$SERVER_PID" --label "${LP}openpush webpush c=$c" --subs "$FLAT_SUBS" \
        --messages "$([ $c = 1 ] && echo "$FLAT_MSGS_1" || echo "$FLAT_MSGS")" --posters $c "${OPARGS[@]}"
done
echo "{\"label\":\"${LP}openpush db\",\"db_bytes\":$(stat -c %s "$OPD/db.redb")}" >>"$RESULTS"
stop_server
# A message's whole life at one poster, on a family-sized database (one user, one phone):
# accepted (a durable commit), then confirmed by the phone's next reconnect (the confirmation
# rides in the next message's commit), one at a time; then the same with 2.5 s between
# messages. confirm_delay_secs is 30 here (300 by default) and each run waits past it, so
# the last confirmation's own commit is counted too.
printf 'benchpw' | "$OP" user add family0 --password-stdin --db "$OPD/family.redb" >/dev/null
{ cat "$OPD/openpush.conf"; echo "confirm_delay_secs = 30"; } >"$OPD/family.conf"
start_openpush "$OPD/family.redb" "$OPD/family.conf"
FAMILY=(--creds "$OPD/family-creds" --users "family:1:benchpw" --settle-secs 32)
echo "+ openpush-bench confirm (${LP}openpush)" >&2
timeout 600 "$BENCH" confirm --addr "127.0.0.1:$PORT_OP" --pids "$SERVER_PID" --label "${LP}openpush confirm c=1" --messages "$CONFIRM_MSGS" "${FAMILY[@]}" >>"$RESULTS"
timeout 600 "$BENCH" confirm --addr "127.0.0.1:$PORT_OP" --pids "$SERVER_PID" --label "${LP}openpush confirm gap" --messages "$CONFIRM_GAP_MSGS" --gap-ms 2500 "${FAMILY[@]}" >>"$RESULTS"
stop_server
}
GLIBC_OP=$OP
openpush_runs "$GLIBC_OP" ""
if [ -n "$MUSL" ]; then openpush_runs "$MUSL" "musl "; fi
OP=$GLIBC_OP; LP=""
if [ $OPENPUSH_ONLY = 1 ]; then
    cat "$RESULTS"
    exit 0
fi

# ---- nginx + nchan ----
ND="$WORK/nginx"; mkdir -p "$ND/tmp"
cat >"$ND/nginx.conf" <<CONF
load_module /usr/lib/nginx/modules/ngx_nchan_module.so;
daemon off;
worker_processes auto;
worker_rlimit_nofile $NOFILE;
pid $ND/nginx.pid;
error_log $ND/error.log warn;
events { worker_connections $NOFILE; }
http {
    access_log off;
    client_body_temp_path $ND/tmp;
    proxy_temp_path $ND/tmp; fastcgi_temp_path $ND/tmp; uwsgi_temp_path $ND/tmp; scgi_temp_path $ND/tmp;
    server {
        listen 127.0.0.1:$PORT_NCHAN;
        location ~ ^/sub/(\w+)\$ {
            nchan_subscriber eventsource;
            nchan_channel_id \$1;
            nchan_subscriber_first_message newest;
        }
        location ~ ^/pub/(\w+)\$ {
            nchan_publisher;
            nchan_channel_id \$1;
            nchan_message_buffer_length 16;
            nchan_message_timeout 60s;
        }
    }
}
CONF
nginx -p "$ND" -c "$ND/nginx.conf" &
SERVER_PID=$!
wait_port $PORT_NCHAN
sleep 0.5
NPIDS=$(pids_of "$SERVER_PID")
baseline "nchan" "$NPIDS"
loads nchan "127.0.0.1:$PORT_NCHAN" "$NPIDS"
stop_server

# ---- Mosquitto ----
MD="$WORK/mosquitto"; mkdir -p "$MD"
cat >"$MD/mosquitto.conf" <<CONF
listener $PORT_MQTT 127.0.0.1
allow_anonymous true
max_connections -1
persistence false
log_dest stderr
log_type error
CONF
mosquitto -c "$MD/mosquitto.conf" 2>>"$MD/log" &
SERVER_PID=$!
wait_port $PORT_MQTT
baseline "mosquitto" "$SERVER_PID"
loads mosquitto "127.0.0.1:$PORT_MQTT" "$SERVER_PID"
stop_server

# ---- tiny_http (a thread per stream): idle subscribers only ----
for n in $TINY_NS; do
    "$TINY" "127.0.0.1:$PORT_TINY" 2>/dev/null &
    SERVER_PID=$!
    wait_port $PORT_TINY
    [ "$n" = "${TINY_NS%% *}" ] && baseline "tiny_http" "$SERVER_PID"
    bench --target sse --addr "127.0.0.1:$PORT_TINY" --pids "$SERVER_PID" --label "tiny_http idle $n" --subs "$n" --messages 0 --settle-secs 3 --max-secs 90
    stop_server
done

# ---- report ----
cp "$RESULTS" "$ROOT/bench-results.jsonl"
python3 "$ROOT/bench/report.py" "$RESULTS" \
    --commit "${BENCH_COMMIT:-$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown)}" \
    --nofile "$NOFILE" --max-subs "$MAX_SUBS" --lat "$LAT_SUBS:$LAT_RATE:$LAT_MSGS" \
    --flat "$FLAT_SUBS:$FLAT_MSGS_1:$FLAT_MSGS" --binary "$OP" \
    ${MUSL:+--size "x86_64 musl (static)=$MUSL"} $(for b in ${BENCH_CROSS_BINS:-}; do printf -- '--size %s ' "$b"; done) \
    >"$ROOT/BENCHMARKS.md"
echo "wrote $ROOT/BENCHMARKS.md" >&2
