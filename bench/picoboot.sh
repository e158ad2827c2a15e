#!/usr/bin/env bash
# Benchmark: a 100 KiB UF2 image at 0x10000000 into the RP2040 boot ROM simulator (PICOBOOT; timing
# on: the W25Q16's 4 KiB sector erase and 256-byte page program times), through a real kernel:
# mcuflash-sim serves it over USB/IP, guest-run.sh boots Debian's kernel under QEMU, `usbip attach`,
# then, in the same guest, Klipper's rp2040_flash (lib/rp2040_flash, built here: erase, write, reboot;
# no verify) and mcuflash (`flash -d usb:2e8a:0003`: erase, write, verify by read-back, reboot), each
# against a freshly attached device. Prints both, mcuflash's phases, the ratios, and the limit (the
# simulator's erase and program times plus the data at USB full speed). It prints numbers; it asserts
# nothing.
#   bench/picoboot.sh [BUILD_DIR] [SIZE_BYTES]
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD_DIR=$(realpath "${1:-build}")
SIZE=${2:-102400}
export BUILD_DIR SOURCE_DIR=$PWD
source tests/lib/common.sh
source bench/lib.sh
source tests/lib/guest.sh
use_guest usbip make gcc
pkg-config --exists libusb-1.0 || skip "libusb-1.0-0-dev not installed (scripts/setup.sh installs it)"
peers="$SOURCE_DIR/../shared/peers/klipper"
[ -d "$peers/lib/rp2040_flash" ] || peers=/work/shared/peers/klipper
[ -d "$peers/lib/rp2040_flash" ] || skip "no Klipper sources at $peers"

# Klipper's rp2040_flash, built in a scratch folder from its own Makefile (it takes pico-sdk's headers
# from ../pico-sdk).
mkdir -p "$WORK/lib"
cp -r "$peers/lib/rp2040_flash" "$peers/lib/pico-sdk" "$WORK/lib/"
make -C "$WORK/lib/rp2040_flash" >"$WORK/rp2040_flash-build.log" 2>&1 || fail "building rp2040_flash: $(tail -20 "$WORK/rp2040_flash-build.log")"

make_guest_dir bench-picoboot  # mcuflash copied into it (the guest cannot see the host's /tmp)
cp "$WORK/lib/rp2040_flash/rp2040_flash" "$GUEST_DIR/"
# A UF2 of SIZE random bytes at 0x10000000: 256-byte payloads, RP2040 family id (what rp2040_flash
# requires), the last block padded with 0xFF.
python3 - "$GUEST_DIR/app.uf2" "$SIZE" <<'PY'
import os, struct, sys
path, size = sys.argv[1], int(sys.argv[2])
data = os.urandom(size)
data += b"\xff" * (-len(data) % 256)
count = len(data) // 256
with open(path, "wb") as out:
    for n in range(count):
        head = struct.pack("<IIIIIIII", 0x0A324655, 0x9E5D5157, 0x2000, 0x10000000 + n * 256, 256, n, count, 0xE48BFF56)
        out.write(head + data[n * 256:(n + 1) * 256] + b"\x00" * 220 + struct.pack("<I", 0x0AB16F30))
PY
# Two simulators, one per tool: both reboot the chip, which then leaves the bus.
start_usbip_sim "$WORK/sim1.log" picoboot --chip rp2040 --flash-file "$GUEST_DIR/flash1.bin"
PORT1=$USBIP_PORT
start_usbip_sim "$WORK/sim2.log" picoboot --chip rp2040 --flash-file "$GUEST_DIR/flash2.bin"
PORT2=$USBIP_PORT

cd "$GUEST_DIR"
peer_then_mcuflash 2e8a:0003 "$PORT1" "$PORT2" rp2040_flash "./rp2040_flash app.uf2" "app.uf2 -d usb:2e8a:0003 --rewrite-unchanged"
stop_background

python3 - "$GUEST_DIR" "$SIZE" <<'PY'
import json, sys
d, size = sys.argv[1], int(sys.argv[2])
times = {line.split()[0]: (int(line.split()[2]) - int(line.split()[1])) / 1e9 for line in open(f"{d}/times.txt")}
codes = {line.split()[0]: int(line.split()[3]) for line in open(f"{d}/times.txt")}
for tool, code in codes.items():
    if code: print(f"  note: {tool} exited {code}: its time is not a flash")
result = [json.loads(l) for l in open(f"{d}/mcuflash.json") if '"result"' in l][-1]
erase, write, verify = result["seconds_erase"], result["seconds_write"], result["seconds_verify"]
theirs, ours = times["rp2040_flash"], times["mcuflash"]
# Limit (src/sim/picoboot/picoboot_device.cpp: kSectorErase = 45 ms per 4 KiB sector, kPageProgram =
# 800 us per 256-byte page): the sectors and pages the image covers, and the data once at USB full
# speed (about 1 MB/s on the bulk endpoints).
sectors, pages = -(-size // 4096), -(-size // 256)
limit = sectors * 45e-3 + pages * 0.8e-3 + size / 1.0e6
print(f"picoboot (RP2040 boot ROM, W25Q16) {size} bytes over USB/IP into a QEMU guest, simulator timing on")
print(f"  limit ({sectors} x 45 ms sector erases + {pages} x 0.8 ms page programs + data at full speed): {limit:6.2f} s")
print(f"  rp2040_flash (erase, write, reboot; no verify): {theirs:6.2f} s = {theirs / limit:.2f} x limit")
print(f"  mcuflash total (erase+write+verify+reboot)  : {ours:6.2f} s = {ours / theirs:.2f} x rp2040_flash")
print(f"  mcuflash erase+write phase                  : {erase + write:6.2f} s = {(erase + write) / theirs:.2f} x rp2040_flash")
print(f"  mcuflash verify (read-back)                 : {verify:6.2f} s")
uf2 = open(f"{d}/app.uf2", "rb").read()
app = b"".join(uf2[at + 32:at + 32 + 256] for at in range(0, len(uf2), 512))[:size]
held = {who: open(f"{d}/{f}", "rb").read()[:size] == app for who, f in (("rp2040_flash", "flash1.bin"), ("mcuflash", "flash2.bin"))}
print("  image in the simulator's flash afterwards   : " + ", ".join(f"{w} {'yes' if ok else 'NO'}" for w, ok in held.items()))
PY
