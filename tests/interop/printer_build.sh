#!/usr/bin/env bash
# `mcuflash printer init` + `printer build` against Klipper's real sources: a copy of
# ../shared/peers/klipper, a printer.cfg of three MCUs on boards of three families (an STM32F103 behind
# a 28 KiB bootloader on USB, an ATmega2560 behind its USB-serial chip, an RP2040 on the Pi's UART),
# the .config files init writes completed by Klipper's own `make olddefconfig` and built by its make,
# two at a time. Each image is checked (size, the identify data's version and MCU, the completed
# .config's CONFIG_MCU and CONFIG_FLASH_APPLICATION_ADDRESS), then two go on their boards' simulated
# bootloaders (the RP2040's boot ROM, the Mega's stk500v2) with `mcuflash flash`. Last, a .config
# changed to another offset is refused (65) and a failing make is 74 with its log's end.
source "$(dirname "$0")/../lib/common.sh"
source "$(dirname "$0")/../lib/klipper_build.sh"
need_klipper_builds
command -v make >/dev/null || skip "make missing"

# Klipper's tree, copied under the build folder (make writes nothing in it but OUT, which is ours).
tree="$BUILD_DIR/printer-build-klipper"
rm -rf "$tree" && cp -r "$KLIPPER_PEERS" "$tree"

mkdir -p "$WORK/printer"
cat >"$WORK/printer/printer.cfg" <<'CFG'
[mcu]
serial: /dev/serial/by-id/usb-Klipper_stm32f103xe_32FFD6054246303848760843-if00

[mcu rambo]
serial: /dev/serial/by-id/usb-UltiMachine__ultimachine.com__RAMBo_64037323331351A0C130-if00

[mcu pico]
serial: /dev/ttyAMA0
baud: 250000
CFG
manifest="$WORK/printer/mcuflash.toml"
out="$WORK/printer/mcuflash"
"$MCUFLASH" printer init --config "$WORK/printer/printer.cfg" --klipper "$tree" \
  --board mcu=btt-skr-mini-e3-v2.0 --board rambo=einsy-rambo --board pico=btt-skr-pico-v1.0 >"$WORK/init.out" 2>&1 ||
  fail "printer init: $(cat "$WORK/init.out")"

start=$(date +%s.%N)
"$MCUFLASH" printer build --manifest "$manifest" --jobs 2 --json >"$WORK/build.json" 2>"$WORK/build.err" ||
  fail "printer build: $(cat "$WORK/build.err" "$WORK/build.json")"
took=$(python3 -c "import sys; print(f'{float(sys.argv[2]) - float(sys.argv[1]):.1f}')" "$start" "$(date +%s.%N)")

python3 - "$WORK/build.json" "$out" <<'PY' || fail "the build's result: $(cat "$WORK/build.json")"
import json, os, re, sys
r = json.loads(open(sys.argv[1]).read().splitlines()[-1])
out = sys.argv[2]
m = {x["name"]: x for x in r["mcus"]}
assert sorted(m) == ["mcu", "pico", "rambo"], list(m)
want = {  # image, CONFIG_MCU, CONFIG_FLASH_APPLICATION_ADDRESS (absent on AVR)
    "mcu": ("klipper.bin", "stm32f103xe", 0x8007000),
    "rambo": ("klipper.elf.hex", "atmega2560", None),
    "pico": ("klipper.uf2", "rp2040", 0x10000100),
}
for name, (image, mcu, address) in want.items():
    x = m[name]
    assert x["status"] == "ok", x
    assert x["image"] == os.path.join(out, name, image), x
    assert os.path.getsize(x["image"]) == x["size"] > 0, x
    assert re.match(r"v?\d|\?", x["version"]) or x["version"], x
    # The completed .config, read here on its own (not through mcuflash).
    config = dict(l.split("=", 1) for l in open(os.path.join(out, name, ".config")).read().splitlines()
                  if l.startswith("CONFIG_"))
    assert config["CONFIG_MCU"] == '"%s"' % mcu, (name, config["CONFIG_MCU"])
    if address is None:
        assert "CONFIG_FLASH_APPLICATION_ADDRESS" not in config, (name, config.get("CONFIG_FLASH_APPLICATION_ADDRESS"))
    else:
        assert int(config["CONFIG_FLASH_APPLICATION_ADDRESS"], 16) == address, (name, config["CONFIG_FLASH_APPLICATION_ADDRESS"])
        assert x["application_address"] == address, x
    assert x["config_mcu"] == mcu, x
    # The build's own dictionary says the same version and MCU.
    d = json.load(open(os.path.join(out, name, "klipper.dict")))
    assert d["version"] == x["version"], (d["version"], x["version"])
    assert d["config"]["MCU"] == mcu, d["config"]["MCU"]
    assert os.path.getsize(os.path.join(out, name, "build.log")) > 0
# The interfaces init chose, as the built .configs have them.
cfg = lambda n: open(os.path.join(out, n, ".config")).read()
assert "CONFIG_STM32_USB_PA11_PA12=y" in cfg("mcu")
assert "CONFIG_AVR_SERIAL_UART0=y" in cfg("rambo")
assert "CONFIG_RPXXXX_SERIAL_UART0_PINS_0_1=y" in cfg("pico") and "CONFIG_SERIAL_BAUD=250000" in cfg("pico")
print("; ".join(f"{n}: {m[n]['size']} bytes, {m[n]['version']}, {m[n]['seconds']:.1f} s" for n in sorted(m)))
PY
echo "ok: printer build made and checked 3 images in ${took} s (2 at a time)"

# The images go on their boards' simulated bootloaders.
"$MCUFLASH" flash "$out/pico/klipper.uf2" -d sim:picoboot --sim-fast >"$WORK/pico.out" 2>&1 ||
  fail "flashing the RP2040 build: $(cat "$WORK/pico.out")"
start_sim mega stk500v2 --chip atmega2560 --no-timing --flash-file "$WORK/mega.bin"
"$MCUFLASH" flash "$out/rambo/klipper.elf.hex" -d "$WORK/mega" --board einsy-rambo >"$WORK/rambo.out" 2>&1 ||
  fail "flashing the ATmega2560 build: $(cat "$WORK/rambo.out")"
stop_background
python3 - "$WORK/mega.bin" "$out/rambo/klipper.elf.hex" <<'PY' || fail "the simulated Mega does not hold the build"
import sys
flash = open(sys.argv[1], "rb").read()
data, upper = {}, 0
for line in open(sys.argv[2]):
    b = bytes.fromhex(line.strip()[1:])
    n, addr, kind = b[0], (b[1] << 8) | b[2], b[3]
    if kind == 0:
        for i in range(n): data[upper + addr + i] = b[4 + i]
    elif kind == 2: upper = ((b[4] << 8) | b[5]) << 4
    elif kind == 4: upper = ((b[4] << 8) | b[5]) << 16
assert data and all(flash[a] == v for a, v in data.items()), "flash differs"
print(f"the Mega's flash holds the build's {len(data)} bytes")
PY
echo "ok: the RP2040 and ATmega2560 builds went on their simulated bootloaders"

# A .config changed to another bootloader offset (8 KiB instead of the board's 28 KiB) is built, then
# refused before anything could be flashed.
sed -i 's/^CONFIG_STM32_FLASH_START_7000=y/CONFIG_STM32_FLASH_START_2000=y/' "$out/mcu.config"
expect_exit 65 "linked to start at 0x08002000" -- "$MCUFLASH" printer build --manifest "$manifest" --only mcu
grep -q "do not fit their boards" "$WORK/err" || fail "the refusal: $(cat "$WORK/err")"
echo "ok: an image linked for another offset is refused (65)"

# A make that fails: 74, the end of its log shown, the log kept.
mkdir -p "$WORK/broken/src"
printf 'olddefconfig:\n\t@echo completing\nall:\n\t@echo "src/stepper.c:1: error: this build breaks"; false\n.DEFAULT_GOAL := all\n' >"$WORK/broken/Makefile"
touch "$WORK/broken/src/Kconfig"
expect_exit 74 "firmware build.? failed" -- "$MCUFLASH" printer build --manifest "$manifest" --klipper "$WORK/broken" --only pico
grep -q "this build breaks" "$WORK/err" || fail "the log's end is not shown: $(cat "$WORK/err")"
grep -q "this build breaks" "$out/pico/build.log" || fail "the log was not kept"
echo "ok: a failing make is 74 with its log's end"
rm -rf "$tree"
