#!/usr/bin/env bash
# openwrt/test-feed.sh — check a feed made by scripts/build-feed.sh, as a router would use it.
#
# Usage: openwrt/test-feed.sh FEEDDIR
#   For every architecture in FEEDDIR/apk and FEEDDIR/ipk:
#   - apk: with the feed's public key in the scratch root's /etc/apk/keys/, `apk add
#     openpush` from file://FEEDDIR/apk/ARCH/packages.adb installs the package of that
#     architecture and the version the index names; without the key the index is refused
#     (UNTRUSTED signature) and nothing installs,
#   - opkg: Packages.sig verifies against the feed's usign key (signify-openbsd, the same
#     Ed25519 format), Packages.gz is Packages, every entry's Filename, Size and SHA256sum
#     match its .ipk, the entry's Architecture is the directory's, and every .ipk is indexed.
#   - luci-app-openpush is in every index (apk and opkg).
# Package scripts are not run here (openwrt/test-apk.sh runs them).
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
FEED=$(cd "${1:?usage: openwrt/test-feed.sh FEEDDIR}" && pwd)
APK=$("$ROOT/scripts/apk-tools.sh")
passed=0 failed=0
ok() { passed=$((passed + 1)); echo "ok: $*"; }
bad() { failed=$((failed + 1)); echo "FAIL: $*"; }
W=$(mktemp -d); trap 'rm -rf "$W"' EXIT

for f in keys/openpush-apk.pem keys/openpush-usign.pub keys/FINGERPRINTS; do
  [ -s "$FEED/$f" ] && ok "feed has $f" || bad "feed lacks $f"
done
arches=$(cd "$FEED/apk" && ls)
[ -n "$arches" ] && ok "feed has $(echo $arches | wc -w) apk architectures: $(echo $arches)" || bad "no architectures"
[ "$(cd "$FEED/ipk" && ls)" = "$arches" ] && ok "apk and ipk cover the same architectures" ||
  bad "ipk architectures differ: $(cd "$FEED/ipk" && ls | tr '\n' ' ')"

n_apk=0 n_ipk=0
for a in $arches; do
  # --- apk ---
  R=$W/root-$a
  mkdir -p "$R/etc/apk/keys"
  echo "$a" > "$R/etc/apk/arch"
  apk_r() { "$APK" --root "$R" --no-network --no-cache "$@"; }
  want=$(cd "$FEED/apk/$a" && ls openpush-*.apk | sed 's/\.apk$//')
  luci=$(cd "$FEED/apk/$a" && ls luci-app-openpush-*.apk | sed 's/\.apk$//')
  if apk_r --repository "file://$FEED/apk/$a/packages.adb" add --no-scripts --initdb openpush > "$W/untrusted.out" 2>&1; then
    bad "$a: apk installed from the feed without its key"
  elif grep -q 'UNTRUSTED signature' "$W/untrusted.out"; then :
  else bad "$a: without the key: $(cat "$W/untrusted.out")"; fi
  cp "$FEED/keys/openpush-apk.pem" "$R/etc/apk/keys/openpush-apk.pem"
  if apk_r --repository "file://$FEED/apk/$a/packages.adb" add --no-scripts --initdb openpush > "$W/add.out" 2>&1 &&
     apk_r list -I 2>/dev/null | grep -q "^$want $a "; then
    n_apk=$((n_apk + 1))
  else bad "$a: apk add openpush from the signed feed: $(cat "$W/add.out")"; fi
  [ -x "$R/usr/bin/openpush" ] || bad "$a: /usr/bin/openpush missing after install"
  # luci-app-openpush: in the index, noarch, depending on luci-base (not in this feed).
  apk_r --repository "file://$FEED/apk/$a/packages.adb" search -v luci-app-openpush 2>/dev/null |
    grep -q "^$luci " || bad "$a: $luci not in the index"

  # --- opkg ---
  P=$FEED/ipk/$a
  if signify-openbsd -V -q -p "$FEED/keys/openpush-usign.pub" -m "$P/Packages" -x "$P/Packages.sig"; then :
  else bad "$a: Packages.sig does not verify"; fi
  cmp -s <(gzip -dc "$P/Packages.gz") "$P/Packages" || bad "$a: Packages.gz is not Packages"
  indexed=0
  while IFS='|' read -r file size sum arch; do
    indexed=$((indexed + 1))
    [ -f "$P/$file" ] || { bad "$a: Packages names a missing $file"; continue; }
    [ "$size" = "$(stat -c %s "$P/$file")" ] || bad "$a: $file size"
    [ "$sum" = "$(sha256sum "$P/$file" | cut -d' ' -f1)" ] || bad "$a: $file SHA256sum"
    [ "$arch" = "$a" ] || [ "$arch" = all ] || bad "$a: $file Architecture $arch"
  done < <(awk -F': ' '/^Filename:/{f=$2} /^Size:/{s=$2} /^SHA256sum:/{h=$2} /^Architecture:/{r=$2}
                       /^$/{ if (f) print f "|" s "|" h "|" r; f="" }' "$P/Packages")
  grep -q '^Package: luci-app-openpush$' "$P/Packages" || bad "$a: luci-app-openpush not in Packages"
  [ "$indexed" = "$(ls "$P"/*.ipk | wc -l)" ] && [ "$indexed" -gt 0 ] || bad "$a: $indexed of $(ls "$P"/*.ipk | wc -l) ipks indexed"
  n_ipk=$((n_ipk + indexed))
done
[ "$n_apk" = "$(echo $arches | wc -w)" ] &&
  ok "apk add openpush from every signed index ($n_apk), refused without the key" ||
  bad "apk installs: $n_apk of $(echo $arches | wc -w)"
[ "$n_ipk" -gt 0 ] && ok "opkg indexes: $n_ipk packages, signatures, sizes and checksums" || bad "opkg indexes"

echo "feed: $passed passed, $failed failed"
[ "$failed" = 0 ]
