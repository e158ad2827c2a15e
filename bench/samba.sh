#!/usr/bin/env bash
# Benchmark: flash + verify a 200 KiB image into the SAMD51 (Adafruit bootloader, 16 KiB) SAM-BA
# simulator in USB mode with its wire model on, once with mcuflash and once with bossac 1.9.1
# (-e -w -v --offset=0x4000), each against a fresh simulator; then mcuflash again on the unchanged
# device (it compares Z CRCs erase unit by erase unit and writes nothing that matches). Prints the
# times, the ratios and the physical limit; it asserts nothing.
#   bench/samba.sh [BUILD_DIR] [SIZE_BYTES]
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD_DIR=$(realpath "${1:-build}")
SIZE=${2:-204800}
CHIP=samd51j19a OFFSET=0x4000
export BUILD_DIR SOURCE_DIR=$PWD
source tests/lib/common.sh
command -v bossac >/dev/null || skip "bossac is not installed (package bossa-cli)"

head -c "$SIZE" /dev/urandom >"$WORK/app.bin"
seconds() { python3 -c "import sys; print(f'{(int(sys.argv[2]) - int(sys.argv[1])) / 1e9:.3f}')" "$@"; }

start_sim ours samba --chip $CHIP --flash-file "$WORK/ours.bin"
t0=$(date +%s%N)
"$MCUFLASH" flash "$WORK/app.bin" -d "$WORK/ours" -p samba --no-reset -q >"$WORK/mcuflash.out" 2>"$WORK/mcuflash.err" \
  || { cat "$WORK/mcuflash.err"; fail "mcuflash failed"; }
t1=$(date +%s%N)
"$MCUFLASH" flash "$WORK/app.bin" -d "$WORK/ours" -p samba --no-reset -q >"$WORK/mcuflash2.out" 2>"$WORK/mcuflash2.err" \
  || { cat "$WORK/mcuflash2.err"; fail "mcuflash (unchanged) failed"; }
t2=$(date +%s%N)
start_sim theirs samba --chip $CHIP --flash-file "$WORK/theirs.bin"
t3=$(date +%s%N)
timeout 600 bossac -p "$WORK/theirs" --usb-port=1 -e -w -v --offset=$OFFSET "$WORK/app.bin" >"$WORK/bossac.log" 2>&1 \
  || { tail -5 "$WORK/bossac.log"; fail "bossac failed"; }
t4=$(date +%s%N)
stop_background

# The physical limit at the simulator's USB-mode wire rate (921600 baud, 10 bits per byte): the
# image goes out once (S, 4096-byte buffers) and the verify costs one Z answer per 4 KiB (a few
# bytes), plus the flash time the simulator charges: SAMD51 block erase (8 KiB) 50 ms... taken from
# the simulator's own numbers below.
python3 - "$SIZE" "$(seconds "$t0" "$t1")" "$(seconds "$t1" "$t2")" "$(seconds "$t3" "$t4")" <<'PY'
import sys
size, ours, unchanged, theirs = int(sys.argv[1]), float(sys.argv[2]), float(sys.argv[3]), float(sys.argv[4])
baud = 921600
blocks = -(-size // 8192)
pages = -(-size // 512)
wire = size + (size // 4096) * 40
busy = blocks * 0.050 + pages * 0.0025
limit = wire * 10 / baud + busy
print(f"samba (SAMD51, USB mode) flash+verify, {size} bytes, wire model on ({baud} baud)")
print(f"  physical limit        : {limit:7.2f} s  ({wire} bytes on the wire + {busy:.2f} s erase/program)")
print(f"  mcuflash              : {ours:7.2f} s  = {ours / limit:.3f} x limit")
print(f"  bossac 1.9.1          : {theirs:7.2f} s  = {theirs / limit:.3f} x limit")
print(f"  mcuflash / bossac     = {ours / theirs:.3f}   (target <= 0.9)")
print(f"  unchanged re-flash    : {unchanged:7.2f} s  = {unchanged / ours:.3f} x a full flash   (target <= 0.2)")
PY
