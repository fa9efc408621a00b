#!/usr/bin/env bash
# build-luci.sh — package luci-app-openpush (openwrt/luci-app-openpush: the LuCI view, its
# menu entry and ACL) as an architecture-independent .apk and .ipk, as the LuCI feed's
# luci.mk would, without the SDK.
#
# Usage: scripts/build-luci.sh
#   VERSION / RELEASE as for build-apk.sh (default: Cargo.toml's version, release 1).
# Output: target/cross/apk/noarch/luci-app-openpush-VERSION-rRELEASE.apk and
#   target/cross/ipk/luci-app-openpush_VERSION-RELEASE_all.ipk. Both depend on luci-base and
#   openpush; installing reloads rpcd (for the ACL) and clears LuCI's caches.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
. "$ROOT/scripts/openwrt-pkg.sh"
case ${1:-} in -h|--help|help) sed -n '/^# Usage:/,/^set -euo/{/^set -euo/d;s/^# \{0,1\}//;p}' "$0"; exit 0 ;; esac
SRC=$ROOT/openwrt/luci-app-openpush
CROSS_DIR=${CROSS_DIR:-$ROOT/target/cross}
VERSION=$(openwrt_version)
RELEASE=${RELEASE:-1}
APK_BIN=$("$ROOT/scripts/apk-tools.sh")
DESC="LuCI page for openpush: its settings, the service's state, start, stop and start at boot."
W=$(mktemp -d); trap 'rm -rf "$W"' EXIT
D=$W/data
umask 022

# --- files, as luci.mk installs them ---
mkdir -p "$D/www"
cp -r "$SRC/htdocs/." "$D/www/"
cp -r "$SRC/root/." "$D/"
find "$D" -type d -exec chmod 0755 {} + && find "$D" -type f -exec chmod 0644 {} +

# LuCI's own part of the install hook (luci.mk): on a live router, drop LuCI's caches and
# have rpcd read the new ACL.
LUCI_POSTINST='[ -n "${IPKG_INSTROOT}" ] || { rm -f /tmp/luci-indexcache.*; rm -rf /tmp/luci-modulecache/; killall -HUP rpcd 2>/dev/null; exit 0; }'

# --- .apk ---
A=$W/apk && cp -a "$D" "$A" && mkdir -p "$A/lib/apk/packages" "$W/s"
(cd "$A" && find . \( -type f -o -type l \) -printf '/%P\n' | LC_ALL=C sort) > "$W/list"
mv "$W/list" "$A/lib/apk/packages/luci-app-openpush.list"
chmod 0644 "$A/lib/apk/packages/luci-app-openpush.list"
head='[ -s ${IPKG_INSTROOT}/lib/functions.sh ] || exit 0
. ${IPKG_INSTROOT}/lib/functions.sh
export root="${IPKG_INSTROOT}"
export pkgname="luci-app-openpush"'
printf '#!/bin/sh\n[ "${IPKG_NO_SCRIPT}" = "1" ] && exit 0\n%s\nadd_group_and_user\ndefault_postinst\n%s\n' \
  "$head" "$LUCI_POSTINST" > "$W/s/post-install"
{ echo '#!/bin/sh'; echo 'export PKG_UPGRADE=1'; sed 1d "$W/s/post-install"; } > "$W/s/post-upgrade"
printf '#!/bin/sh\n%s\ndefault_prerm\n' "$head" > "$W/s/pre-deinstall"
chmod 0755 "$W/s"/*
mkdir -p "$CROSS_DIR/apk/noarch" "$CROSS_DIR/ipk"
APKFILE=$CROSS_DIR/apk/noarch/luci-app-openpush-$VERSION-r$RELEASE.apk
FAKEROOT=(); [ "$(id -u)" = 0 ] || FAKEROOT=(fakeroot)
SOURCE_DATE_EPOCH=${SOURCE_DATE_EPOCH:-0} "${FAKEROOT[@]}" "$APK_BIN" mkpkg \
  --info "name:luci-app-openpush" --info "version:$VERSION-r$RELEASE" \
  --info "description:$DESC" --info "arch:noarch" --info "license:MIT" \
  --info "origin:openpush" --info "url:https://github.com/openpush/openpush" \
  --info "maintainer:openpush maintainers" --info "depends:luci-base openpush" \
  --script "post-install:$W/s/post-install" --script "post-upgrade:$W/s/post-upgrade" \
  --script "pre-deinstall:$W/s/pre-deinstall" \
  --files "$A" --output "$APKFILE"
echo "apk luci-app-openpush: $APKFILE ($(stat -c %s "$APKFILE") bytes)"

# --- .ipk ---
C=$W/control && mkdir -p "$C"
cat > "$C/control" <<EOF
Package: luci-app-openpush
Version: $VERSION-$RELEASE
Depends: libc, luci-base, openpush
Source: openwrt/luci-app-openpush
SourceName: luci-app-openpush
License: MIT
Section: luci
Architecture: all
Installed-Size: $(du -sb "$D" | cut -f1)
Description: $DESC
EOF
printf '#!/bin/sh\n[ "${IPKG_NO_SCRIPT}" = "1" ] && exit 0\n[ -s ${IPKG_INSTROOT}/lib/functions.sh ] || exit 0\n. ${IPKG_INSTROOT}/lib/functions.sh\ndefault_postinst $0 $@\n' > "$C/postinst"
printf '#!/bin/sh\n[ -s ${IPKG_INSTROOT}/lib/functions.sh ] || exit 0\n. ${IPKG_INSTROOT}/lib/functions.sh\ndefault_prerm $0 $@\n' > "$C/prerm"
printf '#!/bin/sh\n%s\n' "$LUCI_POSTINST" > "$C/postinst-pkg"
chmod 0755 "$C/postinst" "$C/prerm" "$C/postinst-pkg"
tgz() { tar --format=gnu --numeric-owner --owner=0 --group=0 --sort=name \
  --mtime="@${SOURCE_DATE_EPOCH:-0}" -C "$1" -cf - . | gzip -9n > "$2"; }
tgz "$D" "$W/data.tar.gz" && tgz "$C" "$W/control.tar.gz" && echo 2.0 > "$W/debian-binary"
IPK=$CROSS_DIR/ipk/luci-app-openpush_$VERSION-${RELEASE}_all.ipk
tar --format=gnu --numeric-owner --owner=0 --group=0 --mtime="@${SOURCE_DATE_EPOCH:-0}" \
  -C "$W" -cf - ./debian-binary ./data.tar.gz ./control.tar.gz | gzip -9n > "$IPK"
echo "ipk luci-app-openpush: $IPK ($(stat -c %s "$IPK") bytes)"
