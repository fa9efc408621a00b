#!/usr/bin/env bash
# openwrt/check-makefile.sh — check the packages-feed Makefile (openwrt/openpush/Makefile)
# without an OpenWrt SDK, which cannot be fetched here: what can be checked, is.
#
# Usage: openwrt/check-makefile.sh
#   1. versions: PKG_VERSION is Cargo.toml's; PKG_RELEASE is a positive integer;
#      "PKG_VERSION-rPKG_RELEASE" (what OpenWrt 25.12 gives apk) passes `apk version --check`
#      and "PKG_VERSION-PKG_RELEASE" (opkg) is a plain dotted version,
#   2. GNU make reads it (under stand-ins for rules.mk, package.mk and the feed's
#      rust-package.mk): it includes rust-package.mk from the feed (../../lang/rust), calls
#      RustBinPackage and BuildPackage, and builds on rust/host,
#   3. its install section, run with the stand-ins' INSTALL_* (OpenWrt's modes), lays out the
#      same files with the same modes as scripts/openwrt-pkg.sh's openwrt_stage (the static
#      .ipk and .apk), its conffiles, USERID and postinst are theirs, and the 32-bit MIPS
#      timer fix is in the rustflags.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
. "$ROOT/scripts/openwrt-pkg.sh"
MK=$ROOT/openwrt/openpush/Makefile
APK=$("$ROOT/scripts/apk-tools.sh")
passed=0 failed=0
ok() { passed=$((passed + 1)); echo "ok: $*"; }
bad() { failed=$((failed + 1)); echo "FAIL: $*"; }
W=$(mktemp -d); trap 'rm -rf "$W"' EXIT

# --- 1. versions ---
field() { sed -n "s/^$1:=\(.*\)/\1/p" "$MK" | head -1; }
V=$(field PKG_VERSION) R=$(field PKG_RELEASE)
CARGO_V=$(sed -n 's/^version *= *"\(.*\)"/\1/p' "$ROOT/Cargo.toml" | head -1)
[ "$V" = "$CARGO_V" ] && ok "PKG_VERSION $V is Cargo.toml's" || bad "PKG_VERSION '$V', Cargo.toml '$CARGO_V'"
[[ $R =~ ^[1-9][0-9]*$ ]] && ok "PKG_RELEASE $R is a positive integer" || bad "PKG_RELEASE '$R'"
"$APK" version --check "$V-r$R" >/dev/null && ok "apk version --check $V-r$R" || bad "apk rejects '$V-r$R'"
[[ $V =~ ^[0-9]+(\.[0-9]+)*$ ]] && ok "PKG_VERSION is dotted numbers (opkg: $V-$R)" || bad "PKG_VERSION '$V'"

# --- 2. stand-ins for the OpenWrt build system ---
mkdir -p "$W/top/include" "$W/feed/lang/rust" "$W/feed/net" "$W/dest" "$W/pkg-install/bin"
cp -r "$ROOT/openwrt/openpush" "$W/feed/net/openpush"
echo '#!/bin/sh' > "$W/pkg-install/bin/openpush" && chmod 0755 "$W/pkg-install/bin/openpush"
cat > "$W/top/rules.mk" <<'EOF'
INCLUDE_DIR:=$(TOPDIR)/include
INSTALL_DIR:=install -d -m0755
INSTALL_BIN:=install -m0755
INSTALL_DATA:=install -m0644
INSTALL_CONF:=install -m0600
ARCH?=mipsel
EOF
cat > "$W/top/include/package.mk" <<'EOF'
PKG_INSTALL_DIR:=$(STUB_PKG_INSTALL)
define BuildPackage
$(eval $(Package/$(1)))
all:
	@echo 'BUILDPACKAGE $(1)'
	@echo 'USERID $(USERID)'
	@echo 'DEPENDS $(DEPENDS)'
	@echo 'BUILD_DEPENDS $(PKG_BUILD_DEPENDS)'
	@echo 'RUSTFLAGS $(CARGO_RUSTFLAGS)'
	@echo '$(strip $(Package/$(1)/conffiles))' > $(STUB_OUT)/conffiles
	$(call Package/$(1)/install,$(STUB_DEST))
endef
EOF
cat > "$W/feed/lang/rust/rust-package.mk" <<'EOF'
RUST_ARCH_DEPENDS:=@(aarch64||arm||mips||mipsel||x86_64)
CARGO_RUSTFLAGS:=
define RustBinPackage
RUSTBIN_$(1):=1
$$(info RUSTBINPACKAGE $(1))
endef
EOF
run_make() { # run_make ARCH
  make -s -C "$W/feed/net/openpush" TOPDIR="$W/top" ARCH="$1" STUB_DEST="$W/dest" \
    STUB_OUT="$W" STUB_PKG_INSTALL="$W/pkg-install" all
}
if run_make mipsel > "$W/make.out" 2> "$W/make.err"; then ok "GNU make reads the Makefile and runs its install section"
else bad "make: $(cat "$W/make.err" "$W/make.out")"; fi
grep -qx 'RUSTBINPACKAGE openpush' "$W/make.out" && ok "calls RustBinPackage (the feed's rust-package.mk)" ||
  bad "no RustBinPackage: $(cat "$W/make.out")"
grep -q '^include \.\./\.\./lang/rust/rust-package\.mk$' "$MK" &&
  ok "includes the feed's lang/rust/rust-package.mk" || bad "rust-package.mk include"
grep -qx 'BUILDPACKAGE openpush' "$W/make.out" && ok "calls BuildPackage" || bad "no BuildPackage"
grep -q '^DEPENDS .*@(aarch64' "$W/make.out" && ok "DEPENDS has the feed's RUST_ARCH_DEPENDS" || bad "DEPENDS: $(grep ^DEPENDS "$W/make.out")"
grep -q '^BUILD_DEPENDS .*rust/host' "$W/make.out" && ok "PKG_BUILD_DEPENDS has rust/host" || bad "no rust/host"
grep -qx "USERID $OPENWRT_USERID" "$W/make.out" &&
  ok "USERID is the packages' ($OPENWRT_USERID)" || bad "USERID differs from $OPENWRT_USERID"
grep -q '^RUSTFLAGS.*--cfg fix_y2038' "$W/make.out" && ok "mipsel: --cfg fix_y2038 in CARGO_RUSTFLAGS" ||
  bad "mipsel rustflags: $(grep RUSTFLAGS "$W/make.out")"
rm -rf "$W/dest" && mkdir "$W/dest"
run_make aarch64 > "$W/make2.out" 2>&1 || true
grep -q '^RUSTFLAGS.*fix_y2038' "$W/make2.out" && bad "aarch64 gets the MIPS cfg" || ok "aarch64: no MIPS cfg"

# --- 3. the same package as the static .ipk/.apk ---
rm -rf "$W/dest" && mkdir "$W/dest"
run_make mipsel > /dev/null 2>&1 || true
mkdir -p "$W/stage" && openwrt_stage "$W/stage" "$W/pkg-install/bin/openpush"
tree() { (cd "$1" && find . \( -type f -o -type l \) -printf '%P %m\n' | LC_ALL=C sort); }
if [ "$(tree "$W/dest")" = "$(tree "$W/stage")" ]; then
  ok "install section: the static packages' files and modes ($(tree "$W/dest" | wc -l) files)"
else
  bad "install section differs: $(diff <(tree "$W/dest") <(tree "$W/stage") | tr '\n' ' ')"
fi
for f in $(tree "$W/stage" | cut -d' ' -f1); do
  case $f in usr/bin/openpush) continue ;; esac
  cmp -s "$W/dest/$f" "$W/stage/$f" || bad "install section: $f differs"
done
[ "$(grep -v '^$' "$W/conffiles" 2>/dev/null)" = /etc/config/openpush ] &&
  ok "conffiles: /etc/config/openpush" || bad "conffiles: $(cat "$W/conffiles" 2>/dev/null)"
postinst=$(sed -n '/^define Package\/openpush\/postinst$/,/^endef$/p' "$MK" | sed '1d;$d;s/\$\$/$/g')
[ "$postinst" = "$(printf '#!/bin/sh\n%s' "$OPENWRT_POSTINST_PKG")" ] &&
  ok "postinst is the static packages' (restart a running server)" || bad "postinst: $postinst"

echo "openwrt Makefile: $passed passed, $failed failed"
[ "$failed" = 0 ]
