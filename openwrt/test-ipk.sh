#!/usr/bin/env bash
# openwrt/test-ipk.sh — run the .ipk's maintainer scripts in a scratch router root, as opkg
# runs them (there is no opkg for Debian: its steps are done here by hand).
#
# Usage: openwrt/test-ipk.sh [TARGET]    (default x86_64-unknown-linux-musl)
#   Install, as opkg does it: data.tar.gz unpacked into the root, the control files in
#   /usr/lib/opkg/info/openpush.*, the file list in openpush.list, then `postinst configure`
#   chrooted. Checked: files and modes, user openpush 483:483 from Require-User, the service
#   enabled and started. Upgrade: the new files over a running server, then `postinst`
#   again: the running server is restarted (postinst-pkg) on the new binary. Removal:
#   `prerm remove` stops and disables the service.
# Same stand-ins for the router's /lib/functions.sh and /etc/rc.common as openwrt/test-apk.sh
# (openwrt/scratch-root.sh).
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
T=${1:-x86_64-unknown-linux-musl}
export CROSS_DIR=${CROSS_DIR:-$ROOT/target/cross}
BIN=$CROSS_DIR/out/$T/openpush
. "$ROOT/scripts/openwrt-pkg.sh"
. "$ROOT/openwrt/scratch-root.sh"
ARCH=${OPENWRT_ARCH:-$(openwrt_arch "$T")}
passed=0 failed=0
ok() { passed=$((passed + 1)); echo "ok: $*"; }
bad() { failed=$((failed + 1)); echo "FAIL: $*"; }
check() { local what=$1; shift; if "$@"; then ok "$what"; else bad "$what"; fi; }
[ -x /bin/busybox ] || {
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq busybox-static >/dev/null
}
[ -x "$BIN" ] || "$ROOT/scripts/cross-build.sh" "$T" >/dev/null
W=$(mktemp -d); trap 'rm -rf "$W"' EXIT
R=$W/root
line=$("$ROOT/scripts/build-ipk.sh" "$T" "$BIN")
IPK=$(echo "$line" | sed -n 's/^ipk [^:]*: \(.*\.ipk\) .*/\1/p')
echo "$line"

scratch_root "$R" "$ARCH"
INFO=$R/usr/lib/opkg/info
opkg_unpack() { # what opkg does before the scripts run
  rm -rf "$W/ipk" && mkdir -p "$W/ipk/ctl" "$INFO"
  tar -xzf "$IPK" -C "$W/ipk"
  tar -xzf "$W/ipk/control.tar.gz" -C "$W/ipk/ctl"
  tar -xzpf "$W/ipk/data.tar.gz" -C "$R"
  for f in "$W/ipk/ctl"/*; do cp -p "$f" "$INFO/openpush.${f##*/}"; done
  tar -tzf "$W/ipk/data.tar.gz" | sed -n 's#^\./\(.*[^/]\)$#/\1#p' > "$INFO/openpush.list"
}
rc_log() { cat "$R/var/log/rc.log" 2>/dev/null; }
script() { chroot "$R" /bin/sh "/usr/lib/opkg/info/openpush.$1" "$2"; }

# --- install ---
opkg_unpack
check "postinst configure runs" script postinst configure
for want in "/usr/bin/openpush 755" "/etc/init.d/openpush 755" "/etc/config/openpush 600" \
            "/lib/upgrade/keep.d/openpush 644"; do
  check "file ${want% *} mode ${want#* }" test "$(stat -c %a "$R${want% *}" 2>/dev/null)" = "${want#* }"
done
check "user openpush 483:483 created from Require-User" grep -q '^openpush:x:483:483:' "$R/etc/passwd"
check "service enabled at boot" test -L "$R/etc/rc.d/S95openpush" -a -L "$R/etc/rc.d/K10openpush"
check "service started" grep -qx 'openpush start' <(rc_log)
check "no restart on a fresh install (nothing was running)" test -z "$(grep restart <(rc_log) || true)"

# --- upgrade over a running server ---
: > "$R/var/log/rc.log"
echo old > "$R/var/run/openpush.running"
opkg_unpack
check "postinst configure runs again" script postinst configure
check "upgrade restarts the running server" grep -qx 'openpush restart' <(rc_log)
check "the server runs the new binary" cmp -s "$R/var/run/openpush.running" "$BIN"
check "user openpush still there, once" test "$(grep -c '^openpush:' "$R/etc/passwd")" = 1

# --- removal ---
: > "$R/var/log/rc.log"
check "prerm remove runs" script prerm remove
check "removal stops the service" grep -qx 'openpush stop' <(rc_log)
check "removal disables the service" test ! -e "$R/etc/rc.d/S95openpush"

echo "ipk package: $passed passed, $failed failed"
[ "$failed" = 0 ]
