#!/usr/bin/env bash
# Our client against the REAL Arduino bootloaders Debian ships, running in simavr behind a pty bridge:
# flash a >= 10 KiB application, read it back, compare; and check the bridge's own flash dump.
source "$(dirname "$0")/../lib/common.sh"
BRIDGE="$BUILD_DIR/tests/interop/simavr-bridge"
[ -x "$BRIDGE" ] || skip "simavr-bridge not built (libsimavr-dev missing)"
MIGHTY=/usr/share/arduino/hardware/mighty-1284p/bootloaders
ARDUINO=/usr/share/arduino/hardware/arduino/avr/bootloaders
[ -f "$MIGHTY/optiboot/optiboot_atmega1284p.hex" ] || skip "arduino-mighty-1284p is not installed"
[ -f "$ARDUINO/atmega/ATmegaBOOT_168_atmega1280.hex" ] || skip "arduino-core-avr is not installed"

run_case() {
  local name=$1 mcu=$2 hex=$3 baud=$4 size=$5
  local pty="$WORK/$name.tty" dump="$WORK/$name.flash"
  "$BRIDGE" --mcu "$mcu" --freq 16000000 --hex "$hex" --pty "$pty" --flash-out "$dump" 2>"$WORK/$name.bridge.log" &
  local bridge=$!
  BACKGROUND_PIDS+=($bridge)
  wait_for_path "$pty"
  random_hex "$WORK/$name.hex" "$size" 0 spin
  hex_to_bin "$WORK/$name.hex" "$WORK/$name.bin"
  local start=$(date +%s%N)
  timeout 180 "$MCUFLASH" flash "$WORK/$name.hex" -d "$pty" --baud "$baud" --chip "$mcu" --json >"$WORK/$name.json" \
    || { cat "$WORK/$name.json" "$WORK/$name.bridge.log" >&2; fail "$name: flash failed"; }
  grep -q '"event":"result"' "$WORK/$name.json" || fail "$name: no result"
  grep -q '"verified":true' "$WORK/$name.json" || fail "$name: not verified"
  timeout 180 "$MCUFLASH" read -d "$pty" --baud "$baud" --chip "$mcu" --address 0 --length "$size" -o "$WORK/$name.back.bin" -q \
    || fail "$name: read back failed"
  cmp "$WORK/$name.bin" "$WORK/$name.back.bin" || fail "$name: read-back differs from the image"
  local elapsed_ms=$(( ($(date +%s%N) - start) / 1000000 ))
  kill "$bridge"; wait "$bridge" 2>/dev/null || true
  same_prefix "$WORK/$name.bin" "$dump" || fail "$name: the simulated AVR's flash differs from the image"
  bootloader_intact "$hex" "$dump" || fail "$name: the bootloader in flash was changed"
  echo "ok: $name ($size bytes): flash + verify + read back in $elapsed_ms ms"
}

run_case optiboot-1284p atmega1284p "$MIGHTY/optiboot/optiboot_atmega1284p.hex" 115200 12288
run_case atmegaboot-1284p atmega1284p "$MIGHTY/standard/ATmegaBOOT_1284P.hex" 57600 10240
run_case atmegaboot-1280 atmega1280 "$ARDUINO/atmega/ATmegaBOOT_168_atmega1280.hex" 57600 10240
