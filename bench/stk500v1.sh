#!/usr/bin/env bash
# Benchmark: flash + verify a 64 KiB image at 115200 baud into the STK500v1 simulator with its wire
# model on (each byte costs 10 bit times; each page costs the simulated program time), once with
# mcuflash and once with avrdude, in the same run, against the same simulator. Prints both times,
# their ratio and the physical limit. It prints numbers; it asserts nothing.
#   bench/stk500v1.sh [BUILD_DIR] [SIZE_BYTES] [BAUD]
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD_DIR=$(realpath "${1:-build}")
SIZE=${2:-65536}
BAUD=${3:-115200}
CHIP=atmega1284p PAGE=256
export BUILD_DIR SOURCE_DIR=$PWD
source tests/lib/common.sh
command -v avrdude >/dev/null || skip "avrdude is not installed"

random_hex "$WORK/app.hex" "$SIZE"
start_sim tty stk500v1 --chip $CHIP --baud "$BAUD" --flash-file "$WORK/flash.bin"

seconds() { python3 -c "import sys; print(f'{(int(sys.argv[2]) - int(sys.argv[1])) / 1e9:.3f}')" "$@"; }

t0=$(date +%s%N)
"$MCUFLASH" flash "$WORK/app.hex" -d "$WORK/tty" --baud "$BAUD" -q >"$WORK/mcuflash.out"
t1=$(date +%s%N)
timeout 300 avrdude -q -q -c arduino -p m1284p -P "$WORK/tty" -b "$BAUD" -D -U "flash:w:$WORK/app.hex:i" \
  2>"$WORK/avrdude.err" || { cat "$WORK/avrdude.err"; fail "avrdude failed"; }
t2=$(date +%s%N)

# The physical limit: every byte the protocol must move, one way after the other (request, then
# answer), at 10 bits per byte, plus the simulator's program time per page. Per page: LOAD_ADDRESS
# (4 out, 2 back) + PROG_PAGE (5 + page out, 2 back); per 256-byte verify block: LOAD_ADDRESS (4, 2)
# + READ_PAGE (5 out, 2 + 256 back).
# The simulator charges the datasheet's tWD_FLASH twice per page: erase 4.5 ms + write 4.5 ms
# (src/sim/stk500v1/avr_bootloader_device.hpp).
PROGRAM_MS=9.0
python3 - "$SIZE" "$BAUD" "$PAGE" "$PROGRAM_MS" "$(seconds "$t0" "$t1")" "$(seconds "$t1" "$t2")" <<'PY'
import sys
size, baud, page, program_ms = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4])
ours, theirs = float(sys.argv[5]), float(sys.argv[6])
pages = -(-size // page)
blocks = -(-size // 256)
wire_bytes = pages * (4 + 2 + 5 + page + 2) + blocks * (4 + 2 + 5 + 2 + 256)
limit = wire_bytes * 10 / baud + pages * program_ms / 1000
print(f"stk500v1 flash+verify, {size} bytes, {baud} baud, wire model on")
print(f"  physical limit : {limit:7.2f} s  ({wire_bytes} bytes on the wire + {pages} pages x {program_ms} ms)")
print(f"  mcuflash       : {ours:7.2f} s  = {ours / limit:.3f} x limit")
print(f"  avrdude 7.1    : {theirs:7.2f} s  = {theirs / limit:.3f} x limit")
print(f"  mcuflash / avrdude = {ours / theirs:.3f}   (target <= 0.9; <= 1.15 x limit)")
PY
