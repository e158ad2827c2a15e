#!/usr/bin/env bash
# Katapult's own flashtool.py (the real peer, ../shared/peers/katapult, run from a temporary folder)
# against mcuflash-sim's Katapult on a pty, as on a USB-CDC or UART board: `flashtool.py -d PTY -f
# app.bin` writes and verifies (SHA-1 over REQUEST_BLOCK read-backs), the simulator's flash file then
# holds the image at the application start and the bootloader region is untouched; then mcuflash
# flashes the same simulator that flashtool.py accepted, flashtool.py -s still connects, and
# mcuflash's read-back of 4 KiB equals the flash file. Chips: STM32F103 (8 KiB Katapult, 2 KiB pages, wire and
# flash timing on), STM32G0B1, RP2040 (16 KiB, page buffer). Skipped (77) without python3-serial.
source "$(dirname "$0")/../lib/common.sh"

PEER_DIR="$SOURCE_DIR/../shared/peers/katapult/scripts"
[ -f "$PEER_DIR/flashtool.py" ] || skip "flashtool.py not found at $PEER_DIR"
PY=/usr/bin/python3
[ -x "$PY" ] || PY=$(command -v python3)
"$PY" -c 'import serial' 2>/dev/null || skip "python3-serial not installed (apt-get install python3-serial)"
[ -x "$MCUFLASH_SIM" ] || fail "$MCUFLASH_SIM not built"
mkdir -p "$WORK/peer"
cp "$PEER_DIR/flashtool.py" "$WORK/peer/"

case_fail() {
  for log in "$CASE"/*.log "$WORK"/*.log; do [ -f "$log" ] && { echo "--- $log" >&2; tail -n 25 "$log" >&2; }; done
  fail "$*"
}

# check_flash FLASH APP OFFSET: the app at OFFSET, the bootloader's placeholder below it.
check_flash() {
  python3 - "$@" <<'PY'
import sys
flash, app, off = open(sys.argv[1], "rb").read(), open(sys.argv[2], "rb").read(), int(sys.argv[3], 0)
if flash[off:off + len(app)] != app: sys.exit(f"{sys.argv[1]}: the image is not at offset {off:#x}")
if not flash[:off].startswith(b"[mcuflash-sim placeholder: katapult]"): sys.exit("the bootloader region changed")
PY
}

run_case() {
  local chip=$1 base=$2 offset=$3 size=$4
  shift 4
  CASE="$WORK/$chip.d"
  mkdir -p "$CASE"
  head -c "$size" /dev/urandom >"$CASE/app.bin"
  head -c $((size / 2 + 77)) /dev/urandom >"$CASE/app2.bin"
  start_sim "$chip" katapult --chip "$chip" --flash-file "$CASE/flash.bin" "$@"
  local port="$WORK/$chip"
  local started=$(date +%s%N)
  (cd "$WORK/peer" && timeout 150 "$PY" flashtool.py -d "$port" -f "$CASE/app.bin") >"$CASE/flashtool.log" 2>&1 ||
    case_fail "$chip: flashtool.py failed"
  local took_ms=$((($(date +%s%N) - started) / 1000000))
  grep -q "Verification Complete" "$CASE/flashtool.log" || case_fail "$chip: flashtool.py did not verify"
  grep -q "Programming Complete" "$CASE/flashtool.log" || case_fail "$chip: flashtool.py did not complete"
  grep -q "MCU type: " "$CASE/flashtool.log" || case_fail "$chip: flashtool.py saw no MCU type"
  check_flash "$CASE/flash.bin" "$CASE/app.bin" "$offset" || case_fail "$chip: flash after flashtool.py is wrong"

  # mcuflash on the simulator flashtool.py accepted (opening the port enters Katapult again).
  started=$(date +%s%N)
  "$MCUFLASH" flash "$CASE/app2.bin" -d "$port" -p katapult --chip "$chip" >"$CASE/mcuflash.log" 2>&1 ||
    case_fail "$chip: mcuflash flash failed"
  local ours_ms=$((($(date +%s%N) - started) / 1000000))
  grep -q "verified (read back)" "$CASE/mcuflash.log" || case_fail "$chip: mcuflash did not verify"
  check_flash "$CASE/flash.bin" "$CASE/app2.bin" "$offset" || case_fail "$chip: flash after mcuflash is wrong"
  (cd "$WORK/peer" && timeout 60 "$PY" flashtool.py -d "$port" -s) >"$CASE/status.log" 2>&1 ||
    case_fail "$chip: flashtool.py -s failed after mcuflash"
  grep -q "Status Request Complete" "$CASE/status.log" || case_fail "$chip: flashtool.py -s"
  "$MCUFLASH" read -d "$port" -p katapult --chip "$chip" --address $((base + offset)) --length 4096 \
    -o "$CASE/back.bin" -q >"$CASE/read.log" 2>&1 || case_fail "$chip: mcuflash read failed"
  stop_background
  cmp -n 4096 "$CASE/back.bin" <(tail -c +$((offset + 1)) "$CASE/flash.bin") || case_fail "$chip: read-back differs"
  [ "$(stat -c %s "$CASE/back.bin")" -eq 4096 ] || case_fail "$chip: read-back is not 4096 bytes"
  printf 'ok: %-12s flashtool.py wrote+verified %6d bytes in %d.%03d s; mcuflash %6d bytes in %d.%03d s\n' "$chip" \
    "$size" $((took_ms / 1000)) $((took_ms % 1000)) $(stat -c %s "$CASE/app2.bin") $((ours_ms / 1000)) $((ours_ms % 1000))
}

run_case stm32f103xe 0x08000000 0x2000 20000
run_case stm32g0b1xb 0x08000000 0x2000 40000 --no-timing
run_case rp2040 0x10000000 0x4000 40000 --no-timing
echo "all flashtool.py interop cases passed"
