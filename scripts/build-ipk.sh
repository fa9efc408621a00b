#!/usr/bin/env bash
# build-ipk.sh — package a cross-built openpush as an OpenWrt .ipk without the SDK.
#
# Usage: scripts/build-ipk.sh TARGET [BINARY]
#   BINARY defaults to target/cross/out/TARGET/openpush (built by cross-build.sh if missing).
#   OPENWRT_ARCH overrides the package architecture; it must be one that `opkg
#   print-architecture` lists on the router (the defaults fit the common SoCs).
#   VERSION / RELEASE override the package version (default: Cargo.toml's, release 1).
# Output: target/cross/ipk/openpush_VERSION-RELEASE_ARCH.ipk; install on the router with
#   opkg install /tmp/openpush_*.ipk
#
# The layout is what OpenWrt's own ipkg-build makes: a gzip'd tar of ./debian-binary,
# ./data.tar.gz and ./control.tar.gz (opkg also accepts an ar archive). The control file
# carries `Require-User:`, and postinst/prerm are OpenWrt's standard ones, so opkg creates
# the openpush user and enables the init script exactly as for a feed package. The binary
# is static, so the package depends on nothing.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
. "$ROOT/scripts/openwrt-pkg.sh"
openwrt_args "$0" "$@"
CROSS_DIR=${CROSS_DIR:-$ROOT/target/cross}
BIN=${2:-$CROSS_DIR/out/$T/openpush}
ARCH=${OPENWRT_ARCH:-$ARCH}
VERSION=$(openwrt_version)
RELEASE=${RELEASE:-1}
[ -x "$BIN" ] || "$ROOT/scripts/cross-build.sh" "$T"

OUT=$CROSS_DIR/ipk
mkdir -p "$OUT"
W=$(mktemp -d); trap 'rm -rf "$W"' EXIT
D=$W/data C=$W/control

# --- data: what lands on the router ---
openwrt_stage "$D" "$BIN"

# --- control ---
mkdir -p "$C"
size=$(du -sb "$D" | cut -f1)
cat > "$C/control" <<EOF
Package: openpush
Version: $VERSION-$RELEASE
Depends: libc
Source: openwrt/openpush
SourceName: openpush
License: MIT
Section: net
Require-User: $OPENWRT_USERID
Architecture: $ARCH
Installed-Size: $size
Description: $OPENWRT_DESCRIPTION
EOF
echo /etc/config/openpush > "$C/conffiles"
# OpenWrt's standard maintainer scripts: default_postinst creates Require-User's user and
# group, enables /etc/init.d/openpush and starts it, then sources postinst-pkg (openpush's own
# part: restart a running server so that an upgrade runs the new binary); default_prerm
# stops and disables it.
cat > "$C/postinst" <<'EOF'
#!/bin/sh
[ "${IPKG_NO_SCRIPT}" = "1" ] && exit 0
[ -s ${IPKG_INSTROOT}/lib/functions.sh ] || exit 0
. ${IPKG_INSTROOT}/lib/functions.sh
default_postinst $0 $@
EOF
cat > "$C/prerm" <<'EOF'
#!/bin/sh
[ -s ${IPKG_INSTROOT}/lib/functions.sh ] || exit 0
. ${IPKG_INSTROOT}/lib/functions.sh
default_prerm $0 $@
EOF
printf '#!/bin/sh\n%s\n' "$OPENWRT_POSTINST_PKG" > "$C/postinst-pkg"
chmod 0755 "$C/postinst" "$C/prerm" "$C/postinst-pkg"

# Reproducible tars owned by root, as ipkg-build makes them.
tgz() { # tgz DIR OUTFILE
  tar --format=gnu --numeric-owner --owner=0 --group=0 --sort=name \
    --mtime="@${SOURCE_DATE_EPOCH:-0}" -C "$1" -cf - . | gzip -9n > "$2"
}
tgz "$D" "$W/data.tar.gz"
tgz "$C" "$W/control.tar.gz"
echo 2.0 > "$W/debian-binary"
IPK=$OUT/openpush_${VERSION}-${RELEASE}_${ARCH}.ipk
tar --format=gnu --numeric-owner --owner=0 --group=0 --mtime="@${SOURCE_DATE_EPOCH:-0}" \
  -C "$W" -cf - ./debian-binary ./data.tar.gz ./control.tar.gz | gzip -9n > "$IPK"
echo "ipk $T: $IPK ($(stat -c %s "$IPK") bytes, binary $(stat -c %s "$BIN") bytes)"
