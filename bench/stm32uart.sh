#!/usr/bin/env bash
# Benchmark: flash + verify a 100 KiB image into the STM32 ROM bootloader simulator (stm32f103xb by
# default) with its wire model on (11 bit times per byte at 8E1; the simulated page erase and
# halfword program times), once with mcuflash and once with stm32flash 0.7 (-w -v, which reads each
# block back), in the same run, against the same simulator, at 115200. It prints both times, their
# ratio and the physical limit; then a second run with each tool at its default baud (stm32flash
# 57600, mcuflash 115200), each against its own simulator at that rate. It asserts nothing.
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

# Second run: each tool at its default baud, nothing passed: stm32flash without -b (57600) and
# mcuflash without --baud (115200 first), each against its own simulator listening at that rate.
head -c "$SIZE" /dev/urandom >"$WORK/app2.bin"
start_sim ours115 stm32-uart --chip "$CHIP" --baud 115200 --flash-file "$WORK/ours115.bin"
t4=$(date +%s%N)
"$MCUFLASH" flash "$WORK/app2.bin" -d "$WORK/ours115" -p stm32-uart --address 0x08000000 --write-boot-area -q \
  >"$WORK/mcuflash2.out" 2>"$WORK/mcuflash2.err" || { cat "$WORK/mcuflash2.err"; fail "mcuflash (default baud) failed"; }
t5=$(date +%s%N)
stop_background
start_sim theirs576 stm32-uart --chip "$CHIP" --baud 57600 --flash-file "$WORK/theirs576.bin"
t6=$(date +%s%N)
timeout 900 stm32flash -m 8n1 -w "$WORK/app2.bin" -v -g 0x08000000 "$WORK/theirs576" >"$WORK/stm32flash2.log" 2>&1 \
  || { tail -5 "$WORK/stm32flash2.log"; fail "stm32flash (default baud) failed"; }
t7=$(date +%s%N)
stop_background
python3 - "$SIZE" "$(seconds "$t4" "$t5")" "$(seconds "$t6" "$t7")" <<'PY'
import sys
size, ours, theirs = int(sys.argv[1]), float(sys.argv[2]), float(sys.argv[3])
print(f"stm32-uart flash+verify, {size} bytes, each tool's default baud (no -b / --baud), wire model on")
print(f"  mcuflash       (default 115200): {ours:7.2f} s")
print(f"  stm32flash 0.7 (default  57600): {theirs:7.2f} s")
print(f"  mcuflash / stm32flash = {ours / theirs:.3f}")
PY
