#!/usr/bin/env bash
# Klipper's own rp2040_flash (lib/rp2040_flash: `make flash` on an RP2040 in BOOTSEL mode) and mcuflash
# against the RP2040 boot ROM simulator (PICOBOOT only, with the W25Q16's erase and program times),
# through a real Linux kernel: mcuflash-sim serves two simulated RP2040s over USB/IP, guest-run.sh boots
# Debian's kernel, and inside it `usbip attach` makes each a USB device that libusb opens.
#  1. with nothing attached, mcuflash flash -d usb:2e8a:0003 fails (69) with the BOOTSEL hint;
#  2. rp2040_flash klipper.uf2 (a real Klipper "No bootloader" build for the RP2040) flashes the first
#     RP2040 and reboots it (the simulated chip leaves the bus);
#  3. on the second, `mcuflash list` names the boot ROM and `mcuflash flash klipper.uf2 -d usb:2e8a:0003`
#     flashes, verifies by read-back and reboots it.
# Both flash files start as random bytes (old firmware): each must then hold the image byte for byte,
# and the old bytes after the last 4 KiB sector the image touches. In that last sector rp2040_flash
# leaves 0xFF after the image; mcuflash writes back the pages the image does not cover.
#  4. two simulated RP2350 boot ROMs (2e8a:000f): rp2040_flash flashes the first (its RP2040-family UF2
#     blocks: the tool takes no others) and mcuflash a raw image into the second; both are rebooted by
#     REBOOT2, which the RP2350's ROM takes instead of REBOOT.
# Skipped (77) without guest-run.sh, usbip, gcc, libusb-1.0 (pkg-config), the Klipper sources or
# gcc-arm-none-eabi (for the Klipper image), or a QEMU that guest-run.sh can install.
source "$(dirname "$0")/../lib/common.sh"
source "$(dirname "$0")/../lib/guest.sh"
peers="$SOURCE_DIR/../shared/peers/klipper"
[ -d "$peers/lib/rp2040_flash" ] || skip "no Klipper sources at $peers"
command -v gcc >/dev/null && pkg-config --exists libusb-1.0 || skip "gcc or libusb-1.0-0-dev missing (scripts/setup.sh installs them)"
use_guest usbip

# Klipper's rp2040_flash, built in a scratch folder from its own Makefile (it takes pico-sdk's headers
# from ../pico-sdk).
mkdir -p "$WORK/lib"
cp -r "$peers/lib/rp2040_flash" "$peers/lib/pico-sdk" "$WORK/lib/"
make -C "$WORK/lib/rp2040_flash" >"$WORK/rp2040_flash-build.log" 2>&1 || fail "building rp2040_flash: $(tail -20 "$WORK/rp2040_flash-build.log")"

# A real Klipper image: the one klipper_images.sh builds (the same folder and marker), built here when
# that test has not run in this build folder.
cache="$BUILD_DIR/klipper-images"
config='CONFIG_LOW_LEVEL_OPTIONS=y\nCONFIG_MACH_RPXXXX=y\nCONFIG_MACH_RP2040=y\n'
tree="$cache/rp2040-none"
if ! { [ -f "$tree/.built" ] && [ "$(cat "$tree/.built")" = "$config" ] && [ -f "$tree/out/klipper.uf2" ]; }; then
  command -v arm-none-eabi-gcc >/dev/null || skip "gcc-arm-none-eabi missing (scripts/setup.sh installs it)"
  mkdir -p "$cache"
  rm -rf "$tree" && cp -r "$peers" "$tree"
  printf '%b' "$config" >"$tree/.config"
  (cd "$tree" && make olddefconfig >/dev/null && make -j2 >"$tree/build.log" 2>&1) || fail "building Klipper: $(tail -20 "$tree/build.log")"
  printf '%s' "$config" >"$tree/.built"
fi

make_guest_dir rp2040-guest
cp "$WORK/lib/rp2040_flash/rp2040_flash" "$GUEST_DIR/"
cp "$tree/out/klipper.uf2" "$GUEST_DIR/klipper.uf2"
head -c 2097152 /dev/urandom >"$GUEST_DIR/flash1.bin"
cp "$GUEST_DIR/flash1.bin" "$GUEST_DIR/old.bin"
cp "$GUEST_DIR/flash1.bin" "$GUEST_DIR/flash2.bin"

start_usbip_sim "$WORK/sim1.log" picoboot --chip rp2040 --flash-file "$GUEST_DIR/flash1.bin" -v
PORT1=$USBIP_PORT
start_usbip_sim "$WORK/sim2.log" picoboot --chip rp2040 --flash-file "$GUEST_DIR/flash2.bin"
PORT2=$USBIP_PORT
# The RP2350's ROM (2e8a:000f): rp2040_flash takes the UF2's RP2040-family blocks whatever the chip, and
# reboots it with REBOOT2; mcuflash flashes a second one with a raw image.
head -c 30000 /dev/urandom >"$GUEST_DIR/app2350.bin"
start_usbip_sim "$WORK/sim3.log" picoboot --chip rp2350 --flash-file "$GUEST_DIR/flash3.bin" -v
PORT3=$USBIP_PORT
start_usbip_sim "$WORK/sim4.log" picoboot --chip rp2350 --flash-file "$GUEST_DIR/flash4.bin" -v
PORT4=$USBIP_PORT

cd "$GUEST_DIR"
started=$(date +%s%N)
set +e
"$GUEST_RUN" --usbip-port "$PORT1" --usbip-port "$PORT2" --usbip-port "$PORT3" --usbip-port "$PORT4" --timeout 260 -- sh -c "
  present() { lsusb -d 2e8a:0003 >/dev/null 2>&1 || lsusb -d 2e8a:000f >/dev/null 2>&1; }
  attach() {
    usbip --tcp-port \$1 attach -r \$GUEST_HOST_ADDR -b 1-1 || return 1
    i=0; until present; do i=\$((i+1)); [ \$i -gt 100 ] && return 1; sleep 0.1; done
  }
  gone() { i=0; while present; do i=\$((i+1)); [ \$i -gt 50 ] && return 1; sleep 0.1; done; }
  ./mcuflash flash klipper.uf2 -d usb:2e8a:0003 >absent.txt 2>&1; echo \"exit \$?\" >>absent.txt
  attach $PORT1 || exit 11
  lsusb -v -d 2e8a:0003 >lsusb.txt 2>&1
  t0=\$(date +%s%N)
  ./rp2040_flash klipper.uf2 >rp2040_flash.txt 2>&1; echo \"rp2040_flash exit \$?\" >>rp2040_flash.txt
  echo \"rp2040_flash ms \$(( (\$(date +%s%N) - t0) / 1000000 ))\" >>rp2040_flash.txt
  gone || exit 12
  attach $PORT2 || exit 13
  ./mcuflash list >list.txt 2>&1 || exit 14
  t0=\$(date +%s%N)
  ./mcuflash flash klipper.uf2 -d usb:2e8a:0003 >mcuflash.txt 2>&1 || exit 15
  echo \"mcuflash ms \$(( (\$(date +%s%N) - t0) / 1000000 ))\" >>mcuflash.txt
  gone || exit 16
  attach $PORT3 || exit 17
  ./rp2040_flash klipper.uf2 >rp2040_flash_2350.txt 2>&1; echo \"rp2040_flash exit \$?\" >>rp2040_flash_2350.txt
  gone || exit 18
  attach $PORT4 || exit 19
  ./mcuflash flash app2350.bin -d usb:2e8a:000f >mcuflash_2350.txt 2>&1 || exit 20
  gone || exit 21
  exit 0
" >"$WORK/guest.out" 2>"$WORK/guest.err"
rc=$?
set -e
took_ms=$((($(date +%s%N) - started) / 1000000))
guest_succeeded "$rc" "11 attach, 12 still on the bus after rp2040_flash, 13 attach 2, 14 mcuflash list, 15 mcuflash flash, 16 still on the bus after mcuflash, 17-21 the same on the RP2350s"

expect "exit 69" absent.txt
expect "BOOTSEL" absent.txt
expect "Found rp2040 device" rp2040_flash.txt
expect "Rebooting device" rp2040_flash.txt
expect "rp2040_flash exit 0" rp2040_flash.txt
expect "bInterfaceClass       255" lsusb.txt
expect "RP2040 boot ROM" list.txt
expect "verified" mcuflash.txt
expect "Rebooting device" rp2040_flash_2350.txt  # (it says "Found rp2040 device" for either chip)
expect "rp2040_flash exit 0" rp2040_flash_2350.txt
expect "RP2350 boot ROM" mcuflash_2350.txt
expect "verified" mcuflash_2350.txt
stop_background
for n in 3 4; do
  grep -q "REBOOT2 flags 0x0" "$WORK/sim$n.log" || case_fail "RP2350 simulator $n was not rebooted by REBOOT2"
done
cmp -n 30000 "$GUEST_DIR/app2350.bin" "$GUEST_DIR/flash4.bin" || case_fail "mcuflash: the RP2350's flash does not hold the image"
python3 - "$GUEST_DIR" <<'PY' || case_fail "rp2040_flash: the RP2350's flash does not hold the UF2's blocks"
import struct, sys
d = sys.argv[1]
raw = open(f"{d}/klipper.uf2", "rb").read()
flash = open(f"{d}/flash3.bin", "rb").read()
for at in range(0, len(raw), 512):
    magic0, magic1, flags, addr, size = struct.unpack("<IIIII", raw[at:at + 20])
    if magic0 == 0x0A324655 and not flags & 1:
        assert flash[addr - 0x10000000:addr - 0x10000000 + size] == raw[at + 32:at + 32 + size], hex(addr)
PY
for n in 1 2; do
  grep -q "PICOBOOT" "$WORK/sim$n.log" || case_fail "simulator $n log"
done
python3 - "$GUEST_DIR" <<'PY' || case_fail "the flash files are not what was written"
import struct, sys
d = sys.argv[1]
image = {}
raw = open(f"{d}/klipper.uf2", "rb").read()
for at in range(0, len(raw), 512):
    b = raw[at:at + 512]
    magic0, magic1, flags, addr, size = struct.unpack("<IIIII", b[:20])
    if magic0 == 0x0A324655 and magic1 == 0x9E5D5157 and not flags & 1:
        image[addr] = b[32:32 + size]
base = 0x10000000
lo, hi = min(image), max(a + len(v) for a, v in image.items())
assert lo == base, hex(lo)
flat = bytearray(b"\xff" * (hi - lo))
for a, v in image.items(): flat[a - lo:a - lo + len(v)] = v
old = open(f"{d}/old.bin", "rb").read()
sector_end = (len(flat) + 4095) // 4096 * 4096
page_end = (len(flat) + 255) // 256 * 256
problems = []
for name, who in (("flash1.bin", "rp2040_flash"), ("flash2.bin", "mcuflash")):
    flash = open(f"{d}/{name}", "rb").read()
    if len(flash) != 2097152: problems.append(f"{name} is {len(flash)} bytes")
    if flash[:len(flat)] != bytes(flat): problems.append(f"{who}: the image is not at 0x10000000 byte for byte")
    if flash[sector_end:] != old[sector_end:]: problems.append(f"{who}: flash after the last touched sector changed")
    if flash[len(flat):page_end].strip(b"\xff"): problems.append(f"{who}: the image's last page is not padded with 0xFF")
    tail = flash[page_end:sector_end]
    if who == "rp2040_flash" and tail.strip(b"\xff"): problems.append(f"{who}: old bytes left in the last sector")
    if who == "mcuflash" and tail != old[page_end:sector_end]: problems.append(f"{who}: the rest of the last sector was not kept")
if problems: sys.exit("\n".join(problems))
print(f"image: {len(flat)} bytes in {len(image)} UF2 blocks; last sector ends at 0x{base + sector_end:08X}")
PY
echo "--- rp2040_flash's output"
grep -v '^rp2040_flash ms' "$GUEST_DIR/rp2040_flash.txt"
grep "rp2040_flash ms" "$GUEST_DIR/rp2040_flash.txt"
grep "mcuflash ms" "$GUEST_DIR/mcuflash.txt"
tail -n 2 "$GUEST_DIR/mcuflash.txt" | head -1
echo "ok: rp2040_flash and mcuflash flashed the PICOBOOT simulator through the guest kernel (${took_ms} ms with boot)"
