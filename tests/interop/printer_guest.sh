#!/usr/bin/env bash
# The 3-MCU printer of issue 17 through a real Linux kernel: `mcuflash-sim printer` runs inside the
# QEMU guest (guest-run.sh) from printer.cfg and mcuflash.toml:
#  - [mcu]: the mainboard (an LDO Leviathan, STM32F446, ST's ROM DFU bootloader), which is also the
#    USB-to-CAN bridge (canbus_uuid; the manifest's can_bridge = true): served over USB/IP on the
#    guest's 127.0.0.1, `usbip attach` plugs it in, the kernel's gs_usb makes it can0;
#  - [mcu ebb]: a CAN toolhead behind the bridge (STM32F103 with Katapult), running Klipper;
#  - [mcu avr]: an ATmega2560 board on a UART (a pty in the guest).
# Each runs a real Klipper build (three builds, three versions). In the guest: attach, can0 up at
# 1 Mbit/s, then `mcuflash printer status --config printer.cfg --json` must show all three MCUs with
# their versions; the flash files hold each build at its application start. Then `mcuflash printer
# flash` updates the toolhead, then the bridge, and leaves the AVR (already on its image) alone; run
# again, it leaves every MCU alone. The board re-enumerating after a reboot is played by
# a loop in the guest that plugs the simulator in again whenever nothing is attached.
# Skipped (77) without guest-run.sh, usbip, QEMU or the Klipper builds.
source "$(dirname "$0")/../lib/common.sh"
source "$(dirname "$0")/../lib/guest.sh"
source "$(dirname "$0")/../lib/klipper_build.sh"
use_guest usbip
need_klipper_builds
klipper_build f446-32k 'CONFIG_LOW_LEVEL_OPTIONS=y\nCONFIG_MACH_STM32=y\nCONFIG_MACH_STM32F446=y\nCONFIG_STM32_FLASH_START_8000=y\n'
klipper_build f103-8k 'CONFIG_LOW_LEVEL_OPTIONS=y\nCONFIG_MACH_STM32=y\nCONFIG_MACH_STM32F103=y\nCONFIG_STM32_FLASH_START_2000=y\n'
klipper_build mega2560 'CONFIG_LOW_LEVEL_OPTIONS=y\nCONFIG_MACH_AVR=y\nCONFIG_MACH_atmega2560=y\n'
# The updates `printer flash` puts on: new builds for the mainboard and the toolhead (the AVR's is
# the one it runs already, so it is left alone).
klipper_build f446-32k-update 'CONFIG_LOW_LEVEL_OPTIONS=y\nCONFIG_MACH_STM32=y\nCONFIG_MACH_STM32F446=y\nCONFIG_STM32_FLASH_START_8000=y\nCONFIG_SERIAL_BAUD=250000\n'
klipper_build f103-8k-update 'CONFIG_LOW_LEVEL_OPTIONS=y\nCONFIG_MACH_STM32=y\nCONFIG_MACH_STM32F103=y\nCONFIG_STM32_FLASH_START_2000=y\nCONFIG_SERIAL_BAUD=250000\n'
version_of() { python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["version"])' "$KLIPPER_CACHE/$1/out/klipper.dict"; }
main_version=$(version_of f446-32k)
ebb_version=$(version_of f103-8k)
avr_version=$(version_of mega2560)
main_update=$(version_of f446-32k-update)
ebb_update=$(version_of f103-8k-update)

make_guest_dir printer-guest
cp "$MCUFLASH_SIM" "$GUEST_DIR/mcuflash-sim"
cp "$KLIPPER_CACHE/f446-32k/out/klipper.bin" "$GUEST_DIR/main.bin"
cp "$KLIPPER_CACHE/f103-8k/out/klipper.bin" "$GUEST_DIR/ebb.bin"
cp "$KLIPPER_CACHE/mega2560/out/klipper.elf.hex" "$GUEST_DIR/avr.hex"
cp "$KLIPPER_CACHE/f446-32k-update/out/klipper.bin" "$GUEST_DIR/main-update.bin"
cp "$KLIPPER_CACHE/f103-8k-update/out/klipper.bin" "$GUEST_DIR/ebb-update.bin"
# Each MCU's Klipper .config, as the manifest keeps them: what printer flash checks the images against.
cp "$KLIPPER_CACHE/f446-32k-update/.config" "$GUEST_DIR/mcu.config"
cp "$KLIPPER_CACHE/f103-8k-update/.config" "$GUEST_DIR/ebb.config"
cp "$KLIPPER_CACHE/mega2560/.config" "$GUEST_DIR/avr.config"

# The bridge's UUID is what Klipper derives from its chip id, which is also its USB serial number:
# mcuflash finds the bridge board by that. The simulated bridge on an STM32F446 says it.
start_usbip_sim "$WORK/bridge-uuid.log" gs-usb --chip stm32f446xe --no-timing
BRIDGE_UUID=$(grep -o 'CAN uuid [0-9a-f]*' "$WORK/bridge-uuid.log" | head -1 | cut -d' ' -f3)
stop_background
[ -n "$BRIDGE_UUID" ] || fail "the simulated bridge did not name its UUID: $(cat "$WORK/bridge-uuid.log")"
EBB_UUID=0e0d81e4210c
PORT=3240

cat >"$GUEST_DIR/printer.cfg" <<CFG
[mcu]
canbus_uuid: $BRIDGE_UUID

[mcu ebb]
canbus_uuid: $EBB_UUID

[mcu avr]
serial: $GUEST_DIR/ttyS1
baud: 250000
CFG
cat >"$GUEST_DIR/mcuflash.toml" <<TOML
[printer]
config = "printer.cfg"

[mcu.mcu]
board = "ldo-leviathan-v1.2"
can_bridge = true
kconfig = "mcu.config"
image = "main-update.bin"

[mcu.ebb]
board = "creality-v4.2.10"   # an STM32F103 board
bootloader = "katapult"
kconfig = "ebb.config"
image = "ebb-update.bin"

[mcu.avr]
board = "mks-gen-l"
kconfig = "avr.config"
image = "avr.hex"
TOML

# Part 2: a printer whose mainboard runs Klipper on USB (CDC-ACM, cdc_acm in the guest), rebooting into
# ST's ROM DFU; updated with `mcuflash flash -d` its by-id name, it comes back running the update.
USB_KLIPPER=/dev/serial/by-id/usb-Klipper_stm32f446xx_SIM0001-if00
printf '[mcu]\nserial: %s\n' "$USB_KLIPPER" >"$GUEST_DIR/usb-printer.cfg"
printf '[mcu.mcu]\nboard = "ldo-leviathan-v1.2"\nimage = "main-update.bin"\n' >"$GUEST_DIR/usb-mcuflash.toml"

cd "$GUEST_DIR"
started=$(date +%s%N)
set +e
"$GUEST_RUN" --timeout 200 -- sh -c "
  ms() { echo \$(( (\$(date +%s%N) - \$1) / 1000000 )); }
  ip link set lo up 2>/dev/null
  t0=\$(date +%s%N)
  ./mcuflash-sim printer --config printer.cfg --usbip $PORT --firmware mcu=main.bin --firmware ebb=ebb.bin \
    --firmware avr=avr.hex --no-timing >ready.txt 2>sim.txt &
  sim=\$!
  trap 'kill \$sim 2>/dev/null' EXIT
  i=0; until grep -q '^printer ready' ready.txt; do i=\$((i+1)); [ \$i -gt 300 ] && exit 11; sleep 0.1; done
  echo \"printer ready ms \$(ms \$t0)\" >>ready.txt
  # The board re-enumerating by itself after each reboot: whenever nothing is attached, plug in
  # again; and can0 brought up at 1 Mbit/s whenever it is there and down, as the printer's network
  # config would.
  (
    while kill -0 \$sim 2>/dev/null; do
      if ! usbip port 2>/dev/null | grep -q '^Port'; then
        usbip --tcp-port $PORT attach -r 127.0.0.1 -b 1-1 >/dev/null 2>&1 && echo \"attached \$(date +%T.%N)\"
      fi
      if ip link show can0 >/dev/null 2>&1 && ! ip link show can0 | grep -q '[<,]UP[,>]'; then
        ip link set can0 up type can bitrate 1000000 && echo \"can0 up \$(date +%T.%N)\"
      fi
      sleep 0.2
    done
  ) >replug.txt 2>&1 &
  i=0; until ip link show can0 2>/dev/null | grep -q '[<,]UP[,>]'; do i=\$((i+1)); [ \$i -gt 150 ] && exit 12; sleep 0.1; done
  t0=\$(date +%s%N)
  ./mcuflash printer status --config printer.cfg --json >status.json 2>status.err
  echo \"exit \$? ms \$(ms \$t0)\" >>status.err
  cp sim-flash/mcu.bin mcu-before.bin; cp sim-flash/ebb.bin ebb-before.bin
  # ---- mcuflash printer flash: every MCU from the manifest's images ----
  t0=\$(date +%s%N)
  ./mcuflash --json printer flash --config printer.cfg >flash.json 2>flash.err
  echo \"exit \$? ms \$(ms \$t0)\" >>flash.err
  # The bridge comes back as Klipper and is plugged in again; can0 with it.
  i=0; until ip link show can0 2>/dev/null | grep -q '[<,]UP[,>]'; do i=\$((i+1)); [ \$i -gt 150 ] && exit 14; sleep 0.1; done
  echo \"can0 back \$(date +%T.%N)\" >>replug.txt
  ./mcuflash printer status --config printer.cfg --json >status_after.json 2>status_after.err
  echo \"exit \$?\" >>status_after.err
  # Again: every MCU runs its image's build now, so each is asked and left alone.
  t0=\$(date +%s%N)
  ./mcuflash --json printer flash --config printer.cfg >unchanged.json 2>unchanged.err
  echo \"exit \$? ms \$(ms \$t0)\" >>unchanged.err
  # ---- end of printer flash ----
  kill \$sim; wait \$sim
  echo \"sim exit \$?\" >>ready.txt
  usbip port 2>/dev/null | grep -q '^Port' && { usbip detach -p 0 >/dev/null 2>&1; sleep 0.5; }

  # Part 2: Klipper on USB.
  ./mcuflash-sim printer --config usb-printer.cfg --manifest usb-mcuflash.toml --flash-dir sim-flash-usb \
    --firmware mcu=main.bin --no-timing >usb-ready.txt 2>usb-sim.txt &
  sim=\$!
  i=0; until grep -q '^printer ready' usb-ready.txt; do i=\$((i+1)); [ \$i -gt 300 ] && exit 21; sleep 0.1; done
  usb_port=\$(sed -n 's/^ready mcu usbip 127.0.0.1:\\([0-9]*\\) .*/\\1/p' usb-ready.txt)
  (
    while kill -0 \$sim 2>/dev/null; do
      if ! usbip port 2>/dev/null | grep -q '^Port'; then
        usbip --tcp-port \$usb_port attach -r 127.0.0.1 -b 1-1 >/dev/null 2>&1 && echo \"attached \$(date +%T.%N)\"
      fi
      sleep 0.2
    done
  ) >usb-replug.txt 2>&1 &
  i=0; until [ -e $USB_KLIPPER ]; do i=\$((i+1)); [ \$i -gt 150 ] && exit 22; sleep 0.1; done
  ./mcuflash printer status --config usb-printer.cfg --json >usb-status.json 2>usb-status.err
  echo \"exit \$?\" >>usb-status.err
  t0=\$(date +%s%N)
  ./mcuflash flash main-update.bin -d $USB_KLIPPER --address 0x08008000 --klipper-config none >usb-flash.txt 2>&1
  echo \"exit \$? ms \$(ms \$t0)\" >>usb-flash.txt
  i=0; until [ -e $USB_KLIPPER ]; do i=\$((i+1)); [ \$i -gt 150 ] && exit 23; sleep 0.1; done
  ./mcuflash printer status --config usb-printer.cfg --json >usb-status-after.json 2>usb-status-after.err
  echo \"exit \$?\" >>usb-status-after.err
  kill \$sim; wait \$sim
  echo \"sim exit \$?\" >>usb-ready.txt
  exit 0
" >"$WORK/guest.out" 2>"$WORK/guest.err"
rc=$?
set -e
took_ms=$((($(date +%s%N) - started) / 1000000))
guest_succeeded "$rc" "11 the printer did not get ready, 12 no can0 up (the bridge not attached, gs_usb did not bind, or ip link set can0 up failed), 14 no can0 after the update (the bridge did not come back), 21 the USB printer did not get ready, 22/23 no by-id name for Klipper on USB (before/after its update)"

expect "ready mcu can-bridge usbip 127.0.0.1:$PORT uuid $BRIDGE_UUID -> st_rom_dfu" ready.txt
expect "ready ebb can bridge mcu uuid $EBB_UUID -> katapult" ready.txt
expect "ready avr pty $GUEST_DIR/ttyS1 -> stk500boot_v2" ready.txt
expect "printer ready: 3 MCUs" ready.txt
expect "sim exit 0" ready.txt
expect "exit 0" status.err
python3 - "$GUEST_DIR/status.json" "$main_version" "$ebb_version" "$avr_version" <<'PY' || case_fail "printer status did not show the three MCUs with their versions"
import json, sys
lines = [json.loads(l) for l in open(sys.argv[1]) if l.startswith("{")]
text = json.dumps(lines)
for want in ["mcu", "ebb", "avr"] + sys.argv[2:]:
    assert want in text, (want, text)
PY
# The flash files: each build at its board's application start.
cmp -i 0:$((0x8000)) -n "$(stat -c %s main.bin)" main.bin mcu-before.bin || case_fail "sim-flash/mcu.bin lacks the build at 0x08008000"
cmp -i 0:$((0x2000)) -n "$(stat -c %s ebb.bin)" ebb.bin ebb-before.bin || case_fail "sim-flash/ebb.bin lacks the build at 0x08002000"
echo "ok: the 3-MCU printer in the guest: $(grep 'printer ready ms' ready.txt); printer status saw mcu $main_version, ebb $ebb_version, avr $avr_version ($(tail -1 status.err))"
# The update: the mainboard (the bridge, last) and the toolhead updated, the AVR left as it was.
expect "exit 0" flash.err
python3 - "$GUEST_DIR/flash.json" "$main_update" "$ebb_update" <<'PY' || case_fail "printer flash did not update mcu and ebb, bridge last, avr left alone"
import json, sys
events = [json.loads(l) for l in open(sys.argv[1]) if l.startswith("{")]
result = events[-1]
assert result["event"] == "result" and result["failed"] == 0, result
mcus = {m["mcu"]: m for m in result["mcus"]}
assert mcus["ebb"]["outcome"] == "flashed" and mcus["ebb"]["version_after"] == sys.argv[3], mcus["ebb"]
assert mcus["mcu"]["outcome"] == "flashed" and mcus["mcu"]["version_after"] == sys.argv[2], mcus["mcu"]
assert mcus["ebb"]["back_running_image"] and mcus["mcu"]["back_running_image"], mcus
assert mcus["avr"]["outcome"] == "unchanged", mcus["avr"]
# The bridge only after its node: mcu's flash starts after ebb is done.
order = [(e["mcu"], e["event"], e.get("phase")) for e in events if e["event"] in ("mcu_started", "mcu_done")]
assert order.index(("mcu", "mcu_started", "identify")) > order.index(("ebb", "mcu_done", None)), order
PY
how="with mcuflash printer flash ($(tail -1 flash.err))"
expect "exit 0" status_after.err
python3 - "$GUEST_DIR/status_after.json" "$main_update" "$ebb_update" "$avr_version" <<'PY' || case_fail "printer status after the update did not show the new versions"
import json, sys
text = json.dumps([json.loads(l) for l in open(sys.argv[1]) if l.startswith("{")])
for want in sys.argv[2:]:
    assert want in text, (want, text)
PY
cmp -i 0:$((0x8000)) -n "$(stat -c %s main-update.bin)" main-update.bin sim-flash/mcu.bin ||
  case_fail "sim-flash/mcu.bin lacks the update at 0x08008000"
cmp -i 0:$((0x2000)) -n "$(stat -c %s ebb-update.bin)" ebb-update.bin sim-flash/ebb.bin ||
  case_fail "sim-flash/ebb.bin lacks the update at 0x08002000"
grep -qF "came back as Klipper 1 times" sim.txt || case_fail "the mainboard did not come back as Klipper once"
echo "ok: updated $how: mcu $main_update, ebb $ebb_update, avr unchanged; flash files hold the updates"
expect "exit 0" unchanged.err
python3 - "$GUEST_DIR/unchanged.json" <<'PY' || case_fail "printer flash again did not leave every MCU alone"
import json, sys
result = [json.loads(l) for l in open(sys.argv[1]) if l.startswith("{")][-1]
assert all(m["outcome"] == "unchanged" for m in result["mcus"]), result
PY
echo "ok: printer flash again: every MCU already runs its image's build, left alone ($(tail -1 unchanged.err))"

# Part 2: Klipper on USB, through cdc_acm.
expect "ready mcu usbip 127.0.0.1:" usb-ready.txt
expect "usb-Klipper_stm32f446xx_SIM0001-if00 -> st_rom_dfu" usb-ready.txt
expect "sim exit 0" usb-ready.txt
expect "exit 0" usb-status.err
expect "$main_version" usb-status.json
expect "exit 0" usb-flash.txt
expect "verified" usb-flash.txt
expect "running Klipper $main_update (the image's build)" usb-flash.txt
expect "exit 0" usb-status-after.err
expect "$main_update" usb-status-after.json
cmp -i 0:$((0x8000)) -n "$(stat -c %s main-update.bin)" main-update.bin sim-flash-usb/mcu.bin ||
  case_fail "sim-flash-usb/mcu.bin lacks the update at 0x08008000"
grep -qF "came back as Klipper 1 times" usb-sim.txt || case_fail "the USB board did not come back as Klipper once"
echo "ok: Klipper on USB: status read $main_version through cdc_acm; mcuflash flash -d its by-id name: $(grep -o 'the board is back after [0-9.]* s' usb-flash.txt), running $main_update ($(tail -1 usb-flash.txt))"
echo "ok: guest test took $took_ms ms"
