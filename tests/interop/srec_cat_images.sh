#!/usr/bin/env bash
# Image formats against an independent reader and writer, srec_cat (Debian's srecord): files srec_cat
# writes (Intel HEX, S-records with S1/S2/S3 addresses, with and without a start address: without one
# it writes an S5 count and no S7/S8/S9) are read by mcuflash as srec_cat reads them, and files
# mcuflash writes are read by srec_cat as mcuflash reads them. Skipped (77) without srec_cat.
source "$(dirname "$0")/../lib/common.sh"
command -v srec_cat >/dev/null || skip "srec_cat (srecord) not installed"

# Two runs with a gap, above 64 KiB so extended addressing is exercised.
head -c 3000 /dev/urandom >"$WORK/a.bin"
head -c 70000 /dev/urandom >"$WORK/b.bin"
srec_cat "$WORK/a.bin" -binary -offset 0x0800F000 "$WORK/b.bin" -binary -offset 0x08010000 \
  -o "$WORK/ref.srec" -motorola 2>/dev/null  # ends 0x08010000 + 70000 = 0x08021170
# srec_cat's own flat reading of it (gaps 0xFF, from the lowest address) is the reference.
flat() {  # flat FILE READER OUT
  srec_cat "$1" "$2" -fill 0xFF 0x0800F000 0x08021170 -offset -0x0800F000 -o "$3" -binary 2>/dev/null
}
flat "$WORK/ref.srec" -motorola "$WORK/ref.flat"

check() {  # check FILE ARGS-FOR-MCUFLASH...: mcuflash's flat reading of FILE equals the reference
  local file=$1; shift
  "$MCUFLASH" image convert "$file" "$WORK/out.bin" --to bin "$@" -q 2>"$WORK/err" || fail "$file: $(cat "$WORK/err")"
  cmp -s "$WORK/out.bin" "$WORK/ref.flat" || fail "$file: mcuflash reads other bytes than srec_cat"
  echo "ok: $(basename "$file") read as srec_cat reads it$(grep -q 'count record' "$WORK/err" && echo ' (no termination record: the count proves it, said in a warning)')"
}
srec_cat "$WORK/ref.srec" -motorola -o "$WORK/s19.hex" -intel 2>/dev/null; check "$WORK/s19.hex"
for width in 2 3 4; do
  srec_cat "$WORK/ref.srec" -motorola -o "$WORK/w$width.srec" -motorola -address-length=$width 2>/dev/null || continue
  check "$WORK/w$width.srec"
done
srec_cat "$WORK/ref.srec" -motorola -execution-start-address=0x0800F101 -o "$WORK/start.srec" -motorola 2>/dev/null
check "$WORK/start.srec"
grep -q '^S7' "$WORK/start.srec" || fail "setup: srec_cat wrote no S7 with a start address"
grep -q '^S[789]' "$WORK/w4.srec" && fail "setup: srec_cat wrote a termination record without a start address"

# The other way: what mcuflash writes, srec_cat reads the same.
for fmt in hex srec; do
  "$MCUFLASH" image convert "$WORK/ref.srec" "$WORK/mine.$fmt" -q || fail "mcuflash could not write $fmt"
  reader=-intel; [ "$fmt" = srec ] && reader=-motorola
  flat "$WORK/mine.$fmt" $reader "$WORK/mine.flat" || fail "srec_cat cannot read mcuflash's $fmt"
  cmp -s "$WORK/mine.flat" "$WORK/ref.flat" || fail "srec_cat reads other bytes from mcuflash's $fmt"
  echo "ok: mcuflash's .$fmt read by srec_cat as written"
done
