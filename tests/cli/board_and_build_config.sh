#!/usr/bin/env bash
# `flash --board` and Klipper's build configuration: the board's protocol is spoken on its serial port,
# a board or a .config that names another chip, or a build linked for another bootloader offset, is
# refused before anything is written; the .config of the Klipper tree an image sits in is found by itself.
source "$(dirname "$0")/../lib/common.sh"

# A Mega 2560 clone (RAMPS) with its stock bootloader: no -p, the board says STK500v2.
start_sim mega stk500v2 --chip atmega2560 --no-timing --flash-file "$WORK/mega.bin"
random_hex "$WORK/app.hex" 3000
"$MCUFLASH" flash "$WORK/app.hex" -d "$WORK/mega" --board ramps-v1.3 -q || fail "flash --board ramps-v1.3"
"$MCUFLASH" verify "$WORK/app.hex" -d "$WORK/mega" --board "RAMPS v1.3" -q || fail "verify --board by its name"
# ... and a board with another chip, or a --chip that contradicts the board.
expect_exit 64 "atmega2560.*atmega1284p|atmega1284p.*atmega2560" -- \
  "$MCUFLASH" flash "$WORK/app.hex" -d "$WORK/mega" -p stk500v2 --board anet
expect_exit 64 "contradicts --board" -- "$MCUFLASH" flash "$WORK/app.hex" -d "$WORK/mega" --board ramps-v1.3 --chip atmega1284p
expect_exit 64 "no board is called" -- "$MCUFLASH" flash "$WORK/app.hex" -d "$WORK/mega" --board "no such board"
stop_background

# An SD-card board on a serial port: said before the port is opened, with the guide to follow.
expect_exit 69 "SD card.*firmware.bin" -- "$MCUFLASH" flash "$WORK/app.hex" -d /dev/null --board btt-skr-v1.4
grep -q "mcuflash guide btt-skr-v1.4" "$WORK/err" || fail "the SD-card refusal does not name the guide: $(cat "$WORK/err")"

# A Klipper tree: out/klipper.bin (a vector table linked at 0x2000) and the .config beside out/.
mkdir -p "$WORK/klipper/out"
python3 - "$WORK/klipper/out/klipper.bin" <<'PY'
import random, struct, sys
body = bytes(random.Random(7).randrange(256) for _ in range(4088))
open(sys.argv[1], "wb").write(struct.pack("<II", 0x20008000, 0x2000 + 0x201) + body)
PY
bin="$WORK/klipper/out/klipper.bin"
config() { printf 'CONFIG_MCU="%s"\n%s\nCONFIG_USBSERIAL=y\n' "$1" "$2" >"$WORK/klipper/.config"; }
start_sim zero samba --chip samd21g18a --no-timing --flash-file "$WORK/zero.bin"
# Built for the Arduino Zero's 8 KiB bootloader: found, checked, placed at 0x2000.
config samd21g18a CONFIG_FLASH_APPLICATION_ADDRESS=0x2000
"$MCUFLASH" flash "$bin" -d "$WORK/zero" -p samba 2>"$WORK/err" || fail "flash with the .config: $(cat "$WORK/err")"
grep -q "Klipper's build configuration .*/klipper/.config" "$WORK/err" || fail "the .config was not found: $(cat "$WORK/err")"
grep -q "placed at 0x00002000" "$WORK/err" || fail "not placed at 0x2000: $(cat "$WORK/err")"
cp "$WORK/zero.bin" "$WORK/zero.before"
stop_background
cmp -n 4096 -i 0:8192 "$bin" "$WORK/zero.before" || fail "the flash does not hold klipper.bin at 0x2000"
start_sim zero samba --chip samd21g18a --no-timing --flash-file "$WORK/zero.bin"
# Built for a 16 KiB bootloader: refused before a byte is written, with the menuconfig choice to make.
config samd21g18a CONFIG_FLASH_APPLICATION_ADDRESS=0x4000
expect_exit 65 "linked to start at 0x00004000.*starts the application at 0x00002000" -- "$MCUFLASH" flash "$bin" -d "$WORK/zero" -p samba
grep -q "Bootloader offset: 8KiB bootloader" "$WORK/err" || fail "no menuconfig choice in the refusal: $(cat "$WORK/err")"
# Built for another chip: refused.
config stm32f103xe CONFIG_FLASH_APPLICATION_ADDRESS=0x8007000
expect_exit 64 "samd21g18a.*stm32f103xe" -- "$MCUFLASH" flash "$bin" -d "$WORK/zero" -p samba
# An --address that contradicts the .config: refused; --klipper-config none: the user's word goes.
config samd21g18a CONFIG_FLASH_APPLICATION_ADDRESS=0x2000
expect_exit 64 "contradicts Klipper's build configuration" -- "$MCUFLASH" flash "$bin" --address 0x3000 -d "$WORK/zero" -p samba
# Not a .config at all.
echo "hello" >"$WORK/not-a-config"
expect_exit 65 "not a Klipper build configuration" -- "$MCUFLASH" flash "$bin" --klipper-config "$WORK/not-a-config" -d "$WORK/zero" -p samba
stop_background
cmp "$WORK/zero.bin" "$WORK/zero.before" || fail "a refused flash changed the flash"
echo "ok: --board and Klipper's .config checked before writing; refusals change nothing"
