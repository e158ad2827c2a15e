#!/usr/bin/env bash
# The installed C++ library, as another program uses it: `cmake --install` into a fresh prefix, then
# examples/library built against that prefix twice, with find_package(mcuflash) (CMAKE_PREFIX_PATH)
# and with `pkg-config mcuflash` (PKG_CONFIG_PATH), neither able to see the build or source tree's
# headers; each flashes a simulated board through libmcuflash.so from the prefix, with progress, and
# must report a verified result.
source "$(dirname "$0")/../lib/common.sh"
# A sanitizer build's library needs the sanitizer's runtime in the program that loads it; the example
# is built as a user would build it, without one.
grep -q '^MCUFLASH_SANITIZE:BOOL=ON' "$BUILD_DIR/CMakeCache.txt" && skip "a sanitizer build's library is not for plain programs"

prefix="$WORK/prefix"
cmake --install "$BUILD_DIR" --prefix "$prefix" >"$WORK/install.log" 2>&1 || fail "cmake --install: $(cat "$WORK/install.log")"
[ -f "$prefix/include/mcuflash/mcuflash.hpp" ] || fail "not installed: include/mcuflash/mcuflash.hpp"
# lib/ or Debian's multiarch lib/x86_64-linux-gnu/, as the build was configured.
library=$(find "$prefix" -name 'libmcuflash.so.0' | head -n 1)
[ -n "$library" ] || fail "libmcuflash.so.0 is not installed: $(cd "$prefix" && find . -name 'libmcuflash*')"
libdir=$(dirname "$library")
[ -L "$libdir/libmcuflash.so" ] || fail "no libmcuflash.so link for the linker in $libdir"
for f in cmake/mcuflash/mcuflash-config.cmake cmake/mcuflash/mcuflash-config-version.cmake \
         cmake/mcuflash/mcuflash-targets.cmake pkgconfig/mcuflash.pc; do
  [ -f "$libdir/$f" ] || fail "not installed: ${libdir#"$prefix/"}/$f"
done
# Only the API is exported: the layers' symbols stay inside (--exclude-libs).
nm -D --defined-only "$library" >"$WORK/symbols" || fail "nm cannot read $library"
grep -q '_ZN8mcuflash5flashE' "$WORK/symbols" || fail "libmcuflash.so exports no mcuflash::flash"

# The example from the installed copy (share/doc/mcuflash/examples/library), built outside both trees.
example_source="$prefix/share/doc/mcuflash/examples/library"
[ -f "$example_source/example.cpp" ] || fail "the library example is not installed"
image="$prefix/share/doc/mcuflash/examples/demo-atmega1284p.hex"
[ -f "$image" ] || fail "the demo image is not installed"
export LD_LIBRARY_PATH="$libdir"

# check_run NAME EXAMPLE: the example flashes the demo image into the simulated ATmega1284P.
check_run() {
  local name=$1 program=$2
  "$program" "$image" >"$WORK/$name.out" 2>"$WORK/$name.err" || fail "$name example failed: $(cat "$WORK/$name.err" "$WORK/$name.out")"
  grep -q '"verified":true' "$WORK/$name.out" || fail "$name example: no verified result: $(cat "$WORK/$name.out")"
  grep -q '^write: ' "$WORK/$name.out" || fail "$name example: no progress of the write stage: $(cat "$WORK/$name.out")"
  # The library it ran with is the installed one, not the build tree's.
  ldd "$program" >"$WORK/$name.ldd"
  grep -q "$libdir/libmcuflash.so.0" "$WORK/$name.ldd" || fail "$name example does not use $library: $(cat "$WORK/$name.ldd")"
}

# find_package(mcuflash 0.1 REQUIRED) -> mcuflash::mcuflash.
cmake -S "$example_source" -B "$WORK/example-build" -G Ninja -DCMAKE_PREFIX_PATH="$prefix" \
  >"$WORK/configure.log" 2>&1 || fail "configuring the example with find_package: $(cat "$WORK/configure.log")"
cmake --build "$WORK/example-build" >"$WORK/build.log" 2>&1 || fail "building the example: $(cat "$WORK/build.log")"
check_run cmake "$WORK/example-build/example"
# A version the installed package does not offer is refused.
sed 's/find_package(mcuflash 0.1 REQUIRED)/find_package(mcuflash 9.0 REQUIRED)/' "$example_source/CMakeLists.txt" >"$WORK/CMakeLists.txt"
mkdir "$WORK/wrong-version" && cp "$WORK/CMakeLists.txt" "$example_source/example.cpp" "$WORK/wrong-version/"
if cmake -S "$WORK/wrong-version" -B "$WORK/wrong-version/build" -DCMAKE_PREFIX_PATH="$prefix" >"$WORK/wrong.log" 2>&1; then
  fail "find_package(mcuflash 9.0) was accepted by the installed $(grep -o 'PACKAGE_VERSION "[^"]*"' "$libdir/cmake/mcuflash/mcuflash-config-version.cmake")"
fi

# pkg-config mcuflash: the same program with g++ alone.
export PKG_CONFIG_PATH="$libdir/pkgconfig"
flags=$(pkg-config --cflags --libs mcuflash) || fail "pkg-config does not know mcuflash"
[ "$(pkg-config --modversion mcuflash)" = "$(sed -n 's/^project(mcuflash VERSION \([0-9.]*\).*/\1/p' "$SOURCE_DIR/CMakeLists.txt")" ] ||
  fail "pkg-config says version $(pkg-config --modversion mcuflash)"
# shellcheck disable=SC2086 # the flags are words
g++ -std=c++17 "$example_source/example.cpp" $flags -o "$WORK/example-pkg-config" 2>"$WORK/gcc.log" ||
  fail "g++ example.cpp \$(pkg-config --cflags --libs mcuflash) ($flags): $(cat "$WORK/gcc.log")"
check_run pkg-config "$WORK/example-pkg-config"

echo "ok: the installed libmcuflash builds and runs the example with find_package and with pkg-config ($flags)"
