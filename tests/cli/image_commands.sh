#!/usr/bin/env bash
# `image info` and `image convert`: formats round-trip and the numbers are right.
source "$(dirname "$0")/../lib/common.sh"

random_hex "$WORK/app.hex" 5000 0x1000
"$MCUFLASH" image convert "$WORK/app.hex" "$WORK/app.srec"
"$MCUFLASH" image convert "$WORK/app.srec" "$WORK/app.bin"
"$MCUFLASH" image convert "$WORK/app.bin" "$WORK/again.hex" --base-address 0x1000
"$MCUFLASH" --json image info "$WORK/app.hex" >"$WORK/a.json"
"$MCUFLASH" --json image info "$WORK/again.hex" >"$WORK/b.json"
"$MCUFLASH" --json image info "$WORK/app.srec" >"$WORK/c.json"
python3 - "$WORK" <<'PY'
import json, sys, zlib, hashlib
w = sys.argv[1]
a, b, c = (json.load(open(f"{w}/{n}.json")) for n in "abc")
raw = open(f"{w}/app.bin", "rb").read()
assert len(raw) == 5000
for d in (a, b, c):
    assert d["total_bytes"] == 5000 and d["lowest"] == 0x1000, d
    assert d["crc32"] == "%08x" % zlib.crc32(raw), d
    assert d["sha256"] == hashlib.sha256(raw).hexdigest(), d
assert a["format"] == "ihex" and c["format"] == "srec", (a["format"], c["format"])
PY
"$MCUFLASH" image info "$WORK/app.hex" | grep -q "0x00001000-0x00002387" || fail "human range line missing"
echo ok
