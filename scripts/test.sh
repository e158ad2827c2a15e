#!/usr/bin/env bash
# Sets up (installs, builds) and runs the whole test suite: unit, sim, cli and interop tiers.
#   scripts/test.sh            the normal build (g++) in build/
#   scripts/test.sh --sanitize a clang-14 build with ASan+UBSan and the libFuzzer targets in
#                              build-asan/: unit, sim, cli tiers and a short run of each fuzzer
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "${1:-}" = "--sanitize" ]; then
  # Debug with line tables only (-g1): the reports keep file and line, the build is a fifth faster.
  CC=clang-14 CXX=clang++-14 bash scripts/setup.sh --with-tests build-asan \
    -DMCUFLASH_SANITIZE=ON -DMCUFLASH_FUZZ=ON -DCMAKE_BUILD_TYPE=Debug -DMCUFLASH_PYTHON=OFF \
    -DCMAKE_C_FLAGS_DEBUG=-g1 -DCMAKE_CXX_FLAGS_DEBUG=-g1
  export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
  ctest --test-dir build-asan --output-on-failure -j 2 -L 'unit|sim|cli|fuzz'
else
  # Configured for /usr, so the Debian package test (interop.deb_package) packs this build itself.
  bash scripts/setup.sh --with-tests build -DCMAKE_INSTALL_PREFIX=/usr
  ctest --test-dir build --output-on-failure -j 2
fi
