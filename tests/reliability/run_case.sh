#!/usr/bin/env bash
# One known silent-corruption case (cases/NAME/case.conf): an image flashed through a simulator under
# given faults, over a given older flash where the case has one. It passes when mcuflash fails
# (nonzero exit) or the flash holds the image with nothing outside the image's 64 KiB windows
# changed, within the bound; exit 0 with other bytes is a silent corruption.
#   run_case.sh CASE_DIR
# case.conf: sim="PROTOCOL ARGS" faults=SPEC protocol=P [args="..."] [bound=SECONDS] [expect_exit=N]
#            [forge=UNIT: flash A, then B that differs from A inside one UNIT-byte block with the same CRC-16]
source "$(dirname "$0")/../lib/common.sh"
case_dir=$(cd "$1" && pwd); name=$(basename "$case_dir")
sim="" faults="" protocol="" args="" bound=120 expect_exit="" forge=""
source "$case_dir/case.conf"

flash_file="$WORK/flash.bin"; init=-
if [ -f "$case_dir/flash-init.bin" ]; then cp "$case_dir/flash-init.bin" "$flash_file"; init="$case_dir/flash-init.bin"; fi
# shellcheck disable=SC2086
start_sim tty $sim --flash-file "$flash_file" --no-timing -v ${faults:+--faults "$faults"}

flash() {  # flash FILE [mcuflash args...]: sets rc
  local file=$1; shift
  # shellcheck disable=SC2086
  set +e; timeout "$bound" "$MCUFLASH" flash "$file" -d "$WORK/tty" ${protocol:+-p "$protocol"} $args "$@" >>"$WORK/mcuflash.log" 2>&1
  rc=$?; set -e
}

if [ -n "$forge" ]; then
  # A collision by design: CRC-16/XMODEM is linear with a zero start, so a difference D that ends in
  # its own CRC has CRC 0, and A xor D has the CRC of A in any block that holds D.
  python3 - "$WORK" "$forge" <<'PY'
import random, sys
work, unit = sys.argv[1], int(sys.argv[2], 0)
def crc16(data, crc=0):
    for b in data:
        crc ^= b << 8
        for _ in range(8):
            crc = ((crc << 1) ^ 0x1021) & 0xFFFF if crc & 0x8000 else (crc << 1) & 0xFFFF
    return crc
r = random.Random(11)
a = bytearray(r.randrange(256) for _ in range(60000))
a[0:8] = (0x20004000).to_bytes(4, 'little') + (0x4201).to_bytes(4, 'little')  # a vector table at 0x4000
diff = bytes(r.randrange(1, 256) for _ in range(16))
diff += crc16(diff).to_bytes(2, 'big')
b = bytearray(a)
for i, d in enumerate(diff): b[unit + 100 + i] ^= d
assert crc16(a[unit:2 * unit]) == crc16(b[unit:2 * unit]) and a != b
open(f"{work}/a.bin", "wb").write(a); open(f"{work}/b.bin", "wb").write(b)
PY
  flash "$WORK/a.bin" --base-address 0x4000
  [ $rc -eq 0 ] || fail "$name: flashing A failed (exit $rc)"
  flash "$WORK/b.bin" --base-address 0x4000
  stop_background
  if [ $rc -eq 0 ]; then
    python3 -c "import sys; f=open(sys.argv[1],'rb').read(); b=open(sys.argv[2],'rb').read(); sys.exit(f[0x4000:0x4000+len(b)] != b)" \
      "$flash_file" "$WORK/b.bin" || { cat "$WORK/mcuflash.log"; fail "$name: exit 0 but the flash still holds A"; }
  fi
  echo "ok: $name (exit $rc)"; exit 0
fi

flash "$case_dir/image.hex"
stop_background
cat "$WORK/mcuflash.log"
[ $rc -ne 124 ] || fail "$name: still running after ${bound} s"
[ -z "$expect_exit" ] || [ $rc -eq "$expect_exit" ] || fail "$name: exit $rc, expected $expect_exit"
! grep -q "refused (protected)" "$WORK/tty.log" || fail "$name: writes reached the simulated bootloader region"
python3 - "$name" "$flash_file" "$init" "$case_dir/image.hex" "$rc" <<'PY'
import sys
name, flash, init, hexfile, rc = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4], int(sys.argv[5])
mem, upper = {}, 0
for line in open(hexfile):
    line = line.strip()
    if not line.startswith(':'): continue
    rec = bytes.fromhex(line[1:]); n, addr, kind = rec[0], (rec[1] << 8) | rec[2], rec[3]
    if kind == 0:
        for i in range(n): mem[upper + addr + i] = rec[4 + i]
    elif kind == 4: upper = ((rec[4] << 8) | rec[5]) << 16
    elif kind == 2: upper = ((rec[4] << 8) | rec[5]) << 4
if rc != 0:
    print(f"ok: {name} failed honestly (exit {rc})"); sys.exit(0)
f = open(flash, 'rb').read()
wrong = [a for a, v in mem.items() if f[a] != v]
outside = []
if init != '-':
    i = open(init, 'rb').read()
    lo, hi = min(mem) & ~0xFFFF, (max(mem) | 0xFFFF) + 1
    outside = [a for a in range(len(f)) if f[a] != i[a] and not lo <= a < hi]
if wrong or outside:
    print(f"FAIL: {name}: exit 0 but {len(wrong)} image bytes wrong (first {hex(min(wrong)) if wrong else '-'}), "
          f"{len(outside)} bytes outside the image changed", file=sys.stderr)
    sys.exit(1)
print(f"ok: {name}: exit 0 and the flash holds the image")
PY
