#!/usr/bin/env bash
# Katapult over CAN through a real Linux kernel's SocketCAN (vcan0 in ../shared/tools/guest-run.sh's
# guest): mcuflash-sim katapult --can serves simulated nodes on vcan0, Katapult's own flashtool.py
# (the real peer) and mcuflash talk to them through the kernel's CAN_RAW sockets.
#  1. node A (an STM32F103, Katapult, wire and flash timing on): flashtool.py -i vcan0 -q lists its
#     UUID as Katapult; flashtool.py -i vcan0 -u UUID -f app.bin writes and verifies it (its COMPLETE
#     starts the application, so A then answers as Klipper); `mcuflash list --can vcan0` (and --json)
#     names it; mcuflash flash app2.bin -d can:vcan0:UUID asks Klipper to reboot, waits, writes and
#     verifies by read-back;
#  2. node B (an RP2040 that loses two bytes of its answers) starts as a running Klipper: with two nodes, -d can:vcan0 without a UUID is
#     refused listing both; mcuflash flash app3.bin -d can:vcan0:UUIDB sends Klipper's bootloader
#     request, waits for Katapult, flashes; flashtool.py -r then asks the Klipper B runs again to reboot
#     and flashtool.py -q sees B as Katapult;
#  3. node C (an STM32F103 running a real Klipper build, --firmware): `mcuflash identify -d
#     can:vcan0:UUIDC` reads its version over CAN (a node id by UUID, then Klipper's MCU protocol, as
#     klippy connects); mcuflash flash of another real build asks it into Katapult, flashes, and the
#     node comes back as Klipper running the image's build, which mcuflash identifies;
#  4. refusals: an interface that does not exist (69, the `ip link` hint), one that is down (69), one
#     that is not CAN (64), a UUID nobody answers to (69, listing the UUIDs that answered).
# The flash files must hold each image at the application start and the bootloader area untouched.
# Skipped (77) without guest-run.sh, QEMU or python3.
source "$(dirname "$0")/../lib/common.sh"
source "$(dirname "$0")/../lib/guest.sh"
PEER_DIR="$SOURCE_DIR/../shared/peers/katapult/scripts"
[ -f "$PEER_DIR/flashtool.py" ] || skip "flashtool.py not found at $PEER_DIR"
[ -x /usr/bin/python3 ] || skip "/usr/bin/python3 not installed"
source "$(dirname "$0")/../lib/klipper_build.sh"
use_guest
need_klipper_builds
klipper_build f103-none 'CONFIG_LOW_LEVEL_OPTIONS=y\nCONFIG_MACH_STM32=y\nCONFIG_MACH_STM32F103=y\nCONFIG_STM32_FLASH_START_0000=y\n'
klipper_build f103-8k 'CONFIG_LOW_LEVEL_OPTIONS=y\nCONFIG_MACH_STM32=y\nCONFIG_MACH_STM32F103=y\nCONFIG_STM32_FLASH_START_2000=y\n'

make_guest_dir katapult-can-guest
cp "$MCUFLASH_SIM" "$GUEST_DIR/mcuflash-sim"
cp "$PEER_DIR/flashtool.py" "$GUEST_DIR/"
head -c 24000 /dev/urandom >"$GUEST_DIR/app.bin"
head -c 20011 /dev/urandom >"$GUEST_DIR/app2.bin"
head -c 16000 /dev/urandom >"$GUEST_DIR/app3.bin"
UUID_A=0a1b2c3d4e5f
UUID_B=112233445566
UUID_C=0e0d81e4210c
cp "$KLIPPER_CACHE/f103-none/out/klipper.bin" "$GUEST_DIR/klipper-running.bin"
cp "$KLIPPER_CACHE/f103-8k/out/klipper.bin" "$GUEST_DIR/klipper-update.bin"
running_version=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["version"])' "$KLIPPER_CACHE/f103-none/out/klipper.dict")
update_version=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["version"])' "$KLIPPER_CACHE/f103-8k/out/klipper.dict")

cd "$GUEST_DIR"
started=$(date +%s%N)
set +e
"$GUEST_RUN" --timeout 280 -- sh -c "
  ms() { echo \$(( (\$(date +%s%N) - \$1) / 1000000 )); }
  started() { i=0; until grep -q 'on CAN' \$1; do i=\$((i+1)); [ \$i -gt 100 ] && return 1; sleep 0.1; done; }
  ./mcuflash-sim katapult --can vcan0 --chip stm32f103xe --uuid $UUID_A --flash-file flashA.bin >simA.txt 2>&1 &
  simA=\$!
  started simA.txt || exit 11
  /usr/bin/python3 flashtool.py -i vcan0 -q >query.txt 2>&1 || exit 12
  t0=\$(date +%s%N)
  /usr/bin/python3 flashtool.py -i vcan0 -u $UUID_A -f app.bin >flashtool.txt 2>&1 || exit 13
  echo \"flashtool.py ms \$(ms \$t0)\" >>flashtool.txt
  cp flashA.bin flashA-after-flashtool.bin
  ./mcuflash list --can vcan0 >list.txt 2>&1 || exit 14
  ./mcuflash list --can vcan0 --json >list.json 2>&1 || exit 15
  t0=\$(date +%s%N)
  ./mcuflash flash app2.bin -d can:vcan0:$UUID_A >flashA.txt 2>&1 || exit 16
  echo \"mcuflash ms \$(ms \$t0)\" >>flashA.txt

  ./mcuflash-sim katapult --can vcan0 --chip rp2040 --uuid $UUID_B --klipper --no-timing --faults tx:drop@byte=300,tx:drop@byte=9000 --flash-file flashB.bin >simB.txt 2>&1 &
  simB=\$!
  started simB.txt || exit 17
  ./mcuflash flash app3.bin -d can:vcan0 >several.txt 2>&1; echo \"exit \$?\" >>several.txt
  t0=\$(date +%s%N)
  ./mcuflash flash app3.bin -d can:vcan0:$UUID_B >flashB.txt 2>&1 || exit 18
  echo \"mcuflash ms \$(ms \$t0)\" >>flashB.txt
  /usr/bin/python3 flashtool.py -i vcan0 -u $UUID_B -r >request.txt 2>&1 || exit 19
  /usr/bin/python3 flashtool.py -i vcan0 -q >query2.txt 2>&1 || exit 20

  ./mcuflash-sim katapult --can vcan0 --chip stm32f103xe --uuid $UUID_C --klipper --firmware klipper-running.bin --no-timing --flash-file flashC.bin >simC.txt 2>&1 &
  simC=\$!
  started simC.txt || exit 21
  ./mcuflash identify -d can:vcan0:$UUID_C --json >identifyC.json 2>&1 || exit 22
  ./mcuflash flash klipper-update.bin -d can:vcan0:$UUID_C --klipper-config none >flashC.txt 2>&1 || exit 23

  ./mcuflash flash app3.bin -d can:nosuch0 >absent.txt 2>&1; echo \"exit \$?\" >>absent.txt
  ip link add dev vcan1 type vcan 2>>down.txt
  ./mcuflash flash app3.bin -d can:vcan1 >>down.txt 2>&1; echo \"exit \$?\" >>down.txt
  ./mcuflash flash app3.bin -d can:lo >notcan.txt 2>&1; echo \"exit \$?\" >>notcan.txt
  ./mcuflash flash app3.bin -d can:vcan0:999999999999 >unknown.txt 2>&1; echo \"exit \$?\" >>unknown.txt
  kill \$simA \$simB \$simC; wait \$simA; wait \$simB; wait \$simC
  exit 0
" >"$WORK/guest.out" 2>"$WORK/guest.err"
rc=$?
set -e
took_ms=$((($(date +%s%N) - started) / 1000000))
guest_succeeded "$rc" "11/17 a simulator did not start, 12 flashtool.py -q, 13 flashtool.py -f, 14/15 mcuflash list --can, 16 mcuflash flash node A, 18 mcuflash flash node B, 19 flashtool.py -r, 20 flashtool.py -q again, 21 node C did not start, 22 identify node C, 23 flash node C"

expect_not() { ! grep -qF -- "$1" "$GUEST_DIR/$2" || case_fail "not expected in $2: $1"; }
expect "Detected UUID: $UUID_A, Application: Katapult" query.txt
expect "Verification Complete" flashtool.txt
expect "Programming Complete" flashtool.txt
expect "can:vcan0:$UUID_A  Klipper" list.txt
expect "mcuflash flash klipper.bin -d can:vcan0:$UUID_A" list.txt
python3 - "$GUEST_DIR/list.json" "$UUID_A" <<'PY' || case_fail "list --json lacks node A"
import json, sys
result = [json.loads(l) for l in open(sys.argv[1]) if l.startswith("{")][-1]
nodes = [n for n in result["can"] if n["uuid"] == sys.argv[2]]
assert nodes and nodes[0]["runs"] == "klipper" and nodes[0]["device"] == f"can:vcan0:{sys.argv[2]}", result
PY
expect "runs Klipper: asking it to reboot into Katapult" flashA.txt
expect "verified (read back)" flashA.txt
expect "exit 64" several.txt
expect "-d can:vcan0:$UUID_A" several.txt
expect "-d can:vcan0:$UUID_B" several.txt
expect "runs Klipper: asking it to reboot into Katapult" flashB.txt
expect "verified (read back)" flashB.txt
expect "Detected UUID: $UUID_B, Application: Katapult" query2.txt
python3 - "$GUEST_DIR/identifyC.json" "$running_version" <<'PY' || case_fail "identify over CAN: $(cat "$GUEST_DIR/identifyC.json")"
import json, sys
r = [json.loads(l) for l in open(sys.argv[1]) if l.startswith("{")][-1]
assert r["command"] == "identify" and r["version"] == sys.argv[2] and r["mcu"] == "stm32f103xe", r
PY
expect "reboot into Katapult" flashC.txt
expect "verified (read back)" flashC.txt
expect "running Klipper $update_version (the image's build)" flashC.txt
expect "exit 69" absent.txt
expect "ip link set nosuch0 up type can bitrate 1000000" absent.txt
expect "USB-to-CAN adapter or bridge board plugged in" absent.txt
expect "exit 69" down.txt
expect "is down" down.txt
expect "exit 64" notcan.txt
expect "not a CAN one" notcan.txt
expect "exit 69" unknown.txt
expect "no node with UUID 999999999999" unknown.txt
expect "-d can:vcan0:$UUID_A" unknown.txt
for sim in simA simB simC; do
  expect "stopped;" $sim.txt
  expect_not "refused (protected)" $sim.txt
done
# Klipper's bootloader request: A once (mcuflash; flashtool.py's request came while A ran Katapult),
# B twice (mcuflash, then flashtool.py -r).
expect "1 reboots into Katapult" simA.txt
expect "2 reboots into Katapult" simB.txt
expect "fault: tx byte 9000" simB.txt  # answers were lost, and the client's retries made up for them

python3 - "$GUEST_DIR" <<'PY' || case_fail "the flash files are not what was written"
import sys
d = sys.argv[1]
problems = []
def check(flash_name, app_name, offset, size, who):
    flash = open(f"{d}/{flash_name}", "rb").read()
    app = open(f"{d}/{app_name}", "rb").read()
    if size and len(flash) != size: problems.append(f"{flash_name} is {len(flash)} bytes, not {size}")
    if flash[offset:offset + len(app)] != app: problems.append(f"{who}: the image is not at {offset:#x}")
    if not flash[:offset].startswith(b"[mcuflash-sim placeholder: katapult]"): problems.append(f"{who}: the bootloader area changed")
check("flashA-after-flashtool.bin", "app.bin", 0x2000, 512 * 1024, "flashtool.py on node A")
check("flashA.bin", "app2.bin", 0x2000, 512 * 1024, "mcuflash on node A")
check("flashB.bin", "app3.bin", 0x4000, None, "mcuflash on node B")
check("flashC.bin", "klipper-update.bin", 0x2000, None, "mcuflash on node C")
if problems: sys.exit("\n".join(problems))
PY
grep -ah "ms " "$GUEST_DIR/flashtool.txt" "$GUEST_DIR/flashA.txt" "$GUEST_DIR/flashB.txt"
echo "ok: flashtool.py and mcuflash flashed simulated Katapult nodes through the guest kernel's vcan0 (${took_ms} ms with boot)"
echo "ok: identify over CAN ($(python3 -c 'import json,sys; r=[json.loads(l) for l in open(sys.argv[1]) if l.startswith("{")][-1]; print("%s in %.2f s" % (r["version"], r["seconds"]))' "$GUEST_DIR/identifyC.json")); $(grep -o 'the board is back after [0-9.]* s' "$GUEST_DIR/flashC.txt") running the update"
