#!/usr/bin/env bash
# deb/test.sh — check the Debian packages: lintian for every one given, and on this machine
# (as root; amd64) install, upgrade, remove and purge of the amd64 one with apt and dpkg.
#
# Usage: deb/test.sh [TARGET...]   (default: the targets whose binaries are built, of
#        x86_64-unknown-linux-musl, aarch64-unknown-linux-musl, arm-unknown-linux-musleabihf)
#   1. scripts/build-deb.sh TARGET; `lintian --fail-on error,warning` (overrides, each with its
#      reason, in deb/lintian-overrides); the package's files, modes, architecture and the
#      binary's ELF machine,
#   2. amd64 on this machine: `apt install ./openpush_VERSION-0_amd64.deb` (the previous
#      revision), then the same with VERSION-1 (the upgrade), `apt remove`, `dpkg --purge`.
#      Checked: files and modes, the conffile, the unit enabled at install (deb-systemd-helper),
#      started at install, restarted at upgrade, stopped at removal, an admin's `disable` kept
#      across the upgrade, the changed config kept, the database kept by upgrade and remove,
#      purge deleting the config and the data but not a file an admin added to /etc/openpush,
#      `openpush serve --check` accepting the installed config, `systemd-analyze verify` on the
#      installed unit.
# No systemd needs to run: /run/systemd/system is made for the run when it is missing (the
# scripts' "systemd is running" test), and /usr/sbin/policy-rc.d, the hook deb-systemd-invoke
# asks before every start, restart or stop, is for the run one that records the request and
# refuses it (exit 101); the machine's own one, if any, is put back afterwards.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
export CROSS_DIR=${CROSS_DIR:-$ROOT/target/cross}
passed=0 failed=0
ok() { passed=$((passed + 1)); echo "ok: $*"; }
bad() { failed=$((failed + 1)); echo "FAIL: $*"; }
check() { local what=$1; shift; if "$@"; then ok "$what"; else bad "$what"; fi; }

need=()
for p in lintian file; do dpkg -s "$p" >/dev/null 2>&1 || need+=("$p"); done
command -v systemd-analyze >/dev/null || need+=(systemd)
if [ ${#need[@]} -gt 0 ]; then
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
fi
TARGETS=("$@")
if [ ${#TARGETS[@]} = 0 ]; then
  for t in x86_64-unknown-linux-musl aarch64-unknown-linux-musl arm-unknown-linux-musleabihf; do
    [ -x "$CROSS_DIR/out/$t/openpush" ] && TARGETS+=("$t")
  done
fi
[ ${#TARGETS[@]} -gt 0 ] || { echo "deb/test.sh: no binaries in $CROSS_DIR/out"; exit 1; }
VERSION=$(sed -n 's/^version *= *"\(.*\)"/\1/p' "$ROOT/Cargo.toml" | head -1)
W=$(mktemp -d)
MADE_RUN_SYSTEMD=0 POLICY=/usr/sbin/policy-rc.d POLICY_SAVED=
cleanup() {
  [ "$MADE_RUN_SYSTEMD" = 1 ] && rmdir /run/systemd/system 2>/dev/null || true
  if [ -n "$POLICY_SAVED" ]; then
    if [ -e "$W/policy-rc.d.orig" ]; then mv "$W/policy-rc.d.orig" "$POLICY"; else rm -f "$POLICY"; fi
  fi
  rm -rf "$W"
}
trap cleanup EXIT

# --- 1. build, lintian, contents ---
AMD64=
for t in "${TARGETS[@]}"; do
  line=$(DEB_REVISION=1 "$ROOT/scripts/build-deb.sh" "$t")
  echo "$line"
  deb=$(echo "$line" | sed -n 's/^deb [^:]*: \(.*\.deb\) .*/\1/p')
  arch=$(dpkg-deb -f "$deb" Architecture)
  if lintian --fail-on error,warning "$deb" > "$W/lintian.out" 2>&1; then
    ok "lintian $arch: clean ($(grep -c '' "$W/lintian.out" || true) lines of notes)"
  else bad "lintian $arch: $(cat "$W/lintian.out")"; fi
  listing=$(dpkg-deb -c "$deb")
  for want in "-rwxr-xr-x root/root .* ./usr/bin/openpush" \
              "-rw-r--r-- root/root .* ./lib/systemd/system/openpush.service" \
              "-rw-r--r-- root/root .* ./etc/openpush/openpush.conf" \
              "-rw-r--r-- root/root .* ./usr/share/doc/openpush/copyright"; do
    echo "$listing" | grep -qE -- "^$want\$" || bad "$arch: no $want in: $listing"
  done
  [ "$(dpkg-deb -f "$deb" Version)" = "$VERSION-1" ] || bad "$arch: version $(dpkg-deb -f "$deb" Version)"
  dpkg-deb --fsys-tarfile "$deb" | tar -xOf - ./usr/bin/openpush > "$W/elf"
  case $arch in
    amd64) elf='x86-64' ;; arm64) elf='ARM aarch64' ;; armhf) elf='ARM, EABI5' ;;
  esac
  file "$W/elf" | grep -q "$elf" && ok "$arch: binary is $elf, files and modes as expected" ||
    bad "$arch: binary is $(file -b "$W/elf")"
  [ "$arch" = amd64 ] && AMD64=$t
done

# --- 2. install, upgrade, remove, purge of amd64 on this machine ---
if [ -z "$AMD64" ] || [ "$(dpkg --print-architecture)" != amd64 ] || [ "$(id -u)" != 0 ]; then
  echo "deb/test.sh: install test skipped (needs root on amd64 and the x86_64 binary)"
else
  OLD=$W/old && mkdir -p "$OLD"
  CROSS_DIR=$W/old DEB_REVISION=0 "$ROOT/scripts/build-deb.sh" "$AMD64" \
    "$CROSS_DIR/out/$AMD64/openpush" > /dev/null
  OLDDEB=$W/old/deb/openpush_${VERSION}-0_amd64.deb
  NEWDEB=$CROSS_DIR/deb/openpush_${VERSION}-1_amd64.deb
  [ -e "$POLICY" ] && cp -p "$POLICY" "$W/policy-rc.d.orig"
  POLICY_SAVED=1
  printf '#!/bin/sh\necho "$*" >> %s/systemd.log\nexit 101\n' "$W" > "$POLICY"
  chmod 0755 "$POLICY"
  if [ ! -d /run/systemd/system ]; then mkdir -p /run/systemd/system && MADE_RUN_SYSTEMD=1; fi
  log() { cat "$W/systemd.log" 2>/dev/null; }
  apt_do() { DEBIAN_FRONTEND=noninteractive apt-get "$@" > "$W/apt.out" 2>&1 ||
    { cat "$W/apt.out"; return 1; }; }
  wants=/etc/systemd/system/multi-user.target.wants/openpush.service
  # A previous failed run may have left the package behind.
  dpkg -s openpush >/dev/null 2>&1 && dpkg --purge openpush >/dev/null 2>&1 || true
  rm -rf /var/lib/openpush /var/lib/private/openpush /etc/openpush

  check "apt install ./openpush_${VERSION}-0_amd64.deb" apt_do install -y "$OLDDEB"
  check "installed version $VERSION-0" test "$(dpkg-query -W -f='${Version}' openpush)" = "$VERSION-0"
  for want in "/usr/bin/openpush 755" "/lib/systemd/system/openpush.service 644" \
              "/etc/openpush/openpush.conf 644" "/usr/share/man/man1/openpush.1.gz 644"; do
    f=${want% *}
    check "installed $f, mode ${want#* }" test "$(stat -c %a "$f" 2>/dev/null)" = "${want#* }"
  done
  check "/etc/openpush/openpush.conf is a conffile" \
    grep -q '/etc/openpush/openpush.conf' <(dpkg-query -W -f='${Conffiles}' openpush)
  check "unit enabled at install ($wants)" test "$(readlink "$wants")" = /lib/systemd/system/openpush.service
  check "unit started at install" grep -qx 'openpush.service start' <(log)
  if /usr/bin/openpush serve --config /etc/openpush/openpush.conf --check > "$W/check.out" 2>&1 &&
     grep -qx 'listen = 0.0.0.0:8080' "$W/check.out"; then
    ok "the installed config is valid and listens on 0.0.0.0:8080"
  else bad "openpush serve --check: $(cat "$W/check.out")"; fi
  if systemd-analyze verify /lib/systemd/system/openpush.service > "$W/verify.out" 2>&1; then
    ok "systemd-analyze verify: the installed unit"
  else bad "systemd-analyze verify: $(cat "$W/verify.out")"; fi

  # In use: the config changed, a database in the state directory (as systemd lays out a
  # DynamicUser= StateDirectory=), and the admin disabled the unit.
  echo "keepalive_secs = 20" >> /etc/openpush/openpush.conf
  cp /etc/openpush/openpush.conf "$W/changed.conf"
  mkdir -p /var/lib/private/openpush && ln -sfn private/openpush /var/lib/openpush
  head -c 65536 /dev/urandom > /var/lib/private/openpush/openpush.redb
  cp /var/lib/private/openpush/openpush.redb "$W/db"
  rm "$wants"            # what `systemctl disable openpush` does
  : > "$W/systemd.log"

  check "apt install ./openpush_${VERSION}-1_amd64.deb upgrades" apt_do install -y "$NEWDEB"
  check "installed version $VERSION-1" test "$(dpkg-query -W -f='${Version}' openpush)" = "$VERSION-1"
  check "upgrade restarts the service" grep -qx 'openpush.service restart' <(log)
  check "upgrade does not stop it first (restart only)" test -z "$(grep ' stop' <(log) || true)"
  check "the admin's disable is kept across the upgrade" test ! -e "$wants"
  check "the changed config is kept across the upgrade" cmp -s /etc/openpush/openpush.conf "$W/changed.conf"
  check "the database is kept across the upgrade" cmp -s /var/lib/openpush/openpush.redb "$W/db"
  check "the binary is the new package's" cmp -s /usr/bin/openpush "$CROSS_DIR/out/$AMD64/openpush"

  ln -s /lib/systemd/system/openpush.service "$wants"   # `systemctl enable openpush`
  : > "$W/systemd.log"
  check "apt remove openpush" apt_do remove -y openpush
  check "removal stops the service" grep -qx 'openpush.service stop' <(log)
  check "removal deletes the binary and the unit" test ! -e /usr/bin/openpush -a ! -e /lib/systemd/system/openpush.service
  check "removal keeps the config" cmp -s /etc/openpush/openpush.conf "$W/changed.conf"
  check "removal keeps the database" cmp -s /var/lib/openpush/openpush.redb "$W/db"
  check "package state rc (config-files)" test "$(dpkg-query -W -f='${db:Status-Abbrev}' openpush | tr -d ' ')" = rc

  echo "admin's own" > /etc/openpush/tls-key.pem
  check "dpkg --purge openpush" dpkg --purge openpush > "$W/purge.out" 2>&1
  check "purge deletes the config" test ! -e /etc/openpush/openpush.conf
  check "purge deletes the data directory" test ! -e /var/lib/openpush -a ! -e /var/lib/private/openpush
  check "purge forgets the enablement" test ! -e "$wants"
  check "purge keeps a file the admin added to /etc/openpush" test -f /etc/openpush/tls-key.pem
  check "package gone" test -z "$(dpkg-query -W -f='${db:Status-Abbrev}' openpush 2>/dev/null | tr -d ' ' || true)"
  rm -rf /etc/openpush
fi

echo "deb: $passed passed, $failed failed"
[ "$failed" = 0 ]
