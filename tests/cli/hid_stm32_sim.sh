#!/usr/bin/env bash
# mcuflash against the in-process STM32 HID bootloader simulator (-d sim:hid-stm32, an STM32F103 with
# the 2 KiB F1 build; :stm32f407xg the 16 KiB F4 build): a raw binary goes to the application start
# and the result says "not verified" in words and JSON (the bootloader cannot read back), `info`
# names the bootloader and the application start, `read` is refused as unsupported, an image below
# the application start is refused before anything is sent, a board that leaves the bus mid-write is
# an I/O error with the hint to restart the bootloader; `mcuflash-sim list` offers the simulator,
# `mcuflash udev-rules` covers 1209:beba and `-p hid-stm32` is known.
source "$(dirname "$0")/../lib/common.sh"

head -c 20000 /dev/urandom >"$WORK/app.bin"
sim_flash="$WORK/flash.bin"
"$MCUFLASH" flash "$WORK/app.bin" -d sim:hid-stm32 --chip stm32f103xb --sim-fast >"$WORK/plain.out" 2>&1 \
  || fail "flash failed: $(cat "$WORK/plain.out")"
grep -q "not verified" "$WORK/plain.out" || fail "the result does not say 'not verified': $(cat "$WORK/plain.out")"
grep -q "verified (" "$WORK/plain.out" && fail "a write-only device reported as verified: $(cat "$WORK/plain.out")"
grep -q "0x08000800" "$WORK/plain.out" || fail "the result does not say where the image went: $(cat "$WORK/plain.out")"

random_hex "$WORK/f4.hex" 40000 0x08004000
"$MCUFLASH" flash "$WORK/f4.hex" -d sim:hid-stm32:stm32f407xg --chip stm32f407xg -p hid-stm32 --sim-fast --json \
  >"$WORK/json.out" 2>"$WORK/json.err" || fail "flash --json (F4) failed: $(cat "$WORK/json.err")"
python3 - "$WORK/json.out" <<'PY' || fail "JSON result: $(tail -1 "$WORK/json.out")"
import json, sys
r = json.loads(open(sys.argv[1]).read().splitlines()[-1])
assert r["command"] == "flash" and r["verified"] is False, r
assert "not verified" in r["not_verified"], r
assert r["bytes_written"] >= 40000, r
PY
echo "ok: F1 and F4 flashes say not verified (text and JSON)"

"$MCUFLASH" info -d sim:hid-stm32 --chip stm32f103xb --sim-fast >"$WORK/info.out" 2>&1 \
  || fail "info failed: $(cat "$WORK/info.out")"
grep -q "STM32 HID bootloader" "$WORK/info.out" && grep -q "0x08000800" "$WORK/info.out" \
  || fail "info does not name the bootloader and the application start: $(cat "$WORK/info.out")"

expect_exit 69 "cannot read" -- "$MCUFLASH" read -o "$WORK/back.bin" -d sim:hid-stm32 --chip stm32f103xb --sim-fast
random_hex "$WORK/low.hex" 4096 0x08000000
expect_exit 65 "brick" -- "$MCUFLASH" flash "$WORK/low.hex" -d sim:hid-stm32 --chip stm32f103xb --sim-fast
expect_exit 65 "brick" -- "$MCUFLASH" flash "$WORK/app.bin" --address 0x08000000 -d sim:hid-stm32:stm32f407xg \
  --chip stm32f407xg --sim-fast
expect_exit 74 "BOOT" -- "$MCUFLASH" flash "$WORK/app.bin" -d sim:hid-stm32 --chip stm32f103xb --sim-fast \
  --sim-faults vanish@60
echo "ok: read refused (69), below the application refused (65), vanish mid-write (74, BOOT hint)"

"$MCUFLASH_SIM" list >"$WORK/simlist.out" 2>&1 || true
grep -q "^hid-stm32" "$WORK/simlist.out" || fail "mcuflash-sim list lacks hid-stm32: $(cat "$WORK/simlist.out")"
"$MCUFLASH" udev-rules | grep -q 'ATTR{idVendor}=="1209", ATTR{idProduct}=="beba"' || fail "udev-rules lacks 1209:beba"
"$MCUFLASH" --help | grep -q "hid-stm32" || fail "mcuflash --help does not list hid-stm32"
echo "ok: mcuflash-sim list, udev-rules and --help name the STM32 HID bootloader"

# The Eryone ER-20's 16 KiB build answers as any HID bootloader does: --board says which it is, and the
# guide names the USB device, not a serial port.
"$MCUFLASH" guide eryone-er20 | grep -q "mcuflash flash out/klipper.bin -d usb:1209:beba --board eryone-er20" ||
  fail "the ER-20's guide does not name the HID device: $("$MCUFLASH" guide eryone-er20)"
head -c 3000 /dev/urandom >"$WORK/er20.bin"
"$MCUFLASH" info -d sim:hid-stm32:stm32f103xe --board eryone-er20 --sim-fast | grep -q "application: 0x08004000-" ||
  fail "the ER-20's HID bootloader was not taken for the 16 KiB build"
"$MCUFLASH" flash "$WORK/er20.bin" -d sim:hid-stm32:stm32f103xe --board eryone-er20 --sim-fast >"$WORK/out" 2>&1 ||
  fail "flash --board eryone-er20: $(cat "$WORK/out")"
grep -q "placed at 0x08004000" "$WORK/out" || fail "not placed at 0x08004000: $(cat "$WORK/out")"
echo "ok: --board eryone-er20 takes the 16 KiB HID build; its guide names usb:1209:beba"
