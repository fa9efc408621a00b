#!/usr/bin/env bash
# CPU profile of openpush under the benchmark's latency load (2,000 msg/s to N subscribers,
# durability on), with perf's cpu-clock sampling: functions by own samples, and the kernel's
# time by system call (kernel call chains; the release build has no frame pointers, so user-space
# call chains are not meaningful).
#
# usage: bench/profile.sh OPENPUSH_BINARY [OUT_DIR]
#   OPENPUSH_BINARY: a release build with symbols, e.g.
#     CARGO_PROFILE_RELEASE_STRIP=false CARGO_PROFILE_RELEASE_DEBUG=line-tables-only \
#       CARGO_TARGET_DIR=/tmp/op-prof cargo build --release      # same opt-level z, LTO
#   OUT_DIR (default: a new /tmp/openpush-profile.XXXXXX): perf.data, the bench's JSON line,
#     report-self.txt (functions by own samples), report-dso.txt, report-threads.txt (by thread
#     name), report-crates.txt (own samples summed by the symbol's crate)
# env: PROFILE_SUBS (10000), PROFILE_RATE (2000), PROFILE_MSGS (20000), PROFILE_PORT (18280)
# Needs perf (Debian: linux-perf). Loopback only; stops the server it started.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
OP=$(realpath "${1:?usage: bench/profile.sh OPENPUSH_BINARY [OUT_DIR]}")
OUT=${2:-$(mktemp -d /tmp/openpush-profile.XXXXXX)}
mkdir -p "$OUT"
SUBS=${PROFILE_SUBS:-10000}; RATE=${PROFILE_RATE:-2000}; MSGS=${PROFILE_MSGS:-20000}; PORT=${PROFILE_PORT:-18280}
command -v perf >/dev/null || { echo "perf is missing (apt-get install linux-perf)" >&2; exit 1; }
cargo build --release --manifest-path "$ROOT/bench/Cargo.toml" >&2
BENCH="$ROOT/bench/target/release/openpush-bench"
ulimit -n "$(ulimit -Hn)"

D=$(mktemp -d /tmp/openpush-profile-db.XXXXXX)
PID=""
cleanup() { if [ -n "$PID" ]; then kill "$PID" 2>/dev/null || true; wait "$PID" 2>/dev/null || true; fi; rm -rf "$D"; }
trap cleanup EXIT
cat >"$D/openpush.conf" <<CONF
max_connections = 1000000
max_clients_per_user = 1000
max_queued_per_client = 100000
max_connections_per_addr = 1000000
requests_per_sec_per_addr = 0
posts_per_sec_per_token = 0
log_level = warn
CONF
USERS=$(( (SUBS + 499) / 500 ))
for u in $(seq 0 $((USERS - 1))); do
    printf 'benchpw' | "$OP" user add "bench$u" --password-stdin --db "$D/db.redb" >/dev/null
done
"$OP" serve --db "$D/db.redb" --listen "127.0.0.1:$PORT" --config "$D/openpush.conf" 2>>"$D/serve.log" &
PID=$!
for _ in $(seq 100); do (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null && break; sleep 0.1; done
ARGS=(--addr "127.0.0.1:$PORT" --pids "$PID" --creds "$D/creds" --users "bench:$USERS:benchpw" --per-user 500)
# Clients through the API, then one unprofiled warm-up run at the same rate.
"$BENCH" run --target openpush "${ARGS[@]}" --label setup --subs "$SUBS" --messages 0 --settle-secs 0 >/dev/null
"$BENCH" run --target openpush "${ARGS[@]}" --label warmup --subs "$SUBS" --messages "$((MSGS / 4))" --rate "$RATE" >/dev/null
# The profiled run: perf attaches once the subscribers are connected and settled (the bench
# settles 3 s after connecting) and records for the posting phase only.
"$BENCH" run --target openpush "${ARGS[@]}" --label "profiled latency" --subs "$SUBS" --messages "$MSGS" --rate "$RATE" \
    --settle-secs 4 >"$OUT/run.json" &
BPID=$!
for _ in $(seq 300); do
    [ "$(awk '/^TCP:/{print $3}' /proc/net/sockstat)" -ge $((SUBS * 2)) ] && break
    sleep 0.1
done
sleep 3.5
secs=$(( MSGS / RATE - 1 ))
perf record -e cpu-clock -F 1999 -g -p "$PID" -o "$OUT/perf.data" -- sleep "$secs" 2>"$OUT/perf-record.log"
wait "$BPID"
cat "$OUT/run.json"
cd "$OUT"
perf report -i perf.data --no-children --sort sym --stdio --percent-limit 0.5 -g none 2>/dev/null >report-self.txt
perf report -i perf.data --no-children --sort dso --stdio -g none 2>/dev/null >report-dso.txt
perf report -i perf.data --no-children --sort comm --stdio -g none 2>/dev/null >report-threads.txt
perf report -i perf.data --no-children --sort comm,dso --stdio -g none 2>/dev/null >report-threads-dso.txt
# Crates: own samples summed by the crate of each symbol (kernel and libc apart; for
# `<X as Y>::f`, X's crate, or Y's when X is a generic or primitive type).
perf report -i perf.data --no-children --sort sym --stdio -g none --percent-limit 0 2>/dev/null | python3 -c '
import re, sys, collections
tot = collections.Counter()
for line in sys.stdin:
    m = re.match(r"\s+([0-9.]+)%\s+\[(.)\]\s+(.*)", line)
    if not m:
        continue
    pct, kind, sym = float(m[1]), m[2], m[3].strip()
    if kind == "k":
        tot["[kernel]"] += pct; continue
    crates = [c for c in re.findall(r"([A-Za-z_][A-Za-z0-9_]*)::", sym) if c[0].islower() and c not in ("u8", "u16", "u32", "u64", "usize", "i64", "str")]
    tot[crates[0] if crates else ("[unresolved]" if sym.startswith("0x") else "[libc / C]")] += pct
for c, v in tot.most_common():
    print(f"{v:6.2f}%  {c}")
' >report-crates.txt
perf report -i perf.data --no-children --sort comm,sym --stdio -g none --percent-limit 0.7 2>/dev/null >report-threads-sym.txt
# Kernel entry points, inclusive: which system calls (and interrupts) the kernel's share is spent in.
perf report -i perf.data --children --sort sym --stdio -g none 2>/dev/null |
    grep -E '\[k\] (__x64_sys_|__do_sys_|do_syscall_64|asm_|irq|__sysvec|entry_SYSCALL)' | head -25 >report-kernel-entry.txt
echo "profile in $OUT:" >&2
head -40 report-self.txt | grep -v '^#' | grep -v '^$' >&2 || true
cat report-crates.txt >&2
