#!/usr/bin/env bash
# mcuflash against the in-process RP2040 boot ROM simulator (-d sim:picoboot, PICOBOOT only): a .uf2
# for the RP2040 and a .bin (placed at 0x10000000) flash and verify by read-back (text and JSON), `info`
# names the rp2040 and its boot ROM, `read` reads the flash back, `-p picoboot` is accepted, a UF2 for
# another chip family is refused, a device that leaves the bus mid-write is an I/O error (74) with the
# BOOTSEL hint; `mcuflash-sim list` offers the simulator.
source "$(dirname "$0")/../lib/common.sh"

# make_uf2 OUT SIZE FAMILY: SIZE random bytes at 0x10000000 as 256-byte UF2 blocks of that family.
make_uf2() {
  python3 - "$1" "$2" "$3" <<'PY'
import os, struct, sys
out, size, family = sys.argv[1], int(sys.argv[2]), int(sys.argv[3], 0)
data = os.urandom(size)
blocks = [data[i:i + 256] for i in range(0, size, 256)]
with open(out, "wb") as f:
    for n, chunk in enumerate(blocks):
        chunk = chunk.ljust(256, b"\xff")
        head = struct.pack("<IIIIIIII", 0x0A324655, 0x9E5D5157, 0x2000, 0x10000000 + n * 256, 256, n, len(blocks), family)
        f.write(head + chunk + b"\x00" * (476 - 256) + struct.pack("<I", 0x0AB16F30))
PY
}

make_uf2 "$WORK/app.uf2" 30000 0xe48bff56
"$MCUFLASH" flash "$WORK/app.uf2" -d sim:picoboot --sim-fast >"$WORK/uf2.out" 2>&1 \
  || fail "flashing the .uf2 failed: $(cat "$WORK/uf2.out")"
grep -q "verified" "$WORK/uf2.out" || fail "the result does not say verified: $(cat "$WORK/uf2.out")"
grep -q "not verified" "$WORK/uf2.out" && fail "PICOBOOT reads back, yet: $(cat "$WORK/uf2.out")"

"$MCUFLASH" flash "$WORK/app.uf2" -d sim:picoboot:rp2040 -p picoboot --sim-fast --json >"$WORK/json.out" 2>"$WORK/json.err" \
  || fail "flash --json failed: $(cat "$WORK/json.err")"
python3 - "$WORK/json.out" <<'PY' || fail "JSON result: $(tail -1 "$WORK/json.out")"
import json, sys
r = json.loads(open(sys.argv[1]).read().splitlines()[-1])
assert r["command"] == "flash" and r["verified"] is True, r
assert r["bytes_written"] >= 30000, r
PY
echo "ok: a .uf2 flashes and verifies (text and JSON)"

head -c 5000 /dev/urandom >"$WORK/app.bin"
"$MCUFLASH" flash "$WORK/app.bin" -d sim:picoboot --sim-fast >"$WORK/bin.out" 2>&1 || fail "flashing the .bin failed: $(cat "$WORK/bin.out")"
grep -q "placed at 0x10000000" "$WORK/bin.out" || fail "the .bin was not placed at 0x10000000: $(cat "$WORK/bin.out")"
grep -q "verified" "$WORK/bin.out" || fail "the .bin was not verified: $(cat "$WORK/bin.out")"
echo "ok: a .bin goes to 0x10000000 and verifies"

"$MCUFLASH" info -d sim:picoboot --sim-fast >"$WORK/info.out" 2>&1 || fail "info failed: $(cat "$WORK/info.out")"
grep -q "rp2040" "$WORK/info.out" && grep -q "RP2040 boot ROM" "$WORK/info.out" \
  || fail "info does not name the chip and the boot ROM: $(cat "$WORK/info.out")"
"$MCUFLASH" read -o "$WORK/back.bin" --address 0x10000000 --length 8192 -d sim:picoboot --sim-fast >"$WORK/read.out" 2>&1 \
  || fail "read failed: $(cat "$WORK/read.out")"
[ "$(stat -c %s "$WORK/back.bin")" -eq 8192 ] || fail "read gave $(stat -c %s "$WORK/back.bin") bytes"
python3 -c "import sys; d=open(sys.argv[1],'rb').read(); sys.exit(0 if d == b'\xff' * 8192 else 1)" "$WORK/back.bin" \
  || fail "a fresh simulated flash did not read back blank"
echo "ok: info names the rp2040, read gives the flash"

make_uf2 "$WORK/other.uf2" 1024 0x5ee21072  # STM32F1's family
expect_exit 65 "UF2" -- "$MCUFLASH" flash "$WORK/other.uf2" -d sim:picoboot --sim-fast
expect_exit 74 "BOOTSEL" -- "$MCUFLASH" flash "$WORK/app.uf2" -d sim:picoboot --sim-fast --sim-faults vanish@40
echo "ok: another family refused (65), leaving mid-write (74, BOOTSEL hint)"

"$MCUFLASH_SIM" list >"$WORK/simlist.out" 2>&1 || true
grep -q "^picoboot" "$WORK/simlist.out" || fail "mcuflash-sim list lacks picoboot: $(cat "$WORK/simlist.out")"
"$MCUFLASH" --help | grep -q "picoboot" || fail "mcuflash --help does not list picoboot"
echo "ok: mcuflash-sim list and --help name picoboot"
