#!/usr/bin/env bash
# Our STK500v2 client against the REAL Arduino Mega bootloader (stk500boot_v2, Debian's .hex) running
# in simavr behind a pty bridge:
#  1. flash a 100 KiB application, read it back, compare; check the bridge's flash dump and that the
#     bootloader is intact;
#  2. an image made of '!' bytes: stk500boot_v2 enters its debug monitor when "!!!" arrives while its
#     16-bit received-byte counter is below 10, i.e. around every 65536th byte of a session (avrdude
#     -c wiring fails there); the client must shift its frames past that window;
#  3. an image that starts at 0x1000 after (1): the bootloader erases pages only in order from 0, so
#     the client rewrites 0x0000-0x0FFF unchanged on the way; those bytes must still be (1)'s.
source "$(dirname "$0")/../lib/common.sh"
BRIDGE="$BUILD_DIR/tests/interop/simavr-bridge"
[ -x "$BRIDGE" ] || skip "simavr-bridge not built (libsimavr-dev missing)"
HEX=/usr/share/arduino/hardware/arduino/avr/bootloaders/stk500v2/stk500boot_v2_mega2560.hex
[ -f "$HEX" ] || skip "arduino-core-avr is not installed"

PTY="$WORK/mega.tty"
DUMP="$WORK/mega.flash"
start_bridge() {
  "$BRIDGE" --mcu atmega2560 --freq 16000000 --hex "$HEX" --pty "$PTY" --flash-out "$DUMP" 2>>"$WORK/bridge.log" &
  BACKGROUND_PIDS+=($!)
  wait_for_path "$PTY"
}
DEV=(-d "$PTY" -p stk500v2 --baud 115200 --chip atmega2560)

# flash_and_check NAME IMAGE_BIN_OR_HEX BIN: flash, check the result, read back the image's span.
flash_and_check() {
  local name=$1 image=$2 bin=$3 base=${4:-0}
  local size; size=$(stat -c %s "$bin")
  local start; start=$(date +%s%N)
  timeout 200 "$MCUFLASH" flash "$image" "${DEV[@]}" --json >"$WORK/$name.json" \
    || { cat "$WORK/$name.json" "$WORK/bridge.log" >&2; fail "$name: flash failed"; }
  grep -q '"event":"result"' "$WORK/$name.json" || fail "$name: no result"
  grep -q '"verified":true' "$WORK/$name.json" || fail "$name: not verified"
  grep -q '"bootloader":"stk500boot_v2"' "$WORK/$name.json" || fail "$name: bootloader not identified"
  local flashed_ms=$(( ($(date +%s%N) - start) / 1000000 ))
  timeout 200 "$MCUFLASH" read "${DEV[@]}" --address "$base" --length "$size" -o "$WORK/$name.back.bin" -q \
    || fail "$name: read back failed"
  cmp "$bin" "$WORK/$name.back.bin" || fail "$name: read-back differs from the image"
  local elapsed_ms=$(( ($(date +%s%N) - start) / 1000000 ))
  echo "ok: $name ($size bytes at $base): flash + verify in $flashed_ms ms, + read back in $elapsed_ms ms"
}

start_bridge

# 1. 100 KiB of random data. The bridge writes its dump when a client closes the port.
random_hex "$WORK/app.hex" 102400 0 spin
hex_to_bin "$WORK/app.hex" "$WORK/app.bin"
flash_and_check random-100k "$WORK/app.hex" "$WORK/app.bin"
sleep 0.5
same_prefix "$WORK/app.bin" "$DUMP" || fail "random-100k: the simulated AVR's flash differs from the image"
bootloader_intact "$HEX" "$DUMP" || fail "random-100k: the bootloader in flash was changed"
echo "ok: random-100k: the AVR's flash holds the image, the bootloader is intact"

# 3 (same bridge, so 1's flash is there): 8 KiB at 0x1000; 0x0000-0x0FFF keep 1's bytes.
random_hex "$WORK/high.hex" 8192 0x1000
hex_to_bin "$WORK/high.hex" "$WORK/high.bin"
flash_and_check offset-0x1000 "$WORK/high.hex" "$WORK/high.bin" 0x1000
stop_background
cmp -n 4096 "$WORK/app.bin" "$DUMP" || fail "offset-0x1000: the pages below the image were not kept"
cmp -i 0:4096 -n 8192 "$WORK/high.bin" "$DUMP" || fail "offset-0x1000: the AVR's flash differs from the image"
cmp -i 12288:12288 -n $((102400 - 12288)) "$WORK/app.bin" "$DUMP" || fail "offset-0x1000: pages after the image changed"
bootloader_intact "$HEX" "$DUMP" || fail "offset-0x1000: the bootloader in flash was changed"
echo "ok: offset-0x1000: pages below the image kept, bootloader intact"

# 2. 100 KiB of '!' (after an `rjmp .`): the "!!!" monitor hazard at the 64 KiB counter wrap.
start_bridge
python3 -c "
import sys
d = bytearray(b'!' * 102400); d[0:2] = b'\xff\xcf'
open(sys.argv[1], 'wb').write(d)" "$WORK/bang.bin"
flash_and_check bangs-100k "$WORK/bang.bin" "$WORK/bang.bin"
stop_background
same_prefix "$WORK/bang.bin" "$DUMP" || fail "bangs-100k: the simulated AVR's flash differs from the image"
bootloader_intact "$HEX" "$DUMP" || fail "bangs-100k: the bootloader in flash was changed"
echo "ok: bangs-100k: no monitor entry at the counter wrap"
