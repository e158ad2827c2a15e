#!/usr/bin/env bash
# `mcuflash boards` and `mcuflash guide`: the board table (and its JSON), the guide for a few kinds of
# board (an SD-card board, one whose file is scrambled, a Mega 2560, SAM-BA boards, STM32F103 boards,
# a Katapult CAN toolhead), names written the ways people write them, ambiguous and unknown names.
source "$(dirname "$0")/../lib/common.sh"

# guide_has BOARD PATTERN...: `mcuflash guide BOARD` succeeds and its output holds every pattern (fixed strings).
guide_has() {
  local board=$1; shift
  "$MCUFLASH" guide "$board" >"$WORK/guide" 2>"$WORK/guide.err" || fail "guide '$board' failed: $(cat "$WORK/guide.err")"
  for pattern in "$@"; do
    grep -qF -- "$pattern" "$WORK/guide" || fail "guide '$board' lacks '$pattern':
$(cat "$WORK/guide")"
  done
}

# The table: every board, one line each, and the same rows in JSON.
"$MCUFLASH" boards >"$WORK/boards" || fail "boards failed"
grep -q "^178 board(s)" "$WORK/boards" || fail "boards: not 178 boards: $(tail -1 "$WORK/boards")"
grep -Eq "^btt-skr-v1.4 +BigTreeTech SKR V1.4 +lpc1768 +lpc176x_sd +0x4000  SD card: firmware.bin" "$WORK/boards" \
  || fail "boards: the SKR v1.4 row: $(grep btt-skr-v1.4 "$WORK/boards")"
"$MCUFLASH" boards --json | python3 -c '
import json, sys
result = json.loads(sys.stdin.read().splitlines()[-1])
assert result["command"] == "boards" and len(result["boards"]) == 178, result.keys()
rows = {row["id"]: row for row in result["boards"]}
assert rows["ramps-v1.3"]["chip"] == "atmega2560" and rows["ramps-v1.3"]["how"] == "mcuflash (stk500v2)", rows["ramps-v1.3"]
assert rows["btt-ebb-can-v1.2"]["app_offset"] is None
' || fail "boards --json"
"$MCUFLASH" boards skr >"$WORK/skr" || fail "boards skr failed"
grep -q "^btt-skr-v1.4 " "$WORK/skr" && grep -q "^btt-skr-pro " "$WORK/skr" && ! grep -q "^ramps" "$WORK/skr" \
  || fail "boards skr: $(cat "$WORK/skr")"
echo "ok: boards lists 178 boards, as a table and as JSON, and filters by name"

# An SD-card board: menuconfig, the file name on the card, power on with it.
guide_has btt-skr-mini-e3-v2.0 "Processor model: STM32F103" "Bootloader offset: 28KiB bootloader" \
  "cp out/klipper.bin /media/\$USER/SDCARD/firmware.bin" "power on with the SD card inserted" \
  "mcuflash flash out/klipper.bin -d /dev/sdX1 --board btt-skr-mini-e3-v2.0" \
  "mcuflash verify-sd -d /dev/sdX1 --board btt-skr-mini-e3-v2.0" "!PA14"
# One whose file must be scrambled first, and a Creality board that skips names it has seen.
guide_has "robin nano v1.2" "./scripts/update_mks_robin.py out/klipper.bin out/Robin_nano.bin" \
  "cp out/Robin_nano.bin /media/\$USER/SDCARD/Robin_nano.bin"
guide_has creality-v4.2.2 "a .bin name it has not installed before" "firmware-\$(date +%Y%m%d%H%M%S).bin" \
  "Disable SWD at startup"
echo "ok: SD-card boards: offset, file name, scrambling, new names"

# An Arduino Mega 2560 (RAMPS): mcuflash speaks its bootloader, and installs it over ISP.
guide_has "mega 2560" "ramps-v1.3" "Micro-controller Architecture: Atmega AVR" "Processor model: atmega2560" \
  "mcuflash flash out/klipper.elf.hex -d /dev/serial/by-id/usb-... -p stk500v2 --board ramps-v1.3" \
  "avrdude -p atmega2560 -c wiring -P /dev/serial/by-id/usb-... -b 115200 -D -U flash:w:out/klipper.elf.hex:i" \
  "mcuflash bootloader install --chip atmega2560"
# A Melzi: the Arduino bootloader at 57600, mcuflash's default protocol on a serial port.
guide_has melzi-v2.0 "mcuflash flash out/klipper.elf.hex -d /dev/serial/by-id/usb-... --board melzi-v2.0" \
  "avrdude -p atmega1284p -c arduino -b 57600"
echo "ok: AVR boards: mcuflash and avrdude commands, the ISP install"

# An RP2040 board: PICOBOOT, or the boot ROM's RPI-RP2 UF2 drive (uf2_drive in data/bootloaders.toml).
guide_has "skr pico" "mcuflash flash out/klipper.uf2 -d usb:2e8a:0003 --board btt-skr-pico-v1.0" \
  "Or through its RPI-RP2 drive (UF2): mcuflash flash out/klipper.uf2 -d dir:/media/\$USER/RPI-RP2 --board btt-skr-pico-v1.0" \
  "this is not verified"
echo "ok: RP2040 boards: PICOBOOT and the UF2 drive"

# SAM-BA: a SAM3X board mcuflash flashes; a SAME54 with a 16 KiB bootloader it does not know yet.
guide_has archim2 "Micro-controller Architecture: SAM3/SAM4/SAM E70" \
  "mcuflash flash out/klipper.bin -d /dev/serial/by-id/usb-... -p samba --board archim2" "bossac -U -p"
guide_has duet3-mini "Micro-controller Architecture: SAMC21/SAMD21/SAMD51/SAME5x" "Bootloader offset: 16KiB bootloader" \
  "double-tap the reset button" "but does not know the same54p20a" "bossac -U -p /dev/serial/by-id/usb-... --offset=0x4000"
echo "ok: SAM-BA boards"

# STM32F103: the ROM serial bootloader (mcuflash speaks it), an 8 KiB vendor bootloader, the HID one.
guide_has fysetc-cheetah-v1.2 "Bootloader offset: No bootloader" \
  "mcuflash flash out/klipper.bin -d /dev/serial/by-id/usb-... -p stm32-uart --board fysetc-cheetah-v1.2" \
  "stm32flash -w out/klipper.bin -v -S 0x08000000 -g 0x08000000"
guide_has monoprice-select-mini-v1 "Bootloader offset: 8KiB bootloader" "update.bin" "fcupdate.flg"
guide_has huvud-v0.61 "Bootloader offset: 2KiB bootloader" "mcuflash flash out/klipper.bin -d usb:1209:beba --board huvud-v0.61" \
  "lib/hidflash/hid-flash out/klipper.bin"
# A ROM DFU board: mcuflash names the device by its USB id.
guide_has btt-manta-m8p-v1.1 "Bootloader offset: 8KiB bootloader" \
  "mcuflash flash out/klipper.bin -d usb:0483:df11 --board btt-manta-m8p-v1.1" \
  "dfu-util -d 0483:df11 -a 0 -s 0x08002000:leave -D out/klipper.bin"
echo "ok: STM32 boards: serial ROM, SD, HID and DFU"

# A Katapult CAN toolhead: the offset comes from Katapult's size, the classic tool is flashtool.py.
guide_has btt-ebb-can-v1.2 "Processor model: STM32G0B1" \
  "Bootloader offset: 8KiB bootloader (the config does not say; katapult keeps the first 8 KiB)" \
  "-d /dev/serial/by-id/usb-... -p katapult" "flashtool.py -i can0 -u UUID -f out/klipper.bin" "application offset of 0x2000" \
  "double-tap reset"
echo "ok: a Katapult toolhead board"

# Names as people write them.
for name in "skr 1.4" "SKR v1.4" "btt skr 1.4" BTT-SKR-V1.4; do
  guide_has "$name" "BigTreeTech SKR V1.4 (btt-skr-v1.4)" "Bootloader offset: 16KiB bootloader"
done
echo "ok: 'skr 1.4', 'SKR v1.4', 'btt skr 1.4' all mean btt-skr-v1.4"

# Ambiguous and unknown names: exit 64, with the candidates or the nearest names.
expect_exit 64 "could be [0-9]+ boards" -- "$MCUFLASH" guide octopus
grep -q "btt-octopus-v1.1-f446" "$WORK/err" && grep -q "btt-octopus-pro-v1.1" "$WORK/err" || fail "ambiguous: $(cat "$WORK/err")"
expect_exit 64 "no board is called 'octopuss prro'" -- "$MCUFLASH" guide "octopuss prro"
grep -q "btt-octopus-pro" "$WORK/err" || fail "unknown: no nearest names: $(cat "$WORK/err")"
expect_exit 64 "no board is called" -- "$MCUFLASH" boards "zzz qqq"
echo "ok: ambiguous and unknown names exit 64 with the candidates or the nearest names"

# --json: the same, as fields.
"$MCUFLASH" guide btt-skr-v1.4 --json | python3 -c '
import json, sys
g = json.loads(sys.stdin.read().splitlines()[-1])
assert g["command"] == "guide" and g["board"]["id"] == "btt-skr-v1.4", g
assert g["offset"] == 0x4000 and g["offset_source"] == "config" and g["address"] == 0x4000, g
assert g["bootloader"]["name"] == "lpc176x_sd" and g["mcuflash"]["supported"] is True and "-d /dev/sdX1 --board btt-skr-v1.4" in g["mcuflash"]["command"], g
menu = {e["option"]: e["choice"] for e in g["menuconfig"]}
assert menu["Micro-controller Architecture"] == "LPC176x" and menu["Bootloader offset"] == "16KiB bootloader", menu
assert isinstance(g["steps"], list) and len(g["steps"]) >= 3 and all(isinstance(s, str) for s in g["steps"]), g["steps"]
' || fail "guide --json"
"$MCUFLASH" guide ramps-v1.3 --json | python3 -c '
import json, sys
g = json.loads(sys.stdin.read().splitlines()[-1])
assert g["mcuflash"]["supported"] is True and "--board ramps-v1.3" in g["mcuflash"]["command"], g["mcuflash"]
' || fail "guide --json (ramps)"
"$MCUFLASH" guide octopus --json >"$WORK/amb.json" && fail "an ambiguous guide --json succeeded"
python3 -c '
import json, sys
e = json.loads(open(sys.argv[1]).read().splitlines()[-1])
assert e["event"] == "error" and e["exit_code"] == 64 and "btt-octopus" in e["hint"], e
' "$WORK/amb.json" || fail "guide --json: the ambiguity error"
echo "ok: guide --json gives the steps and facts as fields"

# Every board has a guide.
"$MCUFLASH" boards --json | python3 -c '
import json, sys
for row in json.loads(sys.stdin.read().splitlines()[-1])["boards"]: print(row["id"])' >"$WORK/ids"
while read -r id; do
  "$MCUFLASH" guide "$id" >/dev/null 2>"$WORK/err" || fail "guide $id: $(cat "$WORK/err")"
done <"$WORK/ids"
echo "ok: every board has a guide"
