#!/usr/bin/env bash
# Real Klipper images (built from ../shared/peers/klipper with Debian's gcc-arm-none-eabi and gcc-avr)
# against the simulated bootloaders: each accept/refuse decision of the link-address and build-config
# checks on the .bin, .elf and .hex that `make` wrote. A build for the device's application start goes
# in and reads back; one for another bootloader offset or another chip is refused before anything is
# written. The images are built once per build folder ($BUILD_DIR/klipper-images).
source "$(dirname "$0")/../lib/common.sh"
source "$(dirname "$0")/../lib/klipper_build.sh"
need_klipper_builds
cache="$KLIPPER_CACHE"
build() { klipper_build "$@"; }
stm32='CONFIG_LOW_LEVEL_OPTIONS=y\nCONFIG_MACH_STM32=y\nCONFIG_MACH_STM32F103=y\n'
build f103-none "${stm32}CONFIG_STM32_FLASH_START_0000=y\n"
build f103-8k "${stm32}CONFIG_STM32_FLASH_START_2000=y\n"
build f103-28k "${stm32}CONFIG_STM32_FLASH_START_7000=y\n"
build samd21-8k 'CONFIG_LOW_LEVEL_OPTIONS=y\nCONFIG_MACH_ATSAMD=y\nCONFIG_MACH_SAMD21G18=y\nCONFIG_SAMD_FLASH_START_2000=y\n'
build mega2560 'CONFIG_LOW_LEVEL_OPTIONS=y\nCONFIG_MACH_AVR=y\nCONFIG_MACH_atmega2560=y\n'
build f446-32k 'CONFIG_LOW_LEVEL_OPTIONS=y\nCONFIG_MACH_STM32=y\nCONFIG_MACH_STM32F446=y\nCONFIG_STM32_FLASH_START_8000=y\n'
build lpc1768-16k 'CONFIG_LOW_LEVEL_OPTIONS=y\nCONFIG_MACH_LPC176X=y\nCONFIG_MACH_LPC1768=y\nCONFIG_LPC_FLASH_START_4000=y\n'
build rp2040-16k 'CONFIG_LOW_LEVEL_OPTIONS=y\nCONFIG_MACH_RPXXXX=y\nCONFIG_MACH_RP2040=y\nCONFIG_RPXXXX_FLASH_START_4000=y\n'
build rp2040-none 'CONFIG_LOW_LEVEL_OPTIONS=y\nCONFIG_MACH_RPXXXX=y\nCONFIG_MACH_RP2040=y\n'
for image in f103-none f103-8k f103-28k samd21-8k; do
  arm-none-eabi-objcopy -O ihex "$cache/$image/out/klipper.elf" "$cache/$image/out/klipper.hex"
done
# An image copied out of its tree has no .config beside it: only the image itself tells.
mkdir -p "$WORK/loose"
for image in f103-none f103-28k; do cp "$cache/$image/out/klipper.bin" "$WORK/loose/$image.bin"; cp "$cache/$image/out/klipper.elf" "$WORK/loose/$image.elf"; done
cp "$cache/rp2040-none/out/klipper.uf2" "$WORK/loose/rp2040-none.uf2"

results="$WORK/results"
# accept DESCRIPTION IMAGE DEVICE [ARGS...]: flashed and verified by read-back.
accept() {
  local what=$1 image=$2 device=$3; shift 3
  "$MCUFLASH" flash "$image" -d "$device" --sim-fast "$@" >"$WORK/out" 2>"$WORK/err" ||
    fail "$what: refused: $(cat "$WORK/err" "$WORK/out")"
  grep -q "verified (read back)" "$WORK/out" || fail "$what: not verified: $(cat "$WORK/out")"
  printf '%-58s accepted, verified\n' "$what" >>"$results"
}
# refuse DESCRIPTION CODE PATTERN IMAGE DEVICE [ARGS...]: refused with CODE, nothing written.
refuse() {
  local what=$1 code=$2 pattern=$3 image=$4 device=$5; shift 5
  expect_exit "$code" "$pattern" -- "$MCUFLASH" flash "$image" -d "$device" --sim-fast "$@"
  ! grep -q "^write:" "$WORK/err" || fail "$what: refused after writing: $(cat "$WORK/err")"
  printf '%-58s refused (%s): %s\n' "$what" "$code" "$(grep -m1 '^error:' "$WORK/err" | cut -c8-120)" >>"$results"
}
rom=sim:stm32-uart:stm32f103xe
duino=sim:dfu:stm32f103xb  # stm32duino (Maple) DFU: its application starts at 0x08002000
k=$cache

# ST's ROM serial bootloader: a build for "No bootloader" goes in at the flash base without a flag.
accept "f103 No bootloader .bin -> ROM serial"            "$k/f103-none/out/klipper.bin" $rom
accept "f103 No bootloader .elf -> ROM serial"            "$k/f103-none/out/klipper.elf" $rom
accept "f103 No bootloader .hex -> ROM serial"            "$k/f103-none/out/klipper.hex" $rom
accept "f103 28KiB .bin -> ROM serial (at 0x08007000)"    "$k/f103-28k/out/klipper.bin" $rom
grep -q "starts only if the bootloader below it" "$WORK/err" || fail "no word on the bootloader below 0x08007000: $(cat "$WORK/err")"
# stm32duino's DFU: its 8 KiB build goes in; the others are refused, whichever file is given.
accept "f103 8KiB .bin -> stm32duino DFU"                 "$k/f103-8k/out/klipper.bin" $duino --chip stm32f103xb
accept "f103 8KiB .elf -> stm32duino DFU"                 "$k/f103-8k/out/klipper.elf" $duino --chip stm32f103xb
refuse "f103 28KiB .bin (its .config) -> stm32duino"      65 "linked to start at 0x08007000" "$k/f103-28k/out/klipper.bin" $duino --chip stm32f103xb
refuse "f103 28KiB .elf (its .config) -> stm32duino"      65 "linked to start at 0x08007000" "$k/f103-28k/out/klipper.elf" $duino --chip stm32f103xb
refuse "f103 28KiB .elf (no .config) -> stm32duino"       65 "vector table is at 0x08007000" "$WORK/loose/f103-28k.elf" $duino --chip stm32f103xb
refuse "f103 28KiB .bin (no .config) -> stm32duino"       65 "reset handler at 0x0800|pointers into flash point outside" "$WORK/loose/f103-28k.bin" $duino --chip stm32f103xb
refuse "f103 No bootloader .bin (no .config) -> stm32duino" 65 "pointers into flash point outside it" "$WORK/loose/f103-none.bin" $duino --chip stm32f103xb
refuse "f103 No bootloader .elf (no .config) -> stm32duino" 65 "the bootloader of this|occupies" "$WORK/loose/f103-none.elf" $duino --chip stm32f103xb
refuse "f103 No bootloader .hex (its .config) -> stm32duino" 65 "linked to start at 0x08000000" "$k/f103-none/out/klipper.hex" $duino --chip stm32f103xb
# SAM-BA on a SAMD21 (Arduino Zero's 8 KiB bootloader).
accept "samd21 8KiB .bin -> SAM-BA"                       "$k/samd21-8k/out/klipper.bin" sim:samba:samd21g18a
accept "samd21 8KiB .elf -> SAM-BA"                       "$k/samd21-8k/out/klipper.elf" sim:samba:samd21g18a
refuse "f103 8KiB .bin (its .config) -> SAMD21 SAM-BA"    64 "stm32f103" "$k/f103-8k/out/klipper.bin" sim:samba:samd21g18a
# The Mega 2560's STK500v2 bootloader: the AVR build, as .elf.hex and .elf.
accept "atmega2560 .elf.hex -> stk500boot_v2"             "$k/mega2560/out/klipper.elf.hex" sim:stk500v2:atmega2560
accept "atmega2560 .elf -> stk500boot_v2"                 "$k/mega2560/out/klipper.elf" sim:stk500v2:atmega2560
refuse "samd21 .bin (its .config) -> atmega2560"          64 "samd21" "$k/samd21-8k/out/klipper.bin" sim:stk500v2:atmega2560
# STM32F446 with a 32 KiB bootloader (Katapult here; the ROM DFU takes it too, with a word on what must be below).
accept "f446 32KiB .bin -> Katapult"                      "$k/f446-32k/out/klipper.bin" sim:katapult:stm32f446xe
accept "f446 32KiB .elf -> ST ROM DFU (at 0x08008000)"    "$k/f446-32k/out/klipper.elf" sim:dfu:stm32f446xe
refuse "f103 8KiB .bin (its .config) -> F446 Katapult"    64 "but the firmware is for stm32f103" "$k/f103-8k/out/klipper.bin" sim:katapult:stm32f446xe
# LPC1768 at 0x4000 (Katapult's 16 KiB, where the SD-card bootloaders put it too).
accept "lpc1768 16KiB .bin -> Katapult"                   "$k/lpc1768-16k/out/klipper.bin" sim:katapult:lpc1768
refuse "f446 32KiB .bin (its .config) -> LPC1768 Katapult" 64 "reports MCU 'lpc1768'" "$k/f446-32k/out/klipper.bin" sim:katapult:lpc1768
# RP2040: the 16 KiB Katapult build goes in; the "No bootloader" UF2 (boot2 at 0x10000000) is refused.
accept "rp2040 16KiB .bin -> Katapult"                    "$k/rp2040-16k/out/klipper.bin" sim:katapult:rp2040
accept "rp2040 16KiB .elf -> Katapult"                    "$k/rp2040-16k/out/klipper.elf" sim:katapult:rp2040
refuse "rp2040 No bootloader .uf2 (its .config) -> Katapult" 65 "linked to start at 0x10000100 \\(\"No bootloader\"" "$k/rp2040-none/out/klipper.uf2" sim:katapult:rp2040
refuse "rp2040 No bootloader .uf2 (no .config) -> Katapult" 65 "0x1000" "$WORK/loose/rp2040-none.uf2" sim:katapult:rp2040
refuse "rp2040 .uf2 (no .config) -> F446 Katapult"         65 "UF2 file is for RP2040 chips" "$WORK/loose/rp2040-none.uf2" sim:katapult:stm32f446xe
cat "$results"
