#!/usr/bin/env bash
# cross-build.sh — build a static `openpush` for a router or single-board computer
# on a plain Debian 12 machine, without Docker, and print its stripped size.
#
# Usage: scripts/cross-build.sh [--canary] [--setup-only] TARGET [extra cargo args]
#   TARGET: aarch64-unknown-linux-musl        Pi 3/4/5 64-bit, filogic/ipq807x routers
#           armv7-unknown-linux-musleabihf    Pi 2/3 32-bit, ARMv7 routers
#           arm-unknown-linux-musleabihf      Pi 1, Pi Zero/Zero W (ARMv6, ARM1176JZF-S)
#           mipsel-unknown-linux-musl         OpenWrt ramips (MT7621, MT76x8)
#           mips-unknown-linux-musl           OpenWrt ath79 (big-endian)
#           x86_64-unknown-linux-musl         x86 routers, VMs
#   --canary      build scripts/canary (timer/socket/redb probe) instead of the server
#   --setup-only  install toolchains and sysroots, build nothing
#
# Environment:
#   PROFILE=release             cargo profile (Cargo.toml's release is tuned for size)
#   SIZE_KNOBS="..."            nightly size options for build-std targets, space separated,
#                               or "none"; default: "no-backtrace immediate-abort location-detail
#                               no-unwind-tables static-relocation thumb" (see knob_flags below; each
#                               one's measured effect is in docs/performance.md's footprint table)
#   BUILD_STD=1                 build std even where rustup ships it (needed for SIZE_KNOBS
#                               on aarch64/x86_64)
#   CROSS_DIR=target/cross      cache: musl sysroots, per-target build dirs, output binaries
#   NIGHTLY=nightly             toolchain used for -Zbuild-std
#   NO_INSTALL=1                never call apt-get/rustup (fail if something is missing)
#   SRC_DIR=<repo>              crate to build (default: the checkout holding this script)
#   VARIANT=name                a build with other cargo args (features): its binary goes to
#                               out/TARGET-name/ instead of out/TARGET/
#
# What each target needs (verified under qemu-user, see scripts/smoke-qemu.sh):
#   aarch64, x86_64: stable, `rustup target add`, linked by rust-lld.
#   armv7 musl:      stable if `rustup target add` works; else nightly -Zbuild-std against
#                    Debian's musl-dev:armhf (same hard-float ABI as the Rust target).
#   arm (ARMv6):     stable if `rustup target add` works; else nightly -Zbuild-std against a
#                    musl built here for ARMv6 + VFPv2 hard-float in ARM mode (Debian's armhf
#                    musl and gcc runtime are ARMv7 Thumb-2 code, which an ARM1176 cannot run).
#   mipsel, mips:    tier 3: nightly -Zbuild-std, musl built here with -msoft-float (OpenWrt's
#                    SoCs have no FPU; Debian's mips musl is hard-float and lld rejects it).
#   32-bit MIPS timers: rustix (under async-io/polling) uses its libc backend on mips and
#   hands a 64-bit-time_t `timespec` to musl's time32 `timerfd_settime`, so the timerfd is
#   disarmed and keepalives never fire. mipsel: `--cfg rustix_use_experimental_asm` (raw
#   syscalls with the kernel's struct). mips (big-endian): rustix refuses raw syscalls there,
#   so `--cfg fix_y2038` makes it convert to libc's 32-bit `timespec` instead. Re-run the
#   canary after every rustix upgrade: both cfgs are rustix internals.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
CANARY=0 SETUP_ONLY=0
while [ $# -gt 0 ]; do
  case $1 in
    --canary) CANARY=1; shift ;;
    --setup-only) SETUP_ONLY=1; shift ;;
    -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) break ;;
  esac
done
[ $# -ge 1 ] || { echo "usage: $0 [--canary] [--setup-only] TARGET [cargo args]" >&2; exit 2; }
T=$1; shift
U=$(echo "$T" | tr 'a-z-' 'A-Z_')
PROFILE=${PROFILE:-release}
CROSS_DIR=${CROSS_DIR:-$ROOT/target/cross}
case $CROSS_DIR in /*) ;; *) CROSS_DIR=$ROOT/$CROSS_DIR ;; esac
NIGHTLY=${NIGHTLY:-nightly}
SIZE_KNOBS_SET=${SIZE_KNOBS+1}
SIZE_KNOBS=${SIZE_KNOBS-no-backtrace immediate-abort location-detail no-unwind-tables static-relocation thumb}
[ "$SIZE_KNOBS" = none ] && SIZE_KNOBS=
SYSROOT=$CROSS_DIR/sysroot/$T

log() { echo "cross-build: $*" >&2; }
die() { echo "cross-build: error: $*" >&2; exit 1; }

# ---- installing what the target needs -------------------------------------------------

APT_UPDATED=0
apt_update() {
  [ "$APT_UPDATED" = 1 ] && return
  apt-get update -qq || log "apt-get update reported errors (continuing)"
  APT_UPDATED=1
}
have_pkg() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q 'ok installed'; }
need_apt() {
  local missing=() p
  for p in "$@"; do have_pkg "$p" || missing+=("$p"); done
  [ ${#missing[@]} -eq 0 ] && return
  [ "${NO_INSTALL:-}" = 1 ] && die "missing Debian packages: ${missing[*]}"
  [ "$(id -u)" = 0 ] || die "missing Debian packages (run as root to install): ${missing[*]}"
  log "apt-get install ${missing[*]}"
  apt_update
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

need_nightly() {
  rustc +"$NIGHTLY" --version >/dev/null 2>&1 ||
    die "$T needs a nightly toolchain for -Zbuild-std ('$NIGHTLY'): rustup toolchain install nightly --profile minimal"
  if ! rustup component list --toolchain "$NIGHTLY" --installed 2>/dev/null | grep -q '^rust-src'; then
    [ "${NO_INSTALL:-}" = 1 ] && die "rust-src missing for $NIGHTLY"
    log "rustup component add rust-src --toolchain $NIGHTLY"
    rustup component add rust-src --toolchain "$NIGHTLY" >&2
  fi
}

# Prebuilt std for T on the stable toolchain, installing it if the mirror has it.
stable_std() {
  rustup target list --installed 2>/dev/null | grep -qx "$T" && return 0
  [ "${NO_INSTALL:-}" = 1 ] && return 1
  rustup target add "$T" >/dev/null 2>&1 && { log "rustup target add $T"; return 0; }
  log "rustup has no prebuilt std for $T here: building std with $NIGHTLY"
  return 1
}

# armv7 musl from Debian's musl-dev:armhf: same ABI as the Rust target, nothing to compile.
sysroot_debian_armhf() {
  [ -f "$SYSROOT/.ready" ] && return
  need_apt gcc-arm-linux-gnueabihf
  if ! have_pkg musl-dev:armhf; then
    dpkg --print-foreign-architectures | grep -qx armhf || { dpkg --add-architecture armhf; APT_UPDATED=0; }
    need_apt musl-dev:armhf
  fi
  local m g f
  m=$(dirname "$(dpkg -L musl-dev:armhf | grep '/crt1\.o$' | head -1)")
  g=$(dirname "$(arm-linux-gnueabihf-gcc -print-libgcc-file-name)")
  rm -rf "$SYSROOT"; mkdir -p "$SYSROOT"
  cp "$m"/*.o "$m"/*.a "$SYSROOT"/
  for f in crtbegin.o crtend.o crtbeginS.o crtendS.o crtbeginT.o libgcc.a; do cp "$g/$f" "$SYSROOT/"; done
  cp "$g/libgcc_eh.a" "$SYSROOT/libunwind.a"   # the unwind crate links -lunwind on musl
  touch "$SYSROOT/.ready"
  log "musl sysroot ready: $SYSROOT (from $m)"
}

# musl for soft-float MIPS, built from Debian's musl source package (1.2.x).
musl_source() {
  local src=$CROSS_DIR/src
  if [ -n "${MUSL_SRC:-}" ]; then echo "$MUSL_SRC"; return; fi
  if ! ls -d "$src"/musl-*/ >/dev/null 2>&1; then
    need_apt dpkg-dev
    mkdir -p "$src"
    if ! (cd "$src" && apt-get source -qq --download-only musl >/dev/null 2>&1); then
      # Debian 12 images ship binary sources only: add deb-src next to them.
      local f=/etc/apt/sources.list.d/openpush-deb-src.sources
      [ "${NO_INSTALL:-}" = 1 ] && die "no deb-src configured for 'apt-get source musl'"
      log "adding deb-src entries ($f) for 'apt-get source musl'"
      sed -n 's/^Types: deb$/Types: deb-src/; /^Types:\|^URIs:\|^Suites:\|^Components:\|^Signed-By:\|^$/p' \
        /etc/apt/sources.list.d/debian.sources > "$f"
      APT_UPDATED=0; apt_update
      (cd "$src" && apt-get source -qq --download-only musl >/dev/null)
    fi
    (cd "$src" && dpkg-source -x --no-check ./musl_*.dsc >/dev/null 2>&1)
  fi
  ls -d "$src"/musl-*/ | head -1
}

# musl built from source for a float ABI or architecture level Debian has no musl for:
# sysroot_musl_built GCC_PREFIX CFLAGS
sysroot_musl_built() {
  [ -f "$SYSROOT/.ready" ] && [ -d "$SYSROOT/include" ] && return
  local pfx=$1 cflags=$2 cc ar src work
  need_apt "gcc-$pfx" make
  cc=$pfx-gcc ar=$pfx-ar
  src=$(musl_source)
  work=$(mktemp -d)
  log "building musl ($(basename "$src")) for $T with $cflags"
  cp -r "$src" "$work/build"
  (cd "$work/build" &&
    ./configure --target="$pfx" CC="$cc" CFLAGS="$cflags" --prefix="$work/inst" --disable-shared >/dev/null &&
    make -j"$(nproc)" >/dev/null 2>&1 && make install >/dev/null 2>&1)
  rm -rf "$SYSROOT"; mkdir -p "$SYSROOT"
  cp "$work"/inst/lib/*.o "$work"/inst/lib/*.a "$SYSROOT"/
  cp -r "$work"/inst/include "$SYSROOT"/   # for C code in dependencies (ring)
  # gcc's crtbegin/crtend and libgcc_eh do not fit (MIPS: hard-float, which lld refuses to
  # mix with a soft-float binary; ARMv6: Debian's are ARMv7 Thumb-2 code). Empty objects
  # with the right float ABI stand in for crtbegin/end, and _Unwind_* stubs for libgcc_eh
  # (panic=abort never unwinds; backtraces are empty).
  echo '/* empty: carries the float-ABI flags only */' > "$work/stub.c"
  for o in crtbegin crtend crtbeginS crtendS crtbeginT; do $cc $cflags -c "$work/stub.c" -o "$SYSROOT/$o.o"; done
  cat > "$work/unwind.c" <<'C'
void abort(void);
typedef unsigned long uw; struct ctx; struct exc;
int _Unwind_Backtrace(void *f, void *a) { (void)f; (void)a; return 5; /* END_OF_STACK */ }
uw _Unwind_GetIP(struct ctx *c) { (void)c; return 0; }
uw _Unwind_GetIPInfo(struct ctx *c, int *b) { (void)c; *b = 0; return 0; }
uw _Unwind_GetCFA(struct ctx *c) { (void)c; return 0; }
uw _Unwind_GetGR(struct ctx *c, int i) { (void)c; (void)i; return 0; }
void _Unwind_SetGR(struct ctx *c, int i, uw v) { (void)c; (void)i; (void)v; }
void _Unwind_SetIP(struct ctx *c, uw v) { (void)c; (void)v; }
uw _Unwind_GetLanguageSpecificData(struct ctx *c) { (void)c; return 0; }
uw _Unwind_GetRegionStart(struct ctx *c) { (void)c; return 0; }
uw _Unwind_GetTextRelBase(struct ctx *c) { (void)c; return 0; }
uw _Unwind_GetDataRelBase(struct ctx *c) { (void)c; return 0; }
void *_Unwind_FindEnclosingFunction(void *pc) { (void)pc; return 0; }
int _Unwind_RaiseException(struct exc *e) { (void)e; abort(); }
void _Unwind_Resume(struct exc *e) { (void)e; abort(); }
void _Unwind_DeleteException(struct exc *e) { (void)e; }
C
  $cc $cflags -c "$work/unwind.c" -o "$work/unwind.o"
  $ar rcs "$SYSROOT/libunwind.a" "$work/unwind.o"
  rm -rf "$work"
  touch "$SYSROOT/.ready"
  log "musl sysroot ready: $SYSROOT"
}

# ---- size knobs (nightly, build-std only) ----------------------------------------------
# no-backtrace       std without backtrace symbolization (addr2line/gimli/miniz_oxide)
# optimize-for-size  std's own size-over-speed algorithms
# immediate-abort    panic = "immediate-abort": panics trap at once, no message, no hook
#                    (a panic shows up as SIGILL/SIGTRAP in the log, without its text)
# location-detail    -Zlocation-detail=none: no file:line:col strings for panics
# fmt-debug          -Zfmt-debug=none: {:?} prints nothing (changes output of Debug!)
# no-unwind-tables   -Cforce-unwind-tables=no: no .eh_frame for code that never unwinds
# static-relocation  -Crelocation-model=static: MIPS code without $gp/GOT indirection
# thumb              armv7 only (ignored elsewhere): all code in Thumb-2, which every
#                    ARMv7-A core runs; a third smaller than ARM code
STD_FEATURES=() CARGO_Z=() KNOB_RUSTFLAGS=""
knob_flags() {
  local k features="panic-unwind backtrace" ia=0 std_knob=0
  for k in $SIZE_KNOBS; do
    case $k in
      no-backtrace) features=${features/panic-unwind backtrace/}; std_knob=1 ;;
      optimize-for-size) features="$features optimize_for_size"; std_knob=1 ;;
      immediate-abort) ia=1 ;;
      location-detail) KNOB_RUSTFLAGS+=" -Zlocation-detail=none" ;;
      fmt-debug) KNOB_RUSTFLAGS+=" -Zfmt-debug=none" ;;
      no-unwind-tables) KNOB_RUSTFLAGS+=" -Cforce-unwind-tables=no" ;;
      thumb)
        case $T in armv7-*) KNOB_RUSTFLAGS+=" -Ctarget-feature=+thumb-mode" ;; esac ;;
      static-relocation)
        # These targets link a non-PIE EXEC anyway; x86_64 musl would lose static-pie.
        case $T in x86_64-*) log "static-relocation skipped on $T (keeps static-pie)" ;;
          *) KNOB_RUSTFLAGS+=" -Crelocation-model=static" ;; esac ;;
      *) die "unknown size knob '$k'" ;;
    esac
  done
  features=$(echo $features | tr ' ' ',')
  [ $std_knob = 1 ] && STD_FEATURES=(-Zbuild-std-features="$features")
  if [ $ia = 1 ]; then
    CARGO_Z=(-Zpanic-immediate-abort)
    export CARGO_PROFILE_$(echo "$PROFILE" | tr 'a-z-' 'A-Z_')_PANIC=immediate-abort
  fi
}

# ---- the build -------------------------------------------------------------------------

TOOLCHAIN=stable BUILD_STD=${BUILD_STD:-0} FIX=""
case $T in
  aarch64-unknown-linux-musl|x86_64-unknown-linux-musl)
    stable_std || die "rustup target add $T failed"
    if [ "$BUILD_STD" = 1 ]; then need_nightly; TOOLCHAIN=$NIGHTLY; fi ;;
  armv7-unknown-linux-musleabihf)
    if [ "$BUILD_STD" = 1 ] || ! stable_std; then
      BUILD_STD=1 TOOLCHAIN=$NIGHTLY; need_nightly; sysroot_debian_armhf
    fi ;;
  mipsel-unknown-linux-musl)
    BUILD_STD=1 TOOLCHAIN=$NIGHTLY FIX="--cfg rustix_use_experimental_asm"
    need_nightly; sysroot_musl_built mipsel-linux-gnu "-O2 -msoft-float" ;;
  mips-unknown-linux-musl)
    BUILD_STD=1 TOOLCHAIN=$NIGHTLY FIX="--cfg fix_y2038"
    need_nightly; sysroot_musl_built mips-linux-gnu "-O2 -msoft-float" ;;
  arm-unknown-linux-musleabihf)
    # The Rust target: ARMv6 + VFPv2, hard-float, ARM mode (the Pi 1's and Zero's ARM1176JZF-S).
    if [ "$BUILD_STD" = 1 ] || ! stable_std; then
      BUILD_STD=1 TOOLCHAIN=$NIGHTLY; need_nightly
      sysroot_musl_built arm-linux-gnueabihf "-O2 -march=armv6kz -mfpu=vfp -mfloat-abi=hard -marm"
    fi ;;
  *) die "unknown target '$T' (see --help)" ;;
esac

# C code in dependencies (ring, under TLS): the target's gcc, with the float ABI and the
# architecture level of the Rust target, so that its objects link with the Rust ones. The C
# headers are those of the musl built here, else glibc's for the architecture: ring uses only
# their types and a few functions that musl's libc.a provides the same.
cflags=""
case $T in
  x86_64-*) cc=gcc ;;
  aarch64-*) cc=aarch64-linux-gnu-gcc; need_apt gcc-aarch64-linux-gnu libc6-dev-arm64-cross ;;
  armv7-*) cc=arm-linux-gnueabihf-gcc; cflags="-march=armv7-a -mfpu=vfpv3-d16 -mfloat-abi=hard"
    need_apt gcc-arm-linux-gnueabihf libc6-dev-armhf-cross ;;
  arm-*) cc=arm-linux-gnueabihf-gcc; cflags="-march=armv6kz -mfpu=vfp -mfloat-abi=hard -marm"
    need_apt gcc-arm-linux-gnueabihf libc6-dev-armhf-cross ;;
  mipsel-*) cc=mipsel-linux-gnu-gcc; cflags="-msoft-float" ;;
  mips-*) cc=mips-linux-gnu-gcc; cflags="-msoft-float" ;;
esac
if [ -d "$SYSROOT/include" ]; then
  cflags+=" -nostdinc -isystem $SYSROOT/include -isystem $($cc -print-file-name=include)"
fi
export "CC_${T//-/_}=$cc" "AR_${T//-/_}=${cc%gcc}ar" "CFLAGS_${T//-/_}=$cflags"
[ "$SETUP_ONLY" = 1 ] && { log "setup done for $T"; exit 0; }

export "CARGO_TARGET_${U}_LINKER=rust-lld"
FLAGS="${RUSTFLAGS:-}"
ARGS=(build --profile "$PROFILE" --target "$T")
tag=$T
if [ "$BUILD_STD" = 1 ]; then
  knob_flags
  FLAGS+=" -C target-feature=+crt-static $FIX $KNOB_RUSTFLAGS"
  if [ -f "$SYSROOT/.ready" ]; then
    FLAGS+=" -L native=$SYSROOT"
  else
    # Tier-2 target with std rebuilt: borrow crt objects, libc.a and libunwind.a from the
    # stable toolchain's self-contained musl (the nightly here has no rust-std for it).
    sc=$(rustc --print sysroot)/lib/rustlib/$T/lib/self-contained
    [ -f "$sc/crt1.o" ] || die "no self-contained musl for $T: rustup target add $T"
    FLAGS+=" -L native=$sc"
  fi
  ARGS=("${CARGO_Z[@]}" -Zbuild-std=std,panic_abort "${STD_FEATURES[@]}" "${ARGS[@]}")
  [ -n "$SIZE_KNOBS" ] && tag=$T-$(echo $SIZE_KNOBS | tr ' ' '+')
else
  [ -n "$SIZE_KNOBS" ] && [ -n "$SIZE_KNOBS_SET" ] && log "SIZE_KNOBS ignored: $T uses the prebuilt std (BUILD_STD=1 to apply them)"
fi
export RUSTFLAGS="$FLAGS"

if [ "$CANARY" = 1 ]; then
  MANIFEST=$ROOT/scripts/canary/Cargo.toml BIN=openpush-canary
else
  MANIFEST=${SRC_DIR:-$ROOT}/Cargo.toml BIN=openpush
fi
# One target dir per target and flag set: build-std rebuilds std whenever RUSTFLAGS change.
export CARGO_TARGET_DIR=$CROSS_DIR/build/$BIN/$tag
log "$BIN for $T (toolchain $TOOLCHAIN${BUILD_STD:+, build-std=$BUILD_STD}${SIZE_KNOBS:+, knobs: $SIZE_KNOBS})"
log "RUSTFLAGS=$RUSTFLAGS"
start=$(date +%s)
cargo +"$TOOLCHAIN" "${ARGS[@]}" --manifest-path "$MANIFEST" "$@" >&2
secs=$(( $(date +%s) - start ))

built=$CARGO_TARGET_DIR/$T/$PROFILE/$BIN
out=$CROSS_DIR/out/$T${VARIANT:+-$VARIANT}
mkdir -p "$out"
cp "$built" "$out/$BIN"
# lld keeps non-allocated sections that no loader reads: MIPS .pdr (procedure descriptors,
# ~115 KB), .comment, .gnu.attributes. Drop them with the cross binutils when present.
case $T in
  mipsel-*) strip_tool=mipsel-linux-gnu-strip ;;
  mips-*) strip_tool=mips-linux-gnu-strip ;;
  armv7-*|arm-*) strip_tool=arm-linux-gnueabihf-strip ;;
  aarch64-*) strip_tool=aarch64-linux-gnu-strip ;;
  x86_64-*) strip_tool=strip ;;
esac
if command -v "$strip_tool" >/dev/null && [ "${NO_EXTRA_STRIP:-}" != 1 ]; then
  before=$(stat -c %s "$out/$BIN")
  "$strip_tool" --strip-all -R .pdr -R .comment -R .gnu.attributes "$out/$BIN"
  log "$strip_tool: $before -> $(stat -c %s "$out/$BIN") bytes"
fi
size=$(stat -c %s "$out/$BIN")
interp=$(readelf -l "$out/$BIN" 2>/dev/null | grep -c 'program interpreter' || true)
[ "$interp" = 0 ] || die "$out/$BIN is dynamically linked"
printf '%s %s: %d bytes (%d KB), static, built in %d s -> %s\n' \
  "$BIN" "$T" "$size" $(( (size + 500) / 1000 )) "$secs" "$out/$BIN"
