#!/usr/bin/env bash
# Benchmark: flash + verify a 100 KiB image into the STM32 ROM bootloader simulator (stm32f103xb by
# default) with its wire model on (11 bit times per byte at 8E1; the simulated page erase and
# halfword program times), once with mcuflash and once with stm32flash 0.7 (-w -v, which reads each
# block back), in the same run, against the same simulator, at 115200. It prints both times, their
# ratio and the physical limit; it asserts nothing.
#   bench/stm32uart.sh [BUILD_DIR] [SIZE_BYTES] [BAUD] [CHIP]
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD_DIR=$(realpath "${1:-build}")
SIZE=${2:-102400}
BAUD=${3:-115200}
CHIP=${4:-stm32f103xb}
export BUILD_DIR SOURCE_DIR=$PWD
source tests/lib/common.sh
command -v stm32flash >/dev/null || skip "stm32flash is not installed"

head -c "$SIZE" /dev/urandom >"$WORK/app.bin"
seconds() { python3 -c "import sys; print(f'{(int(sys.argv[2]) - int(sys.argv[1])) / 1e9:.3f}')" "$@"; }

start_sim ours stm32-uart --chip "$CHIP" --baud "$BAUD" --flash-file "$WORK/ours.bin"
t0=$(date +%s%N)
"$MCUFLASH" flash "$WORK/app.bin" -d "$WORK/ours" -p stm32-uart --baud "$BAUD" --address 0x08000000 \
  --write-boot-area -q >"$WORK/mcuflash.out" 2>"$WORK/mcuflash.err" || { cat "$WORK/mcuflash.err"; fail "mcuflash failed"; }
t1=$(date +%s%N)
start_sim theirs stm32-uart --chip "$CHIP" --baud "$BAUD" --flash-file "$WORK/theirs.bin"
t2=$(date +%s%N)
timeout 600 stm32flash -m 8n1 -b "$BAUD" -w "$WORK/app.bin" -v -g 0x08000000 "$WORK/theirs" >"$WORK/stm32flash.log" 2>&1 \
  || { tail -5 "$WORK/stm32flash.log"; fail "stm32flash failed"; }
t3=$(date +%s%N)
stop_background

# The physical limit (F1: 1 KiB pages, 20 ms erase each, 50 us per halfword programmed, the
# simulator's times): per 256-byte block, Write Memory = 2 (command) + 1 (ACK) + 5 (address) + 1 +
# 1 + 256 + 1 (count, data, checksum) + 1 = 268 bytes; Read Memory = 2 + 1 + 5 + 1 + 2 + 1 + 256 = 268;
# the erase: 2 + 1 + (2 + 2 * pages + 1) + 1; at 11 bits per byte.
python3 - "$SIZE" "$BAUD" "$(seconds "$t0" "$t1")" "$(seconds "$t2" "$t3")" <<'PY'
import sys
size, baud, ours, theirs = int(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3]), float(sys.argv[4])
blocks = -(-size // 256)
pages = -(-size // 1024)
wire = blocks * (268 + 268) + (2 + 1 + 2 + 2 * pages + 1 + 1)
busy = pages * 0.020 + (size // 2) * 50e-6
limit = wire * 11 / baud + busy
print(f"stm32-uart flash+verify, {size} bytes, {baud} baud 8E1, wire model on")
print(f"  physical limit : {limit:7.2f} s  ({wire} bytes on the wire + {busy:.2f} s erase/program)")
print(f"  mcuflash       : {ours:7.2f} s  = {ours / limit:.3f} x limit")
print(f"  stm32flash 0.7 : {theirs:7.2f} s  = {theirs / limit:.3f} x limit")
print(f"  mcuflash / stm32flash = {ours / theirs:.3f}   (target <= 0.9; <= 1.15 x limit)")
PY
