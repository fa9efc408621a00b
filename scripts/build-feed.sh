#!/usr/bin/env bash
# build-feed.sh — an OpenWrt package feed for openpush: a plain directory that any static
# web server can serve, with signed indexes for apk (OpenWrt 25.12 and later) and opkg (24.10).
#
# Usage: scripts/build-feed.sh OUTDIR [TARGET...]
#   TARGETs default to every target whose binary is in target/cross/out/ (cross-build.sh).
#   Each binary is packaged for every OpenWrt architecture that runs it (openwrt_feed_arches
#   in scripts/openwrt-pkg.sh); where two targets fit one architecture, the later one wins.
#   FEED_KEY_DIR (default target/feed-keys) holds the feed's signing keys: apk.key (ECDSA
#   P-256, PEM) and usign.sec/usign.pub (Ed25519, signify format, as OpenWrt's usign);
#   missing keys are made there, which suits a test feed. A published feed keeps its keys
#   and never regenerates them: routers trust the public halves.
#   VERSION / RELEASE as for build-apk.sh and build-ipk.sh.
# Output (OUTDIR is emptied first):
#   apk/ARCH/packages.adb              apk index, signed (apk mkndx --sign-key)
#   apk/ARCH/openpush-V-rR.apk, luci-app-openpush-V-rR.apk (noarch, in every index)
#   ipk/ARCH/Packages, Packages.gz     opkg index (as OpenWrt's ipkg-make-index.sh writes it)
#   ipk/ARCH/Packages.sig              usign signature of Packages
#   ipk/ARCH/openpush_V-R_ARCH.ipk, luci-app-openpush_V-R_all.ipk
#   keys/openpush-apk.pem              public key for /etc/apk/keys/ (apk)
#   keys/openpush-usign.pub            public key for `opkg-key add` (opkg)
#   keys/FINGERPRINTS                  their sha256sums, to compare before trusting them
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
. "$ROOT/scripts/openwrt-pkg.sh"
case ${1:-} in
  -h|--help|help) sed -n '/^# Usage:/,/^set -euo/{/^set -euo/d;s/^# \{0,1\}//;p}' "$0"; exit 0 ;;
  -*|'') echo "usage: scripts/build-feed.sh OUTDIR [TARGET...]" >&2; exit 2 ;;
esac
OUT=$1; shift
export CROSS_DIR=${CROSS_DIR:-$ROOT/target/cross}
KEYS=${FEED_KEY_DIR:-$ROOT/target/feed-keys}
TARGETS=("$@")
if [ ${#TARGETS[@]} = 0 ]; then
  for t in arm-unknown-linux-musleabihf $OPENWRT_TARGETS; do
    [ -x "$CROSS_DIR/out/$t/openpush" ] && [[ " ${TARGETS[*]} " != *" $t "* ]] && TARGETS+=("$t")
  done
  # ARMv7 routers get the ARMv7 (Thumb-2) build when there is one: it comes after ARMv6.
  [ ${#TARGETS[@]} -gt 0 ] || { echo "build-feed.sh: no binaries in $CROSS_DIR/out" >&2; exit 1; }
fi
APK_BIN=$("$ROOT/scripts/apk-tools.sh")
command -v signify-openbsd >/dev/null || {
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq signify-openbsd >/dev/null
}

# --- keys ---
mkdir -p "$KEYS"
if [ ! -s "$KEYS/apk.key" ]; then
  echo "build-feed.sh: making a new apk signing key in $KEYS/apk.key" >&2
  (umask 077 && openssl ecparam -name prime256v1 -genkey -noout -out "$KEYS/apk.key")
fi
if [ ! -s "$KEYS/usign.sec" ]; then
  echo "build-feed.sh: making a new usign key pair in $KEYS/usign.{sec,pub}" >&2
  rm -f "$KEYS/usign.pub"
  (umask 077 && signify-openbsd -G -n -c "openpush feed" -p "$KEYS/usign.pub" -s "$KEYS/usign.sec")
fi

rm -rf "$OUT"
mkdir -p "$OUT/apk" "$OUT/ipk" "$OUT/keys"
OUT=$(cd "$OUT" && pwd)
openssl ec -in "$KEYS/apk.key" -pubout -out "$OUT/keys/openpush-apk.pem" 2>/dev/null
cp "$KEYS/usign.pub" "$OUT/keys/openpush-usign.pub"
# usign names a key by its 8-byte key number (bytes 2-9 of the decoded key), in hex.
usign_id=$(sed -n 2p "$KEYS/usign.pub" | base64 -d | od -An -tx1 -j2 -N8 | tr -d ' \n')
{
  echo "# sha256sum of each public key, as \`sha256sum\` prints it on the router; compare before trusting"
  (cd "$OUT/keys" && sha256sum openpush-apk.pem openpush-usign.pub)
  echo "# usign key id of openpush-usign.pub (opkg-key installs it as /etc/opkg/keys/$usign_id)"
  echo "$usign_id"
} > "$OUT/keys/FINGERPRINTS"

# --- packages: one target per architecture (the last given wins) ---
declare -A ARCH_TARGET
for t in "${TARGETS[@]}"; do
  arches=$(openwrt_feed_arches "$t") || { echo "build-feed.sh: unknown target $t" >&2; exit 2; }
  [ -x "$CROSS_DIR/out/$t/openpush" ] || { echo "build-feed.sh: no binary for $t" >&2; exit 1; }
  for a in $arches; do ARCH_TARGET[$a]=$t; done
done
# luci-app-openpush is architecture-independent: the same package goes into every index.
luci=$("$ROOT/scripts/build-luci.sh")
LUCI_APK=$(echo "$luci" | sed -n 's/^apk [^:]*: \(.*\.apk\) .*/\1/p')
LUCI_IPK=$(echo "$luci" | sed -n 's/^ipk [^:]*: \(.*\.ipk\) .*/\1/p')
for a in $(printf '%s\n' "${!ARCH_TARGET[@]}" | LC_ALL=C sort); do
  t=${ARCH_TARGET[$a]} bin=$CROSS_DIR/out/${ARCH_TARGET[$a]}/openpush
  mkdir -p "$OUT/apk/$a" "$OUT/ipk/$a"
  apk_line=$(OPENWRT_ARCH=$a "$ROOT/scripts/build-apk.sh" "$t" "$bin")
  ipk_line=$(OPENWRT_ARCH=$a "$ROOT/scripts/build-ipk.sh" "$t" "$bin")
  mv "$(echo "$apk_line" | sed -n 's/^apk [^:]*: \(.*\.apk\) .*/\1/p')" "$OUT/apk/$a/"
  mv "$(echo "$ipk_line" | sed -n 's/^ipk [^:]*: \(.*\.ipk\) .*/\1/p')" "$OUT/ipk/$a/"
  cp "$LUCI_APK" "$OUT/apk/$a/" && cp "$LUCI_IPK" "$OUT/ipk/$a/"

  # apk: the index, signed; apk fetches ${name}-${version}.apk beside it.
  (cd "$OUT/apk/$a" && "$APK_BIN" mkndx --allow-untrusted --sign-key "$KEYS/apk.key" \
    --output packages.adb ./*.apk >/dev/null)

  # opkg: each package's control file plus Filename, Size and SHA256sum.
  for ipk in "$OUT/ipk/$a"/*.ipk; do
    tar -xzOf "$ipk" ./control.tar.gz | tar -xzOf - ./control | sed -n '/^Description:/q;p'
    echo "Filename: ${ipk##*/}"
    echo "Size: $(stat -c %s "$ipk")"
    echo "SHA256sum: $(sha256sum "$ipk" | cut -d' ' -f1)"
    tar -xzOf "$ipk" ./control.tar.gz | tar -xzOf - ./control | sed -n '/^Description:/,$p'
    echo
  done > "$OUT/ipk/$a/Packages"
  gzip -9nc "$OUT/ipk/$a/Packages" > "$OUT/ipk/$a/Packages.gz"
  signify-openbsd -S -s "$KEYS/usign.sec" -m "$OUT/ipk/$a/Packages" -x "$OUT/ipk/$a/Packages.sig"
  echo "feed $a ($t): $(cd "$OUT/apk/$a" && echo *.apk), $(cd "$OUT/ipk/$a" && echo *.ipk)"
done
echo "feed: $OUT ($(du -sh "$OUT" | cut -f1), ${#ARCH_TARGET[@]} architectures)"
