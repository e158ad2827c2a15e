#!/usr/bin/env bash
# Entering the bootloader from a running Klipper through a real Linux kernel: mcuflash-sim serves a
# board running Klipper over USB/IP (Klipper's CDC-ACM device, 1d50:614e, strings Klipper /
# stm32f446xe / SIM0001), guest-run.sh boots Debian's kernel, `usbip attach` plugs it in: cdc_acm binds
# it and the guest's udev stand-in makes /dev/serial/by-id/usb-Klipper_stm32f446xe_SIM0001-if00.
# `mcuflash flash app.bin -d` that name must: open it at 1200 baud and drop DTR (the kernel sends
# SET_LINE_CODING and SET_CONTROL_LINE_STATE to the device), see the board leave the bus and come back
# as ST's ROM DFU bootloader (0483:df11) through udev events, flash it at 0x08000000, verify, leave.
# The board's re-enumeration is played by a loop in the guest that plugs the simulator in again once
# Klipper's device is gone (a real board does it by itself). The flash file must hold the image.
# Also: the port held by another program is refused (64) and the board stays in Klipper; before that,
# `mcuflash identify` asks the board (which runs a real Klipper build for the F446, --firmware) what it
# runs, through cdc_acm and the simulator's bulk endpoints.
# Then two more boards the same way: Klipper on an STM32F103 that reboots into the STM32 HID
# bootloader (1209:beba: written through hidraw, "not verified"), and Klipper on an RP2040 that
# reboots into the boot ROM's PICOBOOT (2e8a:0003: verified by READ).
# Skipped (77) without guest-run.sh, usbip, or a QEMU that guest-run.sh can install.
source "$(dirname "$0")/../lib/common.sh"
source "$(dirname "$0")/../lib/guest.sh"
source "$(dirname "$0")/../lib/klipper_build.sh"
use_guest usbip
need_klipper_builds
klipper_build f446-32k 'CONFIG_LOW_LEVEL_OPTIONS=y\nCONFIG_MACH_STM32=y\nCONFIG_MACH_STM32F446=y\nCONFIG_STM32_FLASH_START_8000=y\n'

make_guest_dir klipper-guest
head -c 50000 /dev/urandom >"$GUEST_DIR/app.bin"
cp "$KLIPPER_CACHE/f446-32k/out/klipper.bin" "$GUEST_DIR/klipper.bin"
version=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["version"])' "$KLIPPER_CACHE/f446-32k/out/klipper.dict")

start_usbip_sim "$WORK/sim.log" klipper --chip stm32f446xe --bootloader st_rom_dfu --flash-file "$GUEST_DIR/flash.bin" \
  --firmware "$GUEST_DIR/klipper.bin" -v
PORT=$USBIP_PORT
KLIPPER=/dev/serial/by-id/usb-Klipper_stm32f446xe_SIM0001-if00
head -c 30000 /dev/urandom >"$GUEST_DIR/app_hid.bin"
head -c 40000 /dev/urandom >"$GUEST_DIR/app_pico.bin"
start_usbip_sim "$WORK/sim_hid.log" klipper --chip stm32f103xb --bootloader hid_stm32 --serial SIM0002 \
  --flash-file "$GUEST_DIR/flash_hid.bin"
PORT_HID=$USBIP_PORT
start_usbip_sim "$WORK/sim_pico.log" klipper --chip rp2040 --bootloader rp2040_rom --serial SIM0003 \
  --flash-file "$GUEST_DIR/flash_pico.bin"
PORT_PICO=$USBIP_PORT

cd "$GUEST_DIR"
set +e
"$GUEST_RUN" --usbip-port "$PORT" --usbip-port "$PORT_HID" --usbip-port "$PORT_PICO" --timeout 240 -- sh -c "
  attach() { usbip --tcp-port $PORT attach -r \$GUEST_HOST_ADDR -b 1-1 >/dev/null 2>&1; }
  attach || exit 11
  i=0; until [ -e $KLIPPER ]; do i=\$((i+1)); [ \$i -gt 100 ] && exit 12; sleep 0.1; done
  ./mcuflash list >list.txt 2>&1
  ./mcuflash identify -d $KLIPPER --image klipper.bin >identify.txt 2>&1; echo \"exit \$?\" >>identify.txt
  # Held by another program: refused, and the board stays in Klipper.
  sleep 30 <$KLIPPER &
  holder=\$!
  sleep 0.2
  ./mcuflash flash app.bin -d $KLIPPER --klipper-config none >held.txt 2>&1; echo \"exit \$?\" >>held.txt
  kill \$holder; wait \$holder 2>/dev/null
  lsusb -d 1d50:614e >/dev/null 2>&1 || exit 13
  # The board re-enumerating: once Klipper's device has left, plug in what the board is now.
  (
    i=0; while lsusb -d 1d50:614e >/dev/null 2>&1; do i=\$((i+1)); [ \$i -gt 300 ] && exit 0; sleep 0.05; done
    echo \"Klipper left the bus\" >replug.txt
    i=0; until attach; do i=\$((i+1)); [ \$i -gt 50 ] && exit 0; sleep 0.2; done
    echo \"plugged in again\" >>replug.txt
  ) &
  t0=\$(date +%s%N)
  ./mcuflash flash app.bin -d $KLIPPER --klipper-config none >flash.txt 2>&1; echo \"exit \$?\" >>flash.txt
  echo \"mcuflash ms \$(( (\$(date +%s%N) - t0) / 1000000 ))\" >>flash.txt
  wait
  # A board whose Klipper (at by-id name \$2) reboots into the bootloader of USB id \$3: plugged in
  # again (port \$1) once Klipper has left, as the board re-enumerates by itself; then flash \$4.
  from_klipper() {
    usbip --tcp-port \$1 attach -r \$GUEST_HOST_ADDR -b 1-1 >/dev/null 2>&1 || return 21
    i=0; until [ -e \$2 ]; do i=\$((i+1)); [ \$i -gt 100 ] && return 22; sleep 0.1; done
    (
      i=0; while [ -e \$2 ]; do i=\$((i+1)); [ \$i -gt 300 ] && exit 0; sleep 0.05; done
      i=0; until usbip --tcp-port \$1 attach -r \$GUEST_HOST_ADDR -b 1-1 >/dev/null 2>&1; do
        i=\$((i+1)); [ \$i -gt 50 ] && exit 0; sleep 0.2; done
    ) &
    ./mcuflash flash \$4 -d \$2 --klipper-config none >\$5 2>&1; echo \"exit \$?\" >>\$5
    wait
  }
  from_klipper $PORT_HID /dev/serial/by-id/usb-Klipper_stm32f103xb_SIM0002-if00 1209:beba app_hid.bin flash_hid.txt || exit \$?
  from_klipper $PORT_PICO /dev/serial/by-id/usb-Klipper_rp2040_SIM0003-if00 2e8a:0003 app_pico.bin flash_pico.txt || exit \$?
  exit 0
" >"$WORK/guest.out" 2>"$WORK/guest.err"
rc=$?
set -e
guest_succeeded "$rc" "11 attach, 12 no by-id name for Klipper, 13 the board left Klipper although its port was held, 21/22 the HID or RP2040 board's Klipper: attach, no by-id name"

expect_match() { grep -qE -- "$1" "$GUEST_DIR/$2" || case_fail "expected in $2: $1"; }
expect_match "usb-Klipper_stm32f446xe_SIM0001-if00 .*running Klipper on a stm32f446xe" list.txt
grep -qE "Klipper .* on stm32f446xx at 180 MHz" "$GUEST_DIR/identify.txt" || case_fail "identify says: $(cat "$GUEST_DIR/identify.txt")"
grep -qF "$version" "$GUEST_DIR/identify.txt" || case_fail "identify did not read the version $version: $(cat "$GUEST_DIR/identify.txt")"
expect_match "nothing to update" identify.txt
expect_match "exit 0" identify.txt
expect_match "exit 64" held.txt
expect_match "holds it open" held.txt
expect_match "asking it to reboot into its bootloader" flash.txt
expect_match "came back after [0-9.]+ s as usb:" flash.txt
expect_match "verified" flash.txt
expect_match "exit 0" flash.txt
grep -q "1200 baud with DTR clear" "$WORK/sim.log" || case_fail "the simulator saw no 1200-baud request"
expect_match "asking it to reboot into its bootloader" flash_hid.txt
expect_match "came back after [0-9.]+ s as usb:" flash_hid.txt
expect_match "/dev/hidraw" flash_hid.txt
# Klipper's port named the chip: the HID bootloader, which does not say, is not guessed at.
grep -q "assuming" "$GUEST_DIR/flash_hid.txt" && case_fail "the chip Klipper's port names was not passed on"
expect_match "not verified" flash_hid.txt
expect_match "exit 0" flash_hid.txt
expect_match "asking it to reboot into its bootloader" flash_pico.txt
expect_match "came back after [0-9.]+ s as usb:" flash_pico.txt
expect_match "verified" flash_pico.txt
expect_match "exit 0" flash_pico.txt
stop_background
cmp -n 50000 "$GUEST_DIR/app.bin" "$GUEST_DIR/flash.bin" || case_fail "the flash does not hold the image at 0x08000000"
cmp -i 0:2048 -n 30000 "$GUEST_DIR/app_hid.bin" "$GUEST_DIR/flash_hid.bin" \
  || case_fail "the F103's flash does not hold the image at 0x08000800"
cmp -n 40000 "$GUEST_DIR/app_pico.bin" "$GUEST_DIR/flash_pico.bin" || case_fail "the RP2040's flash does not hold the image at 0x10000000"
echo "ok: Klipper on USB (guest kernel) -> ST ROM DFU, $(grep -o 'came back after [0-9.]* s' "$GUEST_DIR/flash.txt"), found by udev events and flashed; $(grep 'mcuflash ms' "$GUEST_DIR/flash.txt")"
echo "ok: a held Klipper port is refused and the board stays in Klipper"
echo "ok: Klipper -> the STM32 HID bootloader (hidraw) and Klipper -> the RP2040's PICOBOOT, each found and flashed"
echo "ok: mcuflash identify through the guest's cdc_acm: $(head -1 "$GUEST_DIR/identify.txt")"
