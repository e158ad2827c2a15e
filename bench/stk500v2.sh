#!/usr/bin/env bash
# Benchmark: flash + verify a 100 KiB image at 115200 baud into the stk500boot_v2 (atmega2560)
# simulator with its wire model on (10 bit times per byte; the simulated page erase + write time
# per page; the AVR's UART stalls while it sends), once with mcuflash and once with avrdude -c wiring,
# in the same run, against the same simulator. Prints both times, their ratio and the physical limit.
# It prints numbers; it asserts nothing.
#   bench/stk500v2.sh [BUILD_DIR] [SIZE_BYTES] [BAUD]
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD_DIR=$(realpath "${1:-build}")
SIZE=${2:-102400}
BAUD=${3:-115200}
PAGE=256
export BUILD_DIR SOURCE_DIR=$PWD
source tests/lib/common.sh
command -v avrdude >/dev/null || skip "avrdude is not installed"

random_hex "$WORK/app.hex" "$SIZE"
start_sim tty stk500v2 --chip atmega2560 --baud "$BAUD" --flash-file "$WORK/flash.bin"

seconds() { python3 -c "import sys; print(f'{(int(sys.argv[2]) - int(sys.argv[1])) / 1e9:.3f}')" "$@"; }

t0=$(date +%s%N)
"$MCUFLASH" flash "$WORK/app.hex" -d "$WORK/tty" -p stk500v2 --baud "$BAUD" -q >"$WORK/mcuflash.out"
t1=$(date +%s%N)
timeout 300 avrdude -q -q -c wiring -p m2560 -P "$WORK/tty" -b "$BAUD" -D -U "flash:w:$WORK/app.hex:i" \
  2>"$WORK/avrdude.err" || { cat "$WORK/avrdude.err"; fail "avrdude failed"; }
t2=$(date +%s%N)

# The physical limit: the bytes the protocol must move, request then answer (the bootloader handles
# one message at a time), at 10 bits per byte, plus the simulator's program time per page. A message
# is its body + 6 framing bytes. Per page: PROGRAM_FLASH_ISP (10 + page out, 2 back); per 256-byte
# verify block: READ_FLASH_ISP (4 out, 3 + 256 back); LOAD_ADDRESS (5 out, 2 back) twice (write,
# read), as the address register advances by itself. The simulator charges the datasheet's
# tWD_FLASH twice per page: erase 4.5 ms + write 4.5 ms.
PROGRAM_MS=9.0
python3 - "$SIZE" "$BAUD" "$PAGE" "$PROGRAM_MS" "$(seconds "$t0" "$t1")" "$(seconds "$t1" "$t2")" <<'PY'
import sys
size, baud, page, program_ms = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4])
ours, theirs = float(sys.argv[5]), float(sys.argv[6])
pages = -(-size // page)
blocks = -(-size // 256)
frame = 6
wire_bytes = pages * (10 + page + frame + 2 + frame) + blocks * (4 + frame + 3 + 256 + frame) + 2 * (5 + frame + 2 + frame)
limit = wire_bytes * 10 / baud + pages * program_ms / 1000
print(f"stk500v2 (stk500boot_v2) flash+verify, {size} bytes, {baud} baud, wire model on")
print(f"  physical limit : {limit:7.2f} s  ({wire_bytes} bytes on the wire + {pages} pages x {program_ms} ms)")
print(f"  mcuflash       : {ours:7.2f} s  = {ours / limit:.3f} x limit")
print(f"  avrdude -c wiring: {theirs:5.2f} s  = {theirs / limit:.3f} x limit")
print(f"  mcuflash / avrdude = {ours / theirs:.3f}   (target <= 0.9; <= 1.15 x limit)")
PY
