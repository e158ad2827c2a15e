#!/usr/bin/env bash
# Benchmark: 64 KiB at the application start of an STM32F103xB (after the 2 KiB HID bootloader) and a
# SAMD21G18A (after the 8 KiB Arduino Zero bootloader) through the simulated CMSIS-DAP v2 probe,
# program timing on (F103: 20 ms a 1 KiB page erase, 52 us a half-word; SAMD21: 4 ms a 256-byte row
# erase, 2.5 ms a 64-byte page write; the probe: SWD bits at its clock, one USB frame per round trip,
# 4 commands in flight).
#  1. in process: mcuflash flash --probe sim:cmsis-dap:CHIP (the probe's USB timing modelled, no kernel);
#  2. through a real kernel (QEMU guest, USB/IP): OpenOCD 0.12 (`program app.bin ADDR verify`, no
#     working area: the simulated core runs no flash algorithm) and mcuflash, each on a fresh probe.
# pyOCD is not timed: `pyocd flash` always runs a flash algorithm on the core, which the simulated
# core does not execute. Prints the times and the limit (flash time + the USB packets the data needs
# at 4 in flight per 1 ms frame, for writing and for reading back); asserts nothing.
#   bench/swd.sh [BUILD_DIR]
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD_DIR=$(realpath "${1:-build}")
export BUILD_DIR SOURCE_DIR=$PWD
source tests/lib/common.sh
source tests/lib/guest.sh
use_guest usbip openocd

make_guest_dir bench-swd
head -c 65536 /dev/urandom >"$GUEST_DIR/app.bin"

# 1. In process.
for spec in "stm32f103xb hid_stm32" "samd21g18a arduino_zero"; do
  set -- $spec
  "$MCUFLASH" --json flash "$GUEST_DIR/app.bin" --probe "sim:cmsis-dap:$1" --bootloader "$2" \
    | grep '"result"' >"$GUEST_DIR/inprocess_$1.json"
done

# 2. Through the guest kernel: one probe per tool and chip.
start_usbip_sim "$WORK/s1.log" cmsis-dap --chip stm32f103xb --bootloader hid_stm32 --flash-file "$GUEST_DIR/ocd_f1.bin"; P1=$USBIP_PORT
start_usbip_sim "$WORK/s2.log" cmsis-dap --chip stm32f103xb --bootloader hid_stm32 --flash-file "$GUEST_DIR/mcu_f1.bin"; P2=$USBIP_PORT
start_usbip_sim "$WORK/s3.log" cmsis-dap --chip samd21g18a --bootloader arduino_zero --flash-file "$GUEST_DIR/ocd_samd.bin"; P3=$USBIP_PORT
start_usbip_sim "$WORK/s4.log" cmsis-dap --chip samd21g18a --bootloader arduino_zero --flash-file "$GUEST_DIR/mcu_samd.bin"; P4=$USBIP_PORT
cat >"$GUEST_DIR/in_guest.sh" <<'GUEST'
#!/bin/sh
USB_ID=0d28:0204
. ./in_guest_usbip.sh
timed() { name=$1; shift; t0=$(date +%s%N); "$@" >"$name.txt" 2>&1; rc=$?; echo "$name $t0 $(date +%s%N) $rc" >>times.txt; }
ocd() { openocd -s /usr/share/openocd/scripts -f interface/cmsis-dap.cfg -c "transport select swd" -c "set WORKAREASIZE 0" \
  -c "tcl_port disabled" -c "telnet_port disabled" -c "gdb_port disabled" "$@"; }
attach "$1" || exit 11
timed openocd_f1 ocd -f target/stm32f1x.cfg -c init -c "reset halt" -c "program app.bin 0x08000800 verify" -c "reset run" -c shutdown
detach || exit 12; attach "$2" || exit 13
timed mcuflash_f1 ./mcuflash --json flash app.bin --probe cmsis-dap --chip stm32f103xb --bootloader hid_stm32
detach || exit 14; attach "$3" || exit 15
timed openocd_samd ocd -c "set CHIPNAME at91samd21g18" -f target/at91samdXX.cfg -c init -c "reset halt" -c "program app.bin 0x2000 verify" -c "reset run" -c shutdown
detach || exit 16; attach "$4" || exit 17
timed mcuflash_samd ./mcuflash --json flash app.bin --probe cmsis-dap --chip samd21g18a --bootloader arduino_zero
exit 0
GUEST
cd "$GUEST_DIR"
"$GUEST_RUN" --usbip-port "$P1" --usbip-port "$P2" --usbip-port "$P3" --usbip-port "$P4" --timeout 600 -- \
  sh ./in_guest.sh "$P1" "$P2" "$P3" "$P4" >"$WORK/guest.out" 2>"$WORK/guest.err" \
  || { tail -20 "$WORK/guest.err" ./*.txt; fail "guest run failed"; }
stop_background

python3 - "$GUEST_DIR" <<'PY'
import json, sys
d = sys.argv[1]
times = {l.split()[0]: ((int(l.split()[2]) - int(l.split()[1])) / 1e9, int(l.split()[3])) for l in open(f"{d}/times.txt")}
app = open(f"{d}/app.bin", "rb").read()
# Flash time of 64 KiB in the models (src/sim/swd/stm32_bus.cpp, src/sim/samba): erase + program.
flash = {"f1": 64 * 0.020 + 32768 * 52e-6, "samd": 256 * 0.004 + 1024 * 0.0025}
# USB: DAP_TransferBlock carries 14 words (56 bytes) a 64-byte packet; 4 packets in flight per 1 ms frame;
# the data goes out once and comes back once (verify).
usb = 2 * (65536 / 56) / 4 * 1e-3
at = {"f1": 0x800, "samd": 0x2000}
print("SWD: 64 KiB after the bootloader through a simulated CMSIS-DAP v2 probe, program timing on")
for chip, name in (("f1", "stm32f103xb"), ("samd", "samd21g18a")):
    limit = flash[chip] + usb
    inproc = json.loads(open(f"{d}/inprocess_{name}.json").read().splitlines()[-1])["seconds"]
    print(f"  {name}: limit {limit:.2f} s (flash {flash[chip]:.2f} s + USB {usb:.2f} s)")
    print(f"    mcuflash in process (probe timing modelled): {inproc:6.2f} s = {inproc / limit:.2f} x limit")
    for tool in ("openocd", "mcuflash"):
        seconds, rc = times[f"{tool}_{chip}"]
        held = open(f"{d}/{'ocd' if tool == 'openocd' else 'mcu'}_{chip}.bin", "rb").read()[at[chip]:at[chip] + len(app)] == app
        print(f"    {tool:8} in the guest (USB/IP, QEMU): {seconds:6.2f} s = {seconds / limit:.2f} x limit"
              f"{'' if rc == 0 else f'  (exit {rc})'}{'' if held else '  (IMAGE NOT IN FLASH)'}")
    o, m = times[f"openocd_{chip}"][0], times[f"mcuflash_{chip}"][0]
    print(f"    mcuflash / OpenOCD in the guest: {m / o:.2f}")
print("  pyOCD: not timed (pyocd flash runs a flash algorithm on the core; the simulated core executes none)")
PY
