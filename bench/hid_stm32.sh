#!/usr/bin/env bash
# Benchmark: a 100 KiB raw .bin into the STM32 HID bootloader simulator (an STM32F407 with the 16 KiB
# F4 build: application at 0x08004000, 64-byte reports on the interrupt OUT endpoint; timing on: a
# sector erase on entering each sector and word programming), through a real kernel: mcuflash-sim
# serves it over USB/IP, guest-run.sh boots Debian's kernel under QEMU, `usbip attach`, then, in the
# same guest, Klipper's hid-flash (lib/hidflash, built here; no verify: the bootloader cannot read) and
# mcuflash (`flash --chip stm32f407xg --address 0x08004000`: erase, write, reboot; write-only, so no
# verify either), each against a freshly attached device. Prints both, mcuflash's phases, the ratio,
# and the limit (the simulator's erase and program times plus the data at USB full speed). It prints
# numbers; it asserts nothing.
#   bench/hid_stm32.sh [BUILD_DIR] [SIZE_BYTES]
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD_DIR=$(realpath "${1:-build}")
SIZE=${2:-102400}
export BUILD_DIR SOURCE_DIR=$PWD
source tests/lib/common.sh
source bench/lib.sh
source tests/lib/guest.sh
use_guest usbip make cc
pkg-config --exists libusb-1.0 || skip "libusb-1.0-0-dev not installed (scripts/setup.sh installs it)"
HIDFLASH_SRC=${HIDFLASH_SRC:-$SOURCE_DIR/../shared/peers/klipper/lib/hidflash}
[ -d "$HIDFLASH_SRC" ] || HIDFLASH_SRC=/work/shared/peers/klipper/lib/hidflash
[ -f "$HIDFLASH_SRC/main.c" ] || skip "Klipper's lib/hidflash not found"

make_guest_dir bench-hid-stm32  # mcuflash copied into it (the guest cannot see the host's /tmp)
cp -r "$HIDFLASH_SRC" "$GUEST_DIR/" && make -C "$GUEST_DIR/hidflash" >"$WORK/hidflash-build.log" 2>&1 \
  || fail "hid-flash did not build: $(tail -5 "$WORK/hidflash-build.log")"
[ -x "$GUEST_DIR/hidflash/hid-flash" ] || fail "hid-flash did not build (no binary)"
head -c "$SIZE" /dev/urandom >"$GUEST_DIR/app.bin"
# Two simulators, one per tool: the bootloader reboots into the application after a download.
start_usbip_sim "$WORK/sim1.log" hid-stm32 --chip stm32f407xg --flash-file "$GUEST_DIR/flash1.bin"
PORT1=$USBIP_PORT
start_usbip_sim "$WORK/sim2.log" hid-stm32 --chip stm32f407xg --flash-file "$GUEST_DIR/flash2.bin"
PORT2=$USBIP_PORT

cd "$GUEST_DIR"
peer_then_mcuflash 1209:beba "$PORT1" "$PORT2" hid-flash "./hidflash/hid-flash app.bin" "app.bin -d usb:1209:beba --chip stm32f407xg --address 0x08004000"
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
theirs, ours = times["hid-flash"], times["mcuflash"]
# Limit (src/sim/hid_stm32/hid_stm32_device.cpp, f4_timing: a sector erase takes 150 ms + 14 ms per
# KiB, a word (4 bytes) 16 us to program): the STM32F407's sectors the image touches from 0x08004000
# (16 KiB sectors to 0x08010000, a 64 KiB one, then 128 KiB ones), the 1 KiB pages the bootloader
# writes, and the data once at USB full speed: on the interrupt OUT endpoint at most one 64-byte
# report per 1 ms frame, 64 kB/s (its descriptor asks for one per 32 ms, which USB/IP does not enforce).
start, end = 0x4000, 0x4000 + -(-size // 1024) * 1024
sectors = [(a, 16) for a in range(0, 0x10000, 0x4000)] + [(0x10000, 64)] + [(0x20000 * i, 128) for i in range(1, 8)]
touched = [kib for a, kib in sectors if a < end and a + kib * 1024 > start]
erase_limit = sum(0.150 + 0.014 * kib for kib in touched)
program_limit = (end - start) / 4 * 16e-6
data_limit = -(-size // 64) * 1e-3
limit = erase_limit + program_limit + data_limit
print(f"hid-stm32 (STM32F407, F4 build, app at 0x08004000) {size} bytes over USB/IP into a QEMU guest, simulator timing on")
print(f"  limit (erase {'+'.join(str(k) for k in touched)} KiB sectors {erase_limit:.3f} s + program {program_limit:.3f} s + data {data_limit:.3f} s at 64 B per 1 ms frame): {limit:6.2f} s")
print(f"  hid-flash (write, reboot; no verify)        : {theirs:6.2f} s = {theirs / limit:.2f} x limit")
print(f"  mcuflash total (erase+write+reboot)         : {ours:6.2f} s = {ours / theirs:.2f} x hid-flash = {ours / limit:.2f} x limit")
print(f"  mcuflash erase+write phase                  : {erase + write:6.2f} s = {(erase + write) / theirs:.2f} x hid-flash")
print(f"  mcuflash verify (the bootloader cannot read): {verify:6.2f} s")
app = open(f"{d}/app.bin", "rb").read()
held = {who: open(f"{d}/{f}", "rb").read()[0x4000:0x4000 + size] == app for who, f in (("hid-flash", "flash1.bin"), ("mcuflash", "flash2.bin"))}
print("  image in the simulator's flash afterwards   : " + ", ".join(f"{w} {'yes' if ok else 'NO'}" for w, ok in held.items()))
PY
