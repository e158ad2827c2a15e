#!/usr/bin/env bash
# OpenOCD 0.12 (Debian's /usr/bin/openocd, its cmsis-dap driver over libusb) against the simulated
# CMSIS-DAP v2 probe (mcuflash-sim cmsis-dap, ARM DAPLink's 0d28:0204) with a simulated chip behind
# it, through a real Linux kernel: mcuflash-sim serves two probes over USB/IP, guest-run.sh boots
# Debian's kernel, and inside it `usbip attach` makes each a USB device OpenOCD finds by its
# "CMSIS-DAP" interface string. WORKAREASIZE 0: OpenOCD must not run flash algorithms on the core
# (the simulated core does not execute code), so it writes flash through the bus itself.
#  1. STM32F103xB: init, reset halt, flash info 0, stm32f1x mass_erase 0, program app.bin 0x08000000
#     verify, flash read_bank 0 backup.bin, shutdown;
#  2. the same probe again with gdb-multiarch against OpenOCD's gdb server: monitor reset halt and
#     x/8xw 0x08000000 show the words just flashed;
#  3. SAMD21G18A (target/at91samdXX.cfg): at91samd chip-erase, at91samd bootloader 0, program
#     bootloader.bin 0 verify, at91samd bootloader 8192.
# The simulators' flash files must then hold the images byte for byte (0xFF after them), and the
# backup OpenOCD read must be the STM32's whole flash.
# Skipped (77) without guest-run.sh, usbip, openocd (with its scripts) or QEMU.
source "$(dirname "$0")/../lib/common.sh"
source "$(dirname "$0")/../lib/guest.sh"
use_guest usbip openocd
OPENOCD_SCRIPTS=${OPENOCD_SCRIPTS:-/usr/share/openocd/scripts}
[ -f "$OPENOCD_SCRIPTS/interface/cmsis-dap.cfg" ] && [ -f "$OPENOCD_SCRIPTS/target/stm32f1x.cfg" ] \
  && [ -f "$OPENOCD_SCRIPTS/target/at91samdXX.cfg" ] || skip "OpenOCD's scripts are not in $OPENOCD_SCRIPTS"
GDB=$(command -v gdb-multiarch || true)

make_guest_dir openocd-guest
head -c 12288 /dev/urandom >"$GUEST_DIR/app.bin"
head -c 8192 /dev/urandom >"$GUEST_DIR/bootloader.bin"

start_usbip_sim "$WORK/sim_f1.log" cmsis-dap --chip stm32f103xb --flash-file "$GUEST_DIR/flash_f1.bin"
PORT1=$USBIP_PORT
start_usbip_sim "$WORK/sim_samd.log" cmsis-dap --chip samd21g18a --flash-file "$GUEST_DIR/flash_samd.bin"
PORT2=$USBIP_PORT

# What runs in the guest (its arguments: the two USB/IP ports, OpenOCD's scripts, gdb or "").
cat >"$GUEST_DIR/in_guest.sh" <<'GUEST'
#!/bin/sh
PORT1=$1 PORT2=$2 SCRIPTS=$3 GDB=$4
USB_ID=0d28:0204
. ./in_guest_usbip.sh
ms() { echo $(( ($(date +%s%N) - $1) / 1000000 )); }
ocd() { openocd -s "$SCRIPTS" -f interface/cmsis-dap.cfg -c "transport select swd" -c "set WORKAREASIZE 0" \
  -c "tcl_port disabled" -c "telnet_port disabled" "$@"; }

attach "$PORT1" || exit 11
t0=$(date +%s%N)
ocd -c "gdb_port disabled" -f target/stm32f1x.cfg -c init -c "reset halt" -c "flash info 0" -c "stm32f1x mass_erase 0" \
  -c "program app.bin 0x08000000 verify" -c "flash read_bank 0 backup.bin" -c shutdown >openocd_f1.txt 2>&1
echo "openocd exit $?" >>openocd_f1.txt
echo "openocd ms $(ms $t0)" >>openocd_f1.txt
if [ -n "$GDB" ]; then
  ocd -c "gdb_port 3333" -f target/stm32f1x.cfg >openocd_gdb.txt 2>&1 &
  server=$!
  i=0; until grep -q "Listening on port 3333" openocd_gdb.txt; do i=$((i+1)); [ $i -gt 300 ] && break; sleep 0.1; done
  t0=$(date +%s%N)
  "$GDB" -batch -nx -ex "target extended-remote :3333" -ex "monitor reset halt" -ex "x/8xw 0x08000000" \
    -ex "monitor shutdown" >gdb.txt 2>&1
  echo "gdb exit $?" >>gdb.txt
  echo "gdb ms $(ms $t0)" >>gdb.txt
  # OpenOCD shuts down (gdb then reports the lost connection: its exit code says nothing here).
  i=0; while kill -0 $server 2>/dev/null; do i=$((i+1)); [ $i -gt 100 ] && kill -9 $server; sleep 0.1; done
fi
detach || exit 12
attach "$PORT2" || exit 13
t0=$(date +%s%N)
# OpenOCD starts the DSU chip erase and returns ("It takes about 240ms"); the flash stalls the bus
# until it is done, longer than the probe's WAIT retries last: wait for it as a user would.
ocd -c "gdb_port disabled" -c "set CHIPNAME at91samd21g18" -f target/at91samdXX.cfg -c init -c "reset halt" -c "at91samd chip-erase" \
  -c "sleep 500" -c "at91samd bootloader 0" -c "program bootloader.bin 0 verify" -c "at91samd bootloader 8192" \
  -c "at91samd bootloader" -c shutdown >openocd_samd.txt 2>&1
echo "openocd exit $?" >>openocd_samd.txt
echo "openocd ms $(ms $t0)" >>openocd_samd.txt
exit 0
GUEST

cd "$GUEST_DIR"
started=$(date +%s%N)
set +e
"$GUEST_RUN" --usbip-port "$PORT1" --usbip-port "$PORT2" --timeout 290 -- \
  sh ./in_guest.sh "$PORT1" "$PORT2" "$OPENOCD_SCRIPTS" "$GDB" >"$WORK/guest.out" 2>"$WORK/guest.err"
rc=$?
set -e
took_ms=$((($(date +%s%N) - started) / 1000000))
guest_succeeded "$rc" "11 attach (STM32 probe), 12 the STM32 probe did not detach, 13 attach (SAMD21 probe)"

expect "CMSIS-DAP: FW Version = 2.1.0" openocd_f1.txt
expect "SWD DPIDR 0x1ba01477" openocd_f1.txt
expect "halted due to debug-request" openocd_f1.txt
expect "device id = 0x" openocd_f1.txt
expect "stm32x mass erase complete" openocd_f1.txt
expect "** Programming Finished **" openocd_f1.txt
expect "** Verified OK **" openocd_f1.txt
expect "wrote 131072 bytes to file backup.bin" openocd_f1.txt
expect "openocd exit 0" openocd_f1.txt
expect "SWD DPIDR 0x0bc11477" openocd_samd.txt
expect "chip erase started" openocd_samd.txt
expect "Bootloader size is 8192 bytes" openocd_samd.txt
expect "** Programming Finished **" openocd_samd.txt
expect "** Verified OK **" openocd_samd.txt
expect "openocd exit 0" openocd_samd.txt
stop_background

python3 - "$GUEST_DIR" <<'PY' || case_fail "the flash files are not what OpenOCD wrote"
import sys
d = sys.argv[1]
problems = []
app = open(f"{d}/app.bin", "rb").read()
f1 = open(f"{d}/flash_f1.bin", "rb").read()
if len(f1) != 131072: problems.append(f"flash_f1.bin is {len(f1)} bytes")
if f1[:len(app)] != app: problems.append("the STM32's flash does not start with app.bin byte for byte")
if f1[len(app):].strip(b"\xff"): problems.append("the STM32's flash is not erased after app.bin (mass erase)")
if open(f"{d}/backup.bin", "rb").read() != f1: problems.append("backup.bin (flash read_bank) differs from the STM32's flash")
boot = open(f"{d}/bootloader.bin", "rb").read()
samd = open(f"{d}/flash_samd.bin", "rb").read()
if len(samd) != 262144: problems.append(f"flash_samd.bin is {len(samd)} bytes")
if samd[:len(boot)] != boot: problems.append("the SAMD21's flash does not start with bootloader.bin byte for byte")
if samd[len(boot):].strip(b"\xff"): problems.append("the SAMD21's flash is not erased after the bootloader (chip-erase)")
if problems: sys.exit("\n".join(problems))
PY

if [ -n "$GDB" ]; then
  python3 - "$GUEST_DIR" <<'PY' || case_fail "gdb's x/8xw 0x08000000 does not show app.bin's first words"
import re, struct, sys
d = sys.argv[1]
words = [int(w, 16) for line in open(f"{d}/gdb.txt") if re.match(r"0x80000[01]0:", line)
         for w in re.findall(r"0x[0-9a-f]{8}", line.split(":", 1)[1])]
want = list(struct.unpack("<8I", open(f"{d}/app.bin", "rb").read()[:32]))
if words != want: sys.exit(f"gdb shows {[hex(w) for w in words]}, app.bin starts {[hex(w) for w in want]}")
PY
fi

for f in openocd_f1.txt openocd_samd.txt; do
  grep -E "FW Version|DPIDR|halted|device id|flash size|mass erase|Programming Finished|Verified OK|wrote [0-9]+ bytes|Bootloader|chip erase|openocd ms" "$GUEST_DIR/$f" || true
done
[ -n "$GDB" ] && grep "^0x80000[01]0:" "$GUEST_DIR/gdb.txt"
echo "ok: OpenOCD 0.12 programmed and read back an STM32F103 and a SAMD21 through the simulated CMSIS-DAP v2 probe in the guest kernel (${took_ms} ms with boot)"
