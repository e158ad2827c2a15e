#!/usr/bin/env bash
# Real bossac (1.9.1) against mcuflash-sim's SAM-BA simulators on a pty: proves the simulator is
# faithful enough for the program it copies. For each case: `bossac -i` identifies the chip, then
# erase + write + verify of a random application, a read-back with `-r`, and checks of the read-back
# against the image and against the simulator's flash file (bootloader placeholder intact, no
# refused flash operation). Skipped (77) without bossac.
# Note: bossac's -U takes its value only as `-U1` or `--usb-port=1` (`-U 1` makes "1" a file name).
source "$(dirname "$0")/../lib/common.sh"

command -v bossac >/dev/null || skip "bossac not installed (package bossa-cli)"
[ -x "$MCUFLASH_SIM" ] || fail "$MCUFLASH_SIM not built"

case_fail() {
  for log in "$CASE"/*.log "$WORK/$NAME.log"; do [ -f "$log" ] && { echo "--- $log" >&2; tail -n 30 "$log" >&2; }; done
  fail "$*"
}

# check_images CASE FLASH_SIZE APP_OFFSET BOOT_SIZE BOOTLOADER PAGE_SIZE: the application at its offset
# in the flash file, erased flash after its last page (bossac pads that page), the bootloader
# placeholder before it, the read-back equal to it.
check_images() {
  python3 - "$@" <<'PY'
import sys
case, flash_size, offset, boot_size, name, page = sys.argv[1], int(sys.argv[2]), int(sys.argv[3], 0), int(sys.argv[4]), sys.argv[5], int(sys.argv[6])
app = open(case + "/app.bin", "rb").read()
flash = open(case + "/flash.bin", "rb").read()
back = open(case + "/back.bin", "rb").read()
problems = []
if len(flash) != flash_size: problems.append("flash file is %d bytes, not %d" % (len(flash), flash_size))
if flash[offset:offset + len(app)] != app: problems.append("the application is not at 0x%X in the flash file" % offset)
app_end = offset + (len(app) + page - 1) // page * page
if flash[app_end:].strip(b"\xff"): problems.append("flash file has data after the application's last page")
if boot_size:
    text = ("[mcuflash-sim placeholder: %s] " % name).encode()
    if flash[:boot_size] != (text * (boot_size // len(text) + 1))[:boot_size]:
        problems.append("bootloader placeholder damaged")
if back[:len(app)] != app: problems.append("bossac's read-back differs from the image")
if problems: sys.exit("\n".join(problems))
PY
}

# run_case NAME PROTOCOL CHIP USB(0/1) APP_SIZE FLASH_SIZE OFFSET BOOT_SIZE BOOTLOADER PAGE_SIZE EXPECTED_DEVICE
#          [extra bossac write options] -- [extra mcuflash-sim options]
run_case() {
  NAME=$1
  local protocol=$2 chip=$3 usb=$4 size=$5 flash_size=$6 offset=$7 boot_size=$8 bootloader=$9 page=${10} device=${11}
  shift 11
  local write_options=() sim_options=()
  while [ $# -gt 0 ] && [ "$1" != "--" ]; do write_options+=("$1"); shift; done
  [ $# -gt 0 ] && shift
  sim_options=("$@")
  CASE="$WORK/$NAME.d"
  mkdir -p "$CASE"
  python3 -c "import os,sys; open(sys.argv[1],'wb').write(os.urandom(int(sys.argv[2])))" "$CASE/app.bin" "$size"
  start_sim "$NAME" "$protocol" --chip "$chip" --flash-file "$CASE/flash.bin" "${sim_options[@]}"

  local bossac=(timeout 300 bossac -p "$WORK/$NAME" --usb-port="$usb")
  timeout 60 bossac -p "$WORK/$NAME" --usb-port="$usb" -i >"$CASE/info.log" 2>&1 || case_fail "$NAME: bossac -i failed"
  grep -q "Device *: *$device" "$CASE/info.log" || case_fail "$NAME: bossac -i did not find the $device"

  local started=$(date +%s%N)
  "${bossac[@]}" -e -w -v --offset="$offset" "${write_options[@]}" "$CASE/app.bin" >"$CASE/write.log" 2>&1 ||
    case_fail "$NAME: bossac erase/write/verify failed"
  local took_ms=$((($(date +%s%N) - started) / 1000000))
  grep -q "Verify successful" "$CASE/write.log" || case_fail "$NAME: bossac did not verify"
  if [[ " ${write_options[*]} " == *" -R "* ]]; then
    # -R reset the chip (AIRCR / RSTC); with the application written (and on SAM3/SAM4 GPNVM bit 1 set by
    # -b) it runs.
    grep -q "software reset: the application runs" "$WORK/$NAME.log" || case_fail "$NAME: -b -R did not start the application"
  fi

  started=$(date +%s%N)
  "${bossac[@]}" --offset="$offset" --read="$size" "$CASE/back.bin" >"$CASE/read.log" 2>&1 || case_fail "$NAME: bossac -r failed"
  local read_ms=$((($(date +%s%N) - started) / 1000000))
  stop_background
  ! grep -q "refused (protected)" "$WORK/$NAME.log" || case_fail "$NAME: the simulator refused flash operations (bootloader region)"
  check_images "$CASE" "$flash_size" "$offset" "$boot_size" "$bootloader" "$page" || case_fail "$NAME: images differ"
  printf 'ok: %-16s %6d bytes erased+written+verified in %d.%03d s, read back in %d.%03d s; %s\n' "$NAME" "$size" \
    $((took_ms / 1000)) $((took_ms % 1000)) $((read_ms / 1000)) $((read_ms % 1000)) "$(grep -o 'flash: .*' "$WORK/$NAME.log")"
}

# Arduino Zero bootloader on a UART (autobaud, XMODEM), flash timing on: X erases from 0x2000, Y
# writes, Z verifies; the read-back goes through XMODEM.
run_case zero-uart samba-uart samd21g18a 0 30000 262144 0x2000 8192 arduino_zero 64 ATSAMD21x18
# The same on USB: raw data, and reads above 63 bytes come back garbled unless bossac splits them;
# -R resets through AIRCR and the bootloader starts the application.
run_case zero-usb samba samd21g18a 1 30000 262144 0x2000 8192 arduino_zero 64 ATSAMD21x18 -R -- -v
# Arduino Due: the SAM3X ROM monitor, no extensions: EEFC erase-all, the word-copy applet into the
# page latch of each plane, erase-and-write-page, verify by reading through the applet (the ROM reads
# flash as zeros), boot from flash (-b) and reset (-R) into the application. 300 KiB so that the
# second plane (from 0xC0000) is written too.
run_case due-uart samba-uart sam3x8e 0 300000 524288 0 0 samba_rom 256 ATSAM3X8 -b -R -- --no-timing -v
run_case due-usb samba sam3x8e 1 20000 524288 0 0 samba_rom 256 ATSAM3X8 -b -R -- -v
# Adafruit SAMD51 bootloader on USB: 8 KiB block erase from 0x4000, 512-byte pages.
run_case metro-usb samba samd51j19a 1 40000 524288 0x4000 16384 adafruit_samd51 512 ATSAMD51x19
# Duet 2: the SAM4E ROM monitor on a UART (one EEFC plane, 512-byte pages), boot from flash.
run_case duet-uart samba-uart sam4e8e 0 20000 524288 0 0 samba_rom 512 ATSAM4E8 -b -R -- -v
echo "all bossac interop cases passed"
