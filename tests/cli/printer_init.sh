#!/usr/bin/env bash
# `mcuflash printer init` on a printer.cfg with three MCUs: an SKR Pico on Klipper's own USB port
# (its by-id name says rp2040, which one board of data/boards.toml has), an EBB36 on CAN (a CAN node
# does not say its board), and a second mainboard on the Pi's UART at 115200 baud. The manifest it
# writes is read back by `printer build`'s reader (no Klipper tree here: refused as such), each
# .config holds the board's symbols, a second init is refused unless --force, --board names the
# rest, and a wrong --board is refused.
source "$(dirname "$0")/../lib/common.sh"

mkdir -p "$WORK/printer"
cat >"$WORK/printer/printer.cfg" <<'CFG'
[mcu]
serial: /dev/serial/by-id/usb-Klipper_rp2040_E66138935F2B8A25-if00

[mcu ebb]
canbus_uuid: 0e0d81e4210c

[include extra.cfg]
CFG
cat >"$WORK/printer/extra.cfg" <<'CFG'
[mcu second]
serial: /dev/ttyAMA0
baud: 115200
restart_method: command
CFG
cfg="$WORK/printer/printer.cfg"
manifest="$WORK/printer/mcuflash.toml"

"$MCUFLASH" printer init --config "$cfg" --klipper "$WORK/klipper" --json >"$WORK/init.json" 2>"$WORK/init.err" ||
  fail "printer init: $(cat "$WORK/init.err" "$WORK/init.json")"
[ -f "$manifest" ] || fail "no manifest beside printer.cfg"
[ -f "$WORK/printer/mcuflash/mcu.config" ] || fail "no .config for [mcu]: $(ls -R "$WORK/printer")"
[ ! -e "$WORK/printer/mcuflash/ebb.config" ] || fail "a .config was written for the CAN node of no known board"
python3 - "$WORK/init.json" "$manifest" <<'PY' || fail "init JSON: $(cat "$WORK/init.json")"
import json, sys, tomllib
r = json.loads(open(sys.argv[1]).read().splitlines()[-1])
assert r["command"] == "printer init", r
m = {x["name"]: x for x in r["mcus"]}
assert list(m) == ["mcu", "ebb", "second"], list(m)
assert m["mcu"]["board"] == "btt-skr-pico-v1.0", m["mcu"]
assert m["mcu"]["interface"] == "USB", m["mcu"]
assert m["mcu"]["kconfig"].endswith("/mcuflash/mcu.config"), m["mcu"]
assert m["mcu"]["image"].endswith("/mcuflash/mcu/klipper.uf2"), m["mcu"]
assert "only the" in m["mcu"]["reason"], m["mcu"]
assert m["ebb"]["board"] == "" and m["ebb"]["kconfig"] == "", m["ebb"]
assert "--board ebb=BOARD" in m["ebb"]["reason"], m["ebb"]
assert m["ebb"]["device"] == "can:can0:0e0d81e4210c", m["ebb"]
assert m["second"]["board"] == "" and "ttyAMA0" in m["second"]["reason"], m["second"]
t = tomllib.load(open(sys.argv[2], "rb"))
assert t["mcu"]["mcu"]["board"] == "btt-skr-pico-v1.0", t
assert t["mcu"]["mcu"]["kconfig"] == "mcuflash/mcu.config", t
assert t["mcu"]["mcu"]["image"] == "mcuflash/mcu/klipper.uf2", t
assert t["mcu"]["ebb"]["board"] == "", t
assert t["printer"]["config"] == "printer.cfg", t
PY
grep -q "^# \[mcu ebb\] at can:can0:0e0d81e4210c: a CAN node does not say" "$manifest" ||
  fail "the manifest does not say why ebb has no board: $(cat "$manifest")"
for line in CONFIG_MACH_RPXXXX=y CONFIG_MACH_RP2040=y CONFIG_RPXXXX_FLASH_START_0100=y CONFIG_RPXXXX_USB=y; do
  grep -qx "$line" "$WORK/printer/mcuflash/mcu.config" || fail "mcu.config lacks $line: $(cat "$WORK/printer/mcuflash/mcu.config")"
done
echo "ok: init decided the SKR Pico from its port, left the CAN node and the UART MCU to --board"

# A second init refuses to overwrite, naming the file; nothing changes.
before=$(md5sum "$manifest")
expect_exit 65 "mcuflash.toml exists already.*--force|--force" -- "$MCUFLASH" printer init --config "$cfg"
grep -q "mcuflash.toml exists" "$WORK/err" || fail "the refusal does not name the manifest: $(cat "$WORK/err")"
[ "$before" = "$(md5sum "$manifest")" ] || fail "a refused init changed the manifest"
# ... and a .config in the way is refused too, with a manifest elsewhere.
expect_exit 65 "mcu.config exists already" -- "$MCUFLASH" printer init --config "$cfg" --manifest "$WORK/printer/other.toml"
[ ! -e "$WORK/printer/other.toml" ] || fail "a refused init wrote the other manifest"

# --board for the other two: the EBB on CAN takes its CAN pins (PB0/PB1) and Katapult's 8 KiB; the
# second board on the Pi's UART takes serial at printer.cfg's baud.
"$MCUFLASH" printer init --config "$cfg" --klipper "$WORK/klipper" --board ebb=btt-ebb-can-v1.1 \
  --board "second=SKR Mini E3 V2.0" --can-bitrate 500000 --force >"$WORK/init2.out" 2>"$WORK/init2.err" ||
  fail "init --board --force: $(cat "$WORK/init2.err")"
grep -q "Next: review each .config with make" "$WORK/init2.out" || fail "no next step: $(cat "$WORK/init2.out")"
ebb="$WORK/printer/mcuflash/ebb.config"
for line in CONFIG_MACH_STM32G0B1=y CONFIG_STM32_FLASH_START_2000=y CONFIG_STM32_MMENU_CANBUS_PB0_PB1=y \
  CONFIG_CANBUS_FREQUENCY=500000 CONFIG_STM32_CLOCK_REF_8M=y; do
  grep -qx "$line" "$ebb" || fail "ebb.config lacks $line: $(cat "$ebb")"
done
second="$WORK/printer/mcuflash/second.config"
for line in CONFIG_MACH_STM32F103=y CONFIG_STM32_FLASH_START_7000=y CONFIG_STM32_SERIAL_USART1=y CONFIG_SERIAL_BAUD=115200; do
  grep -qx "$line" "$second" || fail "second.config lacks $line: $(cat "$second")"
done
grep -q "USB" "$second" && grep -q "^CONFIG_STM32_USB" "$second" && fail "second.config chose USB as well: $(cat "$second")"
grep -q "^# mcuflash: the board names no serial pins" "$second" || fail "second.config does not say the pins were not stated"
python3 - "$manifest" <<'PY' || fail "the manifest after --board: $(cat "$manifest")"
import sys, tomllib
t = tomllib.load(open(sys.argv[1], "rb"))
assert t["mcu"]["ebb"]["board"] == "btt-ebb-can-v1.1", t
assert t["mcu"]["ebb"]["kconfig"] == "mcuflash/ebb.config", t
assert t["mcu"]["second"]["board"] == "btt-skr-mini-e3-v2.0", t
assert "image" not in t["mcu"]["second"], t  # klipper.bin: the default
PY
echo "ok: --board gave the CAN toolhead CAN on PB0/PB1 behind Katapult and the UART MCU USART1 at 115200"

# The manifest is what `printer build` reads: with no Klipper checkout there, it says so.
expect_exit 69 "no Klipper checkout at .*/klipper" -- "$MCUFLASH" printer build --manifest "$manifest"

# Refusals: an MCU printer.cfg does not have, a board that does not exist, a malformed --board, and
# a bridge for a board that cannot be one (the F103 has no USB to CAN bridge in Klipper) is said in
# the MCU's comment instead of a .config.
expect_exit 64 "printer.cfg has no MCU 'toolhead'" -- "$MCUFLASH" printer init --config "$cfg" --board toolhead=btt-ebb-can-v1.1 --force
expect_exit 64 "no board is called" -- "$MCUFLASH" printer init --config "$cfg" --board "ebb=no such board" --force
expect_exit 64 "MCU=BOARD" -- "$MCUFLASH" printer init --config "$cfg" --board ebb --force
"$MCUFLASH" printer init --config "$cfg" --board "second=btt-skr-mini-e3-v2.0" --force --json >"$WORK/init3.json" 2>/dev/null ||
  fail "init with the F103 on the UART"
"$MCUFLASH" printer init --config "$cfg" --board ebb=btt-skr-mini-e3-v2.0 --bridge ebb --force --json >"$WORK/init4.json" 2>"$WORK/init4.err" ||
  fail "init with an impossible bridge: $(cat "$WORK/init4.err")"
python3 - "$WORK/init4.json" <<'PY' || fail "the impossible bridge: $(cat "$WORK/init4.json")"
import json, sys
r = json.loads(open(sys.argv[1]).read().splitlines()[-1])
ebb = [m for m in r["mcus"] if m["name"] == "ebb"][0]
assert ebb["kconfig"] == "" and "cannot be a USB to CAN bridge" in ebb["kconfig_problem"], ebb
PY
echo "ok: refusals"
