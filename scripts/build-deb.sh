#!/usr/bin/env bash
# build-deb.sh — package a cross-built static openpush as a Debian package (Raspberry Pi OS,
# Debian, Ubuntu), with plain dpkg-deb: no debian/ source tree, no cross toolchain.
#
# Usage: scripts/build-deb.sh TARGET [BINARY]
#   TARGET: x86_64-unknown-linux-musl (amd64), aarch64-unknown-linux-musl (arm64: Pi 3/4/5,
#           Zero 2 W on a 64-bit OS), arm-unknown-linux-musleabihf (armhf, built for ARMv6:
#           every Pi, the Pi 1 and Zero included, on Raspberry Pi OS 32-bit),
#           armv7-unknown-linux-musleabihf (armhf for ARMv7 and later only).
#   BINARY defaults to target/cross/out/TARGET/openpush (built by cross-build.sh if missing).
#   VERSION / DEB_REVISION override the version (default: Cargo.toml's, revision 1).
# Output: target/cross/deb/openpush_VERSION-REVISION_ARCH.deb; install with
#   sudo apt install ./openpush_VERSION-REVISION_ARCH.deb
#
# The package: /usr/bin/openpush (static, so it depends on nothing), the hardened unit
# systemd/openpush.service as /lib/systemd/system/openpush.service (binary at /usr/bin),
# systemd/openpush.conf as the conffile /etc/openpush/openpush.conf listening on
# 0.0.0.0:8080 (the LAN, as on OpenWrt), a man page, copyright and changelog. The data
# directory /var/lib/openpush is the unit's StateDirectory= (systemd makes it, owned by the
# service's DynamicUser=). Maintainer scripts (deb/): those dh_installsystemd generates,
# enable + start on install, restart on upgrade, stop on remove; purge deletes the config and
# the state directory, nothing else.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
case ${1:-} in
  -h|--help|help) sed -n '/^# Usage:/,/^#$/{/^#$/d;s/^# \{0,1\}//;p}' "$0"; exit 0 ;;
  -*|'') echo "usage: scripts/build-deb.sh TARGET [BINARY]" >&2; exit 2 ;;
esac
T=$1
case $T in
  x86_64-unknown-linux-musl) DEBARCH=amd64 ;;
  aarch64-unknown-linux-musl) DEBARCH=arm64 ;;
  arm-unknown-linux-musleabihf | armv7-unknown-linux-musleabihf) DEBARCH=armhf ;;
  *) echo "build-deb.sh: no Debian architecture for $T" >&2; exit 2 ;;
esac
CROSS_DIR=${CROSS_DIR:-$ROOT/target/cross}
BIN=${2:-$CROSS_DIR/out/$T/openpush}
VERSION=${VERSION:-$(sed -n 's/^version *= *"\(.*\)"/\1/p' "$ROOT/Cargo.toml" | head -1)}
REV=${DEB_REVISION:-1}
DEBVER=$VERSION-$REV
[ -x "$BIN" ] || "$ROOT/scripts/cross-build.sh" "$T"
EPOCH=${SOURCE_DATE_EPOCH:-$(git -C "$ROOT" log -1 --format=%ct 2>/dev/null || echo 0)}

OUT=$CROSS_DIR/deb
mkdir -p "$OUT"
W=$(mktemp -d); trap 'rm -rf "$W"' EXIT
D=$W/pkg DOC=$W/pkg/usr/share/doc/openpush
umask 022

# --- files ---
install -D -m 0755 "$BIN" "$D/usr/bin/openpush"
install -d -m 0755 "$D/lib/systemd/system"
sed 's#/usr/local/bin/openpush#/usr/bin/openpush#g' "$ROOT/systemd/openpush.service" \
  > "$D/lib/systemd/system/openpush.service"
grep -q '^ExecStart=/usr/bin/openpush serve ' "$D/lib/systemd/system/openpush.service" ||
  { echo "build-deb.sh: the unit's ExecStart is not /usr/bin/openpush" >&2; exit 1; }
chmod 0644 "$D/lib/systemd/system/openpush.service"
install -d -m 0755 "$D/etc/openpush"
# The packaged config listens on the LAN (phones reach the Pi directly), as OpenWrt's does.
sed -e 's/^#listen = 0\.0\.0\.0:8080$/listen = 0.0.0.0:8080/' \
    -e 's/^listen = 127\.0\.0\.1:8080$/#listen = 127.0.0.1:8080/' \
    "$ROOT/systemd/openpush.conf" > "$D/etc/openpush/openpush.conf"
[ "$(grep '^listen' "$D/etc/openpush/openpush.conf")" = "listen = 0.0.0.0:8080" ] ||
  { echo "build-deb.sh: systemd/openpush.conf's listen lines changed; update build-deb.sh" >&2; exit 1; }
chmod 0644 "$D/etc/openpush/openpush.conf"
install -d -m 0755 "$D/usr/share/man/man1" "$DOC"
gzip -9n < "$ROOT/deb/openpush.1" > "$D/usr/share/man/man1/openpush.1.gz"
cat > "$DOC/copyright" <<EOF
Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/
Upstream-Name: openpush
Source: https://github.com/openpush/openpush

Files: *
Copyright: $(sed -n 's/^Copyright (c) //p' "$ROOT/LICENSE" | head -1)
License: MIT

License: MIT
$(sed -n '/^Permission is hereby granted/,$p' "$ROOT/LICENSE" | sed 's/^$/./; s/^/ /')
EOF
{
  echo "openpush ($DEBVER) unstable; urgency=medium"
  echo
  echo "  * Package of openpush $VERSION, built by scripts/build-deb.sh from a static"
  echo "    $T build."
  echo
  echo " -- openpush maintainers <openpush@users.noreply.github.com>  $(date -u -R -d "@$EPOCH")"
} | gzip -9n > "$DOC/changelog.Debian.gz"
gzip -9n < "$ROOT/README.md" > "$DOC/README.md.gz"
install -D -m 0644 "$ROOT/deb/lintian-overrides" "$D/usr/share/lintian/overrides/openpush"
chmod 0644 "$DOC"/* "$D/usr/share/man/man1/openpush.1.gz"

# --- control ---
install -d -m 0755 "$D/DEBIAN"
install -m 0755 "$ROOT/deb/postinst" "$ROOT/deb/prerm" "$ROOT/deb/postrm" "$D/DEBIAN/"
echo /etc/openpush/openpush.conf > "$D/DEBIAN/conffiles"
size=$(du -sk --exclude=DEBIAN "$D" | cut -f1)
cat > "$D/DEBIAN/control" <<EOF
Package: openpush
Version: $DEBVER
Architecture: $DEBARCH
Maintainer: openpush maintainers <openpush@users.noreply.github.com>
Installed-Size: $size
Section: net
Priority: optional
Homepage: https://github.com/openpush/openpush
Description: self-hosted push server for a family's phones
 openpush delivers notifications from apps and servers to phones through
 one small server at home: the ntfy app, UnifiedPush distributors, Web Push
 (Firefox), NextPush and the OpenPush API. Undelivered messages wait in a
 small database.
 .
 This package runs it as a sandboxed systemd service listening on port
 8080; users and phones are added with the openpush command.
EOF
(cd "$D" && find . -type f ! -path './DEBIAN/*' -printf '%P\0' | LC_ALL=C sort -z |
  xargs -0 md5sum) > "$D/DEBIAN/md5sums"
chmod 0644 "$D/DEBIAN/control" "$D/DEBIAN/conffiles" "$D/DEBIAN/md5sums"
find "$D" -depth -exec touch -h -d "@$EPOCH" {} +

DEB=$OUT/openpush_${DEBVER}_$DEBARCH.deb
SOURCE_DATE_EPOCH=$EPOCH dpkg-deb --root-owner-group -Zxz --build "$D" "$DEB" >/dev/null
echo "deb $T: $DEB ($(stat -c %s "$DEB") bytes, binary $(stat -c %s "$BIN") bytes)"
