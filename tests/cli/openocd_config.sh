#!/usr/bin/env bash
# `mcuflash openocd config` writes the OpenOCD configuration of Klipper's SWD steps from the chip's
# data: the Pi's GPIO (linuxgpiod, SWCLK 25, SWDIO 24, nRST 18) or a CMSIS-DAP probe, the target
# script, and the install (erase all, BOOTPROT 0, program at the flash base, BOOTPROT back to the
# bootloader's size) or program steps. Real OpenOCD (when installed) reads every generated file up to
# the adapter, which is absent here: no command in it is unknown to OpenOCD 0.12. Bad requests are
# refused with exit 64, never a config that would write the bootloader region by accident.
source "$(dirname "$0")/../lib/common.sh"
cd "$WORK"

# SAMC21 without a bootloader (Duet 3 1LC): the seed's three steps, an ELF given no address.
"$MCUFLASH" openocd config --board duet3-1lc --program klipper.elf -o 1lc.cfg >/dev/null
grep -q '^adapter driver linuxgpiod$' 1lc.cfg || fail "no linuxgpiod driver: $(cat 1lc.cfg)"
grep -q '^adapter gpio swclk 25 -chip 0$' 1lc.cfg && grep -q '^adapter gpio swdio 24 -chip 0$' 1lc.cfg \
  && grep -q '^adapter gpio srst 18 -chip 0$' 1lc.cfg || fail "not the seed's pins: $(cat 1lc.cfg)"
grep -q '^source \[find target/at91samdXX.cfg\]$' 1lc.cfg || fail "not the SAMD target script"
steps=$(sed -n '/^reset halt$/,$p' 1lc.cfg | tr '\n' ';')
[ "$steps" = "reset halt;at91samd chip-erase;at91samd bootloader 0;program $WORK/klipper.elf verify;reset run;shutdown;" ] \
  || fail "SAMC21 steps: $steps"

# SAMD51 bootloader install through a CMSIS-DAP probe: OpenOCD's atsame5 driver, protected again at 16 KiB.
"$MCUFLASH" openocd config --chip samd51j19a --bootloader adafruit_samd51 --install boot.bin --interface cmsis-dap \
  --probe 0d28:0204 -o m4.cfg >/dev/null
grep -q '^cmsis_dap_vid_pid 0x0d28 0x0204$' m4.cfg || fail "no probe id: $(cat m4.cfg)"
steps=$(sed -n '/^reset halt$/,$p' m4.cfg | tr '\n' ';')
[ "$steps" = "reset halt;atsame5 chip-erase;atsame5 bootloader 0;program $WORK/boot.bin 0x00000000 verify;atsame5 bootloader 16384;reset run;shutdown;" ] \
  || fail "SAMD51 install steps: $steps"

# STM32F103 HID bootloader install with a backup first, no working area (as the simulators need).
"$MCUFLASH" openocd config --chip stm32f103xb --bootloader hid_stm32 --backup backup.bin --install hid.bin \
  --interface cmsis-dap --no-work-area -o f1.cfg >/dev/null
steps=$(sed -n '/^reset halt$/,$p' f1.cfg | tr '\n' ';')
[ "$steps" = "reset halt;flash read_bank 0 $WORK/backup.bin;stm32f1x mass_erase 0;program $WORK/hid.bin 0x08000000 verify;reset run;shutdown;" ] \
  || fail "F103 install steps: $steps"
grep -q '^set WORKAREASIZE 0$' f1.cfg || fail "--no-work-area did not set WORKAREASIZE 0"
# --program after the 2 KiB HID bootloader goes to 0x08000800; JSON carries the steps.
"$MCUFLASH" --json openocd config --chip stm32f103xb --bootloader hid_stm32 --program app.bin >f1.json
python3 - "$WORK" <<'PY' || fail "JSON: $(cat f1.json)"
import json, sys
j = json.load(open("f1.json"))
assert j["steps"] == [f"program {sys.argv[1]}/app.bin 0x08000800 verify"], j["steps"]
assert "source [find target/stm32f1x.cfg]" in j["config"]
PY

# Refused: an address inside the bootloader, --install with no bootloader known, a chip without
# SWD facts, bad pins, an unknown interface.
expect_exit 64 "inside the hid_stm32 bootloader" -- "$MCUFLASH" openocd config --chip stm32f103xb --bootloader hid_stm32 --program app.bin --address 0x08000000
expect_exit 64 "past the end of the stm32f103xb.s flash" -- "$MCUFLASH" openocd config --chip stm32f103xb --bootloader hid_stm32 --program app.bin --address 0x7FFFFFFF
expect_exit 64 "--address" -- "$MCUFLASH" openocd config --chip stm32f103xb --bootloader hid_stm32 --program app.bin --address zz
expect_exit 64 "needs the bootloader" -- "$MCUFLASH" openocd config --board duet3-1lc --install boot.bin
expect_exit 64 "no SWD facts" -- "$MCUFLASH" openocd config --chip atmega2560
expect_exit 64 "needs swclk= and swdio=" -- "$MCUFLASH" openocd config --board duet3-1lc --pins swclk=25
expect_exit 64 "neither pi-gpio nor cmsis-dap" -- "$MCUFLASH" openocd config --board duet3-1lc --interface jlink

# Real OpenOCD reads each file up to the adapter (none here): no unknown command or syntax error.
if command -v openocd >/dev/null; then
  for cfg in 1lc.cfg m4.cfg f1.cfg; do
    timeout 20 openocd -f "$cfg" >"$cfg.log" 2>&1 && fail "openocd found an adapter for $cfg?"
    grep -q -E "Cannot open LinuxGPIOD|unable to find a matching CMSIS-DAP device" "$cfg.log" \
      || fail "openocd did not get as far as the adapter with $cfg: $(tail -5 "$cfg.log")"
    grep -q -i "invalid command" "$cfg.log" && fail "openocd does not know a command of $cfg: $(cat "$cfg.log")"
  done
  echo "ok: OpenOCD 0.12 reads the generated configurations up to the (absent) adapter"
fi
echo "ok: openocd config writes the seed's SWD steps for SAMC21, SAMD51 and STM32F103 and refuses unsafe requests"
