#!/usr/bin/env bash
# Benchmark: 64 KiB to Katapult nodes (STM32F103) behind the simulated Klipper USB-to-CAN bridge
# (mcuflash-sim gs-usb: CAN bit timing with stuff bits counted, one frame at a time; flash program
# and erase times on), through a real kernel's gs_usb driver (guest-run.sh, usbip attach, can0), at
# 1 Mbit/s and at 500 kbit/s. Each run: flashtool.py -u A -f app.bin (write + SHA-1 verify), mcuflash
# flash app.bin -d can:can0:B (write + read-back verify), and mcuflash flash app.bin -d can:can0:C
# on a node running Klipper (asked to reboot into Katapult first: the difference to B is the entry).
# Prints the bus limit (the write's and the verify's frames x their bits / bitrate, plus the program
# and erase time), and the measured times. It prints numbers; it asserts nothing.
#   bench/katapult_can.sh [BUILD_DIR] [SIZE_BYTES]
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD_DIR=$(realpath "${1:-build}")
SIZE=${2:-65536}
export BUILD_DIR SOURCE_DIR=$PWD
source tests/lib/common.sh
source tests/lib/guest.sh
use_guest usbip
PEER=$SOURCE_DIR/../shared/peers/katapult/scripts/flashtool.py
[ -f "$PEER" ] || skip "flashtool.py not found"

make_guest_dir bench-katapult-can  # mcuflash copied into it (the guest cannot see the host's /tmp)
cp "$PEER" "$GUEST_DIR/"
head -c "$SIZE" /dev/urandom >"$GUEST_DIR/app.bin"
A=0a1b2c3d4e5f B=0b1b2c3d4e5f C=0c1b2c3d4e5f

# The bus limit of a 64-byte-block stream: Katapult frames cut into CAN frames, each frame's bits
# with its stuff bits counted as the simulator counts them, plus 1.6 ms per block programmed and
# 20 ms per 2 KiB page erased (the simulated STM32F103's flash).
bus_limit() {
  python3 - "$GUEST_DIR/app.bin" "$1" <<'PY'
import struct, sys
data = open(sys.argv[1], "rb").read(); bitrate = int(sys.argv[2])
def crc16(b):
    crc = 0xFFFF
    for x in b:
        x ^= crc & 0xFF; x ^= (x << 4) & 0xFF
        crc = ((x << 8) | (crc >> 8)) ^ (x >> 4) ^ (x << 3)
        crc &= 0xFFFF
    return crc
def frame(cmd, words):
    body = bytes([cmd, len(words) // 4]) + words
    return b"\x01\x88" + body + struct.pack("<H", crc16(body)) + b"\x99\x03"
def can_bits(cid, payload):
    bits = [0] + [(cid >> (10 - i)) & 1 for i in range(11)] + [0, 0, 0] + [(len(payload) >> (3 - i)) & 1 for i in range(4)]
    for x in payload: bits += [(x >> (7 - i)) & 1 for i in range(8)]
    crc = 0
    for b in bits:
        f = b ^ ((crc >> 14) & 1); crc = (crc << 1) & 0x7FFF
        if f: crc ^= 0x4599
    bits += [(crc >> (14 - i)) & 1 for i in range(15)]
    stuff, run, last = 0, 0, None
    for b in bits:
        run = run + 1 if b == last else 1; last = b
        if run == 5: stuff += 1; last = 1 - b; run = 1
    return len(bits) + 13 + stuff
def stream_bits(cid, stream):
    return sum(can_bits(cid, stream[i:i + 8]) for i in range(0, len(stream), 8))
blocks = [data[i:i + 64].ljust(64, b"\xff") for i in range(0, len(data), 64)]
write = verify = 0
for n, block in enumerate(blocks):
    addr = struct.pack("<I", 0x08002000 + 64 * n)
    write += stream_bits(0x200, frame(0x12, addr + block)) + stream_bits(0x201, frame(0xA0, struct.pack("<I", 0x12) + addr))
    verify += stream_bits(0x200, frame(0x14, addr)) + stream_bits(0x201, frame(0xA0, struct.pack("<I", 0x14) + addr + block))
flash_s = len(blocks) * 0.0016 + (len(data) + 2047) // 2048 * 0.020
print(f"write {write / bitrate + flash_s:.2f} s ({write} bits on the bus + {flash_s:.2f} s programming), "
      f"verify {verify / bitrate:.2f} s ({verify} bits)")
PY
}

for BITRATE in 1000000 500000; do
  start_usbip_sim "$GUEST_DIR/sim-$BITRATE.log" gs-usb \
    --node "katapult:stm32f103xe:$A:$GUEST_DIR/flashA-$BITRATE.bin" \
    --node "katapult:stm32f103xe:$B:$GUEST_DIR/flashB-$BITRATE.bin" \
    --node "klipper:stm32f103xe:$C:$GUEST_DIR/flashC-$BITRATE.bin"
  PORT=$USBIP_PORT
  (cd "$GUEST_DIR" && "$GUEST_RUN" --usbip-port "$PORT" --timeout 900 -- sh -c "
    ms() { echo \$(( (\$(date +%s%N) - \$1) / 1000000 )); }
    usbip --tcp-port $PORT attach -r \$GUEST_HOST_ADDR -b 1-1 || exit 11
    i=0; until ip link show can0 >/dev/null 2>&1; do i=\$((i+1)); [ \$i -gt 100 ] && exit 12; sleep 0.1; done
    ip link set can0 up type can bitrate $BITRATE || exit 13
    t0=\$(date +%s%N); /usr/bin/python3 flashtool.py -i can0 -u $A -f app.bin >flashtool-$BITRATE.txt 2>&1 || exit 14
    echo \"flashtool.py: \$(ms \$t0) ms\"
    t0=\$(date +%s%N); ./mcuflash flash app.bin -d can:can0:$B --chip stm32f103xe >mcuflash-$BITRATE.txt 2>&1 || exit 15
    echo \"mcuflash (node in Katapult): \$(ms \$t0) ms\"
    t0=\$(date +%s%N); ./mcuflash flash app.bin -d can:can0:$C --chip stm32f103xe >klipper-$BITRATE.txt 2>&1 || exit 16
    echo \"mcuflash (node running Klipper): \$(ms \$t0) ms\"
  ") >"$GUEST_DIR/guest-$BITRATE.out" 2>&1 || { cat "$GUEST_DIR/guest-$BITRATE.out" "$GUEST_DIR"/*-$BITRATE.txt >&2; fail "guest run at $BITRATE failed"; }
  stop_background
  echo "== $SIZE bytes at $BITRATE bit/s"
  echo "bus limit: $(bus_limit $BITRATE)"
  cat "$GUEST_DIR/guest-$BITRATE.out"
  grep -h "wrote\|verified\|took\|s)" "$GUEST_DIR/mcuflash-$BITRATE.txt" | tail -3 || true
  grep -a "^mcuflash-sim: \(bus\|wake timer\)" "$GUEST_DIR/sim-$BITRATE.log" || true
done
