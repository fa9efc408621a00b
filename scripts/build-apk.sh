#!/usr/bin/env bash
# build-apk.sh — package a cross-built openpush as an OpenWrt .apk (OpenWrt 25.12 and later,
# apk-tools v3) without the SDK.
#
# Usage: scripts/build-apk.sh TARGET [BINARY]
#   BINARY defaults to target/cross/out/TARGET/openpush (built by cross-build.sh if missing).
#   OPENWRT_ARCH overrides the package architecture; it must be the router's own
#   (`cat /etc/apk/arch`; the defaults fit the common SoCs, as for build-ipk.sh).
#   VERSION / RELEASE override the package version (default: Cargo.toml's, release 1);
#   the .apk's version is VERSION-rRELEASE, as OpenWrt writes it.
#   APK: an apk-tools v3 binary (default: scripts/apk-tools.sh finds or builds one).
# Output: target/cross/apk/ARCH/openpush-VERSION-rRELEASE.apk; on the router:
#   apk add --allow-untrusted /tmp/openpush-*.apk
#
# The package is what OpenWrt's build system (include/package-pack.mk) makes with
# `apk mkpkg`: the same files as the .ipk, plus /lib/apk/packages/openpush.{list,rusers,
# conffiles,conffiles_static}, which the router's scripts read (default_postinst creates the
# user from .rusers and enables the init scripts in .list; sysupgrade keeps the changed
# conffiles), and the post-install, post-upgrade and pre-deinstall scripts that call the
# router's /lib/functions.sh: install creates user openpush, enables and starts the service;
# upgrade starts it again without re-enabling it (a disabled service stays disabled);
# removal stops and disables it. /etc/config/openpush is under /etc, which apk protects: a
# changed one is kept across upgrades (the new default lands beside it as .apk-new). The
# database in /etc/openpush/ belongs to no package, so no upgrade or removal touches it.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
. "$ROOT/scripts/openwrt-pkg.sh"
openwrt_args "$0" "$@"
ARCH=${OPENWRT_ARCH:-$ARCH}
CROSS_DIR=${CROSS_DIR:-$ROOT/target/cross}
BIN=${2:-$CROSS_DIR/out/$T/openpush}
VERSION=$(openwrt_version)
RELEASE=${RELEASE:-1}
PKGVER=$VERSION-r$RELEASE
APK_BIN=$("$ROOT/scripts/apk-tools.sh")
"$APK_BIN" version --check "$PKGVER" >/dev/null ||
  { echo "build-apk.sh: '$PKGVER' is not a valid apk version" >&2; exit 2; }
[ -x "$BIN" ] || "$ROOT/scripts/cross-build.sh" "$T"

OUT=$CROSS_DIR/apk/$ARCH
mkdir -p "$OUT"
W=$(mktemp -d); trap 'rm -rf "$W"' EXIT
D=$W/data S=$W/scripts M=$D/lib/apk/packages
mkdir -p "$S" "$M"
openwrt_stage "$D" "$BIN"

# --- the package database entries the router's scripts read, in package-pack.mk's order:
# .rusers, then .list (every file and link so far, so not .list and .conffiles*), then the
# conffiles with their checksums as shipped.
echo "$OPENWRT_USERID" > "$M/openpush.rusers"
(cd "$D" && find . \( -type f -o -type l \) -printf '/%P\n' | LC_ALL=C sort) > "$W/list"
mv "$W/list" "$M/openpush.list"
echo /etc/config/openpush > "$M/openpush.conffiles"
while read -r f; do
  echo "$f $(sha256sum "$D$f" | cut -d' ' -f1)"
done < "$M/openpush.conffiles" > "$M/openpush.conffiles_static"
chmod 0644 "$M"/openpush.*

# --- scripts: the router's standard hooks, then openpush's own part ---
hook_head() { # hook_head: source the router's functions, as its standard hooks do
  cat <<'EOF'
[ -s ${IPKG_INSTROOT}/lib/functions.sh ] || exit 0
. ${IPKG_INSTROOT}/lib/functions.sh
export root="${IPKG_INSTROOT}"
export pkgname="openpush"
EOF
}
{
  echo '#!/bin/sh'
  echo '[ "${IPKG_NO_SCRIPT}" = "1" ] && exit 0'
  hook_head
  echo add_group_and_user
  echo default_postinst
  echo "$OPENWRT_POSTINST_PKG"
} > "$S/post-install"
{ echo '#!/bin/sh'; echo 'export PKG_UPGRADE=1'; sed 1d "$S/post-install"; } > "$S/post-upgrade"
{ echo '#!/bin/sh'; hook_head; echo default_prerm; } > "$S/pre-deinstall"
chmod 0755 "$S"/*

APKFILE=$OUT/openpush-$PKGVER.apk
# Files owned by root whoever builds (OpenWrt runs mkpkg under fakeroot too).
FAKEROOT=()
[ "$(id -u)" = 0 ] || FAKEROOT=(fakeroot)
SOURCE_DATE_EPOCH=${SOURCE_DATE_EPOCH:-0} "${FAKEROOT[@]}" "$APK_BIN" mkpkg \
  --info "name:openpush" \
  --info "version:$PKGVER" \
  --info "description:$OPENWRT_DESCRIPTION" \
  --info "arch:$ARCH" \
  --info "license:MIT" \
  --info "origin:openpush" \
  --info "url:https://github.com/openpush/openpush" \
  --info "maintainer:openpush maintainers" \
  --script "post-install:$S/post-install" \
  --script "post-upgrade:$S/post-upgrade" \
  --script "pre-deinstall:$S/pre-deinstall" \
  --files "$D" \
  --output "$APKFILE"
echo "apk $T: $APKFILE ($(stat -c %s "$APKFILE") bytes, binary $(stat -c %s "$BIN") bytes)"
