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
# UF2 for a UF2 drive: the family ID the board's bootloader expects, from --family (a chip, a name or hex).
"$MCUFLASH" image convert "$WORK/app.bin" "$WORK/app.uf2" --address 0x10000000 --family rp2040 >/dev/null \
  || fail "convert to UF2 with --family rp2040 failed"
"$MCUFLASH" image convert "$WORK/app.bin" "$WORK/samd.uf2" --address 0x4000 --family 0x55114460 >/dev/null \
  || fail "convert to UF2 with a hex family failed"
python3 - "$WORK" <<'PY'
import struct, sys
w = sys.argv[1]
raw = open(f"{w}/app.bin", "rb").read()
for name, family, base in (("app.uf2", 0xE48BFF56, 0x10000000), ("samd.uf2", 0x55114460, 0x4000)):
    data = open(f"{w}/{name}", "rb").read()
    blocks = [data[i:i + 512] for i in range(0, len(data), 512)]
    got = bytearray()
    for n, b in enumerate(blocks):
        magic0, magic1, flags, addr, size, no, count, fam = struct.unpack("<8I", b[:32])
        assert (magic0, magic1) == (0x0A324655, 0x9E5D5157) and struct.unpack("<I", b[508:])[0] == 0x0AB16F30
        assert flags & 0x2000 and fam == family, (name, hex(flags), hex(fam))
        assert addr == base + 256 * n and no == n and count == len(blocks) and size == 256
        got += b[32:32 + size]
    assert bytes(got[:len(raw)]) == raw and set(got[len(raw):]) <= {0xFF}, name
PY
set +e
"$MCUFLASH" image convert "$WORK/app.bin" "$WORK/bad.uf2" --family nosuchchip >"$WORK/out" 2>&1; rc=$?
set -e
[ $rc -eq 64 ] && grep -q "no UF2 family" "$WORK/out" || fail "an unknown --family: exit $rc: $(cat "$WORK/out")"
"$MCUFLASH" image convert "$WORK/app.bin" "$WORK/nofamily.uf2" 2>"$WORK/err" >/dev/null
grep -q "no family ID" "$WORK/err" || fail "UF2 without a family ID gave no warning: $(cat "$WORK/err")"
echo "ok: UF2 output carries the --family ID in every block"
