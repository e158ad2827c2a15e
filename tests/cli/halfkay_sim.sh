#!/usr/bin/env bash
# mcuflash against the in-process HalfKay simulator (-d sim:halfkay, a Teensy++ 2.0): a flash says
# "not verified" in words and JSON (HalfKay cannot read back), `info` names the Teensy, `read` is
# refused as unsupported, an image reaching the boot block is refused before anything is sent, a
# Teensy that leaves the bus mid-write is an I/O error with the button hint; `mcuflash-sim list`
# offers the simulator and `mcuflash udev-rules` covers 16c0:0478.
source "$(dirname "$0")/../lib/common.sh"

random_hex "$WORK/app.hex" 20000 0
"$MCUFLASH" flash "$WORK/app.hex" -d sim:halfkay --sim-fast >"$WORK/plain.out" 2>&1 \
  || fail "flash failed: $(cat "$WORK/plain.out")"
grep -q "not verified" "$WORK/plain.out" || fail "the result does not say 'not verified': $(cat "$WORK/plain.out")"
grep -q "verified (" "$WORK/plain.out" && fail "a write-only device reported as verified: $(cat "$WORK/plain.out")"

"$MCUFLASH" flash "$WORK/app.hex" -d sim:halfkay:at90usb1286 --sim-fast --json >"$WORK/json.out" 2>"$WORK/json.err" \
  || fail "flash --json failed: $(cat "$WORK/json.err")"
python3 - "$WORK/json.out" <<'PY' || fail "JSON result: $(tail -1 "$WORK/json.out")"
import json, sys
r = json.loads(open(sys.argv[1]).read().splitlines()[-1])
assert r["command"] == "flash" and r["verified"] is False, r
assert "not verified" in r["not_verified"], r
assert r["bytes_written"] >= 20000, r
PY
echo "ok: flash says not verified (text and JSON)"

"$MCUFLASH" info -d sim:halfkay --sim-fast >"$WORK/info.out" 2>&1 || fail "info failed: $(cat "$WORK/info.out")"
grep -q "at90usb1286" "$WORK/info.out" && grep -q "Teensy++ 2.0" "$WORK/info.out" \
  || fail "info does not name the chip and board: $(cat "$WORK/info.out")"

expect_exit 69 "cannot read" -- "$MCUFLASH" read -o "$WORK/back.bin" -d sim:halfkay --sim-fast
head -c 131072 /dev/urandom >"$WORK/big.bin"
expect_exit 65 "brick" -- "$MCUFLASH" flash "$WORK/big.bin" --address 0 -d sim:halfkay --sim-fast
expect_exit 74 "press the button on the Teensy" -- "$MCUFLASH" flash "$WORK/app.hex" -d sim:halfkay --sim-fast \
  --sim-faults vanish@20
echo "ok: read refused (69), boot block refused (65), vanish mid-write (74, button hint)"

"$MCUFLASH_SIM" list >"$WORK/simlist.out" 2>&1 || true
grep -q "^halfkay" "$WORK/simlist.out" || fail "mcuflash-sim list lacks halfkay: $(cat "$WORK/simlist.out")"
"$MCUFLASH" udev-rules | grep -q 'ATTR{idVendor}=="16c0", ATTR{idProduct}=="0478"' || fail "udev-rules lacks 16c0:0478"
"$MCUFLASH" --help | grep -q "halfkay" || fail "mcuflash --help does not list halfkay"
echo "ok: mcuflash-sim list, udev-rules and --help name HalfKay"
