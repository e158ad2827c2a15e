#!/usr/bin/env bash
# `mcuflash-sim printer` with two UART MCUs on ptys, as printer.cfg places them: an STM32F103 board
# with Katapult under Klipper ([mcu]) and an ATmega2560 board with its stk500v2 bootloader ([mcu avr]),
# each running a real Klipper build (--firmware; two builds, so two versions). Checked: the ready
# lines, the flash files holding each build at the board's application start, `mcuflash printer
# status` reading both versions from the simulated MCUs, an update of [mcu] with another build
# (`mcuflash flash -d` its UART: Klipper's serial request, Katapult on the same port, flashed and
# verified), after which status shows the new version and the flash file holds the new build. Also:
# bad input is refused naming the MCU.
source "$(dirname "$0")/../lib/common.sh"
source "$(dirname "$0")/../lib/klipper_build.sh"
need_klipper_builds
klipper_build f103-8k 'CONFIG_LOW_LEVEL_OPTIONS=y\nCONFIG_MACH_STM32=y\nCONFIG_MACH_STM32F103=y\nCONFIG_STM32_FLASH_START_2000=y\n'
klipper_build f103-8k-update 'CONFIG_LOW_LEVEL_OPTIONS=y\nCONFIG_MACH_STM32=y\nCONFIG_MACH_STM32F103=y\nCONFIG_STM32_FLASH_START_2000=y\nCONFIG_SERIAL_BAUD=250000\n'
klipper_build mega2560 'CONFIG_LOW_LEVEL_OPTIONS=y\nCONFIG_MACH_AVR=y\nCONFIG_MACH_atmega2560=y\n'
version_of() { python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["version"])' "$KLIPPER_CACHE/$1/out/klipper.dict"; }
stm32_version=$(version_of f103-8k)
update_version=$(version_of f103-8k-update)
avr_version=$(version_of mega2560)
[ "$stm32_version" != "$update_version" ] || fail "the two F103 builds have one version ($stm32_version)"

cat >"$WORK/printer.cfg" <<CFG
[mcu]
serial: $WORK/ttyAMA0
baud: 250000

[mcu avr]   # a second board on another UART
serial: $WORK/ttyS1
CFG
cat >"$WORK/mcuflash.toml" <<TOML
[printer]
config = "printer.cfg"

[mcu.mcu]
board = "creality-v4.2.10"
bootloader = "katapult"

[mcu.avr]
board = "mks-gen-l"
TOML

# Bad input first: each refusal names the MCU.
cp "$WORK/mcuflash.toml" "$WORK/good.toml"
sed -i 's/board = "mks-gen-l"/kconfig = "avr.config"/' "$WORK/mcuflash.toml"
expect_exit 65 "mcu 'avr'.*no board" -- "$MCUFLASH_SIM" printer --config "$WORK/printer.cfg" --no-timing
sed -i 's/kconfig = "avr.config"/board = "mks-gen-l"\nbootloader = "st_rom_dfu"/' "$WORK/mcuflash.toml"
expect_exit 65 "mcu 'avr' is on a UART .* st_rom_dfu \\(dfu\\) has no simulator" -- \
  "$MCUFLASH_SIM" printer --config "$WORK/printer.cfg" --no-timing
cp "$WORK/good.toml" "$WORK/mcuflash.toml"
expect_exit 64 "--firmware ebb=.*no \\[mcu ebb\\]" -- \
  "$MCUFLASH_SIM" printer --config "$WORK/printer.cfg" --firmware "ebb=$WORK/x.bin" --no-timing
expect_exit 65 "mcu 'mcu'.*not.*Klipper|mcu 'mcu'.*no.*dictionary|data dictionary" -- \
  "$MCUFLASH_SIM" printer --config "$WORK/printer.cfg" --firmware "mcu=$WORK/printer.cfg" --no-timing
# Two boards on USB need a USB/IP server each: --usbip PORT gives their ports.
printf '[mcu]\nserial: /dev/serial/by-id/usb-Klipper_stm32f446xx_A1-if00\n[mcu two]\nserial: /dev/serial/by-id/usb-Klipper_stm32f446xx_B2-if00\n' >"$WORK/usb.cfg"
printf '[mcu.mcu]\nboard = "ldo-leviathan-v1.2"\n[mcu.two]\nboard = "ldo-leviathan-v1.2"\n' >"$WORK/usb.toml"
expect_exit 64 "2 USB devices \\(mcu, two\\): give --usbip PORT" -- \
  "$MCUFLASH_SIM" printer --config "$WORK/usb.cfg" --manifest "$WORK/usb.toml" --no-timing
echo "ok: an MCU without a board, a bootloader without a UART simulator, --firmware for no MCU, a non-Klipper build and two USB boards without --usbip are refused"

"$MCUFLASH_SIM" printer --config "$WORK/printer.cfg" --firmware "mcu=$KLIPPER_CACHE/f103-8k/out/klipper.bin" \
  --firmware "avr=$KLIPPER_CACHE/mega2560/out/klipper.elf.hex" >"$WORK/ready.txt" 2>"$WORK/sim.log" &
BACKGROUND_PIDS+=($!)
for ((i = 0; i < 200; i++)); do grep -q "^printer ready" "$WORK/ready.txt" && break; sleep 0.05; done
grep -q "^printer ready: 2 MCUs" "$WORK/ready.txt" || fail "the printer did not get ready: $(cat "$WORK/ready.txt" "$WORK/sim.log")"
grep -qx "ready mcu pty $WORK/ttyAMA0 -> katapult" "$WORK/ready.txt" || fail "ready lines: $(cat "$WORK/ready.txt")"
grep -qx "ready avr pty $WORK/ttyS1 -> stk500boot_v2" "$WORK/ready.txt" || fail "ready lines: $(cat "$WORK/ready.txt")"
# The flash files hold each build where the board's application starts: 0x08002000 after Katapult on
# the F103 (8 KiB), 0 on the ATmega2560.
cmp -i 0:8192 -n "$(stat -c %s "$KLIPPER_CACHE/f103-8k/out/klipper.bin")" "$KLIPPER_CACHE/f103-8k/out/klipper.bin" \
  "$WORK/sim-flash/mcu.bin" || fail "sim-flash/mcu.bin does not hold the F103 build at 0x2000"
python3 - "$KLIPPER_CACHE/mega2560/out/klipper.elf.hex" "$WORK/sim-flash/avr.bin" <<'PY' || fail "sim-flash/avr.bin does not hold the AVR build"
import sys
flash = open(sys.argv[2], "rb").read()
upper = 0
for line in open(sys.argv[1]):
    b = bytes.fromhex(line.strip()[1:])
    n, addr, kind, data = b[0], (b[1] << 8) | b[2], b[3], b[4:4 + b[0]]
    if kind == 4: upper = int.from_bytes(data, "big") << 16
    if kind == 0: assert flash[upper + addr:upper + addr + n] == data, hex(upper + addr)
PY
echo "ok: two UART MCUs ready on their ptys, each flash file holding its build at the application start"

t0=$(date +%s%N)
"$MCUFLASH" printer status --config "$WORK/printer.cfg" --json >"$WORK/status.json" 2>"$WORK/status.err" ||
  fail "printer status failed: $(cat "$WORK/status.err" "$WORK/status.json")"
status_ms=$(( ($(date +%s%N) - t0) / 1000000 ))
check_status() {
  python3 - "$WORK/status.json" "$1" "$2" <<'PY'
import json, sys
lines = [json.loads(l) for l in open(sys.argv[1]) if l.startswith("{")]
text = json.dumps(lines)
for want in sys.argv[2:]:
    assert want in text, (want, text)
PY
}
check_status "$stm32_version" "$avr_version" || fail "status did not show both versions: $(cat "$WORK/status.json")"
echo "ok: mcuflash printer status read both MCUs' versions ($stm32_version, $avr_version) in $status_ms ms"

"$MCUFLASH" flash "$KLIPPER_CACHE/f103-8k-update/out/klipper.bin" -d "$WORK/ttyAMA0" -p katapult --klipper-config none \
  >"$WORK/flash.out" 2>&1 || fail "flashing [mcu] failed: $(cat "$WORK/flash.out") $(tail -20 "$WORK/sim.log")"
grep -q "verified" "$WORK/flash.out" || fail "the update was not verified: $(cat "$WORK/flash.out")"
for ((i = 0; i < 100; i++)); do [ -e "$WORK/ttyAMA0" ] && grep -qF "Klipper $update_version running" "$WORK/sim.log" && break; sleep 0.05; done
"$MCUFLASH" printer status --config "$WORK/printer.cfg" --json >"$WORK/status.json" 2>"$WORK/status.err" ||
  fail "printer status after the update failed: $(cat "$WORK/status.err" "$WORK/status.json") $(tail -20 "$WORK/sim.log")"
check_status "$update_version" "$avr_version" || fail "status after the update: $(cat "$WORK/status.json")"
cmp -i 0:8192 -n "$(stat -c %s "$KLIPPER_CACHE/f103-8k-update/out/klipper.bin")" \
  "$KLIPPER_CACHE/f103-8k-update/out/klipper.bin" "$WORK/sim-flash/mcu.bin" || fail "sim-flash/mcu.bin does not hold the update"
echo "ok: [mcu] updated over its UART through Katapult; status shows $update_version, its flash file holds the update"

kill -TERM "${BACKGROUND_PIDS[0]}"
wait "${BACKGROUND_PIDS[0]}" || fail "the printer did not stop cleanly on SIGTERM: $(tail -5 "$WORK/sim.log")"
BACKGROUND_PIDS=()
[ -e "$WORK/ttyAMA0" ] && fail "the MCUs' ports outlived the printer"
echo "ok: SIGTERM stops every MCU"
