#!/usr/bin/env bash
# `mcuflash bootloader install` and `mcuflash fuses` through the simulated STK500v2 ISP programmer on a
# pty: the install, fuse reads and writes, and every refusal (unknown chip, bad fuse names or values,
# bricking fuses, a hex outside the boot section) with its exit code and nothing written.
source "$(dirname "$0")/../lib/common.sh"

BOOT_HEX=/usr/share/arduino/hardware/arduino/avr/bootloaders/stk500v2/stk500boot_v2_mega2560.hex
start_sim isp stk500v2-isp --chip atmega2560 --no-timing --flash-file "$WORK/target.bin"
DEV="$WORK/isp"

fuses_now() { "$MCUFLASH" fuses read --chip atmega2560 -d "$DEV" --json | python3 -c '
import json, sys
for line in sys.stdin:
    o = json.loads(line)
    if o.get("event") == "result": print(" ".join("%s=%s" % (k, o["fuses"][k]) for k in ("lfuse", "hfuse", "efuse", "lock")))'; }

[ "$(fuses_now)" = "lfuse=0x62 hfuse=0x99 efuse=0xFF lock=0xFF" ] || fail "factory fuses read as '$(fuses_now)'"

# Refusals: nothing reaches the chip.
cp "$WORK/target.bin" "$WORK/before.bin"
expect_exit 64 "atmega9999" -- "$MCUFLASH" fuses read --chip atmega9999 -d "$DEV"
expect_exit 64 "xfuse" -- "$MCUFLASH" fuses write --chip atmega2560 -d "$DEV" xfuse=0xFF
expect_exit 64 "0x1FF" -- "$MCUFLASH" fuses write --chip atmega2560 -d "$DEV" lfuse=0x1FF
expect_exit 65 "SPIEN" -- "$MCUFLASH" fuses write --chip atmega2560 -d "$DEV" hfuse=0xF8
expect_exit 65 "CKSEL" -- "$MCUFLASH" fuses write --chip atmega2560 -d "$DEV" lfuse=0xE0
expect_exit 65 "CKSEL" -- "$MCUFLASH" fuses write --chip atmega2560 -d "$DEV" lfuse=0xE0 --force
# A hex that does not fit the boot section the fuses select.
random_hex "$WORK/big-boot.hex" 12288 0x3D000
expect_exit 65 "boot section" -- "$MCUFLASH" bootloader install --chip atmega2560 -d "$DEV" --hex "$WORK/big-boot.hex"
cmp -s "$WORK/before.bin" "$WORK/target.bin" || fail "a refused command changed the target's flash"
[ "$(fuses_now)" = "lfuse=0x62 hfuse=0x99 efuse=0xFF lock=0xFF" ] || fail "a refused command changed the fuses: $(fuses_now)"

# A safe fuse write, verified.
"$MCUFLASH" fuses write --chip atmega2560 -d "$DEV" efuse=0xFD >"$WORK/out" 2>&1 || fail "efuse write: $(cat "$WORK/out")"
[ "$(fuses_now)" = "lfuse=0x62 hfuse=0x99 efuse=0xFD lock=0xFF" ] || fail "efuse write left $(fuses_now)"

# The install: the bootloader Debian ships, the seed's fuses, lock last.
if [ -f "$BOOT_HEX" ]; then
  "$MCUFLASH" bootloader install --chip atmega2560 -d "$DEV" >"$WORK/install.log" 2>&1 || fail "install: $(cat "$WORK/install.log")"
  grep -q "stk500boot_v2_mega2560.hex" "$WORK/install.log" || fail "install does not say which file it used"
  [ "$(fuses_now)" = "lfuse=0xFF hfuse=0xD8 efuse=0xFD lock=0xCF" ] || fail "install left $(fuses_now)"
  hex_to_bin "$BOOT_HEX" "$WORK/boot.bin"
  cmp -s -i 0:0x3E000 -n "$(stat -c %s "$WORK/boot.bin")" "$WORK/boot.bin" "$WORK/target.bin" \
    || fail "the target does not hold the bootloader at 0x3E000"
  echo "ok: install, fuses $(fuses_now)"
fi
echo "ok: ISP commands and refusals"
