#!/usr/bin/env bash
# Benchmark: a 120 KiB image (Intel HEX) into the HalfKay simulator (a Teensy++ 2.0, at90usb1286;
# timing on: the erase of the whole application area on the first block, and a page write per
# 256-byte block), through a real kernel: mcuflash-sim serves it over USB/IP, guest-run.sh boots
# Debian's kernel under QEMU, `usbip attach`, then, in the same guest, teensy_loader_cli
# (`--mcu=at90usb1286 -w -v`, no verify: HalfKay cannot read) and mcuflash (`flash -d usb:16c0:0478`:
# erase, write, boot; HalfKay is write-only, so no verify either), each against a freshly attached
# device. Prints both, mcuflash's phases, the ratio, and the limit (the simulator's erase and page
# write times plus the data at USB full speed). It prints numbers; it asserts nothing.
#   bench/halfkay.sh [BUILD_DIR] [SIZE_BYTES]
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD_DIR=$(realpath "${1:-build}")
SIZE=${2:-122880}
export BUILD_DIR SOURCE_DIR=$PWD
source tests/lib/common.sh
source bench/lib.sh
source tests/lib/guest.sh
use_guest teensy_loader_cli usbip

make_guest_dir bench-halfkay  # mcuflash copied into it (the guest cannot see the host's /tmp)
random_hex "$GUEST_DIR/app.hex" "$SIZE" 0
# Two simulators, one per tool: HalfKay erases the application area on the first block of a session,
# and a Teensy that booted its application has left the bus.
start_usbip_sim "$WORK/sim1.log" halfkay --chip at90usb1286 --flash-file "$GUEST_DIR/flash1.bin"
PORT1=$USBIP_PORT
start_usbip_sim "$WORK/sim2.log" halfkay --chip at90usb1286 --flash-file "$GUEST_DIR/flash2.bin"
PORT2=$USBIP_PORT

cd "$GUEST_DIR"
peer_then_mcuflash 16c0:0478 "$PORT1" "$PORT2" teensy_loader_cli "teensy_loader_cli --mcu=at90usb1286 -w -v app.hex" "app.hex -d usb:16c0:0478"
stop_background
hex_to_bin "$GUEST_DIR/app.hex" "$GUEST_DIR/app.bin"

python3 - "$GUEST_DIR" "$SIZE" <<'PY'
import json, sys
d, size = sys.argv[1], int(sys.argv[2])
times = {line.split()[0]: (int(line.split()[2]) - int(line.split()[1])) / 1e9 for line in open(f"{d}/times.txt")}
codes = {line.split()[0]: int(line.split()[3]) for line in open(f"{d}/times.txt")}
for tool, code in codes.items():
    if code: print(f"  note: {tool} exited {code}: its time is not a flash")
result = [json.loads(l) for l in open(f"{d}/mcuflash.json") if '"result"' in l][-1]
erase, write, verify = result["seconds_erase"], result["seconds_write"], result["seconds_verify"]
theirs, ours = times["teensy_loader_cli"], times["mcuflash"]
# Limit (src/sim/halfkay/halfkay_device.cpp: kPageErase = kPageWrite = 4 ms): the first block erases
# the whole application area (130048 bytes = 508 pages of 256 bytes, 4 ms each), then 4 ms per
# 256-byte block written, and the data once at USB full speed (about 1 MB/s for control transfers).
erase_limit = (130048 // 256) * 4e-3
blocks = -(-size // 256)
limit = erase_limit + blocks * 4e-3 + size / 1.0e6
print(f"halfkay (Teensy++ 2.0, at90usb1286) {size} bytes over USB/IP into a QEMU guest, simulator timing on")
print(f"  limit (erase {erase_limit:.3f} s + {blocks} x 4 ms page writes + data at full speed): {limit:6.2f} s")
print(f"  teensy_loader_cli (write, boot; no verify)  : {theirs:6.2f} s = {theirs / limit:.2f} x limit")
print(f"  mcuflash total (erase+write+boot)           : {ours:6.2f} s = {ours / theirs:.2f} x teensy_loader_cli = {ours / limit:.2f} x limit")
print(f"  mcuflash erase+write phase                  : {erase + write:6.2f} s = {(erase + write) / theirs:.2f} x teensy_loader_cli")
print(f"  mcuflash verify (HalfKay cannot read back)  : {verify:6.2f} s")
app = open(f"{d}/app.bin", "rb").read()
held = {who: open(f"{d}/{f}", "rb").read()[:size] == app for who, f in (("teensy_loader_cli", "flash1.bin"), ("mcuflash", "flash2.bin"))}
print("  image in the simulator's flash afterwards   : " + ", ".join(f"{w} {'yes' if ok else 'NO'}" for w, ok in held.items()))
PY
