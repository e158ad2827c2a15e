#!/usr/bin/env bash
# Klipper's real hid-flash (lib/hidflash, built here from the Klipper tree in ../shared/peers) and
# mcuflash against the STM32 HID bootloader simulator (STM32F103 with the 2 KiB F1 build: reports as
# SET_REPORT, acks on interrupt IN 0x81; and an STM32F407 with the 16 KiB F4 build: reports on the
# interrupt OUT endpoint), through a real Linux kernel: mcuflash-sim serves four simulated boards over
# USB/IP, guest-run.sh boots Debian's kernel, and inside it `usbip attach` makes each a USB device
# (usbhid binds it, hidraw appears: hid-flash detaches it through libusb, mcuflash writes through
# hidraw; the last board's usbhid is unbound first, and mcuflash then drives it through libusb).
#  1. with nothing attached, mcuflash flash -d usb:1209:beba fails (69) and says how to start the bootloader;
#  2. the F1 board is attached: hid-flash app.bin writes it page by page and reboots it (it leaves the bus);
#  3. the second F1 board: `mcuflash list` names it, mcuflash flash app2.bin -d usb:1209:beba writes it
#     (the build told from endpoint 0, the chip assumed), says "not verified", reboots it;
#  4. the F4 board: hid-flash app3.bin writes it through the interrupt OUT endpoint;
#  5. a second F4 board without usbhid: mcuflash flash app4.hex --chip stm32f407xg -d usb:1209:beba
#     goes through usbfs (libusb) instead.
# Each simulator's flash file must then hold its image byte for byte at the application start, 0xFF up
# to the end of its last page, and the bootloader region untouched.
# Skipped (77) without guest-run.sh, usbip, make/cc/pkg-config/libusb-1.0 to build hid-flash, or QEMU.
source "$(dirname "$0")/../lib/common.sh"
source "$(dirname "$0")/../lib/guest.sh"
use_guest usbip make cc pkg-config
pkg-config --exists libusb-1.0 || skip "libusb-1.0-0-dev not installed (scripts/setup.sh installs it)"
HIDFLASH_SRC=${HIDFLASH_SRC:-$SOURCE_DIR/../shared/peers/klipper/lib/hidflash}
[ -d "$HIDFLASH_SRC" ] || HIDFLASH_SRC=/work/shared/peers/klipper/lib/hidflash
[ -f "$HIDFLASH_SRC/main.c" ] || skip "Klipper's lib/hidflash not found"

make_guest_dir hid-flash-guest
# Built in the guest's folder: the guest cannot see the host's /tmp.
cp -r "$HIDFLASH_SRC" "$GUEST_DIR/" && make -C "$GUEST_DIR/hidflash" >"$WORK/hidflash-build.log" 2>&1 \
  || fail "hid-flash did not build: $(tail -5 "$WORK/hidflash-build.log")"
[ -x "$GUEST_DIR/hidflash/hid-flash" ] || fail "hid-flash did not build (no binary): $(tail -5 "$WORK/hidflash-build.log")"
head -c 30000 /dev/urandom >"$GUEST_DIR/app.bin"
head -c 20000 /dev/urandom >"$GUEST_DIR/app2.bin"
head -c 40000 /dev/urandom >"$GUEST_DIR/app3.bin"
random_hex "$GUEST_DIR/app4.hex" 50000 0x08004000

start_usbip_sim "$WORK/sim1.log" hid-stm32 --chip stm32f103xb --flash-file "$GUEST_DIR/flash1.bin" -v
PORT1=$USBIP_PORT
start_usbip_sim "$WORK/sim2.log" hid-stm32 --chip stm32f103xb --flash-file "$GUEST_DIR/flash2.bin"
PORT2=$USBIP_PORT
start_usbip_sim "$WORK/sim3.log" hid-stm32 --chip stm32f407xg --flash-file "$GUEST_DIR/flash3.bin"
PORT3=$USBIP_PORT
start_usbip_sim "$WORK/sim4.log" hid-stm32 --chip stm32f407xg --flash-file "$GUEST_DIR/flash4.bin"
PORT4=$USBIP_PORT

cd "$GUEST_DIR"
started=$(date +%s%N)
set +e
"$GUEST_RUN" --usbip-port "$PORT1" --usbip-port "$PORT2" --usbip-port "$PORT3" --usbip-port "$PORT4" --timeout 280 -- sh -c "
  present() { lsusb -d 1209:beba >/dev/null 2>&1; }
  attach() {
    usbip --tcp-port \$1 attach -r \$GUEST_HOST_ADDR -b 1-1 || return 1
    i=0; until present; do i=\$((i+1)); [ \$i -gt 100 ] && return 1; sleep 0.1; done
  }
  gone() { i=0; while present; do i=\$((i+1)); [ \$i -gt 50 ] && return 1; sleep 0.1; done; }
  ./mcuflash flash app2.bin -d usb:1209:beba >absent.txt 2>&1; echo \"exit \$?\" >>absent.txt
  attach $PORT1 || exit 11
  ls /dev/hidraw* >hidraw.txt 2>&1
  t0=\$(date +%s%N)
  ./hidflash/hid-flash app.bin >hidflash.txt 2>&1; echo \"hid-flash exit \$?\" >>hidflash.txt
  echo \"hid-flash ms \$(( (\$(date +%s%N) - t0) / 1000000 ))\" >>hidflash.txt
  gone || exit 12
  attach $PORT2 || exit 13
  ./mcuflash list >list.txt 2>&1 || exit 14
  t0=\$(date +%s%N)
  ./mcuflash flash app2.bin -d usb:1209:beba >mcuflash.txt 2>&1 || exit 15
  echo \"mcuflash ms \$(( (\$(date +%s%N) - t0) / 1000000 ))\" >>mcuflash.txt
  gone || exit 16
  attach $PORT3 || exit 17
  ./hidflash/hid-flash app3.bin >hidflash_f4.txt 2>&1; echo \"hid-flash exit \$?\" >>hidflash_f4.txt
  gone || exit 18
  attach $PORT4 || exit 19
  # No HID driver on this one (as on a kernel without usbhid): no hidraw node, so libusb.
  for interface in /sys/bus/usb/drivers/usbhid/*:*; do
    [ -e \"\$interface\" ] && echo -n \$(basename \$interface) >/sys/bus/usb/drivers/usbhid/unbind
  done
  ls /dev/hidraw* >hidraw_f4.txt 2>&1
  ./mcuflash flash app4.hex --chip stm32f407xg -d usb:1209:beba >mcuflash_f4.txt 2>&1 || exit 20
  gone || exit 21
  exit 0
" >"$WORK/guest.out" 2>"$WORK/guest.err"
rc=$?
set -e
took_ms=$((($(date +%s%N) - started) / 1000000))
guest_succeeded "$rc" "11 attach, 12 still on the bus after hid-flash, 13 attach 2, 14 mcuflash list, 15 mcuflash flash, 16 still on the bus after mcuflash, 17 attach 3, 18 F4 still on the bus after hid-flash, 19 attach 4, 20 mcuflash flash (F4), 21 F4 still on the bus after mcuflash"

expect "exit 69" absent.txt
expect "BOOT" absent.txt
expect "device is found" hidflash.txt
expect "Sending <reset pages> command" hidflash.txt
expect "> Done!" hidflash.txt
expect "Sending <reboot mcu> command" hidflash.txt
expect "hid-flash exit 0" hidflash.txt
expect "hid-stm32" list.txt
expect "not verified" mcuflash.txt
expect "> Done!" hidflash_f4.txt
expect "hid-flash exit 0" hidflash_f4.txt
expect "not verified" mcuflash_f4.txt
# The first F4 board went through the kernel's hidraw node; the second, with no HID driver, through usbfs.
expect "/dev/hidraw" mcuflash.txt
grep -q "^/dev/hidraw" "$GUEST_DIR/hidraw_f4.txt" && case_fail "usbhid still holds the second F4 board: $(cat "$GUEST_DIR/hidraw_f4.txt")"
expect "USB 1209:beba at" mcuflash_f4.txt
grep -q "/dev/hidraw" "$GUEST_DIR/mcuflash_f4.txt" && case_fail "mcuflash used a hidraw node for the board without usbhid"
grep -q "hidraw" "$GUEST_DIR/hidraw.txt" || case_fail "usbhid did not bind the simulated board (no hidraw): $(cat "$GUEST_DIR/hidraw.txt")"
stop_background
hex_to_bin "$GUEST_DIR/app4.hex" "$GUEST_DIR/app4.bin"
for n in 1 2 3 4; do
  grep -q "STM32 HID bootloader" "$WORK/sim$n.log" || case_fail "simulator $n log"
done
python3 - "$GUEST_DIR" <<'PY' || case_fail "the flash files are not what was written"
import sys
d = sys.argv[1]
problems = []
for flash_name, app_name, who, size, boot in (("flash1.bin", "app.bin", "hid-flash (F1)", 131072, 2048),
                                              ("flash2.bin", "app2.bin", "mcuflash (F1)", 131072, 2048),
                                              ("flash3.bin", "app3.bin", "hid-flash (F4)", 1048576, 16384),
                                              ("flash4.bin", "app4.bin", "mcuflash (F4)", 1048576, 16384)):
    flash = open(f"{d}/{flash_name}", "rb").read()
    app = open(f"{d}/{app_name}", "rb").read()
    placeholder = (b"[mcuflash-sim placeholder: hid-stm32] " * 1000)[:boot]
    if len(flash) != size: problems.append(f"{flash_name} is {len(flash)} bytes")
    if flash[boot:boot + len(app)] != app: problems.append(f"{who}'s image is not at the application start byte for byte")
    last = boot + (len(app) + 1023) // 1024 * 1024
    tail = flash[boot + len(app):last]
    if tail.strip(b"\xff") and tail.strip(b"\x00"): problems.append(f"{who}: the last page is not padded")
    if flash[last:].strip(b"\xff"): problems.append(f"{who}: data after the last page")
    if flash[:boot] != placeholder: problems.append(f"{who}: the bootloader region changed")
if problems: sys.exit("\n".join(problems))
PY
grep "hid-flash ms" "$GUEST_DIR/hidflash.txt"
grep "mcuflash ms" "$GUEST_DIR/mcuflash.txt"
grep "Bytes" "$GUEST_DIR/hidflash.txt" | tail -1
tail -n 2 "$GUEST_DIR/mcuflash.txt" | head -1
echo "ok: hid-flash and mcuflash (F1 and F4 each) flashed the STM32 HID bootloader simulator through the guest kernel (${took_ms} ms with boot)"
