#!/usr/bin/env bash
# mcuflash for the Raspberry Pi's Debian, built on this machine: Debian's cross compiler for ARCH
# (arm64: 64-bit Raspberry Pi OS; armhf: 32-bit), the -dev packages of that architecture unpacked by
# mmdebstrap into a Debian 12 root that serves as the sysroot, then the unit and sim tiers run under
# qemu-user, and the Debian package of that architecture (its Depends from dpkg-shlibdeps reading the
# root's own package database). Prints the time of each step, the test counts and the sizes.
#   scripts/cross.sh ARCH [BUILD_DIR]        (default BUILD_DIR: build-ARCH)
# The root is kept in BUILD_DIR/sysroot and made again only when the package list below changes.
# Needs root (mmdebstrap's root mode, binfmt_misc, a mount namespace for dpkg-shlibdeps) and Debian's
# mirror; MCUFLASH_DEBIAN_MIRROR names another than this machine's apt source. MCUFLASH_CROSS_OPTIMIZE
# (default -O2) is the optimization: CI builds at -O1, a quarter less compile time for its hour.
set -euo pipefail
source_dir=$(cd "$(dirname "$0")/.." && pwd)
arch=${1:-}
case $arch in
  arm64) triplet=aarch64-linux-gnu qemu=qemu-aarch64-static binfmt=qemu-aarch64 ;;
  armhf) triplet=arm-linux-gnueabihf qemu=qemu-arm-static binfmt=qemu-arm ;;
  *) echo "usage: scripts/cross.sh arm64|armhf [BUILD_DIR]" >&2; exit 64 ;;
esac
build_dir=$(realpath -m "${2:-$source_dir/build-$arch}")
root="$build_dir/sysroot"

fail() { echo "FAIL: $*" >&2; exit 1; }
skip() { echo "SKIP: $*" >&2; exit 77; }
# step NAME COMMAND...: runs COMMAND (output in BUILD_DIR/NAME.log, shown when it fails), prints its time.
step() {
  local name=$1; shift
  local start=$SECONDS
  "$@" >"$build_dir/$name.log" 2>&1 || fail "$name: $* failed:"$'\n'"$(tail -n 40 "$build_dir/$name.log")"
  printf '%-10s %-10s %5d s\n' "$arch" "$name" $((SECONDS - start))
}
[ "$(id -u)" -eq 0 ] || skip "scripts/cross.sh needs root (mmdebstrap, binfmt_misc, a mount namespace)"
mkdir -p "$build_dir"

# 1. The host's tools: the cross compiler, qemu-user, mmdebstrap (and arch-test, which it asks).
packages=("g++-$triplet" qemu-user-static mmdebstrap arch-test dpkg-dev curl cmake ninja-build pkg-config)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
install_tools() {
  (  # one apt at a time: CI runs scripts/test.sh, which installs its packages too, beside this
    flock 9
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}"
  ) 9>/tmp/mcuflash-apt.lock
}
((${#missing[@]} == 0)) || step tools install_tools

# qemu-user runs the root's programs while mmdebstrap installs it (maintainer scripts): registered
# with the kernel's binfmt_misc, which a machine without systemd may not have mounted. Under the
# apt lock too: CI builds both architectures at once.
binfmt_status=0
(
  flock 9
  mountpoint -q /proc/sys/fs/binfmt_misc || mount -t binfmt_misc binfmt_misc /proc/sys/fs/binfmt_misc || exit 77
  [ -e "/proc/sys/fs/binfmt_misc/$binfmt" ] || grep -v '^#' "/usr/lib/binfmt.d/$binfmt.conf" >/proc/sys/fs/binfmt_misc/register
) 9>/tmp/mcuflash-apt.lock || binfmt_status=$?
[ "$binfmt_status" -ne 77 ] || skip "this kernel's binfmt_misc cannot be mounted: nothing could run the root's $arch programs"
[ "$binfmt_status" -eq 0 ] || exit "$binfmt_status"

# 2. The root: what the build links against, as Debian ARCH ships it. Not dpkg --add-architecture:
# a mirror may hold ARCH's packages at another version than the host's, and Multi-Arch: same packages
# (libssl-dev, zlib1g-dev) must match the host's version exactly to be installed beside them.
root_packages=libc6-dev,libstdc++-12-dev,libfmt-dev,libssl-dev,libusb-1.0-0-dev,libudev-dev,libhidapi-dev,libgpiod-dev,zlib1g-dev,libgtest-dev,libtomlplusplus-dev,libcli11-dev,nlohmann-json3-dev
source "$source_dir/scripts/debian-mirror.sh"
[ -f "$root/.mcuflash-packages" ] || curl -sf --max-time 20 -o /dev/null "$mirror/dists/bookworm/InRelease" ||
  skip "Debian's mirror $mirror cannot be reached (MCUFLASH_DEBIAN_MIRROR names another)"
make_root() {
  rm -rf --one-file-system "$root"
  mmdebstrap --mode=root --variant=essential --architectures="$arch" --include="$root_packages" \
    bookworm "$root" "$mirror"
  # A sysroot's links must stay inside it: libz.so -> /lib/... would point at the host's.
  find "$root/usr/lib" "$root/usr/include" -type l -lname '/*' | while read -r link; do
    ln -sfn "$(realpath -m --relative-to="$(dirname "$link")" "$root$(readlink "$link")")" "$link"
  done
  # qemu-user -L looks in the root first: its /dev would hide the host's (/dev/ptmx).
  rm -rf "${root:?}"/dev/*
  printf '%s\n' "$root_packages" >"$root/.mcuflash-packages"
}
[ "$(cat "$root/.mcuflash-packages" 2>/dev/null)" = "$root_packages" ] || step root make_root
export MCUFLASH_SYSROOT=$root

# 3. The build: the programs, the library and the two test tiers that run under qemu-user.
# Release at -O2, as Debian builds its packages (CMake's Release is -O3, slower to compile for nothing a
# flashing tool would notice), and no debug information: the package strips it anyway, and it halves
# the compile time.
optimize=${MCUFLASH_CROSS_OPTIMIZE:--O2}
configure_args=(-DCMAKE_TOOLCHAIN_FILE="$source_dir/cmake/toolchains/$triplet.cmake" -DCMAKE_BUILD_TYPE=Release
                "-DCMAKE_CXX_FLAGS_RELEASE=$optimize -DNDEBUG" "-DCMAKE_C_FLAGS_RELEASE=$optimize -DNDEBUG"
                -DCMAKE_INSTALL_PREFIX=/usr -DMCUFLASH_PYTHON=OFF -DMCUFLASH_TESTS=ON)
command -v ccache >/dev/null && configure_args+=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache -DCMAKE_C_COMPILER_LAUNCHER=ccache)
step configure cmake -S "$source_dir" -B "$build_dir/tree" -G Ninja "${configure_args[@]}"
step build cmake --build "$build_dir/tree" -j "$(nproc)" --target package_files unit_tests sim_tests

# 4. The unit and sim tiers, each program run by qemu-user with the root's loader and libraries.
run_tests() { ctest --test-dir "$build_dir/tree" -j "$(nproc)" -L '^(unit|sim)$' --output-on-failure; }
step tests run_tests
summary=$(grep -E 'tests passed|tests failed' "$build_dir/tests.log" | tail -n 1)
skipped=$(grep -c '(Skipped)' "$build_dir/tests.log" || true)
echo "$arch       tests      $summary; $skipped skipped (reasons in $build_dir/tests.log)"

# 5. The Debian package. dpkg-shlibdeps finds libraries in /usr/lib/TRIPLET and their packages in
# /var/lib/dpkg: in a mount namespace of its own, both are the root's.
make_package() {
  unshare --mount --propagation private bash -c '
    set -e
    mkdir -p "/usr/lib/$2"
    mount --bind "$1/usr/lib/$2" "/usr/lib/$2"
    mount --bind "$1/var/lib/dpkg" /var/lib/dpkg
    cd "$3" && DEB_HOST_ARCH="$4" DEB_HOST_GNU_TYPE="$2" DEB_HOST_MULTIARCH="$2" cpack -G DEB' \
    _ "$root" "$triplet" "$build_dir/tree" "$arch"
}
step package make_package
deb=$(ls -t "$build_dir"/tree/mcuflash_*_"$arch".deb | head -n 1)
[ "$(dpkg-deb -f "$deb" Architecture)" = "$arch" ] || fail "$deb is not for $arch"
echo "$arch       package    $(basename "$deb"): $(du -k "$deb" | cut -f1) KiB; Depends: $(dpkg-deb -f "$deb" Depends)"
unpacked=$(mktemp -d)
dpkg-deb -x "$deb" "$unpacked"
for file in usr/bin/mcuflash usr/bin/mcuflash-sim "usr/lib/$triplet/libmcuflash.so.0"; do
  [ -e "$unpacked/$file" ] || fail "$(basename "$deb") has no $file"
  printf '%-10s size       %-40s %6d KiB\n' "$arch" "$file" $(($(stat -L -c %s "$unpacked/$file") / 1024))
done
rm -rf "$unpacked"
# The packaged program runs: it says its version under qemu-user.
"$qemu" -L "$root" "$build_dir/tree/mcuflash" --version
