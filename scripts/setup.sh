#!/usr/bin/env bash
# Installs what mcuflash needs from Debian's packages (only what is missing), then builds it.
#   scripts/setup.sh [--with-tests] [BUILD_DIR] [extra cmake args...]     (default build dir: build)
# Without --with-tests: the build dependencies and the two programs (mcuflash, mcuflash-sim) only, as
# a Klipper host needs them. With it (scripts/test.sh): the real peers the tests run against, QEMU for
# the guest-kernel tests, clang for the sanitizer build, and the test suite.
set -euo pipefail
cd "$(dirname "$0")/.."

with_tests=0
if [ "${1:-}" = "--with-tests" ]; then
  with_tests=1
  shift
fi

packages=(
  # build
  g++ cmake ninja-build pkg-config
  libcli11-dev libfmt-dev nlohmann-json3-dev libtomlplusplus-dev libssl-dev libusb-1.0-0-dev libudev-dev libhidapi-dev libgpiod-dev
  pybind11-dev python3-dev  # the Python module (python/)
)
test_packages=(
  libgtest-dev python3-pytest  # python3-pytest: the Python module's tests (python/tests)
  # fuzz and sanitizer builds
  clang-14 libclang-rt-14-dev
  # real peers for the interop tests (see ../shared/reference/test-peers.md)
  avrdude stm32flash bossa-cli dfu-util usbip simavr libsimavr-dev arduino-core-avr arduino-mighty-1284p python3 srecord
  # Klipper's hid-flash is built from the Klipper tree for tests/interop/hid_flash_guest.sh (and libusb-1.0-0-dev, pkg-config above)
  make
  # FAT volumes: the SD-card tests check mcuflash's writer with fsck.fat and read back with mtools
  dosfstools mtools
  # real Klipper images for the link-address tests (tests/interop/klipper_images.sh)
  gcc-arm-none-eabi libnewlib-arm-none-eabi gcc-avr avr-libc
  python3-serial  # Katapult's flashtool.py
  python3-greenlet python3-cffi  # Klipper's klippy/console.py (tests/interop/klipper_identify_console.sh)
  teensy-loader-cli  # HalfKay's peer (tests/interop/halfkay_guest.sh)
  openocd python3-pyocd gdb-multiarch  # SWD peers: OpenOCD, pyOCD and gdb against the probe simulator (tests/interop/openocd_guest.sh)
  can-utils  # candump in the CAN guest tests' logs (tests/interop/gs_usb_guest.sh)
  # the real kernel for the USB tests (../shared/tools/guest-run.sh installs these too on first use)
  qemu-system-x86 busybox-static usbutils xz-utils
  # the Debian package: cpack's Depends from dpkg-shlibdeps, and a clean Debian 12 to try it in (scripts/deb-check.sh)
  dpkg-dev mmdebstrap curl
)
((with_tests)) && packages+=("${test_packages[@]}")
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "setup: installing ${missing[*]}" >&2
  sudo=""; [ "$(id -u)" -eq 0 ] || sudo="sudo"
  (  # one apt at a time: CI runs scripts/cross.sh, which installs its tools too, beside this
    flock 9
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  ) 9>/tmp/mcuflash-apt.lock
fi

build_dir=${1:-build}
shift || true
if ((with_tests)); then
  cmake -S . -B "$build_dir" -G Ninja -DMCUFLASH_TESTS=ON "$@" >/dev/null
  cmake --build "$build_dir" -j "$(nproc)"
else
  cmake -S . -B "$build_dir" -G Ninja -DMCUFLASH_TESTS=OFF "$@" >/dev/null
  cmake --build "$build_dir" -j "$(nproc)" --target package_files
fi
