# openwrt-pkg.sh — sourced by build-ipk.sh and build-apk.sh: what both OpenWrt packages
# hold, so that the .ipk (OpenWrt 24.10, opkg) and the .apk (25.12 and later, apk-tools v3)
# install the same files with the same modes and run the same service hooks.

OPENWRT_TARGETS="mipsel-unknown-linux-musl mips-unknown-linux-musl aarch64-unknown-linux-musl
  armv7-unknown-linux-musleabihf arm-unknown-linux-musleabihf x86_64-unknown-linux-musl"
OPENWRT_FILES=$ROOT/openwrt/openpush/files
# Require-User: the uid/gid the init script's ujail and the database directory use.
OPENWRT_USERID=openpush=483:openpush=483
OPENWRT_DESCRIPTION="Self-hosted push server for a family's phones (ntfy app, UnifiedPush, Web Push, OpenPush API). Static build."

# openwrt_arch TARGET: the default package architecture (OPENWRT_ARCH overrides it).
# openwrt_usage SCRIPT: SCRIPT's header comment from "Usage:" to the blank comment line,
# and the targets.
openwrt_usage() {
  sed -n '/^# Usage:/,/^#$/{/^#$/d;s/^# \{0,1\}//;p}' "$1"
  echo "Targets: $(echo $OPENWRT_TARGETS | sed 's/ /, /g')."
}
# openwrt_args SCRIPT "$@": reads the command line of build-ipk.sh and build-apk.sh
# (TARGET [BINARY]) into T and ARCH; the usage for --help, and with exit 2 for a wrong call.
openwrt_args() {
  local script=$1 name; name=$(basename "$1"); shift
  case ${1:-} in
    -h|--help|help) openwrt_usage "$script"; exit 0 ;;
    -*) echo "$name: unknown option $1" >&2; openwrt_usage "$script" >&2; exit 2 ;;
    '') openwrt_usage "$script" >&2; exit 2 ;;
  esac
  [ $# -le 2 ] || { echo "$name: too many arguments" >&2; openwrt_usage "$script" >&2; exit 2; }
  T=$1
  ARCH=$(openwrt_arch "$T") || { echo "$name: unknown target $T" >&2; openwrt_usage "$script" >&2; exit 2; }
}

openwrt_arch() {
  case $1 in
    mipsel-unknown-linux-musl) echo mipsel_24kc ;;            # ramips mt7621, mt76x8
    mips-unknown-linux-musl) echo mips_24kc ;;                # ath79
    aarch64-unknown-linux-musl) echo aarch64_cortex-a53 ;;    # filogic, mvebu, Pi 3/4 builds
    armv7-unknown-linux-musleabihf) echo arm_cortex-a7_neon-vfpv4 ;;  # ipq40xx, Pi 2
    arm-unknown-linux-musleabihf) echo arm_arm1176jzf-s_vfp ;;         # bcm2708: Pi 1, Zero
    x86_64-unknown-linux-musl) echo x86_64 ;;
    *) return 1 ;;
  esac
}

# openwrt_version: Cargo.toml's version (VERSION overrides it).
openwrt_version() {
  echo "${VERSION:-$(sed -n 's/^version *= *"\(.*\)"/\1/p' "$ROOT/Cargo.toml" | head -1)}"
}

# openwrt_stage DIR BINARY: the files that land on the router, as the feed Makefile's
# Package/openpush/install puts them.
openwrt_stage() {
  install -D -m 0755 "$2" "$1/usr/bin/openpush"
  install -D -m 0755 "$OPENWRT_FILES/openpush.init" "$1/etc/init.d/openpush"
  install -D -m 0600 "$OPENWRT_FILES/openpush.config" "$1/etc/config/openpush"
  install -D -m 0644 "$OPENWRT_FILES/openpush.keep" "$1/lib/upgrade/keep.d/openpush"
}

# The part of the install hook that is openpush's own (the feed Makefile's
# Package/openpush/postinst): on a running router (not while an image is being built), a
# running server is restarted, so that an upgrade runs the new binary at once: procd keeps
# an instance whose command line did not change, so the standard hook's `start` would leave
# the old binary running. A service disabled in UCI (option enabled '0') is not running and
# stays stopped.
OPENWRT_POSTINST_PKG='[ -n "${IPKG_INSTROOT}" ] || { /etc/init.d/openpush running && /etc/init.d/openpush restart; } || true'

# openwrt_feed_arches TARGET: every OpenWrt package architecture whose routers run this
# target's static binary; the feed carries a package for each, so that `apk add openpush`
# finds one whatever the SoC's exact name (`cat /etc/apk/arch`; opkg: `opkg
# print-architecture`). The ARMv6 hard-float binary runs on every ARM core with a VFP (the
# vfp/neon names); soft-float ARM routers (arm926ej-s, xscale, fa526) need a build of their own.
openwrt_feed_arches() {
  case $1 in
    mipsel-unknown-linux-musl) echo mipsel_24kc mipsel_24kc_24kf mipsel_74kc mipsel_mips32 ;;
    mips-unknown-linux-musl) echo mips_24kc mips_4kec mips_mips32 ;;
    aarch64-unknown-linux-musl) echo aarch64_cortex-a53 aarch64_cortex-a72 aarch64_cortex-a76 aarch64_generic ;;
    armv7-unknown-linux-musleabihf)
      echo arm_cortex-a7_neon-vfpv4 arm_cortex-a7_vfpv4 arm_cortex-a9_vfpv3-d16 arm_cortex-a9_neon \
        arm_cortex-a15_neon-vfpv4 arm_cortex-a5_vfpv4 arm_cortex-a8_vfpv3 arm_cortex-a53_neon-vfpv4 ;;
    arm-unknown-linux-musleabihf)
      echo arm_arm1176jzf-s_vfp arm_cortex-a7_neon-vfpv4 arm_cortex-a7_vfpv4 arm_cortex-a9_vfpv3-d16 \
        arm_cortex-a9_neon arm_cortex-a15_neon-vfpv4 arm_cortex-a5_vfpv4 arm_cortex-a8_vfpv3 \
        arm_cortex-a53_neon-vfpv4 ;;
    x86_64-unknown-linux-musl) echo x86_64 ;;
    *) return 1 ;;
  esac
}
