#!/usr/bin/env bash
# Real teensy_loader_cli 2.2 (Debian) and mcuflash against the HalfKay simulator (a Teensy++ 2.0,
# at90usb1286, with HalfKay's timing: about 2 s of chip erase on the first block), through a real
# Linux kernel: mcuflash-sim serves two simulated Teensies over USB/IP, guest-run.sh boots Debian's
# kernel, and inside it `usbip attach` makes each a USB device (usbhid binds it, hidraw appears).
#  1. with nothing attached, mcuflash flash -d usb:16c0:0478 fails (69) and says to press the button;
#  2. teensy_loader_cli --mcu=at90usb1286 -w -v app.hex is started first and waits ("Waiting for
#     Teensy device"); the first Teensy is attached; it writes, boots it (the Teensy leaves the bus);
#  3. the second Teensy is attached: `mcuflash list` names it, and mcuflash flash app2.hex
#     -d usb:16c0:0478 writes it through the kernel's hidraw node, says "not verified", boots it.
# Each simulator's flash file must then hold its image byte for byte, 0xFF to the end of the
# application area, and HalfKay's boot block (the top 1 KiB) untouched.
# Skipped (77) without guest-run.sh, usbip, teensy_loader_cli, or a QEMU that guest-run.sh can install.
source "$(dirname "$0")/../lib/common.sh"
source "$(dirname "$0")/../lib/guest.sh"
use_guest usbip teensy_loader_cli

make_guest_dir halfkay-guest
random_hex "$GUEST_DIR/app.hex" 30000 0
random_hex "$GUEST_DIR/app2.hex" 20000 0

start_usbip_sim "$WORK/sim1.log" halfkay --chip at90usb1286 --flash-file "$GUEST_DIR/flash1.bin" -v
PORT1=$USBIP_PORT
start_usbip_sim "$WORK/sim2.log" halfkay --chip at90usb1286 --flash-file "$GUEST_DIR/flash2.bin"
PORT2=$USBIP_PORT

cd "$GUEST_DIR"
started=$(date +%s%N)
set +e
"$GUEST_RUN" --usbip-port "$PORT1" --usbip-port "$PORT2" --timeout 150 -- sh -c "
  present() { lsusb -d 16c0:0478 >/dev/null 2>&1; }
  attach() {
    usbip --tcp-port \$1 attach -r \$GUEST_HOST_ADDR -b 1-1 || return 1
    i=0; until present; do i=\$((i+1)); [ \$i -gt 100 ] && return 1; sleep 0.1; done
  }
  ./mcuflash flash app2.hex -d usb:16c0:0478 >absent.txt 2>&1; echo \"exit \$?\" >>absent.txt
  teensy_loader_cli --mcu=at90usb1286 -w -v app.hex >tlc.txt 2>&1 &
  tlc=\$!
  sleep 1
  attach $PORT1 || exit 11
  ls /dev/hidraw* >hidraw.txt 2>&1
  t0=\$(date +%s%N)
  wait \$tlc; echo \"teensy_loader_cli exit \$?\" >>tlc.txt
  echo \"teensy_loader_cli ms \$(( (\$(date +%s%N) - t0) / 1000000 ))\" >>tlc.txt
  i=0; while present; do i=\$((i+1)); [ \$i -gt 50 ] && exit 12; sleep 0.1; done
  attach $PORT2 || exit 13
  ./mcuflash list >list.txt 2>&1 || exit 14
  t0=\$(date +%s%N)
  ./mcuflash flash app2.hex -d usb:16c0:0478 >mcuflash.txt 2>&1 || exit 15
  echo \"mcuflash ms \$(( (\$(date +%s%N) - t0) / 1000000 ))\" >>mcuflash.txt
  i=0; while present; do i=\$((i+1)); [ \$i -gt 50 ] && exit 16; sleep 0.1; done
  exit 0
" >"$WORK/guest.out" 2>"$WORK/guest.err"
rc=$?
set -e
took_ms=$((($(date +%s%N) - started) / 1000000))
guest_succeeded "$rc" "11 attach, 12 still on the bus after teensy_loader_cli, 13 attach 2, 14 mcuflash list, 15 mcuflash flash, 16 still on the bus after mcuflash"

expect "exit 69" absent.txt
expect "press the button on the Teensy" absent.txt
expect "Waiting for Teensy device" tlc.txt
expect "Found HalfKay Bootloader" tlc.txt
expect "Booting" tlc.txt
expect "teensy_loader_cli exit 0" tlc.txt
expect "halfkay" list.txt
expect "not verified" mcuflash.txt
expect "/dev/hidraw" mcuflash.txt
grep -q "hidraw" "$GUEST_DIR/hidraw.txt" || case_fail "usbhid did not bind the simulated Teensy (no hidraw): $(cat "$GUEST_DIR/hidraw.txt")"
stop_background
for n in 1 2; do
  grep -q "HalfKay on an at90usb1286" "$WORK/sim$n.log" || case_fail "simulator $n log"
done
hex_to_bin "$GUEST_DIR/app.hex" "$GUEST_DIR/app.bin"
hex_to_bin "$GUEST_DIR/app2.hex" "$GUEST_DIR/app2.bin"
python3 - "$GUEST_DIR" <<'PY' || case_fail "the flash files are not what was written"
import sys
d = sys.argv[1]
problems = []
placeholder = (b"[mcuflash-sim placeholder: halfkay] " * 40)[:1024]
for flash_name, app_name, who in (("flash1.bin", "app.bin", "teensy_loader_cli"), ("flash2.bin", "app2.bin", "mcuflash")):
    flash = open(f"{d}/{flash_name}", "rb").read()
    app = open(f"{d}/{app_name}", "rb").read()
    if len(flash) != 131072: problems.append(f"{flash_name} is {len(flash)} bytes")
    if flash[:len(app)] != app: problems.append(f"{who}'s image is not at 0 byte for byte")
    if flash[len(app):130048].strip(b"\xff"): problems.append(f"{who}: data after the image")
    if flash[130048:] != placeholder: problems.append(f"{who}: HalfKay's boot block changed")
if problems: sys.exit("\n".join(problems))
PY
grep "teensy_loader_cli ms" "$GUEST_DIR/tlc.txt"
grep "mcuflash ms" "$GUEST_DIR/mcuflash.txt"
tail -n 2 "$GUEST_DIR/mcuflash.txt" | head -1
echo "ok: teensy_loader_cli and mcuflash flashed the HalfKay simulator through the guest kernel (${took_ms} ms with boot)"
