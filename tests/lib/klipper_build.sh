# Real Klipper builds for the tests (sourced after common.sh): ../shared/peers/klipper built with
# Debian's gcc-arm-none-eabi and gcc-avr, once per build folder, in $KLIPPER_CACHE/NAME (out/klipper.bin,
# .elf, .dict; .elf.hex on AVR; .uf2 on RP2040). Tests that run at the same time share the builds: a
# lock per build keeps two of them from building one tree at once.
KLIPPER_PEERS="$SOURCE_DIR/../shared/peers/klipper"
KLIPPER_CACHE="$BUILD_DIR/klipper-images"

# Skips the test (77) without the sources or the compilers.
need_klipper_builds() {
  [ -d "$KLIPPER_PEERS/src" ] || skip "no Klipper sources at $KLIPPER_PEERS"
  command -v arm-none-eabi-gcc >/dev/null && command -v avr-gcc >/dev/null ||
    skip "gcc-arm-none-eabi or gcc-avr missing (scripts/setup.sh --with-tests installs them)"
  mkdir -p "$KLIPPER_CACHE"
}

# klipper_build NAME CONFIG-LINES: $KLIPPER_CACHE/NAME built from the menuconfig lines (printf %b).
klipper_build() {
  local name=$1 config=$2 tree="$KLIPPER_CACHE/$1"
  (
    flock 9
    if [ -f "$tree/.built" ] && [ "$(cat "$tree/.built")" = "$config" ]; then exit 0; fi
    rm -rf "$tree" && cp -r "$KLIPPER_PEERS" "$tree"
    printf '%b' "$config" >"$tree/.config"
    if ! (cd "$tree" && make olddefconfig >/dev/null && make -j2 >"$tree/build.log" 2>&1); then
      tail -20 "$tree/build.log" >&2
      exit 1
    fi
    printf '%s' "$config" >"$tree/.built"
  ) 9>"$KLIPPER_CACHE/.$name.lock" || fail "building Klipper $name failed (log above)"
}
