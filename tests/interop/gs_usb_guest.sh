#!/usr/bin/env bash
# Katapult over CAN through a simulated Klipper USB-to-CAN bridge and a real Linux kernel's gs_usb
# driver: mcuflash-sim gs-usb serves the bridge (1d50:606f) over USB/IP with two simulated nodes
# behind it on its in-process CAN bus (wire and flash timing on), guest-run.sh boots Debian's kernel,
# `usbip attach` plugs the bridge in, gs_usb makes it can0, `ip link set can0 up type can bitrate
# 1000000` sends it the bit timing; candump (can-utils) records the bus for the log. Then:
#  1. flashtool.py -i can0 -q lists node A (Katapult), node B (Klipper) and the bridge itself
#     (Klipper, its UUID); `mcuflash list --can can0` shows the same three;
#  2. flashtool.py -i can0 -u UUID_A -f app.bin flashes node A (SHA-1 verified);
#  3. mcuflash flash app2.bin -d can:can0:UUID_B --chip rp2040 asks the Klipper on node B to reboot
#     into Katapult, writes and verifies by read-back;
#  4. mcuflash flash bridge.bin -d can:can0:BRIDGE_UUID: mcuflash knows the bridge by its USB serial,
#     asks it over can0 to reboot into its bootloader (the simulator's --bootloader st_rom_dfu), waits
#     for the DFU device and flashes it there;
# and the flash files hold each image at the application start, bootloader regions intact.
# Skipped (77) without guest-run.sh, usbip, QEMU, python3 or candump.
source "$(dirname "$0")/../lib/common.sh"
source "$(dirname "$0")/../lib/guest.sh"
PEER_DIR="$SOURCE_DIR/../shared/peers/katapult/scripts"
[ -f "$PEER_DIR/flashtool.py" ] || skip "flashtool.py not found at $PEER_DIR"
[ -x /usr/bin/python3 ] || skip "/usr/bin/python3 not installed"
use_guest usbip candump

make_guest_dir gs-usb-guest
cp "$PEER_DIR/flashtool.py" "$GUEST_DIR/"
head -c 24000 /dev/urandom >"$GUEST_DIR/app.bin"
head -c 20011 /dev/urandom >"$GUEST_DIR/app2.bin"
UUID_A=0a1b2c3d4e5f
UUID_B=112233445566

head -c 18000 /dev/urandom >"$GUEST_DIR/bridge.bin"
start_usbip_sim "$WORK/sim.log" gs-usb --chip stm32f072xb --bootloader st_rom_dfu --flash-file "$GUEST_DIR/flashBridge.bin" \
  --node "katapult:stm32f103xe:$UUID_A:$GUEST_DIR/flashA.bin" \
  --node "klipper:rp2040:$UUID_B:$GUEST_DIR/flashB.bin"
PORT=$USBIP_PORT
BRIDGE_UUID=$(grep -o 'CAN uuid [0-9a-f]*' "$WORK/sim.log" | head -1 | cut -d' ' -f3)
[ -n "$BRIDGE_UUID" ] || fail "the bridge did not name its UUID: $(cat "$WORK/sim.log")"

cd "$GUEST_DIR"
started=$(date +%s%N)
set +e
"$GUEST_RUN" --usbip-port "$PORT" --timeout 280 -- sh -c "
  ms() { echo \$(( (\$(date +%s%N) - \$1) / 1000000 )); }
  usbip --tcp-port $PORT attach -r \$GUEST_HOST_ADDR -b 1-1 || exit 11
  i=0; until ip link show can0 >/dev/null 2>&1; do i=\$((i+1)); [ \$i -gt 100 ] && exit 12; sleep 0.1; done
  ip -details link show can0 >link.txt 2>&1
  ip link set can0 up type can bitrate 1000000 || exit 13
  candump -L can0 >candump.txt 2>&1 &
  dump=\$!
  /usr/bin/python3 flashtool.py -i can0 -q >query.txt 2>&1 || exit 14
  ./mcuflash list --can can0 >list.txt 2>&1 || exit 15
  t0=\$(date +%s%N)
  /usr/bin/python3 flashtool.py -i can0 -u $UUID_A -f app.bin >flashtool.txt 2>&1 || exit 16
  echo \"flashtool.py ms \$(ms \$t0)\" >>flashtool.txt
  t0=\$(date +%s%N)
  ./mcuflash flash app2.bin -d can:can0:$UUID_B --chip rp2040 >flashB.txt 2>&1 || exit 17
  echo \"mcuflash ms \$(ms \$t0)\" >>flashB.txt
  ip -details -statistics link show can0 >>link.txt 2>&1
  kill \$dump
  # The bridge itself, in one step: asked over can0 to reboot into its bootloader (ST's ROM DFU here),
  # which mcuflash then flashes over USB. The board re-enumerates by itself; here a loop plugs in
  # what the simulator now is once the bridge has left.
  (
    i=0; while lsusb -d 1d50:606f >/dev/null 2>&1; do i=\$((i+1)); [ \$i -gt 300 ] && exit 0; sleep 0.05; done
    i=0; until usbip --tcp-port $PORT attach -r \$GUEST_HOST_ADDR -b 1-1 >/dev/null 2>&1; do
      i=\$((i+1)); [ \$i -gt 50 ] && exit 0; sleep 0.2; done
  ) &
  ./mcuflash flash bridge.bin -d can:can0:$BRIDGE_UUID --chip stm32f072xb --address 0x08000000 --write-boot-area >bridge.txt 2>&1
  echo \"exit \$?\" >>bridge.txt
  wait
  exit 0
" >"$WORK/guest.out" 2>"$WORK/guest.err"
rc=$?
set -e
took_ms=$((($(date +%s%N) - started) / 1000000))
guest_succeeded "$rc" "11 usbip attach, 12 no can0 (gs_usb did not bind), 13 ip link set can0 up, 14 flashtool.py -q, 15 mcuflash list --can, 16 flashtool.py -f, 17 mcuflash flash node B"

expect "gs_usb" link.txt
expect "bitrate 1000000" link.txt
expect "Detected UUID: $UUID_A, Application: Katapult" query.txt
expect "Detected UUID: $UUID_B, Application: Klipper" query.txt
expect "Detected UUID: $BRIDGE_UUID, Application: Klipper" query.txt
expect "can:can0:$UUID_A  Katapult" list.txt
expect "can:can0:$UUID_B  Klipper" list.txt
expect "can:can0:$BRIDGE_UUID  Klipper" list.txt
expect "Verification Complete" flashtool.txt
expect "Programming Complete" flashtool.txt
expect "runs Klipper: asking it to reboot into Katapult" flashB.txt
expect "verified (read back)" flashB.txt
expect "is the USB-to-CAN bridge board itself" bridge.txt
expect "the board came back after" bridge.txt
expect "0483:df11" bridge.txt
expect "verified" bridge.txt
expect "exit 0" bridge.txt
# The bus as candump saw it: the query, the nodes' answers, Katapult's frames on a node id.
expect "can0 3F0#00" candump.txt
expect "can0 3F1#20$(echo $UUID_A | tr a-f A-F)11" candump.txt
expect "can0 3F1#20$(echo $UUID_B | tr a-f A-F)01" candump.txt
expect "can0 200#" candump.txt
stop_background
grep -a "^mcuflash-sim: \(bus\|wake timer\|node [0-9a-f]* (\)" "$WORK/sim.log" || true
expect_sim() { grep -qF -- "$1" "$WORK/sim.log" || case_fail "expected in the simulator's log: $1"; }
expect_sim "bit timing:"
expect_sim "1000000 bit/s"
expect_sim "mode: start"
expect_sim "1 reboots into Katapult"
! grep -q "refused (protected)" "$WORK/sim.log" || case_fail "a node's bootloader region was written to"

python3 - "$GUEST_DIR" <<'PY' || case_fail "the flash files are not what was written"
import sys
d = sys.argv[1]
problems = []
def check(flash_name, app_name, offset, who):
    flash = open(f"{d}/{flash_name}", "rb").read()
    app = open(f"{d}/{app_name}", "rb").read()
    if flash[offset:offset + len(app)] != app: problems.append(f"{who}: the image is not at {offset:#x}")
    if not flash[:offset].startswith(b"[mcuflash-sim placeholder: katapult]"): problems.append(f"{who}: the bootloader area changed")
check("flashA.bin", "app.bin", 0x2000, "flashtool.py on node A")
check("flashB.bin", "app2.bin", 0x4000, "mcuflash on node B")
bridge = open(f"{d}/flashBridge.bin", "rb").read()
if not bridge.startswith(open(f"{d}/bridge.bin", "rb").read()): problems.append("mcuflash on the bridge: the image is not at 0x08000000")
if problems: sys.exit("\n".join(problems))
PY
grep -ah "ms " "$GUEST_DIR/flashtool.txt" "$GUEST_DIR/flashB.txt"
echo "ok: flashtool.py and mcuflash flashed nodes behind a simulated gs_usb bridge through the guest kernel's can0 (${took_ms} ms with boot; $(wc -l <"$GUEST_DIR/candump.txt") frames in candump)"
