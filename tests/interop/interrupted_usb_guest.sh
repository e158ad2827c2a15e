#!/usr/bin/env bash
# Ctrl-C, SIGTERM and SIGKILL in the middle of writing, on each USB bootloader: the ST ROM's DfuSe
# (STM32F407), HalfKay (Teensy++ 2.0), the STM32 HID bootloader (STM32F103) and the RP2040's
# PICOBOOT. The simulators are served over USB/IP (their flash in a file that outlives mcuflash) and
# attached to a real kernel in the QEMU guest, where mcuflash runs as it would on a printer's host.
# For each device and each signal, mcuflash flash is started, signalled once its progress says 25%
# written, and the same command is run again:
#  - SIGINT and SIGTERM end it with exit 130 / 143 and a message saying what was written and the
#    command to run again; SIGKILL ends it at once (137);
#  - the same command run again succeeds (the device was left usable) and the flash file then holds
#    the image byte for byte, with the bootloader region as it was.
# --no-start keeps each device in its bootloader between the cases.
# Skipped (77) without guest-run.sh, usbip, or a QEMU that guest-run.sh can install.
source "$(dirname "$0")/../lib/common.sh"
source "$(dirname "$0")/../lib/guest.sh"
use_guest usbip

make_guest_dir interrupted-usb
head -c 96000 /dev/urandom >"$GUEST_DIR/dfu.bin"
random_hex "$GUEST_DIR/halfkay.hex" 64000 0
head -c 64000 /dev/urandom >"$GUEST_DIR/hid.bin"
head -c 131072 /dev/urandom >"$GUEST_DIR/pico.bin"
hex_to_bin "$GUEST_DIR/halfkay.hex" "$GUEST_DIR/halfkay.bin"

start_usbip_sim "$WORK/dfu.log" dfu --chip stm32f407xg --flash-file "$GUEST_DIR/dfu.flash"
PORT_DFU=$USBIP_PORT
start_usbip_sim "$WORK/halfkay.log" halfkay --chip at90usb1286 --flash-file "$GUEST_DIR/halfkay.flash"
PORT_HALFKAY=$USBIP_PORT
start_usbip_sim "$WORK/hid.log" hid-stm32 --chip stm32f103xb --flash-file "$GUEST_DIR/hid.flash"
PORT_HID=$USBIP_PORT
start_usbip_sim "$WORK/pico.log" picoboot --chip rp2040 --flash-file "$GUEST_DIR/pico.flash"
PORT_PICO=$USBIP_PORT

cd "$GUEST_DIR"
started=$(date +%s%N)
set +e
"$GUEST_RUN" --usbip-port "$PORT_DFU" --usbip-port "$PORT_HALFKAY" --usbip-port "$PORT_HID" \
  --usbip-port "$PORT_PICO" --timeout 420 -- sh -c "
  . ./in_guest_usbip.sh
  # cut NAME SIGNAL FLASH-ARGS...: flash, signal at 25% written, then the same command again.
  cut() {
    name=\$1; signal=\$2; shift 2
    ./mcuflash flash \"\$@\" --no-start >\$name.out 2>\$name.err &
    pid=\$!
    i=0; until grep -q '^write: 25%' \$name.err; do
      i=\$((i+1)); if [ \$i -gt 600 ]; then kill -9 \$pid; echo 'writing did not start' >>\$name.err; break; fi
      sleep 0.05
    done
    kill -\$signal \$pid; wait \$pid; echo \"exit \$?\" >\$name.exit
    ./mcuflash flash \"\$@\" --no-start -q >\$name.again 2>&1; echo \"exit \$?\" >>\$name.again
  }
  USB_ID=0483:df11; attach $PORT_DFU || exit 11
  USB_ID=16c0:0478; attach $PORT_HALFKAY || exit 12
  USB_ID=1209:beba; attach $PORT_HID || exit 13
  USB_ID=2e8a:0003; attach $PORT_PICO || exit 14
  for signal in INT TERM KILL; do
    cut dfu-\$signal \$signal dfu.bin -d usb:0483:df11 --address 0x08020000
    cut halfkay-\$signal \$signal halfkay.hex -d usb:16c0:0478
    cut hid-\$signal \$signal hid.bin -d usb:1209:beba --chip stm32f103xb
    cut pico-\$signal \$signal pico.bin -d usb:2e8a:0003 --address 0x10000000
  done
  exit 0
" >"$WORK/guest.out" 2>"$WORK/guest.err"
rc=$?
set -e
took_ms=$((($(date +%s%N) - started) / 1000000))
guest_succeeded "$rc" "11-14 attaching the DFU, HalfKay, HID and PICOBOOT simulators"

for device in dfu halfkay hid pico; do
  for signal in INT TERM KILL; do
    name=$device-$signal
    case $signal in INT) want=130 ;; TERM) want=143 ;; KILL) want=137 ;; esac
    expect "exit $want" "$name.exit"
    if [ "$signal" != KILL ]; then
      grep -Eq "interrupted \(Ctrl-C\)|stopped \(SIGTERM\)" "$GUEST_DIR/$name.err" || case_fail "$name: no word of the signal"
      expect "bytes written before this" "$name.err"
      expect "Retry: mcuflash flash" "$name.err"
    fi
    expect "exit 0" "$name.again"
    echo "ok: $name: SIG$signal -> exit $want, then the same command: exit 0"
  done
done
stop_background
python3 - "$GUEST_DIR" <<'PY' || case_fail "a flash file does not hold its image, or its bootloader region changed"
import sys
d = sys.argv[1]
problems = []
# flash file, image, where the image starts in the file, the bootloader region (start, end) and the
# simulator's placeholder text in it (the ST ROM is not in flash: nothing to check there).
for flash_name, image, at, boot, text in (
        ("dfu.flash", "dfu.bin", 0x20000, None, None),
        ("halfkay.flash", "halfkay.bin", 0, (0x1FC00, 0x20000), "halfkay"),
        ("hid.flash", "hid.bin", 0x800, (0, 0x800), "hid-stm32"),
        ("pico.flash", "pico.bin", 0, None, None)):
    flash = open(f"{d}/{flash_name}", "rb").read()
    app = open(f"{d}/{image}", "rb").read()
    if flash[at:at + len(app)] != app:
        problems.append(f"{flash_name} does not hold {image} at {at:#x}")
    if boot:
        placeholder = (f"[mcuflash-sim placeholder: {text}] ".encode() * 4096)[:boot[1] - boot[0]]
        if flash[boot[0]:boot[1]] != placeholder:
            problems.append(f"{flash_name}: the bootloader region changed")
if problems: sys.exit("\n".join(problems))
PY
echo "ok: SIGINT, SIGTERM and SIGKILL mid-write on DFU, HalfKay, the HID bootloader and PICOBOOT; each device took the same command again (${took_ms} ms with boot)"
