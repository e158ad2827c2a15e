#!/usr/bin/env bash
# With no -p on a serial port, mcuflash probes the protocols (STM32 ROM 0x7F first, then STK500v1,
# STK500v2, SAM-BA) at their usual rates: every serial simulator, at each rate its bootloaders use, is
# found and named; a silent port and a port that echoes are reported as nothing found (exit 69), in
# bounded time. Prints the time each detection took.
source "$(dirname "$0")/../lib/common.sh"

detect() {  # detect NAME EXPECTED_PROTOCOL EXPECTED_BOOTLOADER SIM-ARGS...
  local name=$1 protocol=$2 bootloader=$3; shift 3
  start_sim "$name" "$@" --no-timing
  local start=$(date +%s%N)
  "$MCUFLASH" info -d "$WORK/$name" --json >"$WORK/$name.json" 2>"$WORK/$name.err" ||
    fail "$name: not detected: $(cat "$WORK/$name.err")"
  local took=$(( ($(date +%s%N) - start) / 1000000 ))
  python3 - "$WORK/$name.json" "$protocol" "$bootloader" <<'PY' || fail "$name: $(cat "$WORK/$name.json")"
import json, sys
d = json.loads(open(sys.argv[1]).read().splitlines()[-1])
assert d["bootloader"] == sys.argv[3], d["bootloader"]
PY
  grep -q "found .*($protocol)" "$WORK/$name.err" "$WORK/$name.json" || fail "$name: no word of what was found: $(cat "$WORK/$name.err")"
  printf 'ok: %-26s detected as %-10s in %5d ms\n' "$name" "$protocol" "$took"
  stop_background
}

detect optiboot-1284p stk500v1 optiboot stk500v1 --chip atmega1284p
detect atmegaboot-57600 stk500v1 atmegaboot stk500v1 --chip atmega1284p --bootloader atmegaboot --baud 57600
detect atmegaboot-168-19200 stk500v1 atmegaboot stk500v1 --chip atmega168 --bootloader atmegaboot --baud 19200
detect mega2560 stk500v2 stk500boot_v2 stk500v2 --chip atmega2560
detect stm32f103-rom stm32-uart stm32_rom stm32-uart --chip stm32f103xb
detect samd21-samba samba arduino_zero samba --chip samd21g18a
detect sam3x-rom samba samba_rom samba --chip sam3x8e

# --chip narrows the search: an atmega2560 is not probed as an STM32 or a SAM.
start_sim mega stk500v2 --chip atmega2560 --no-timing
"$MCUFLASH" info -d "$WORK/mega" --chip atmega2560 -q >/dev/null 2>"$WORK/mega.err" || fail "mega with --chip: $(cat "$WORK/mega.err")"
stop_background

# A silent port and one that echoes every byte: nothing is detected, exit 69, within the bound.
python3 - "$WORK/silent" "$WORK/echo" <<'PY' &
import os, pty, select, sys, time, tty
silent_master, silent_slave = pty.openpty()
echo_master, echo_slave = pty.openpty()
for fd in (silent_slave, echo_slave): tty.setraw(fd)
os.symlink(os.ttyname(silent_slave), sys.argv[1])
os.symlink(os.ttyname(echo_slave), sys.argv[2])
end = time.time() + 120
while time.time() < end:
    r, _, _ = select.select([echo_master, silent_master], [], [], 0.5)
    for fd in r:
        try: data = os.read(fd, 4096)
        except OSError: continue
        if fd == echo_master: os.write(echo_master, data)
PY
BACKGROUND_PIDS+=($!)
wait_for_path "$WORK/silent"; wait_for_path "$WORK/echo"
for port in silent echo; do
  start=$(date +%s%N)
  expect_exit 69 "nothing on .* answers as a bootloader mcuflash knows" -- timeout 60 "$MCUFLASH" info -d "$WORK/$port"
  took=$(( ($(date +%s%N) - start) / 1000000 ))
  [ "$took" -lt 45000 ] || fail "$port: the search took $took ms"
  printf 'ok: %-26s nothing found, exit 69, in %5d ms\n' "$port port" "$took"
done

# A running Klipper's port is asked to reboot into its bootloader: tests/cli/klipper_entry.sh.
