#!/usr/bin/env bash
# Builds mcuflash's Debian package and tries it where nothing else of mcuflash is: a clean Debian 12
# made with mmdebstrap, where apt installs the .deb (its Depends from Debian's mirror), the installed
# mcuflash flashes the demo image into a simulated board, prints its udev rules, has its man page
# (and the Python module imports, when the package holds it), and `apt-get remove --purge` leaves no
# file of the package behind. Prints the time of each step and the size of the .deb.
#   scripts/deb-check.sh [BUILD_DIR]       (default: $BUILD_DIR, else build)
# The .deb is made in BUILD_DIR when it was configured with -DCMAKE_INSTALL_PREFIX=/usr, else in
# BUILD_DIR-deb beside it (configured here so: the library in Debian's multiarch folder, no tests;
# kept, so only its first run builds everything).
# Exits 77 (skipped) when it cannot run here: not root (chroot), no mmdebstrap, or Debian's mirror
# not reachable (MCUFLASH_DEBIAN_MIRROR names another; default: the one of this machine's apt
# sources, else deb.debian.org). KEEP_ROOT=1 keeps the Debian root afterwards.
set -euo pipefail
source_dir=$(cd "$(dirname "$0")/.." && pwd)
build_dir=$(realpath -m "${1:-${BUILD_DIR:-$source_dir/build}}")
suite=bookworm

fail() { echo "FAIL: $*" >&2; exit 1; }
skip() { echo "SKIP: $*" >&2; exit 77; }

[ "$(id -u)" -eq 0 ] || skip "needs root (mmdebstrap's root mode, chroot, mounting /proc)"
command -v mmdebstrap >/dev/null || skip "mmdebstrap is not installed (apt-get install mmdebstrap)"
command -v curl >/dev/null || skip "curl is not installed (to see whether Debian's mirror answers)"
command -v dpkg-shlibdeps >/dev/null || fail "dpkg-shlibdeps (dpkg-dev) is needed to compute the package's Depends"
[ -f "$build_dir/CMakeCache.txt" ] || fail "$build_dir is not a configured build folder"

source "$source_dir/scripts/debian-mirror.sh"
curl -sf --max-time 20 -o /dev/null "$mirror/dists/$suite/InRelease" || skip "Debian's mirror $mirror cannot be reached"

work=$(mktemp -d /tmp/mcuflash-deb-check.XXXXXX)
rootfs="$work/rootfs"
cleanup() {
  mountpoint -q "$rootfs/proc" 2>/dev/null && umount "$rootfs/proc"
  if [ "${KEEP_ROOT:-0}" = 1 ]; then
    echo "the Debian root is kept in $rootfs" >&2
  else
    rm -rf --one-file-system "$work"
  fi
}
trap cleanup EXIT
trap 'exit 143' TERM INT

# step NAME COMMAND...: runs COMMAND (its output in $work/NAME.log, shown when it fails) and prints
# how long it took.
steps=()
step() {
  local name=$1; shift
  local start end
  start=$(date +%s.%N)
  "$@" >"$work/$name.log" 2>&1 || fail "$name: $* failed:"$'\n'"$(tail -n 40 "$work/$name.log")"
  end=$(date +%s.%N)
  steps+=("$(awk -v name="$name" -v start="$start" -v end="$end" 'BEGIN { printf "%-22s %7.1f s", name, end - start }')")
  echo "${steps[-1]}"
}
# in_root COMMAND...: in the Debian root, with a clean environment.
in_root() {
  chroot "$rootfs" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/root LANG=C.UTF-8 \
    DEBIAN_FRONTEND=noninteractive "$@"
}

# 1. The .deb.
tree=$build_dir
if [ "$(sed -n 's/^CMAKE_INSTALL_PREFIX:PATH=//p' "$build_dir/CMakeCache.txt")" != /usr ]; then
  tree="$build_dir-deb"
  cache_value() { sed -n "s/^$1:[A-Z]*=//p" "$build_dir/CMakeCache.txt"; }
  configure_args=(-DCMAKE_INSTALL_PREFIX=/usr -DMCUFLASH_TESTS=OFF -DCMAKE_BUILD_TYPE="$(cache_value CMAKE_BUILD_TYPE)")
  for variable in CMAKE_CXX_COMPILER_LAUNCHER CMAKE_C_COMPILER_LAUNCHER MCUFLASH_PYTHON Python3_EXECUTABLE; do
    value=$(cache_value "$variable")
    [ -n "$value" ] && configure_args+=("-D$variable=$value")
  done
  step configure cmake -S "$source_dir" -B "$tree" -G Ninja "${configure_args[@]}"
fi
step build cmake --build "$tree" -j "${MCUFLASH_JOBS:-$(nproc)}" --target package_files
rm -f "$tree"/mcuflash_*.deb
step cpack bash -c "cd '$tree' && cpack -G DEB"
deb=$(ls "$tree"/mcuflash_*.deb)
echo "package: $deb, $(du -k "$deb" | cut -f1) KiB ($(stat -c %s "$deb") bytes)"
dpkg-deb --field "$deb" Version Depends Section Installed-Size
dpkg-deb --contents "$deb" >"$work/contents"
grep -q ' \./usr/lib/udev/rules.d/70-mcuflash.rules$' "$work/contents" || fail "the package lacks /usr/lib/udev/rules.d/70-mcuflash.rules"

# 2. A clean Debian 12 with the package installed by apt.
step mmdebstrap mmdebstrap --variant=apt --quiet "$suite" "$rootfs" "$mirror"
mount -t proc proc "$rootfs/proc"
cp "$deb" "$rootfs/tmp/"
[ -s "$rootfs/etc/resolv.conf" ] || cp /etc/resolv.conf "$rootfs/etc/resolv.conf"
step apt-update in_root apt-get update
step apt-install in_root apt-get install -y --no-install-recommends "/tmp/$(basename "$deb")"
rm "$rootfs/tmp/$(basename "$deb")"

# 3. What the package does there.
step version in_root mcuflash --version
cat "$work/version.log"
grep -q "^mcuflash $(dpkg-deb --field "$deb" Version)" "$work/version.log" || fail "mcuflash --version says: $(cat "$work/version.log")"
step flash in_root mcuflash flash /usr/share/doc/mcuflash/examples/demo-atmega1284p.hex \
  -d sim:stk500v1:atmega1284p --sim-fast
grep -qi "verified" "$work/flash.log" || fail "the flash was not verified: $(cat "$work/flash.log")"
grep -qi "not verified" "$work/flash.log" && fail "the flash was not verified: $(cat "$work/flash.log")"
step udev-rules in_root mcuflash udev-rules
cmp -s "$work/udev-rules.log" "$rootfs/usr/lib/udev/rules.d/70-mcuflash.rules" ||
  fail "/usr/lib/udev/rules.d/70-mcuflash.rules is not what mcuflash udev-rules prints"
if [ -x "$rootfs/usr/bin/man" ]; then
  step man in_root man -w mcuflash
else
  step man-page in_root sh -c 'test -f /usr/share/man/man1/mcuflash.1 || test -f /usr/share/man/man1/mcuflash.1.gz'
fi
step ldconfig in_root ldconfig -p
grep -q 'libmcuflash\.so\.0 ' "$work/ldconfig.log" || fail "the loader's cache lacks libmcuflash.so.0"
in_root dpkg -L mcuflash >"$work/package-files"
if grep -q '/dist-packages/mcuflash' "$work/package-files"; then
  step python in_root python3 -c 'import mcuflash; print(mcuflash.__version__)'
  echo "python3: import mcuflash: $(cat "$work/python.log")"
fi

# 4. Removed and purged, nothing of it is left: every path it had is gone, but for the folders other
# packages own too.
step purge in_root apt-get remove --purge -y mcuflash
in_root dpkg-query -W mcuflash >/dev/null 2>&1 && fail "mcuflash is still installed after the purge"
in_root ldconfig -p >"$work/ld-cache"
grep -F libmcuflash "$work/ld-cache" && fail "the loader's cache still names libmcuflash after the purge"
left=()
while IFS= read -r path; do
  [ "$path" = "/." ] && continue
  [ -e "$rootfs$path" ] || [ -L "$rootfs$path" ] || continue
  if [ -d "$rootfs$path" ] && [ ! -L "$rootfs$path" ] && in_root dpkg-query -S "$path" >/dev/null 2>&1; then continue; fi
  left+=("$path")
done <"$work/package-files"
((${#left[@]} == 0)) || fail "left after the purge: ${left[*]}"

echo "ok: $(basename "$deb") ($(du -k "$deb" | cut -f1) KiB) installs in a clean Debian $suite, works, and purges cleanly; $(wc -l <"$work/package-files") paths checked"
printf '%s\n' "${steps[@]}"
