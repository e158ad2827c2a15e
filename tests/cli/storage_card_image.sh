#!/usr/bin/env bash
# `mcuflash flash` to an SD card image (img:) for an LPC176x board: the card passes fsck.fat, mcopy reads
# firmware.bin back identical, an existing firmware.bin is replaced, FIRMWARE.CUR is left alone; a
# full card is refused with the card unchanged; a card without a board is a usage error.
source "$(dirname "$0")/../lib/common.sh"
command -v mkfs.fat >/dev/null && command -v mcopy >/dev/null && command -v fsck.fat >/dev/null ||
  skip "dosfstools and mtools are not installed (scripts/setup.sh)"

# A Cortex-M image linked for 0x4000 (the LPC176x SD bootloader's 16 KiB): stack, reset handler inside.
python3 - "$WORK/klipper.bin" <<'PY'
import os, struct, sys
body = bytearray(os.urandom(60000))
body[0:8] = struct.pack("<II", 0x10008000, 0x4000 + 0x101)
open(sys.argv[1], "wb").write(body)
PY
mkfs.fat -C -F 32 -s 1 -n SKRCARD "$WORK/card.img" 40960 >/dev/null
echo old > "$WORK/old.txt"
mcopy -i "$WORK/card.img" "$WORK/old.txt" ::FIRMWARE.CUR
mcopy -i "$WORK/card.img" "$WORK/old.txt" ::firmware.bin

"$MCUFLASH" flash "$WORK/klipper.bin" -d "img:$WORK/card.img" --chip lpc1768 --bootloader lpc176x_sd >"$WORK/out" 2>"$WORK/err" ||
  fail "flash to a card image failed: $(cat "$WORK/err")"
grep -q "verified" "$WORK/out" || fail "not verified: $(cat "$WORK/out" "$WORK/err")"
grep -q "FIRMWARE.CUR from an earlier update" "$WORK/err" || fail "the old FIRMWARE.CUR was not mentioned: $(cat "$WORK/err")"
fsck.fat -n "$WORK/card.img" >"$WORK/fsck" || fail "fsck.fat: $(cat "$WORK/fsck")"
mcopy -n -i "$WORK/card.img" ::firmware.bin "$WORK/back.bin"
cmp "$WORK/klipper.bin" "$WORK/back.bin" || fail "firmware.bin on the card differs from klipper.bin"
mcopy -n -i "$WORK/card.img" ::FIRMWARE.CUR "$WORK/cur.txt"
cmp "$WORK/old.txt" "$WORK/cur.txt" || fail "FIRMWARE.CUR was changed"

# --board: the knowledge base's board (the CLI passes its chip, and its ID where it does).
"$MCUFLASH" flash "$WORK/klipper.bin" -d "img:$WORK/card.img" --board "skr 1.4" >"$WORK/out" 2>"$WORK/err" ||
  fail "flash --board \"skr 1.4\" failed: $(cat "$WORK/err")"
fsck.fat -n "$WORK/card.img" >"$WORK/fsck" || fail "fsck.fat after --board: $(cat "$WORK/fsck")"
mcopy -n -o -i "$WORK/card.img" ::firmware.bin "$WORK/back.bin"
cmp "$WORK/klipper.bin" "$WORK/back.bin" || fail "firmware.bin differs after --board"

# A card too small for the file: refused, unchanged.
mkfs.fat -C -F 12 "$WORK/small.img" 256 >/dev/null
head -c 220000 /dev/urandom >"$WORK/filler"
mcopy -i "$WORK/small.img" "$WORK/filler" ::FILLER.DAT
cp "$WORK/small.img" "$WORK/small.before"
expect_exit 74 "too full" -- "$MCUFLASH" flash "$WORK/klipper.bin" -d "img:$WORK/small.img" --chip lpc1768 --bootloader lpc176x_sd
cmp "$WORK/small.img" "$WORK/small.before" || fail "the full card changed"

# No board: say which.
expect_exit 64 "--board" -- "$MCUFLASH" flash "$WORK/klipper.bin" -d "img:$WORK/card.img"
# Not FAT.
head -c 1048576 /dev/zero >"$WORK/blank.img"
expect_exit 65 "no FAT" -- "$MCUFLASH" flash "$WORK/klipper.bin" -d "img:$WORK/blank.img" --chip lpc1768 --bootloader lpc176x_sd
echo ok
