#!/usr/bin/env bash
# openwrt/test-apk.sh — install, upgrade and remove the OpenWrt .apk in a scratch root, with
# apk-tools v3 as the router runs it (no router, no SDK).
#
# Usage: openwrt/test-apk.sh [TARGET]    (default x86_64-unknown-linux-musl)
#   Builds two packages of the same binary with scripts/build-apk.sh: the previous release
#   (RELEASE=0, VERSION-r0) and this one (VERSION-r1), then in a fresh root
#   (`apk add --root R --initdb --allow-untrusted`):
#   1. install r0: files and modes, the package database entries, user openpush 483:483,
#      init script enabled (rc.d links) and started,
#   2. the household changes /etc/config/openpush, the server writes its database in
#      /etc/openpush/, and the admin disables autostart,
#   3. upgrade to r1: the changed config is kept (the new default beside it as .apk-new), the
#      database is untouched, the service is not re-enabled but is started and restarted (the
#      new binary runs), the binary is the new package's,
#   4. remove: the service is stopped and disabled, the package's files are gone, the
#      database stays.
# The package scripts run chrooted in the scratch root, under Debian's static busybox, with
# small stand-ins for the router's /lib/functions.sh (add_group_and_user, default_postinst,
# default_prerm, as OpenWrt's behave) and /etc/rc.common (enable/disable make the rc.d links;
# start/stop/restart/running are recorded in /var/log/rc.log).
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
T=${1:-x86_64-unknown-linux-musl}
export CROSS_DIR=${CROSS_DIR:-$ROOT/target/cross}
BIN=$CROSS_DIR/out/$T/openpush
. "$ROOT/scripts/openwrt-pkg.sh"
ARCH=${OPENWRT_ARCH:-$(openwrt_arch "$T")}
VERSION=$(openwrt_version)
passed=0 failed=0
ok() { passed=$((passed + 1)); echo "ok: $*"; }
bad() { failed=$((failed + 1)); echo "FAIL: $*"; }
check() { # check DESCRIPTION COMMAND...
  local what=$1; shift
  if "$@"; then ok "$what"; else bad "$what"; fi
}

if [ ! -x /bin/busybox ] || ! file -L /bin/busybox 2>/dev/null | grep -q 'statically linked'; then
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq busybox-static file >/dev/null
fi
APK=$("$ROOT/scripts/apk-tools.sh")
[ -x "$BIN" ] || "$ROOT/scripts/cross-build.sh" "$T" >/dev/null
W=$(mktemp -d); trap 'rm -rf "$W"' EXIT
R=$W/root

# --- the two packages ---
RELEASE=0 "$ROOT/scripts/build-apk.sh" "$T" "$BIN" > "$W/build0.out"
OLD=$CROSS_DIR/apk/$ARCH/openpush-$VERSION-r0.apk
mv "$OLD" "$W/" && OLD=$W/${OLD##*/}
RELEASE=1 "$ROOT/scripts/build-apk.sh" "$T" "$BIN" > "$W/build1.out"
NEW=$CROSS_DIR/apk/$ARCH/openpush-$VERSION-r1.apk
check "build-apk.sh makes openpush-$VERSION-r0.apk and -r1.apk for $ARCH" test -s "$OLD" -a -s "$NEW"
cat "$W/build1.out"

# --- a scratch router root ---
. "$ROOT/openwrt/scratch-root.sh"
scratch_root "$R" "$ARCH"

apk_r() { "$APK" --root "$R" --allow-untrusted --no-network --no-cache "$@"; }
mode() { stat -c '%a %u:%g' "$R$1" 2>/dev/null; }
rc_log() { cat "$R/var/log/rc.log" 2>/dev/null; }

# --- 1. install the previous release ---
if apk_r add --initdb "$OLD" > "$W/add.out" 2>&1; then ok "apk add --initdb openpush-$VERSION-r0"
else bad "apk add: $(cat "$W/add.out")"; fi
check "installed version is $VERSION-r0" grep -q "^openpush-$VERSION-r0 $ARCH .*\[installed\]" <(apk_r list -I 2>/dev/null)
for want in "/usr/bin/openpush 755 0:0" "/etc/init.d/openpush 755 0:0" "/etc/config/openpush 600 0:0" \
            "/lib/upgrade/keep.d/openpush 644 0:0" "/lib/apk/packages/openpush.list 644 0:0" \
            "/lib/apk/packages/openpush.rusers 644 0:0" "/lib/apk/packages/openpush.conffiles 644 0:0" \
            "/lib/apk/packages/openpush.conffiles_static 644 0:0"; do
  f=${want%% *}
  [ "$(mode "$f")" = "${want#* }" ] && ok "file $want" || bad "file $f: '$(mode "$f")', want '${want#* }'"
done
check "the binary is the cross-built one" cmp -s "$R/usr/bin/openpush" "$BIN"
check "config is the shipped UCI file" cmp -s "$R/etc/config/openpush" "$OPENWRT_FILES/openpush.config"
check ".list names every shipped file" grep -qx /etc/init.d/openpush "$R/lib/apk/packages/openpush.list"
check ".conffiles names /etc/config/openpush" grep -qx /etc/config/openpush "$R/lib/apk/packages/openpush.conffiles"
check ".conffiles_static holds its shipped sha256" grep -qx \
  "/etc/config/openpush $(sha256sum "$OPENWRT_FILES/openpush.config" | cut -d' ' -f1)" \
  "$R/lib/apk/packages/openpush.conffiles_static"
check "sysupgrade keeps /etc/openpush/ (keep.d)" grep -qx /etc/openpush/ "$R/lib/upgrade/keep.d/openpush"
check "user openpush 483:483 created" grep -q '^openpush:x:483:483:' "$R/etc/passwd"
check "group openpush 483 created" grep -q '^openpush:x:483:' "$R/etc/group"
check "service enabled at boot (rc.d/S95openpush, K10openpush)" \
  test -L "$R/etc/rc.d/S95openpush" -a -L "$R/etc/rc.d/K10openpush"
check "service started on install" grep -qx 'openpush start' <(rc_log)
check "apk info -L lists the files" grep -qx usr/bin/openpush <(apk_r info -L openpush 2>/dev/null)
audit=$(apk_r audit 2>/dev/null | grep -E " (usr/bin|etc/init.d|etc/config|lib/upgrade/keep.d|lib/apk/packages)/openpush" || true)
check "apk audit: the package's files are as shipped${audit:+ ($audit)}" test -z "$audit"

# --- 2. the router in use ---
printf "\toption public_url 'https://push.example.org'\n" >> "$R/etc/config/openpush"
cp "$R/etc/config/openpush" "$W/changed.uci"
mkdir -p "$R/etc/openpush" && head -c 65536 /dev/urandom > "$R/etc/openpush/openpush.redb"
cp "$R/etc/openpush/openpush.redb" "$W/db"
rm -f "$R"/etc/rc.d/*openpush          # /etc/init.d/openpush disable
: > "$R/var/log/rc.log"
check "apk audit reports the changed config" grep -q 'etc/config/openpush' <(apk_r audit 2>/dev/null)

# --- 3. upgrade ---
if apk_r add "$NEW" > "$W/up.out" 2>&1; then ok "apk add upgrades to $VERSION-r1"
else bad "apk upgrade: $(cat "$W/up.out")"; fi
check "installed version is $VERSION-r1" grep -q "^openpush-$VERSION-r1 $ARCH .*\[installed\]" <(apk_r list -I 2>/dev/null)
check "changed /etc/config/openpush kept across the upgrade" cmp -s "$R/etc/config/openpush" "$W/changed.uci"
check "the new default config lands beside it as .apk-new" \
  cmp -s "$R/etc/config/openpush.apk-new" "$OPENWRT_FILES/openpush.config"
check "mode of the kept config still 600" test "$(mode /etc/config/openpush)" = "600 0:0"
check "database untouched by the upgrade" cmp -s "$R/etc/openpush/openpush.redb" "$W/db"
check "a disabled service is not re-enabled by the upgrade" test ! -e "$R/etc/rc.d/S95openpush"
check "upgrade starts the service (PKG_UPGRADE=1)" grep -qx 'openpush start (upgrade)' <(rc_log)
check "upgrade restarts a running server (the new binary runs)" grep -qx 'openpush restart (upgrade)' <(rc_log)
check "user openpush still there, once" test "$(grep -c '^openpush:' "$R/etc/passwd")" = 1
check "the binary is the new package's" cmp -s "$R/usr/bin/openpush" "$BIN"

# --- 4. remove ---
: > "$R/var/log/rc.log"
ln -s ../init.d/openpush "$R/etc/rc.d/S95openpush"   # enabled again before removal
if apk_r del openpush > "$W/del.out" 2>&1; then ok "apk del openpush"
else bad "apk del: $(cat "$W/del.out")"; fi
check "removal stops the service" grep -qx 'openpush stop' <(rc_log)
check "removal disables the service" test ! -e "$R/etc/rc.d/S95openpush"
for f in /usr/bin/openpush /etc/init.d/openpush /lib/upgrade/keep.d/openpush /lib/apk/packages/openpush.list; do
  check "removed: $f" test ! -e "$R$f"
done
check "database kept after removal" cmp -s "$R/etc/openpush/openpush.redb" "$W/db"
if [ -e "$R/etc/config/openpush" ]; then ok "the changed config is left after removal (apk keeps changed files under /etc)"
else ok "config removed with the package"; fi
check "package no longer installed" test -z "$(apk_r info -e openpush 2>/dev/null)"

echo "apk package: $passed passed, $failed failed"
[ "$failed" = 0 ]
