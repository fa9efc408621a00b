#!/usr/bin/env bash
# What built-in TLS costs, side by side with nginx terminating TLS in front of openpush's plain
# port, in one run on loopback (a separate command, never a test):
#   idle streams: RSS per idle stream held by the same openpush binary, plain and over TLS,
#     and by nginx (TLS, master + worker) plus the openpush behind it (plain); each on freshly
#     started servers, with the same database;
#   handshakes: the server's CPU time (utime + stime) per new connection doing one request
#     (GET /v1/health, Connection: close), plain, over TLS with the ECDSA P-256 and the
#     RSA-2048 certificate of tests/fixtures/tls, without and with session resumption; nginx
#     and openpush each for the nginx rows. The client offers X25519 first, as phones' TLS
#     stacks do; one more run offers P-384 first (rustls' own default with ring): a TLS 1.3
#     server answers with the group the client prefers.
# Installs nginx from Debian when missing, builds the static x86_64 musl binary (as on
# routers) with scripts/cross-build.sh unless BENCH_OPENPUSH_BIN names one, builds bench/,
# runs everything in a temporary directory and stops every server it started. The JSON lines
# go to bench-tls-results.jsonl at the repository root, a summary table to stdout.
#
# usage: scripts/bench-tls.sh [--quick]
#        --quick: 300 streams and 300 connections, for a smoke run
# env:   BENCH_OPENPUSH_BIN: the openpush binary to measure (default: the static musl build)
#        BENCH_TLS_SUBS: idle streams per run (default 2000)
#        BENCH_TLS_CONNS: connections per handshake run (default 2000)
#        BENCH_TLS_KINDS: stream kinds (default "ntfy-json openpush": ntfy's /<topic>/json
#            and OpenPush's /subscribe SSE)
#        BENCH_TLS_SIZES: "TARGET ..." to also build each target with the default features and
#            with all of them but `tls` (scripts/cross-build.sh, slow) and list the bytes TLS adds
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
QUICK=0
for arg in "$@"; do
    case $arg in
        --quick) QUICK=1 ;;
        *) echo "usage: scripts/bench-tls.sh [--quick]" >&2; exit 2 ;;
    esac
done
SUBS=${BENCH_TLS_SUBS:-2000}; CONNS=${BENCH_TLS_CONNS:-2000}
[ $QUICK = 1 ] && { SUBS=300; CONNS=300; }
KINDS=${BENCH_TLS_KINDS:-ntfy-json openpush}
FIX="$ROOT/tests/fixtures/tls"

if ! command -v nginx >/dev/null; then
    echo "installing nginx" >&2
    apt-get update >/dev/null || true
    DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends nginx >/dev/null
fi
# Debian's package starts its service where an init system runs; this benchmark starts its own.
command -v service >/dev/null && { service nginx stop >/dev/null 2>&1 || true; }

if [ -n "${BENCH_OPENPUSH_BIN:-}" ]; then
    OP=$(realpath "$BENCH_OPENPUSH_BIN")
else
    "$ROOT/scripts/cross-build.sh" x86_64-unknown-linux-musl >&2
    OP="$ROOT/target/cross/out/x86_64-unknown-linux-musl/openpush"
fi
echo "openpush: $OP ($(stat -c %s "$OP") bytes)" >&2
cargo build --release --manifest-path "$ROOT/bench/Cargo.toml" >&2
BENCH="$ROOT/bench/target/release/openpush-bench"

ulimit -n "$(ulimit -Hn)"
NOFILE=$(ulimit -n)
WORK=$(mktemp -d /tmp/openpush-bench-tls.XXXXXX)
RESULTS="$WORK/results.jsonl"
: >"$RESULTS"
OP_PID="" NGINX_PID=""
stop_all() {
    for p in $NGINX_PID $OP_PID; do kill "$p" 2>/dev/null || true; wait "$p" 2>/dev/null || true; done
    NGINX_PID="" OP_PID=""
    sleep 0.5
}
trap 'stop_all; rm -rf "$WORK"' EXIT

PORT=18180 PORT_TLS=18543 PORT_NGINX=18544
wait_port() {  # bounded: 10 s
    for _ in $(seq 100); do
        (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
        sleep 0.1
    done
    echo "server on port $1 did not start" >&2; return 1
}
for p in $PORT $PORT_TLS $PORT_NGINX; do
    if (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then echo "port $p is in use" >&2; exit 1; fi
done

# ---- openpush: one database for every run; plain and TLS listeners on every server ----
D="$WORK/openpush"; mkdir -p "$D"
conf() {  # certificate name (first: ECDSA P-256, rsa: RSA-2048)
    cat <<CONF
# Raised for the benchmark only, as in scripts/bench.sh: the load comes from a few hundred
# loopback addresses (and, behind nginx, from one).
max_connections = 1000000
max_clients_per_user = 1000
max_topics_per_user = 1000
max_queued_per_client = 100000
max_connections_per_addr = 1000000
max_uaids_per_addr = 1000000
requests_per_sec_per_addr = 0
posts_per_sec_per_token = 0
log_level = warn
listen_tls = 127.0.0.1:$PORT_TLS
tls_cert = $FIX/$1.crt
tls_key = $FIX/$1.key
CONF
}
conf first >"$D/first.conf"; conf rsa >"$D/rsa.conf"
start_openpush() {  # certificate name
    "$OP" serve --db "$D/db.redb" --listen "127.0.0.1:$PORT" --config "$D/${1:-first}.conf" 2>>"$D/serve.log" &
    OP_PID=$!
    wait_port $PORT; wait_port $PORT_TLS
}
start_nginx() {  # certificate name
    local nd="$WORK/nginx"; mkdir -p "$nd/tmp"
    cat >"$nd/nginx.conf" <<CONF
daemon off;
# One worker, as on a router (Debian's default is one per core).
worker_processes 1;
worker_rlimit_nofile $NOFILE;
pid $nd/nginx.pid;
error_log $nd/error.log warn;
events { worker_connections $NOFILE; }
http {
    access_log off;
    client_body_temp_path $nd/tmp;
    proxy_temp_path $nd/tmp; fastcgi_temp_path $nd/tmp; uwsgi_temp_path $nd/tmp; scgi_temp_path $nd/tmp;
    upstream openpush { server 127.0.0.1:$PORT; keepalive 16; }
    server {
        listen 127.0.0.1:$PORT_NGINX ssl;
        ssl_certificate $FIX/$1.crt;
        ssl_certificate_key $FIX/$1.key;
        ssl_protocols TLSv1.2 TLSv1.3;
        # docs/expose.md's proxy recipe: streams unbuffered, held for an hour.
        location / {
            proxy_pass http://openpush;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_set_header Host \$host;
            proxy_buffering off;
            proxy_read_timeout 1h;
        }
    }
}
CONF
    nginx -p "$nd" -c "$nd/nginx.conf" &
    NGINX_PID=$!
    wait_port $PORT_NGINX
    sleep 0.5
}
pids_of() {  # a process and its children (nginx's worker)
    local kids
    kids=$(pgrep -P "$1" | paste -sd, -)
    echo "$1${kids:+,$kids}"
}
bench() {
    echo "+ openpush-bench $*" >&2
    timeout 600 "$BENCH" "$@" >>"$RESULTS"
}

USERS=$(( (SUBS + 499) / 500 ))
for u in $(seq 0 $((USERS - 1))); do
    printf 'benchpw' | "$OP" user add "bench$u" --password-stdin --db "$D/db.redb" >/dev/null
done
ARGS=(--creds "$D/creds" --users "bench:$USERS:benchpw" --per-user 500 --messages 0)
# Clients, applications and ntfy topics made once (plain), then every run starts from a
# server that has done nothing but open this database.
start_openpush
for kind in $KINDS; do
    bench run --target "$kind" --addr "127.0.0.1:$PORT" --pids "$OP_PID" --label "setup $kind" --subs "$SUBS" --settle-secs 0 "${ARGS[@]}" 2>/dev/null
done
stop_all

# ---- idle streams: plain, TLS, nginx (TLS) in front of plain; fresh servers each ----
for kind in $KINDS; do
    start_openpush
    bench run --target "$kind" --addr "127.0.0.1:$PORT" --pids "$OP_PID" --label "openpush plain $kind idle" --subs "$SUBS" --settle-secs 3 "${ARGS[@]}"
    stop_all
    start_openpush
    bench run --target "$kind" --addr "127.0.0.1:$PORT" --sub-addr "127.0.0.1:$PORT_TLS" --tls-ca "$FIX/ca.crt" \
        --pids "$OP_PID" --label "openpush tls $kind idle" --subs "$SUBS" --settle-secs 3 "${ARGS[@]}"
    stop_all
    start_openpush; start_nginx first
    bench run --target "$kind" --addr "127.0.0.1:$PORT" --sub-addr "127.0.0.1:$PORT_NGINX" --tls-ca "$FIX/ca.crt" \
        --pids "$(pids_of "$NGINX_PID"),$OP_PID" --label "nginx tls + openpush plain $kind idle" --subs "$SUBS" --settle-secs 3 "${ARGS[@]}"
    stop_all
done

# ---- handshakes: one request per new connection ----
H=(--conns "$CONNS" --threads 2 --path /v1/health)
for cert in first rsa; do
    name=$([ $cert = first ] && echo ecdsa || echo rsa)
    start_openpush "$cert"
    # Warm-up: the first connections fault in code and grow the heap.
    "$BENCH" handshakes --addr "127.0.0.1:$PORT_TLS" --pids "$OP_PID" --conns 100 --tls-ca "$FIX/ca.crt" >/dev/null 2>&1
    [ $cert = first ] && bench handshakes --addr "127.0.0.1:$PORT" --pids "$OP_PID" --label "openpush plain" "${H[@]}"
    bench handshakes --addr "127.0.0.1:$PORT_TLS" --pids "$OP_PID" --label "openpush tls $name" --tls-ca "$FIX/ca.crt" "${H[@]}"
    bench handshakes --addr "127.0.0.1:$PORT_TLS" --pids "$OP_PID" --label "openpush tls $name resumed" --tls-ca "$FIX/ca.crt" --resume 1 "${H[@]}"
    [ $cert = first ] && bench handshakes --addr "127.0.0.1:$PORT_TLS" --pids "$OP_PID" --label "openpush tls $name p384" --tls-ca "$FIX/ca.crt" --kx p384 "${H[@]}"
    start_nginx "$cert"
    NP="$(pids_of "$NGINX_PID"),$OP_PID"
    "$BENCH" handshakes --addr "127.0.0.1:$PORT_NGINX" --pids "$NP" --conns 100 --tls-ca "$FIX/ca.crt" >/dev/null 2>&1
    bench handshakes --addr "127.0.0.1:$PORT_NGINX" --pids "$NP" --label "nginx tls $name + openpush plain" --tls-ca "$FIX/ca.crt" "${H[@]}"
    bench handshakes --addr "127.0.0.1:$PORT_NGINX" --pids "$NP" --label "nginx tls $name resumed + openpush plain" --tls-ca "$FIX/ca.crt" --resume 1 "${H[@]}"
    [ $cert = first ] && bench handshakes --addr "127.0.0.1:$PORT_NGINX" --pids "$NP" --label "nginx tls $name p384 + openpush plain" --tls-ca "$FIX/ca.crt" --kx p384 "${H[@]}"
    stop_all
done

# ---- binary size added by the `tls` feature: the default features, then all but `tls` ----
NO_TLS=$(sed -n 's/^default = \[\(.*\)\]/\1/p' "$ROOT/Cargo.toml" | tr -d '" ' | tr ',' '\n' | grep -vx tls | paste -sd, -)
for t in ${BENCH_TLS_SIZES:-}; do
    out="$ROOT/target/cross/out/$t/openpush"
    "$ROOT/scripts/cross-build.sh" "$t" >&2; with=$(stat -c %s "$out")
    "$ROOT/scripts/cross-build.sh" "$t" --no-default-features --features "$NO_TLS" >&2; without=$(stat -c %s "$out")
    echo "{\"label\":\"size $t\",\"target\":\"$t\",\"with_tls\":$with,\"without_tls\":$without}" >>"$RESULTS"
done

cp "$RESULTS" "$ROOT/bench-tls-results.jsonl"
python3 - "$RESULTS" "$OP" <<'PY'
import json, os, platform, subprocess, sys, time
rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
by = {r["label"]: r for r in rows}
cpu = subprocess.run(["sh", "-c", "grep -m1 'model name' /proc/cpuinfo | cut -d: -f2"], capture_output=True, text=True).stdout.strip()
print(f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, {cpu}, {os.cpu_count()} cores, Linux {platform.release()}; "
      f"openpush {os.path.basename(sys.argv[2])} ({os.path.getsize(sys.argv[2]):,} bytes)")
print()
print("| idle streams | streams | RSS before → idle | per stream | of which nginx | above plain |")
print("|---|---|---|---|---|---|")
for label, r in by.items():
    if not label.endswith(" idle") or "rss_per_conn_bytes" not in r:
        continue
    kind = label.split()[-2]
    plain = by.get(f"openpush plain {kind} idle", {}).get("rss_per_conn_bytes")
    per = r["rss_per_conn_bytes"]
    nginx = ""
    if label.startswith("nginx"):
        op = r["idle_by_pid"][-1]["pid"]
        d = sum(p["rss"] for p in r["idle_by_pid"] if p["pid"] != op) - sum(p["rss"] for p in r["before_by_pid"] if p["pid"] != op)
        nginx = f"{d / r['ready']:,.0f} B"
    above = f"{per - plain:+,.0f} B" if plain is not None and not label.startswith("openpush plain") else ""
    print(f"| {label} | {r['ready']}/{r['subs']} | {r['rss_before']/1e6:.1f} → {r['rss_idle']/1e6:.1f} MB | {per:,.0f} B | {nginx} | {above} |")
print()
print("| handshakes (one request per connection) | connections | resumed | suite, group | server CPU per connection | of which nginx |")
print("|---|---|---|---|---|---|")
for r in rows:
    if r.get("mode") != "handshakes":
        continue
    nginx = ""
    if r["label"].startswith("nginx"):
        op = r["after_by_pid"][-1]["pid"]
        d = sum(p["cpu_secs"] for p in r["after_by_pid"] if p["pid"] != op) - sum(p["cpu_secs"] for p in r["before_by_pid"] if p["pid"] != op)
        nginx = f"{d / max(r['ok'], 1) * 1e6:,.0f} µs"
    print(f"| {r['label']} | {r['ok']}/{r['conns']} | {r['resumed']} | {r['suite'] or '–'} | {r['cpu_us_per_conn']:,.0f} µs | {nginx} |")
sizes = [r for r in rows if r["label"].startswith("size ")]
if sizes:
    print()
    print("| target | with `tls` | without | added by TLS |")
    print("|---|---|---|---|")
    for r in sizes:
        print(f"| {r['target']} | {r['with_tls']:,} | {r['without_tls']:,} | {r['with_tls'] - r['without_tls']:,} bytes |")
PY
