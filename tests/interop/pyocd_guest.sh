#!/usr/bin/env bash
# pyOCD (Debian's python3-pyocd, its pyocd-tool commander) against the simulated CMSIS-DAP v1 probe
# (mcuflash-sim cmsis-dap --v1: a HID probe, DAPLink's 0d28:0204) with an STM32F103xB behind it,
# through a real Linux kernel: mcuflash-sim serves it over USB/IP, guest-run.sh boots Debian's kernel,
# `usbip attach` makes it a USB device (usbhid binds it; pyOCD's pyusb back end detaches that and
# finds the probe by the "CMSIS-DAP" in its product string). Debian's pyOCD (0.13) speaks only v1
# (HID), which is why this test uses the v1 probe.
#  1. savemem 0x08000000 8192: the flash the simulator was started with, byte for byte;
#  2. read32 0x08000000 8: the same words, as pyOCD prints them;
#  3. write32 to SRAM and read32 back;
#  4. where OpenOCD is installed, its HID back end (hidapi over the kernel's hidraw node, after pyOCD
#     let usbhid have the probe back): init, reset halt, flash info 0, mdw, dump_image of 4 KiB.
# `pyocd flash` is not tried: it runs flash algorithms on the core, which the simulated core does not
# execute.
# Skipped (77) without guest-run.sh, usbip, pyocd-tool (with python3-usb) or QEMU.
source "$(dirname "$0")/../lib/common.sh"
source "$(dirname "$0")/../lib/guest.sh"
use_guest usbip pyocd-tool
/usr/bin/python3 -c "import pyocd, usb" 2>/dev/null || skip "python3-pyocd or python3-usb not installed"

OPENOCD=$(command -v openocd || true)
[ -n "$OPENOCD" ] && [ -f /usr/share/openocd/scripts/interface/cmsis-dap.cfg ] || OPENOCD=""
make_guest_dir pyocd-guest
head -c 131072 /dev/urandom >"$GUEST_DIR/flash.bin"  # the chip's flash when the simulator starts
cp "$GUEST_DIR/flash.bin" "$WORK/flash-before.bin"
start_usbip_sim "$WORK/sim.log" cmsis-dap --v1 --chip stm32f103xb --flash-file "$GUEST_DIR/flash.bin"
PORT=$USBIP_PORT

cat >"$GUEST_DIR/in_guest.sh" <<'GUEST'
#!/bin/sh
PORT=$1 OPENOCD=$2
usbip --tcp-port "$PORT" attach -r "$GUEST_HOST_ADDR" -b 1-1 || exit 11
i=0; until lsusb -d 0d28:0204 >/dev/null 2>&1; do i=$((i+1)); [ $i -gt 100 ] && exit 12; sleep 0.1; done
export HOME=/tmp
tool() { /usr/bin/python3 /usr/bin/pyocd-tool -t stm32f103rc "$@"; }
t0=$(date +%s%N)
tool savemem 0x08000000 8192 dump.bin >savemem.txt 2>&1; echo "pyocd exit $?" >>savemem.txt
echo "pyocd ms $(( ($(date +%s%N) - t0) / 1000000 ))" >>savemem.txt
tool read32 0x08000000 32 >read32.txt 2>&1; echo "pyocd exit $?" >>read32.txt
tool write32 0x20000100 0x12345678 0xCAFEF00D >write32.txt 2>&1; echo "pyocd exit $?" >>write32.txt
tool read32 0x20000100 8 >sram.txt 2>&1; echo "pyocd exit $?" >>sram.txt
if [ -n "$OPENOCD" ]; then
  # pyOCD detached usbhid: bind it again so that a hidraw node appears for hidapi.
  for i in /sys/bus/usb/devices/*:1.0; do
    [ "$(cat "$i/bInterfaceClass" 2>/dev/null)" = 03 ] && [ ! -e "$i/driver" ] \
      && echo -n "$(basename "$i")" >/sys/bus/usb/drivers/usbhid/bind 2>/dev/null
  done
  i=0; until ls /dev/hidraw* >/dev/null 2>&1; do i=$((i+1)); [ $i -gt 50 ] && break; sleep 0.1; done
  "$OPENOCD" -s /usr/share/openocd/scripts -f interface/cmsis-dap.cfg -c "cmsis_dap_backend hid" \
    -c "transport select swd" -c "set WORKAREASIZE 0" -c "gdb_port disabled" -c "tcl_port disabled" \
    -c "telnet_port disabled" -f target/stm32f1x.cfg -c init -c "reset halt" -c "flash info 0" \
    -c "mdw 0x08000000 4" -c "dump_image openocd_dump.bin 0x08000000 4096" -c shutdown >openocd.txt 2>&1
  echo "openocd exit $?" >>openocd.txt
fi
exit 0
GUEST

cd "$GUEST_DIR"
started=$(date +%s%N)
set +e
"$GUEST_RUN" --usbip-port "$PORT" --timeout 200 -- sh ./in_guest.sh "$PORT" "$OPENOCD" >"$WORK/guest.out" 2>"$WORK/guest.err"
rc=$?
set -e
took_ms=$((($(date +%s%N) - started) / 1000000))
guest_succeeded "$rc" "11 usbip attach, 12 the probe did not appear"

for f in savemem.txt read32.txt write32.txt sram.txt; do expect "pyocd exit 0" $f; done
cmp -s "$GUEST_DIR/dump.bin" <(head -c 8192 "$WORK/flash-before.bin") \
  || case_fail "pyOCD's savemem is not the simulated chip's flash"
python3 - "$GUEST_DIR" "$WORK/flash-before.bin" <<'PY' || case_fail "pyOCD's read32 output is not the flash's words"
import re, struct, sys
d, flash = sys.argv[1], open(sys.argv[2], "rb").read()
words = [int(w, 16) for line in open(f"{d}/read32.txt") if re.match(r"^0*8000000", line)
         for w in re.findall(r"\b[0-9a-f]{8}\b", line.split(":", 1)[1])]
want = list(struct.unpack("<4I", flash[:16]))
if words[:4] != want: sys.exit(f"read32 shows {words}, the flash holds {want}")
PY
grep -qi "12345678" "$GUEST_DIR/sram.txt" && grep -qi "cafef00d" "$GUEST_DIR/sram.txt" \
  || case_fail "SRAM does not read back what write32 wrote"
if [ -n "$OPENOCD" ]; then
  expect "openocd exit 0" openocd.txt
  expect "SWD DPIDR 0x1ba01477" openocd.txt
  expect "dumped 4096 bytes" openocd.txt
  cmp -s "$GUEST_DIR/openocd_dump.bin" <(head -c 4096 "$WORK/flash-before.bin") \
    || case_fail "OpenOCD's dump_image over the HID probe is not the simulated chip's flash"
  grep -E "FW Version|DPIDR|halted|device id|^0x08000000|dumped" "$GUEST_DIR/openocd.txt"
fi
grep -v "pyocd" "$GUEST_DIR/read32.txt" | head -3
grep -v "pyocd exit" "$GUEST_DIR/sram.txt" | head -2
grep "pyocd ms" "$GUEST_DIR/savemem.txt"
echo "ok: pyOCD read and wrote an STM32F103 through the simulated CMSIS-DAP v1 (HID) probe in the guest kernel${OPENOCD:+, and so did the HID back end of OpenOCD} (${took_ms} ms with boot)"
