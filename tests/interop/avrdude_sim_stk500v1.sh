#!/usr/bin/env bash
# Real avrdude (-c arduino) against mcuflash-sim's STK500v1 simulator on a pty: proves the simulator is
# faithful enough for a client we did not write. For each chip: write a random application and verify
# it, read the whole flash back, and check it against the image and against the simulator's flash file
# (the bootloader placeholder at the top intact, no write refused). Skipped (77) without avrdude.
source "$(dirname "$0")/../lib/common.sh"

command -v avrdude >/dev/null || skip "avrdude not installed"
[ -x "$MCUFLASH_SIM" ] || fail "$MCUFLASH_SIM not built"

case_fail() {
  for log in "$CASE".log "$CASE"/*.log; do [ -f "$log" ] && { echo "--- $log" >&2; tail -n 40 "$log" >&2; }; done
  fail "$*"
}

# check_images CASE FLASH_SIZE BOOT_SIZE BOOTLOADER: application, erased gap and intact bootloader, in
# both avrdude's read-back and the simulator's flash file.
check_images() {
  python3 - "$@" <<'PY'
import sys
case, flash_size, boot_size, name = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
app, upper = bytearray(), 0
for line in open(case + "/app.hex"):
    body = bytes.fromhex(line.strip()[1:])
    kind, address, payload = body[3], upper + (body[1] << 8 | body[2]), body[4:-1]
    if kind == 4: upper = (payload[0] << 8 | payload[1]) << 16
    if kind == 0:
        app[len(app):address + len(payload)] = b"\xff" * max(0, address + len(payload) - len(app))
        app[address:address + len(payload)] = payload
flash = open(case + "/flash.bin", "rb").read()
back = open(case + "/back.bin", "rb").read()
text = ("[mcuflash-sim placeholder: %s] " % name).encode()
placeholder = (text * (boot_size // len(text) + 1))[:boot_size]
problems = []
if len(flash) != flash_size: problems.append("flash file is %d bytes, not %d" % (len(flash), flash_size))
if flash[:len(app)] != app: problems.append("flash file does not start with the application")
if flash[len(app):flash_size - boot_size].strip(b"\xff"): problems.append("flash file has data after the application")
if flash[flash_size - boot_size:] != placeholder: problems.append("bootloader placeholder damaged")
if len(back) != flash_size: problems.append("read-back is %d bytes, not the whole flash" % len(back))
if back != flash: problems.append("avrdude's read-back differs from the flash file")
if problems: sys.exit("\n".join(problems))
PY
}

# run_case CHIP AVRDUDE_PART APP_SIZE FLASH_SIZE BOOT_SIZE BAUD [more mcuflash-sim options...]
run_case() {
  local chip=$1 part=$2 size=$3 flash_size=$4 boot_size=$5 baud=$6 bootloader=optiboot
  shift 6
  if [[ " $* " == *" atmegaboot "* ]]; then bootloader=atmegaboot; fi
  local name="$chip-$bootloader"
  CASE="$WORK/$name.d"
  mkdir -p "$CASE"
  random_hex "$CASE/app.hex" "$size"
  start_sim "$name" stk500v1 --chip "$chip" --flash-file "$CASE/flash.bin" --baud "$baud" "$@"

  local avrdude=(timeout 120 avrdude -c arduino -p "$part" -P "$WORK/$name" -b "$baud" -D)
  local started=$(date +%s%N)
  "${avrdude[@]}" -U "flash:w:$CASE/app.hex:i" >"$CASE/write.log" 2>&1 || case_fail "$name: avrdude write/verify failed"
  local took_ms=$((($(date +%s%N) - started) / 1000000))
  grep -q "bytes of flash verified" "$CASE/write.log" || case_fail "$name: avrdude did not verify"
  "${avrdude[@]}" -U "flash:r:$CASE/back.bin:r" >"$CASE/read.log" 2>&1 || case_fail "$name: avrdude read failed"
  stop_background
  ! grep -q "refused (protected)" "$WORK/$name.log" || case_fail "$name: the simulator refused writes (bootloader region)"
  check_images "$CASE" "$flash_size" "$boot_size" "$bootloader" || case_fail "$name: images differ"
  printf 'ok: %-22s %6d bytes written+verified in %d.%03d s; %s\n' "$name" "$size" \
    $((took_ms / 1000)) $((took_ms % 1000)) "$(grep -o 'flash: .*' "$WORK/$name.log")"
}

# The Melzi case: optiboot on the 1284P at 115200 with wire and flash timing on.
run_case atmega1284p m1284p 12345 131072 1024 115200
# Beyond 128 KiB avrdude sends UNIVERSAL 4D 00 01 00 to reach the upper 64K words. Without timing, or
# the whole-flash read-back alone would take 23 s at 115200.
run_case atmega2560 m2560 140000 262144 1024 115200 --no-timing
run_case atmega328p m328p 20000 32768 512 115200
run_case atmega168 m168 9000 16384 512 115200
# The older bootloader at its usual 57600.
run_case atmega328p m328p 6000 32768 2048 57600 --bootloader atmegaboot
echo "all avrdude interop cases passed"
