#!/usr/bin/env bash
# apk-tools.sh — print the path of an apk-tools v3 `apk` (OpenWrt 25.12's package manager),
# building it if needed. build-apk.sh, build-feed.sh and the package tests call it.
#
# Usage: scripts/apk-tools.sh
# Picks, in order: $APK if set; an `apk` on PATH that is version 3; target/apk-tools/ from an
# earlier run; else builds apk-tools 3.0.6 from source in a few seconds (Debian's meson,
# ninja-build, libssl-dev, zlib1g-dev, libzstd-dev; installed when running as root). The
# source tarball: $APK_TOOLS_TARBALL, else ../shared/vendor/apk-tools-3.0.6.tar.gz beside the
# checkout (as CI lays it out). apk-tools is GPL-2.0, a build tool only: nothing of it goes
# into a package.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
OUT=${APK_TOOLS_DIR:-$ROOT/target/apk-tools}
is_v3() { "$1" --version 2>/dev/null | grep -q '^apk-tools 3\.'; }

if [ -n "${APK:-}" ]; then
  is_v3 "$APK" || { echo "apk-tools.sh: APK=$APK is not apk-tools 3" >&2; exit 1; }
  echo "$APK"; exit 0
fi
if command -v apk >/dev/null && is_v3 "$(command -v apk)"; then command -v apk; exit 0; fi
BIN=$OUT/apk-tools-3.0.6/build/src/apk
if [ -x "$BIN" ] && is_v3 "$BIN"; then echo "$BIN"; exit 0; fi

TARBALL=${APK_TOOLS_TARBALL:-$ROOT/../shared/vendor/apk-tools-3.0.6.tar.gz}
[ -f "$TARBALL" ] || {
  echo "apk-tools.sh: no apk-tools 3 found; set APK=/path/to/apk (v3) or" \
    "APK_TOOLS_TARBALL=/path/to/apk-tools-3.0.6.tar.gz" >&2
  exit 1
}
missing=()
for p in meson ninja-build pkg-config libssl-dev zlib1g-dev libzstd-dev; do
  dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  [ "$(id -u)" = 0 ] || { echo "apk-tools.sh: missing Debian packages: ${missing[*]}" >&2; exit 1; }
  export DEBIAN_FRONTEND=noninteractive
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2 ||
    { apt-get update -qq >&2 && apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2; }
fi
mkdir -p "$OUT"
rm -rf "$OUT/apk-tools-3.0.6"
tar -xzf "$TARBALL" -C "$OUT"
(
  cd "$OUT/apk-tools-3.0.6"
  meson setup build -Ddocs=disabled -Dlua=disabled -Dpython=disabled -Dtests=disabled >&2
  ninja -C build >&2
)
is_v3 "$BIN" || { echo "apk-tools.sh: the build did not give a working apk" >&2; exit 1; }
echo "$BIN"
