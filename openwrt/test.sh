#!/usr/bin/env bash
# openwrt/test.sh — check the OpenWrt package on a Debian machine (no router, no SDK).
#
# Usage: openwrt/test.sh [TARGET]    (default x86_64-unknown-linux-musl: runs natively)
#   1. the init script parses (`sh -n` with dash and, if present, busybox ash),
#   2. the UCI -> server config translation: the shipped /etc/config/openpush, and the same
#      file with every commented-out option switched on, render into configs that
#      `openpush serve --config FILE --check` accepts; every server key has a UCI option
#      and each documented default is the server's; autopush_path and bad values,
#   3. start_service hands procd the right command, user, jail and mounts,
#   4. scripts/build-ipk.sh TARGET makes an ipk that unpacks to the right paths and modes.
# The OpenWrt shell helpers (config_load & co., procd_*) are small stand-ins defined here.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
T=${1:-x86_64-unknown-linux-musl}
CROSS_DIR=${CROSS_DIR:-$ROOT/target/cross}
PKG=$ROOT/openwrt/openpush
INIT=$PKG/files/openpush.init
UCI=$PKG/files/openpush.config
BIN=$CROSS_DIR/out/$T/openpush
passed=0 failed=0
W=$(mktemp -d); trap 'rm -rf "$W"' EXIT

ok() { passed=$((passed + 1)); echo "ok: $*"; }
bad() { failed=$((failed + 1)); echo "FAIL: $*"; }

[ -x "$BIN" ] || "$ROOT/scripts/cross-build.sh" "$T" >/dev/null
case $T in
  x86_64-*) RUN=() ;;
  aarch64-*) RUN=(qemu-aarch64-static) ;;
  armv7-*) RUN=(qemu-arm-static) ;;
  arm-*) RUN=(env QEMU_CPU=arm1176 qemu-arm-static) ;;
  mipsel-*) RUN=(qemu-mipsel-static) ;;
  mips-*) RUN=(qemu-mips-static) ;;
esac

# --- 1. syntax ---
for sh in dash "busybox ash"; do
  command -v "${sh%% *}" >/dev/null || continue
  if $sh -n "$INIT"; then ok "$sh -n openpush.init"; else bad "$sh -n openpush.init"; fi
done
grep -q "^#!/bin/sh /etc/rc.common" "$INIT" && ok "init script runs under rc.common" ||
  bad "init script lacks the rc.common shebang"

# --- stand-ins for OpenWrt's /lib/functions.sh and procd.sh, run by dash ---
cat > "$W/stubs.sh" <<'EOF'
# UCI: `config TYPE 'NAME'`, `option KEY 'VALUE'`, `list KEY 'VALUE'`; one value per line.
uci_unquote() { v=$1; v=${v#\'}; v=${v%\'}; v=${v#\"}; v=${v%\"}; printf '%s' "$v"; }
config_load() {
  _UCI_DATA=$(awk '
    /^[ \t]*#/ || NF == 0 { next }
    $1 == "config" { s = $3; gsub(/[\047"]/, "", s); next }
    $1 == "option" || $1 == "list" {
      v = $0; sub(/^[ \t]*(option|list)[ \t]+[^ \t]+[ \t]+/, "", v)
      print $1 "\t" s "\t" $2 "\t" v
    }' "$UCI_FILE")
}
config_get() { # config_get VAR SECTION OPTION [DEFAULT]
  _v=$(printf '%s\n' "$_UCI_DATA" | awk -F'\t' -v s="$2" -v o="$3" \
    '$1 == "option" && $2 == s && $3 == o { v = $4 } END { print v }')
  if [ -n "$_v" ]; then _v=$(uci_unquote "$_v"); else _v=${4:-}; fi
  eval "$1=\$_v"
}
config_get_bool() {
  config_get "$1" "$2" "$3" "${4:-0}"
  eval "case \$$1 in 1|on|true|yes|enabled) $1=1 ;; *) $1=0 ;; esac"
}
config_list_foreach() { # SECTION OPTION FUNCTION [ARGS...]
  _s=$1 _o=$2 _f=$3; shift 3
  printf '%s\n' "$_UCI_DATA" | awk -F'\t' -v s="$_s" -v o="$_o" \
    '$1 == "list" && $2 == s && $3 == o { print $4 }' > "$STUB_DIR/list"
  while IFS= read -r _item; do "$_f" "$(uci_unquote "$_item")" "$@"; done < "$STUB_DIR/list"
}
procd_open_instance() { echo "open_instance" >> "$PROCD_LOG"; }
procd_close_instance() { echo "close_instance" >> "$PROCD_LOG"; }
procd_set_param() { echo "param $*" >> "$PROCD_LOG"; }
procd_add_jail() { echo "jail $*" >> "$PROCD_LOG"; }
procd_add_jail_mount() { echo "mount_ro $*" >> "$PROCD_LOG"; }
procd_add_jail_mount_rw() { echo "mount_rw $*" >> "$PROCD_LOG"; }
procd_add_reload_trigger() { echo "reload_trigger $*" >> "$PROCD_LOG"; }
procd_add_raw_trigger() { echo "raw_trigger $*" >> "$PROCD_LOG"; }
chown() { echo "chown $*" >> "$PROCD_LOG"; }
EOF

# render UCI_FILE OUT: runs the init script's render_config under dash.
render() {
  UCI_FILE=$1 STUB_DIR=$W PROCD_LOG=$W/procd.log dash -c '
    . "$0"; . "$1"; ACME_DIR=${TEST_ACME_DIR:-$ACME_DIR}
    config_load openpush; render_config main "$2"' \
    "$W/stubs.sh" "$INIT" "$2"
}
check() { "${RUN[@]}" "$BIN" serve --config "$1" --check > "$W/check.out" 2>&1; }

# --- 2. UCI -> config ---
if render "$UCI" "$W/default.conf" && check "$W/default.conf"; then
  ok "shipped UCI config renders to a config the server accepts"
else
  bad "shipped UCI config: $(cat "$W/default.conf" "$W/check.out" 2>/dev/null)"
fi
grep -qx 'db = /etc/openpush/openpush.redb' "$W/default.conf" &&
  grep -qx 'listen = 0.0.0.0:8080' "$W/default.conf" &&
  ok "default renders db and listen" || bad "default render: $(cat "$W/default.conf")"

# Every documented option switched on with its documented default value (the upstream's
# CA bundle: the test CA, as this machine may have none).
FIX=$ROOT/tests/fixtures/tls
sed -e 's/^\t#\(option\|list\) /\t\1 /' \
  -e "s|^\(\toption upstream_ca_file\) .*|\1 '$FIX/ca.crt'|" "$UCI" > "$W/all.uci"
n_opts=$(grep -c '^	option ' "$W/all.uci")
if render "$W/all.uci" "$W/all.conf" && check "$W/all.conf"; then
  ok "all $n_opts documented UCI options render to a config the server accepts"
else
  bad "all options: $(cat "$W/all.conf" "$W/check.out" 2>/dev/null)"
fi
# Each non-init option must reach the server config (catches a UCI name the init drops).
for o in $(sed -n 's/^\toption \([a-z_]*\) .*/\1/p' "$W/all.uci"); do
  case $o in enabled|storage|db|nofile|acme_domain|tls_cert|tls_key) continue ;; esac
  grep -q "^$o = " "$W/all.conf" || bad "UCI option $o is not passed to the server"
done
grep -c '^listen = ' "$W/all.conf" | grep -qx 2 && ok "repeated list listen renders twice" ||
  bad "listen lines: $(grep listen "$W/all.conf")"
grep -qx 'trusted_proxies = 127.0.0.1' "$W/all.conf" && ok "list trusted_proxies renders one line" ||
  bad "trusted_proxies: $(grep trusted "$W/all.conf")"
# Server options without a UCI counterpart (a new key in src/config.rs): reported, not fatal.
# `serve --check` prints every key the server knows, one `key = value` line each.
check "$W/default.conf" || true
keys=$(sed -n 's/^\([a-z_]*\) = .*/\1/p' "$W/check.out" | sort -u)
if [ -n "$keys" ]; then
  ok "serve --check prints the effective config as key = value lines ($(echo "$keys" | wc -l) keys)"
else
  bad "serve --check printed no key = value lines: $(head -3 "$W/check.out")"
fi
missing=0
for k in $keys; do
  case $k in listen|db|control_socket) continue ;; esac
  grep -q "^[[:space:]]*#*\(option\|list\) $k " "$UCI" ||
    { echo "note: server option $k has no UCI option"; missing=$((missing + 1)); }
done
[ "$missing" = 0 ] && ok "every server key has a UCI option (listen, db, control_socket: the init's)"
# Each commented-out option shows the server's own default (what `serve --check` prints
# when the option is not set); public_url and the certificate's files are examples, nofile
# and acme_domain belong to the init.
cp "$W/check.out" "$W/defaults.out"
n_defaults=0
while read -r o v; do
  case $o in public_url|nofile|acme_domain|tls_cert|tls_key|upstream_base_url|upstream_access_token) continue ;; esac
  case $o:$v in metrics_public:0) v=false ;; metrics_public:1) v=true ;; esac
  got=$(sed -n "s/^$o = //p" "$W/defaults.out")
  if [ "$got" = "$v" ]; then n_defaults=$((n_defaults + 1))
  else bad "UCI documents $o '$v', the server's default is '$got'"; fi
done <<EOF2
$(sed -n "s/^\t#option \([a-z_]*\) '\(.*\)'.*/\1 \2/p" "$UCI")
EOF2
ok "$n_defaults documented UCI defaults are the server's"

sed 's/^\toption storage .*/\toption storage '\''ram'\''/' "$UCI" > "$W/ram.uci"
render "$W/ram.uci" "$W/ram.conf" && grep -qx 'db = /var/lib/openpush/openpush.redb' "$W/ram.conf" &&
  ok "storage ram puts the live database on tmpfs" || bad "storage ram: $(cat "$W/ram.conf")"

printf "config openpush 'main'\n\toption keepalive_secs '25 # x'\n" > "$W/evil.uci"
if render "$W/evil.uci" "$W/evil.conf" 2>/dev/null; then bad "a value with spaces was rendered"
else ok "values with spaces or comment characters are refused"; fi
printf "config openpush 'main'\n\toption keepalive_secs 'soon'\n" > "$W/bad.uci"
render "$W/bad.uci" "$W/bad.conf"
if check "$W/bad.conf"; then bad "server accepted keepalive_secs = soon"
else ok "server rejects a bad UCI value with: $(head -1 "$W/check.out")"; fi

# autopush (Firefox, Sunup): the door can be closed or moved to an unguessable path, and
# the server refuses a WebSocket idle timeout that the keepalive ping cannot beat.
for path in off /autopush-8f2c1e9b; do
  printf "config openpush 'main'\n\toption autopush_path '%s'\n" "$path" > "$W/ap.uci"
  if render "$W/ap.uci" "$W/ap.conf" && grep -qx "autopush_path = $path" "$W/ap.conf" &&
     check "$W/ap.conf" && grep -qx "autopush_path = $path" "$W/check.out"; then
    ok "autopush_path '$path' renders and the server takes it"
  else bad "autopush_path '$path': $(cat "$W/ap.conf" "$W/check.out" 2>/dev/null)"; fi
done
printf "config openpush 'main'\n\toption keepalive_secs '25'\n\toption ws_idle_timeout_secs '20'\n" > "$W/idle.uci"
render "$W/idle.uci" "$W/idle.conf"
if check "$W/idle.conf"; then bad "server accepted ws_idle_timeout_secs 20 under keepalive_secs 25"
else ok "server rejects ws_idle_timeout_secs not above keepalive_secs: $(head -1 "$W/check.out")"; fi

# iPhones: the upstream options only with a CA bundle to check the upstream's certificate.
printf "config openpush 'main'\n\toption public_url 'https://push.example.org'\n\toption upstream_base_url 'https://ntfy.sh'\n\toption upstream_ca_file '%s'\n" \
  "$W/none.crt" > "$W/noca.uci"
if render "$W/noca.uci" "$W/noca.conf" 2> "$W/noca.err" && check "$W/noca.conf" &&
   ! grep -q '^upstream' "$W/noca.conf" && grep -q "upstream_base_url left out" "$W/noca.err"; then
  ok "upstream_base_url waits for a CA bundle (apk add ca-bundle); the rest starts"
else
  bad "upstream without a CA bundle: $(cat "$W/noca.conf" "$W/noca.err" 2>/dev/null)"
fi

# TLS: the acme package's certificate of acme_domain, served from copies the server can read.
mkdir -p "$W/acme" && cp "$FIX/first.crt" "$W/acme/push.example.org.fullchain.crt" &&
  cp "$FIX/first.key" "$W/acme/push.example.org.key"
printf "config openpush 'main'\n\tlist listen_tls '0.0.0.0:8443'\n\toption acme_domain 'push.example.org'\n" > "$W/tls.uci"
if TEST_ACME_DIR=$W/acme render "$W/tls.uci" "$W/tls.conf" 2>/dev/null && check "$W/tls.conf" &&
   grep -qx 'listen_tls = 0.0.0.0:8443' "$W/tls.conf" &&
   grep -qx 'tls_cert = /var/etc/openpush-tls/fullchain.crt' "$W/tls.conf" &&
   grep -qx 'tls_key = /var/etc/openpush-tls/key.pem' "$W/tls.conf"; then
  ok "listen_tls with acme_domain renders the TLS listener and the copies of its certificate"
else
  bad "TLS render: $(cat "$W/tls.conf" "$W/check.out" 2>/dev/null)"
fi
printf "config openpush 'main'\n\tlist listen_tls '0.0.0.0:8443'\n\toption acme_domain 'not.issued.example'\n" > "$W/noacme.uci"
if TEST_ACME_DIR=$W/acme render "$W/noacme.uci" "$W/noacme.conf" 2> "$W/noacme.err" &&
   ! grep -q '^listen_tls' "$W/noacme.conf" && grep -q "listen_tls left out" "$W/noacme.err"; then
  ok "listen_tls waits for a certificate that acme has not issued yet (the rest starts)"
else
  bad "TLS without a certificate: $(cat "$W/noacme.conf" "$W/noacme.err" 2>/dev/null)"
fi

# --- 3. procd instance ---
sed 's/^\toption enabled .*/\toption enabled '\''1'\''/' "$UCI" > "$W/on.uci"
: > "$W/procd.log"; mkdir -p "$W/var"
# mkdir/chmod/chown stand-ins keep the test from touching /etc and /var of this machine.
UCI_FILE=$W/on.uci STUB_DIR=$W PROCD_LOG=$W/procd.log dash -c '
  . "$0"; . "$1"
  CONF=$2; mkdir() { :; }; chmod() { :; }
  start_service; service_triggers' "$W/stubs.sh" "$INIT" "$W/var/openpush.conf"
expect() { grep -qxF "$1" "$W/procd.log" && ok "procd: $1" || bad "procd lacks '$1': $(cat "$W/procd.log")"; }
expect "param command /usr/bin/openpush serve --config $W/var/openpush.conf"
expect "param user openpush"
expect "param respawn 3600 5 5"
expect "jail openpush log"
expect "mount_rw /etc/openpush"
expect "mount_ro $W/var/openpush.conf"
expect "reload_trigger openpush"
expect "raw_trigger acme.renew 5000 /etc/init.d/openpush reload"
# With TLS: the certificate copied for the openpush user, its directory mounted in the jail.
{ cat "$W/on.uci"; printf "\tlist listen_tls '0.0.0.0:8443'\n\toption acme_domain 'push.example.org'\n"; } > "$W/tlson.uci"
: > "$W/procd.log"
UCI_FILE=$W/tlson.uci STUB_DIR=$W PROCD_LOG=$W/procd.log dash -c '
  . "$0"; . "$1"
  CONF=$2; TLS_DIR=$3; ACME_DIR=$4; chmod() { :; }
  mkdir() { if [ "$2" = "$TLS_DIR" ]; then command mkdir -p "$2"; fi; }
  start_service' "$W/stubs.sh" "$INIT" "$W/var/openpush.conf" "$W/tlsdir" "$W/acme"
expect "mount_ro $W/tlsdir"
expect "chown root:openpush $W/var/openpush.conf"
cmp -s "$W/tlsdir/key.pem" "$FIX/first.key" && cmp -s "$W/tlsdir/fullchain.crt" "$FIX/first.crt" &&
  ok "start copies the certificate and key for the server" || bad "certificate copies: $(ls -l "$W/tlsdir")"
# With upstream_base_url: the CA bundle and the resolver's file in the jail.
{ cat "$W/on.uci"; printf "\toption public_url 'https://push.example.org'\n\toption upstream_base_url 'https://ntfy.sh'\n\toption upstream_ca_file '%s'\n" "$FIX/ca.crt"; } > "$W/upon.uci"
: > "$W/procd.log"
UCI_FILE=$W/upon.uci STUB_DIR=$W PROCD_LOG=$W/procd.log dash -c '
  . "$0"; . "$1"
  CONF=$2; mkdir() { :; }; chmod() { :; }
  start_service' "$W/stubs.sh" "$INIT" "$W/var/openpush.conf"
expect "mount_ro $FIX/ca.crt /etc/resolv.conf"
: > "$W/procd.log"
sed 's/^\toption enabled .*/\toption enabled '\''0'\''/' "$UCI" > "$W/off.uci"
UCI_FILE=$W/off.uci STUB_DIR=$W PROCD_LOG=$W/procd.log dash -c '
  . "$0"; . "$1"; CONF=$2; mkdir() { :; }; chmod() { :; }; start_service' \
  "$W/stubs.sh" "$INIT" "$W/var/openpush.conf" 2>/dev/null
grep -q open_instance "$W/procd.log" && bad "disabled service started" || ok "enabled '0' starts nothing"

# --- 4. ipk ---
"$ROOT/scripts/build-ipk.sh" --help > "$W/help.out" 2>&1 && grep -q '^Usage: ' "$W/help.out" &&
  ok "build-ipk.sh --help prints its usage" || bad "build-ipk.sh --help: $(head -3 "$W/help.out")"
ipk_line=$(CROSS_DIR=$CROSS_DIR "$ROOT/scripts/build-ipk.sh" "$T" "$BIN")
IPK=$(echo "$ipk_line" | sed -n 's/^ipk [^:]*: \(.*\.ipk\) .*/\1/p')
mkdir -p "$W/ipk" && tar -xzf "$IPK" -C "$W/ipk"
[ "$(tar -tzf "$IPK" | tr '\n' ' ')" = "./debian-binary ./data.tar.gz ./control.tar.gz " ] &&
  ok "ipk holds debian-binary, data.tar.gz, control.tar.gz in opkg's order" ||
  bad "ipk members: $(tar -tzf "$IPK" | tr '\n' ' ')"
[ "$(cat "$W/ipk/debian-binary")" = 2.0 ] && ok "debian-binary is 2.0" || bad "debian-binary"
listing=$(tar -tvzf "$W/ipk/data.tar.gz")
for want in "-rwxr-xr-x 0/0 .* ./usr/bin/openpush" "-rwxr-xr-x 0/0 .* ./etc/init.d/openpush" \
            "-rw------- 0/0 .* ./etc/config/openpush" "-rw-r--r-- 0/0 .* ./lib/upgrade/keep.d/openpush"; do
  echo "$listing" | grep -qE -- "^$want\$" && ok "data: ${want##* }" || bad "data lacks $want: $listing"
done
mkdir -p "$W/ctl" && tar -xzf "$W/ipk/control.tar.gz" -C "$W/ctl"
for f in Package:\ openpush Require-User:\ openpush= Architecture: Version:; do
  grep -q "^$f" "$W/ctl/control" && ok "control has $f" || bad "control lacks $f"
done
[ "$(cat "$W/ctl/conffiles")" = /etc/config/openpush ] && ok "conffiles" || bad "conffiles"
dash -n "$W/ctl/postinst" && dash -n "$W/ctl/prerm" && dash -n "$W/ctl/postinst-pkg" && ok "postinst/prerm/postinst-pkg parse" || bad "maintainer scripts"
mkdir -p "$W/root" && tar -xzf "$W/ipk/data.tar.gz" -C "$W/root"
cmp -s "$W/root/usr/bin/openpush" "$BIN" && ok "packaged binary is the cross-built one" || bad "binary differs"

echo "openwrt: $passed passed, $failed failed"
[ "$failed" = 0 ]
