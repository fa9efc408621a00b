#!/usr/bin/env bash
# Side-by-side load benchmark of openpush's store backends, with the same loads, in one run:
#   1. redb:    one node on its redb file (a release build with the default features);
#   2. redis:   one node on a Redis server (a release build with --features redis);
#   3. cluster: two nodes of that binary on the same Redis: subscribers spread over both,
#               posters too (half on each), every message posted on the node its subscriber
#               is not on (each delivery crosses nodes, over Redis pub/sub).
# Builds both binaries (each copied away right after its build: both are
# target/release/openpush) and bench/, starts its own redis-server (appendonly yes,
# appendfsync always, no RDB saves; FLUSHALL between setups), runs everything on 127.0.0.1
# in a temporary directory, stops every server it started, and writes BENCHMARKS-cluster.md
# at the repository root. Per setup: users and clients made, nodes restarted, then
#   idle     N OpenPush streams held idle: RSS growth per stream, summed over the nodes
#   latency  N streams, M posts at a fixed rate by 16 posters: delivery p50/p99, CPU/msg
#            (two nodes: once more with --cross 0, each message posted on its subscriber's
#            node, to tell the cost of two writers from that of crossing nodes)
#   flat     1000 streams, posts flat out by 16 posters: posts/s, CPU/msg
#   capacity (nodes restarted) as many idle ntfy streams as the open-file limit allows on
#            each node, one bench process per node (a process holds at most RLIMIT_NOFILE
#            descriptors, so one for both nodes would cap the pair at one node's share)
#
# usage: scripts/bench-cluster.sh [--quick]
#        --quick: small N and M, for a smoke run (no BENCHMARKS-cluster.md: the table goes
#                 to stdout only)
# env:   BENCH_MAX_SUBS: idle ntfy streams per node of the capacity runs (default: what one
#            process's RLIMIT_NOFILE allows, less 300)
#        BENCH_LAT_SUBS, BENCH_LAT_RATE, BENCH_LAT_MSGS: the latency run (default 5000
#            streams, 500 msg/s, 10000 messages); BENCH_LAT_SUBS is the idle run's N too
#        BENCH_FLAT_MSGS: messages of the flat-out run (default 20000)
#        BENCH_PORT: the first node's port (default 18180; the second node's is the next)
#        BENCH_REDIS_PORT: redis-server's port (default 18379)
#        BENCH_REDB_BIN, BENCH_REDIS_BIN: prebuilt openpush binaries (default builds and
#            --features redis) to measure instead of building the checkout's
#        BENCH_RESULTS: a file to copy the runs' JSON lines to
#        BENCH_COMMIT: the commit the binaries were built from (default: the checkout's HEAD)
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
QUICK=0
for arg in "$@"; do
    case $arg in
        --quick) QUICK=1 ;;
        *) echo "usage: scripts/bench-cluster.sh [--quick]" >&2; exit 2 ;;
    esac
done
command -v redis-server >/dev/null && command -v redis-cli >/dev/null || {
    echo "needs redis-server and redis-cli (Debian: apt-get install redis-server)" >&2; exit 1; }

WORK=$(mktemp -d /tmp/openpush-bench-cluster.XXXXXX)
RESULTS="$WORK/results.jsonl"
: > "$RESULTS"
NODE_PIDS=(); REDIS_PID=""; BG_PIDS=()
stop_nodes() {
    local p
    for p in "${NODE_PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
    for p in "${NODE_PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
    NODE_PIDS=()
}
cleanup() {
    local p
    for p in "${BG_PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
    stop_nodes
    if [ -n "$REDIS_PID" ]; then kill "$REDIS_PID" 2>/dev/null || true; wait "$REDIS_PID" 2>/dev/null || true; fi
    rm -rf "$WORK"
}
trap cleanup EXIT

# ---- builds: each binary copied away as soon as it is built ----
mkdir -p "$WORK/bin"
if [ -n "${BENCH_REDB_BIN:-}" ]; then
    cp "$BENCH_REDB_BIN" "$WORK/bin/openpush-redb"
else
    echo "building openpush (release, default features)" >&2
    nice cargo build --release --manifest-path "$ROOT/Cargo.toml" >&2
    cp "$ROOT/target/release/openpush" "$WORK/bin/openpush-redb"
fi
if [ -n "${BENCH_REDIS_BIN:-}" ]; then
    cp "$BENCH_REDIS_BIN" "$WORK/bin/openpush-redis"
else
    echo "building openpush (release, --features redis)" >&2
    nice cargo build --release --features redis --manifest-path "$ROOT/Cargo.toml" >&2
    cp "$ROOT/target/release/openpush" "$WORK/bin/openpush-redis"
fi
echo "building bench/ (release)" >&2
nice cargo build --release --manifest-path "$ROOT/bench/Cargo.toml" >&2
BENCH="$ROOT/bench/target/release/openpush-bench"

# Each process may hold at most the hard RLIMIT_NOFILE descriptors; raise the soft limit to it.
ulimit -n "$(ulimit -Hn)"
NOFILE=$(ulimit -n)
CAP_SUBS=${BENCH_MAX_SUBS:-$(( NOFILE - 300 ))}
# The fixed rate is one all three sustain with room to spare on a small machine (two nodes
# on one Redis take from about 1,000 posts/s flat out here), so latency is not just a queue.
LAT_SUBS=5000; LAT_RATE=500; LAT_MSGS=10000; FLAT_SUBS=1000; FLAT_MSGS=20000
if [ $QUICK = 1 ]; then
    CAP_SUBS=2000; LAT_SUBS=1000; LAT_MSGS=2000; FLAT_MSGS=2000
fi
LAT_SUBS=${BENCH_LAT_SUBS:-$LAT_SUBS}; LAT_RATE=${BENCH_LAT_RATE:-$LAT_RATE}
LAT_MSGS=${BENCH_LAT_MSGS:-$LAT_MSGS}; FLAT_MSGS=${BENCH_FLAT_MSGS:-$FLAT_MSGS}
[ $FLAT_SUBS -gt $LAT_SUBS ] && FLAT_SUBS=$LAT_SUBS
[ $CAP_SUBS -gt $(( NOFILE - 300 )) ] && CAP_SUBS=$(( NOFILE - 300 ))
# OpenPush clients per user: a Redis store counts a user's clients (and topics) with a range
# read of them all, so big users make setup slow there; 100 keeps it to seconds.
PER_USER=100
USERS=$(( (LAT_SUBS + PER_USER - 1) / PER_USER ))
# The capacity runs' ntfy streams share CAP_TOPICS topics (of user bench0), made once before:
# a Redis store makes topics slowly (each one counts its owner's topics with a range read),
# and a topic's first subscriber makes it, so a topic per stream would take minutes there.
CAP_TOPICS=100

PORT0=${BENCH_PORT:-18180}; PORT1=$(( PORT0 + 1 )); PORT_REDIS=${BENCH_REDIS_PORT:-18379}
for port in $PORT0 $PORT1 $PORT_REDIS; do
    if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
        echo "port $port is already in use (set BENCH_PORT / BENCH_REDIS_PORT)" >&2; exit 1
    fi
done

wait_port() {  # bounded: 10 s
    for _ in $(seq 100); do
        (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
        sleep 0.1
    done
    echo "server on port $1 did not start" >&2; return 1
}
bench() {  # one run; its JSON line goes to results.jsonl, its row to the terminal
    echo "+ openpush-bench run $*" >&2
    timeout 600 "$BENCH" run "$@" >>"$RESULTS"
}

# ---- redis-server: one for the run, emptied between setups ----
mkdir -p "$WORK/redis"
redis-server --port "$PORT_REDIS" --bind 127.0.0.1 --dir "$WORK/redis" --appendonly yes \
    --appendfsync always --save "" --daemonize no >"$WORK/redis/log" 2>&1 &
REDIS_PID=$!
wait_port "$PORT_REDIS"
for _ in $(seq 50); do [ "$(redis-cli -p "$PORT_REDIS" ping 2>/dev/null)" = PONG ] && break; sleep 0.1; done
REDIS_VERSION=$(redis-server --version | sed -n 's/.* v=\([^ ]*\).*/\1/p')

# ---- one setup: nodes on one store, the same loads ----
# setup KEY BINARY NODES: KEY = redb | redis | cluster
setup_runs() {
    local key=$1 bin=$2 nodes=$3 d="$WORK/$1" k
    mkdir -p "$d"
    # Raised for the benchmark only, as scripts/bench.sh does: connections, clients and topics
    # per user, queue per client; the per-address and per-token abuse limits are off.
    cat >"$d/base.conf" <<CONF
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
    [ "$key" != redb ] && echo "store = redis://127.0.0.1:$PORT_REDIS/0" >>"$d/base.conf"
    ADDRS=(); for k in $(seq 0 $((nodes - 1))); do
        # Each node its own db path: its control socket's path derives from it (on Redis the
        # redb file itself is unused).
        { cat "$d/base.conf"; echo "db = $d/node$k.redb"; } >"$d/node$k.conf"
        ADDRS+=("127.0.0.1:$(( PORT0 + k ))")
    done
    start_nodes() {
        local k
        for k in $(seq 0 $((nodes - 1))); do
            "$bin" serve --listen "${ADDRS[$k]}" --config "$d/node$k.conf" 2>>"$d/node$k.log" &
            NODE_PIDS+=($!)
        done
        for k in $(seq 0 $((nodes - 1))); do wait_port $(( PORT0 + k )); done
        PIDS=$(IFS=,; echo "${NODE_PIDS[*]}")
    }
    restart_nodes() { stop_nodes; sleep 0.5; start_nodes; }
    local aux=()
    [ "$key" != redb ] && aux=(--aux-pids "$REDIS_PID")
    local addr; addr=$(IFS=,; echo "${ADDRS[*]}")
    echo "== $key: $nodes node(s), $bin" >&2

    # A store with the users, CREDS's clients and applications (made through the HTTP API on
    # the first node) and the capacity runs' topics, then a restart: each run that follows
    # starts from nodes that only opened their store.
    fresh_store() {  # CREDS LABEL
        local u t0=$SECONDS
        for u in $(seq 0 $((USERS - 1))); do
            printf 'benchpw' | "$bin" user add "bench$u" --password-stdin --config "$d/node0.conf" >/dev/null
        done
        start_nodes
        bench --target openpush --addr "$addr" --pids "$PIDS" --creds "$1" --users "bench:$USERS:benchpw" \
            --per-user $PER_USER --label "$2" --subs "$LAT_SUBS" --messages 0 --settle-secs 0 2>>"$d/bench.log"
        echo "{\"label\":\"$2 secs\",\"secs\":$(( SECONDS - t0 ))}" >>"$RESULTS"
        bench --target ntfy-json --addr "${ADDRS[0]}" --pids "${NODE_PIDS[0]}" --label "$2 topics" \
            --subs $CAP_TOPICS --topics $CAP_TOPICS --messages 0 --settle-secs 0 \
            --users "bench:$USERS:benchpw" --per-user $CAP_TOPICS 2>>"$d/bench.log"
        restart_nodes
        op=(--target openpush --addr "$addr" --pids "$PIDS" "${aux[@]}" --creds "$1"
            --users "bench:$USERS:benchpw" --per-user $PER_USER)
    }
    local op=()
    fresh_store "$d/creds" "$key setup"
    bench "${op[@]}" --label "$key idle" --subs "$LAT_SUBS" --messages 0 --settle-secs 3
    [ "$key" != redb ] && redis-cli -p "$PORT_REDIS" config resetstat >/dev/null
    bench "${op[@]}" --label "$key latency" --subs "$LAT_SUBS" --messages "$LAT_MSGS" --rate "$LAT_RATE" --posters 16
    bench "${op[@]}" --label "$key flat c=16" --subs "$FLAT_SUBS" --messages "$FLAT_MSGS" --posters 16
    if [ "$key" != redb ]; then
        # Redis's own count of the commands of those two runs: commits (EXEC), lease takes
        # (SET; more than the commits when a writer waited for the other node's lease) and
        # reads (EVAL: a range; HGET: one key).
        redis-cli -p "$PORT_REDIS" info commandstats | tr -d '\r' | python3 -c '
import json, re, sys
calls = {m[1]: (int(m[2]), int(m[3])) for m in re.finditer(r"cmdstat_(\w+):calls=(\d+),usec=(\d+)", sys.stdin.read())}
print(json.dumps({"label": sys.argv[1], "calls": {k: v[0] for k, v in calls.items()}, "usec": {k: v[1] for k, v in calls.items()}}))
' "$key redis commands" >>"$RESULTS"
    fi
    if [ "$nodes" -gt 1 ]; then
        # The latency load again with each message posted on its subscriber's node, on a store
        # as fresh as the first latency run's, so that the two compare (what two nodes do
        # depends on what went through the store before).
        stop_nodes
        redis-cli -p "$PORT_REDIS" flushall >/dev/null
        fresh_store "$d/creds-again" "$key setup again"
        bench "${op[@]}" --label "$key latency same-node" --cross 0 --subs "$LAT_SUBS" --messages "$LAT_MSGS" --rate "$LAT_RATE" --posters 16
    fi
    # Capacity: one bench process per node, at once, each holding its node's streams.
    restart_nodes
    BG_PIDS=()
    for k in $(seq 0 $((nodes - 1))); do
        echo "+ openpush-bench run --target ntfy-json --addr ${ADDRS[$k]} --subs $CAP_SUBS --topics $CAP_TOPICS ..." >&2
        timeout 600 "$BENCH" run --target ntfy-json --addr "${ADDRS[$k]}" --pids "${NODE_PIDS[$k]}" \
            --label "$key capacity node$k" --subs "$CAP_SUBS" --topics $CAP_TOPICS --messages 0 \
            --settle-secs 3 --max-secs 180 --users "bench:$USERS:benchpw" --per-user $CAP_TOPICS \
            >"$d/capacity$k.json" &
        BG_PIDS+=($!)
    done
    for p in "${BG_PIDS[@]}"; do wait "$p" || echo "a capacity run failed (status $?)" >&2; done
    BG_PIDS=()
    cat "$d"/capacity*.json >>"$RESULTS"
    stop_nodes
    if [ "$key" != redb ]; then
        echo "{\"label\":\"$key redis\",\"keys\":$(redis-cli -p "$PORT_REDIS" dbsize),\"used_memory\":$(redis-cli -p "$PORT_REDIS" info memory | sed -n 's/^used_memory:\([0-9]*\).*/\1/p')}" >>"$RESULTS"
        redis-cli -p "$PORT_REDIS" flushall >/dev/null
    fi
    for k in $(seq 0 $((nodes - 1))); do cp "$d/node$k.log" "$WORK/logs-$key-node$k.log"; done
}

setup_runs redb "$WORK/bin/openpush-redb" 1
setup_runs redis "$WORK/bin/openpush-redis" 1
setup_runs cluster "$WORK/bin/openpush-redis" 2

# ---- report ----
[ -n "${BENCH_RESULTS:-}" ] && cp "$RESULTS" "$BENCH_RESULTS"
report=(python3 "$ROOT/bench/report-cluster.py" "$RESULTS"
    --commit "${BENCH_COMMIT:-$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown)}"
    --nofile "$NOFILE" --cap "$CAP_SUBS:$CAP_TOPICS" --lat "$LAT_SUBS:$LAT_RATE:$LAT_MSGS"
    --flat "$FLAT_SUBS:$FLAT_MSGS" --redis-version "$REDIS_VERSION" --quick $QUICK
    --logs "$WORK"/logs-*.log --redis-log "$WORK/redis/log")
if [ $QUICK = 1 ]; then
    "${report[@]}"
else
    "${report[@]}" >"$ROOT/BENCHMARKS-cluster.md"
    sed -n '/^| measure/,/^$/p' "$ROOT/BENCHMARKS-cluster.md"
    echo "wrote $ROOT/BENCHMARKS-cluster.md" >&2
fi
