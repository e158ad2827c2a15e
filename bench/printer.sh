#!/usr/bin/env bash
# Benchmark: a whole printer's update against one MCU's alone. A simulated printer (mcuflash-sim
# printer, wire and flash timing on) of three UART MCUs running real Klipper builds, each with Katapult
# on its UART at 250000 baud: an STM32F103 (8 KiB Katapult), an STM32F446 (32 KiB Katapult) and a
# second F103. Each is updated alone (`printer flash --only NAME`, on a fresh printer), then all three
# together (`printer flash`), then the unchanged printer is checked again (every MCU asked, none
# flashed). Prints the times and the ratio whole / slowest alone (issue 17's target: <= 1.3x);
# asserts nothing. The USB and CAN parts of a printer run only through the QEMU guest: their times are
# in tests/interop/printer_guest.sh's log.
#   bench/printer.sh [BUILD_DIR]
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD_DIR=$(realpath "${1:-build}")
export BUILD_DIR SOURCE_DIR=$PWD
source tests/lib/common.sh
source tests/lib/klipper_build.sh
need_klipper_builds
f103='CONFIG_LOW_LEVEL_OPTIONS=y\nCONFIG_MACH_STM32=y\nCONFIG_MACH_STM32F103=y\nCONFIG_STM32_FLASH_START_2000=y\nCONFIG_STM32_SERIAL_USART1=y\n'
f446='CONFIG_LOW_LEVEL_OPTIONS=y\nCONFIG_MACH_STM32=y\nCONFIG_MACH_STM32F446=y\nCONFIG_STM32_FLASH_START_8000=y\nCONFIG_STM32_SERIAL_USART1=y\n'
klipper_build bench-f103 "$f103"
klipper_build bench-f103-update "${f103}CONFIG_SERIAL_BAUD=250000\n"
klipper_build bench-f446 "$f446"
klipper_build bench-f446-update "${f446}CONFIG_SERIAL_BAUD=250000\n"
k=$KLIPPER_CACHE
cd "$WORK"
cat >printer.cfg <<CFG
[mcu]
serial: $WORK/ttyAMA0
[mcu z]
serial: $WORK/ttyS1
[mcu extruder]
serial: $WORK/ttyS2
CFG
cat >mcuflash.toml <<TOML
[mcu.mcu]
board = "creality-v4.2.10"
bootloader = "katapult"
image = "$k/bench-f103-update/out/klipper.bin"
kconfig = "$k/bench-f103-update/.config"
[mcu.z]
board = "btt-octopus-v1.1-f446"
bootloader = "katapult"
image = "$k/bench-f446-update/out/klipper.bin"
kconfig = "$k/bench-f446-update/.config"
[mcu.extruder]
board = "creality-v4.2.10"
bootloader = "katapult"
image = "$k/bench-f103-update/out/klipper.bin"
kconfig = "$k/bench-f103-update/.config"
TOML

start_printer() {
  stop_background
  rm -rf sim-flash
  "$MCUFLASH_SIM" printer --config printer.cfg --firmware "mcu=$k/bench-f103/out/klipper.bin" \
    --firmware "z=$k/bench-f446/out/klipper.bin" --firmware "extruder=$k/bench-f103/out/klipper.bin" \
    >ready.txt 2>sim.log &
  BACKGROUND_PIDS+=($!)
  for _ in $(seq 200); do grep -q '^printer ready' ready.txt && return; sleep 0.05; done
  fail "the printer did not get ready: $(cat ready.txt sim.log)"
}
# timed LABEL ARGS...: one printer flash, its wall time in seconds on stdout.
timed() {
  local label=$1; shift
  local t0 t1
  t0=$(date +%s%N)
  "$MCUFLASH" --json printer flash --config printer.cfg "$@" >"$label.json" 2>"$label.err" ||
    fail "$label: $(tail -5 "$label.err") $(tail -3 "$label.json")"
  t1=$(date +%s%N)
  python3 -c "print(f'{($t1 - $t0) / 1e9:.2f}')"
}

declare -A alone
for mcu in mcu z extruder; do
  start_printer
  alone[$mcu]=$(timed "alone-$mcu" --only "$mcu")
done
start_printer
whole=$(timed whole)
unchanged=$(timed unchanged)
stop_background
slowest=$(printf '%s\n' "${alone[@]}" | sort -n | tail -1)
echo "printer update, 3 UART MCUs with Katapult at 250000 baud (timing on):"
for mcu in mcu z extruder; do
  printf '  %-9s alone   %6s s  (%s)\n' "$mcu" "${alone[$mcu]}" \
    "$(python3 -c "import json,sys; r=[json.loads(l) for l in open('alone-$mcu.json')][-1]; m=[m for m in r['mcus'] if m['mcu']=='$mcu'][0]; print(m['outcome'], m['detail'])")"
done
printf '  whole printer   %6s s  (%s)\n' "$whole" \
  "$(python3 -c "import json; r=[json.loads(l) for l in open('whole.json')][-1]; print(', '.join(m['mcu']+' '+m['outcome'] for m in r['mcus']))")"
printf '  whole / slowest alone: %sx (target <= 1.3x)\n' "$(python3 -c "print(f'{$whole / $slowest:.2f}')")"
printf '  unchanged printer checked and skipped: %s s (target < 5 s)\n' "$unchanged"
