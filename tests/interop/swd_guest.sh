#!/usr/bin/env bash
# mcuflash's own SWD through a real Linux kernel: mcuflash-sim serves three simulated CMSIS-DAP probes
# (DAPLink's 0d28:0204) with simulated chips over USB/IP, guest-run.sh boots Debian's kernel, and
# inside it `usbip attach` makes each a USB device.
#  1. with no probe attached, `mcuflash info --probe cmsis-dap` fails (69) and says so;
#  2. a v2 probe (bulk, through usbfs) on a SAMD21: `bootloader install --probe cmsis-dap` with a
#     backup first (erase all, BOOTPROT 0, write, BOOTPROT 8 KiB), then `flash app.bin --probe
#     cmsis-dap` after it (the Arduino Zero bootloader's 8 KiB), then `read` of the whole flash;
#  3. a v1 probe (HID, through hidraw) on an STM32F103: `flash` after the 2 KiB HID bootloader;
#  4. a v2 probe on another STM32F103 driven by real OpenOCD 0.12 with the configuration `mcuflash
#     openocd config --interface cmsis-dap --no-work-area --install` wrote (mass erase, program at the
#     base, verify).
# The simulators' flash files must hold each image byte for byte where it belongs, 0xFF elsewhere, and
# the backup and read-back files the flash as it was. Prints each step's time in the guest.
# Skipped (77) without guest-run.sh, usbip or QEMU; step 4 without openocd.
source "$(dirname "$0")/../lib/common.sh"
source "$(dirname "$0")/../lib/guest.sh"
use_guest usbip
OPENOCD=$(command -v openocd || true)

make_guest_dir swd-guest
head -c 7000 /dev/urandom >"$GUEST_DIR/boot.bin"
head -c 40000 /dev/urandom >"$GUEST_DIR/app.bin"
head -c 30000 /dev/urandom >"$GUEST_DIR/app_f1.bin"
head -c 6000 /dev/urandom >"$GUEST_DIR/hid_boot.bin"
[ -n "$OPENOCD" ] && "$MCUFLASH" openocd config --chip stm32f103xb --bootloader hid_stm32 --interface cmsis-dap \
  --no-work-area --install "$GUEST_DIR/hid_boot.bin" -o "$GUEST_DIR/install.cfg" >/dev/null
# In the guest the files are in its working folder: the configuration names them from there.
[ -n "$OPENOCD" ] && sed -i "s|$GUEST_DIR/||g; /^gdb_port/d" "$GUEST_DIR/install.cfg"

start_usbip_sim "$WORK/sim_samd.log" cmsis-dap --chip samd21g18a --bootloader arduino_zero --flash-file "$GUEST_DIR/flash_samd.bin"
PORT1=$USBIP_PORT
start_usbip_sim "$WORK/sim_f1.log" cmsis-dap --v1 --chip stm32f103xb --bootloader hid_stm32 --flash-file "$GUEST_DIR/flash_f1.bin"
PORT2=$USBIP_PORT
start_usbip_sim "$WORK/sim_ocd.log" cmsis-dap --chip stm32f103xb --flash-file "$GUEST_DIR/flash_ocd.bin"
PORT3=$USBIP_PORT
cp "$GUEST_DIR/flash_samd.bin" "$GUEST_DIR/samd_before.bin"

cat >"$GUEST_DIR/in_guest.sh" <<'GUEST'
#!/bin/sh
USB_ID=0d28:0204
. ./in_guest_usbip.sh
timed() { name=$1; shift; t0=$(date +%s%N); "$@" >"$name.txt" 2>&1; echo "exit $?" >>"$name.txt"; echo "ms $(( ($(date +%s%N) - t0) / 1000000 ))" >>"$name.txt"; }

timed absent ./mcuflash info --probe cmsis-dap
attach "$1" || exit 11
./mcuflash list >list.txt 2>&1
timed install ./mcuflash --json bootloader install --probe cmsis-dap --chip samd21g18a --bootloader arduino_zero --hex boot.bin --backup backup.bin
timed flash_samd ./mcuflash --json flash app.bin --probe cmsis-dap --chip samd21g18a --bootloader arduino_zero
timed read_samd ./mcuflash --json read --probe cmsis-dap -o readback.bin
detach || exit 12
attach "$2" || exit 13
ls /dev/hidraw* >hidraw.txt 2>&1
timed flash_f1 ./mcuflash --json flash app_f1.bin --probe cmsis-dap --chip stm32f103xb --bootloader hid_stm32
detach || exit 14
if [ -f install.cfg ]; then
  attach "$3" || exit 15
  timed openocd openocd -s /usr/share/openocd/scripts -c "tcl_port disabled" -c "telnet_port disabled" -c "gdb_port disabled" -f install.cfg
fi
exit 0
GUEST

cd "$GUEST_DIR"
started=$(date +%s%N)
set +e
"$GUEST_RUN" --usbip-port "$PORT1" --usbip-port "$PORT2" --usbip-port "$PORT3" --timeout 280 -- \
  sh ./in_guest.sh "$PORT1" "$PORT2" "$PORT3" >"$WORK/guest.out" 2>"$WORK/guest.err"
rc=$?
set -e
took_ms=$((($(date +%s%N) - started) / 1000000))
guest_succeeded "$rc" "11/13/15 attach, 12/14 detach"

expect "exit 69" absent.txt
expect "cmsis-dap:0d28:0204:MCUFLASHSIM0001" list.txt
expect "no CMSIS-DAP debug probe is connected" absent.txt
for step in install flash_samd read_samd flash_f1; do expect "exit 0" $step.txt; done
grep -q hidraw hidraw.txt || case_fail "the v1 probe got no hidraw node: $(cat hidraw.txt)"
if [ -f install.cfg ]; then
  expect "exit 0" openocd.txt
  expect "** Verified OK **" openocd.txt
fi
stop_background

python3 - "$GUEST_DIR" <<'PY' || case_fail "the flash files are not what was written"
import json, sys
d = sys.argv[1]
rd = lambda name: open(f"{d}/{name}", "rb").read()
problems = []
boot, app, samd = rd("boot.bin"), rd("app.bin"), rd("flash_samd.bin")
if rd("backup.bin") != rd("samd_before.bin"): problems.append("backup.bin is not the SAMD21's flash before the install")
if samd[:len(boot)] != boot: problems.append("the SAMD21 does not start with boot.bin")
if samd[len(boot):0x2000].strip(b"\xff"): problems.append("the SAMD21's bootloader region is not 0xFF after boot.bin")
if samd[0x2000:0x2000 + len(app)] != app: problems.append("app.bin is not at 0x2000 on the SAMD21")
if samd[0x2000 + len(app):].strip(b"\xff"): problems.append("the SAMD21's flash is not erased after app.bin")
if rd("readback.bin") != samd: problems.append("read --probe differs from the SAMD21's flash")
install = [json.loads(l) for l in open(f"{d}/install.txt") if l.startswith("{") and '"result"' in l]
if not install or install[-1].get("bootprot_bytes") != 8192: problems.append(f"BOOTPROT after the install: {install[-1:] }")
f1, app_f1 = rd("flash_f1.bin"), rd("app_f1.bin")
if f1[0x800:0x800 + len(app_f1)] != app_f1: problems.append("app_f1.bin is not at 0x08000800 on the STM32F103")
if f1[0x800 + len(app_f1):].strip(b"\xff"): problems.append("the STM32F103 is not erased after app_f1.bin")
import os
if os.path.exists(f"{d}/install.cfg"):
    ocd, hid = rd("flash_ocd.bin"), rd("hid_boot.bin")
    if ocd[:len(hid)] != hid or ocd[len(hid):].strip(b"\xff"): problems.append("OpenOCD's install from mcuflash's configuration is not in the flash")
if problems: sys.exit("\n".join(problems))
PY

for step in install flash_samd read_samd flash_f1 openocd; do
  [ -f "$GUEST_DIR/$step.txt" ] && echo "  $step: $(grep '^ms ' "$GUEST_DIR/$step.txt" | cut -d' ' -f2) ms in the guest"
done
echo "ok: mcuflash installed a SAMD21 bootloader, flashed after it and read it back through a CMSIS-DAP v2 probe (usbfs), flashed an STM32F103 through a v1 probe (hidraw), and OpenOCD ran mcuflash's configuration, all in the guest kernel (${took_ms} ms with boot)"
