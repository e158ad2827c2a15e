#!/usr/bin/env bash
# Klipper's MCU protocol, identify only, checked against Klipper's own host: a real Klipper build for
# an STM32F103 (its klipper.bin) runs in `mcuflash-sim klipper --firmware klipper.bin`, which finds the
# compressed data dictionary in the image and answers identify, get_uptime and get_clock on a pty.
# Klipper's klippy/console.py (copied to a temporary folder; it compiles its C helper there) connects,
# identifies and prints the build's version; then `mcuflash identify` reads the same version, MCU and
# build, tells that the board runs that image and not another build's, and refuses or explains a port
# held by another program and a port where nothing answers like Klipper. Last, the whole update of a
# board that runs Klipper with Katapult under it: `mcuflash flash klipper.bin -d usb-Klipper_...` asks it
# into Katapult, flashes and verifies the new build, and the simulated board comes back running what
# its flash now holds, which mcuflash identifies as the image's build.
source "$(dirname "$0")/../lib/common.sh"
source "$(dirname "$0")/../lib/klipper_build.sh"
need_klipper_builds
PY=/usr/bin/python3  # Debian's, which sees python3-serial, -greenlet and -cffi
"$PY" -c 'import serial, greenlet, cffi' 2>/dev/null || skip "python3-serial, python3-greenlet or python3-cffi missing"
command -v gcc >/dev/null || skip "gcc missing (klippy compiles its C helper)"

klipper_build f103-28k 'CONFIG_LOW_LEVEL_OPTIONS=y\nCONFIG_MACH_STM32=y\nCONFIG_MACH_STM32F103=y\nCONFIG_STM32_FLASH_START_7000=y\n'
klipper_build f103-8k 'CONFIG_LOW_LEVEL_OPTIONS=y\nCONFIG_MACH_STM32=y\nCONFIG_MACH_STM32F103=y\nCONFIG_STM32_FLASH_START_2000=y\n'
klipper_build f446-32k 'CONFIG_LOW_LEVEL_OPTIONS=y\nCONFIG_MACH_STM32=y\nCONFIG_MACH_STM32F446=y\nCONFIG_STM32_FLASH_START_8000=y\n'
build="$KLIPPER_CACHE/f103-28k/out"
version=$("$PY" -c 'import json,sys; print(json.load(open(sys.argv[1]))["version"])' "$build/klipper.dict")
[ -n "$version" ] || fail "no version in $build/klipper.dict"

port="$WORK/usb-Klipper_stm32f103xe_SIM0001-if00"
"$MCUFLASH_SIM" klipper --chip stm32f103xe --pty "$port" --firmware "$build/klipper.bin" -v 2>"$WORK/sim.log" &
BACKGROUND_PIDS+=($!)
wait_for_path "$port"
grep -qF "Klipper $version running" "$WORK/sim.log" || fail "the simulator did not find the build's version: $(cat "$WORK/sim.log")"

# Klipper's own host: console.py connects, identifies, syncs clocks, and says which version it found.
cp -r "$KLIPPER_PEERS/klippy" "$WORK/klippy"
# Its keyboard is a fifo held open (no input, no EOF) until it says it is connected.
mkfifo "$WORK/keyboard"
"$PY" "$WORK/klippy/console.py" -b 250000 "$port" <"$WORK/keyboard" >"$WORK/console.out" 2>&1 &
console=$!
BACKGROUND_PIDS+=($console)
exec 4>"$WORK/keyboard"
for ((i = 0; i < 600; i++)); do grep -q "connected  " "$WORK/console.out" && break; sleep 0.1; done
kill "$console" 2>/dev/null || true
exec 4>&-
grep -qF "Loaded " "$WORK/console.out" && grep -qF "$version" "$WORK/console.out" ||
  fail "console.py did not identify the simulated MCU: $(tail -20 "$WORK/console.out") $(tail -5 "$WORK/sim.log")"
grep -q "MCU=stm32f103xe" "$WORK/console.out" || fail "console.py did not read the MCU config: $(tail -5 "$WORK/console.out")"
grep -q "connected" "$WORK/console.out" || fail "console.py did not finish connecting (clock sync): $(tail -5 "$WORK/console.out")"
grep -m1 "Loaded " "$WORK/console.out"
echo "ok: klippy/console.py identified the simulated MCU ($version) and synced its clock"

# mcuflash identify: the same build, in words and JSON, and whether it is the image's.
"$MCUFLASH" identify -d "$port" --image "$build/klipper.bin" >"$WORK/identify.out" 2>&1 ||
  fail "identify failed: $(cat "$WORK/identify.out")"
grep -qF "Klipper $version on stm32f103xe at 72 MHz" "$WORK/identify.out" &&
  grep -q "nothing to update" "$WORK/identify.out" || fail "identify says: $(cat "$WORK/identify.out")"
"$MCUFLASH" identify -d "$port" --image "$KLIPPER_CACHE/f446-32k/out/klipper.elf" --json >"$WORK/identify.json" 2>"$WORK/identify.err" ||
  fail "identify --json failed: $(cat "$WORK/identify.err")"
python3 - "$WORK/identify.json" "$version" "$build/klipper.dict" <<'PY' || fail "identify JSON: $(cat "$WORK/identify.json")"
import json, sys
r = json.loads(open(sys.argv[1]).read().splitlines()[-1])
d = json.load(open(sys.argv[3]))
assert r["command"] == "identify" and r["version"] == sys.argv[2] and r["mcu"] == "stm32f103xe", r
assert r["build_versions"] == d["build_versions"], r
assert r["commands"] == len(d["commands"]) and r["responses"] == len(d["responses"]), r
assert r["runs_image"] is False and r["image_version"], r
PY
cat "$WORK/identify.out"
echo "ok: mcuflash identify read the version, MCU and build, and told this image's build from another's"

# A port another program holds (klippy would) is refused with the way out; nothing answering like
# Klipper (a running Klipper simulator without a build) times out with the usual causes.
exec 3<>"$port"
expect_exit 64 "systemctl stop klipper" -- "$MCUFLASH" identify -d "$port"
exec 3<&-
silent="$WORK/usb-Klipper_stm32f103xe_SIM0002-if00"
"$MCUFLASH_SIM" klipper --chip stm32f103xe --pty "$silent" 2>"$WORK/silent.log" &
BACKGROUND_PIDS+=($!)
wait_for_path "$silent"
expect_exit 75 "nothing answered like Klipper" -- "$MCUFLASH" identify -d "$silent"
grep -q "baud" "$WORK/err" || fail "the timeout gives no hint: $(cat "$WORK/err")"
echo "ok: a held port is refused (64), a silent port times out (75) with the usual causes"

# The update of a board that runs an older build, with Katapult (8 KiB) under it.
board="$WORK/board"
mkdir -p "$board"
update="$KLIPPER_CACHE/f103-8k/out"
"$MCUFLASH_SIM" klipper --chip stm32f103xe --pty "$board/usb-Klipper_stm32f103xe_SIM0003-if00" --serial SIM0003 \
  --firmware "$build/klipper.bin" --flash-file "$board/flash.bin" --no-timing 2>"$WORK/board.log" &
BACKGROUND_PIDS+=($!)
wait_for_path "$board/usb-Klipper_stm32f103xe_SIM0003-if00"
"$MCUFLASH" flash "$update/klipper.bin" -d "$board/usb-Klipper_stm32f103xe_SIM0003-if00" --json >"$WORK/update.json" 2>"$WORK/update.err" ||
  fail "the update failed: $(tail -3 "$WORK/update.json") $(cat "$WORK/update.err") $(tail -5 "$WORK/board.log")"
python3 - "$WORK/update.json" "$update/klipper.dict" <<'PY' || fail "update JSON: $(tail -1 "$WORK/update.json") $(cat "$WORK/update.err")"
import json, sys
r = json.loads(open(sys.argv[1]).read().splitlines()[-1])
d = json.load(open(sys.argv[2]))
assert r["verified"] is True and r["started"] is True, r
back = r["klipper_after"]
assert back["runs_image"] is True and back["version"] == d["version"] and back["mcu"] == "stm32f103xe", back
PY
grep -q "Klipper .* running on a stm32f103xe" "$WORK/board.log" && [ "$(grep -c 'Klipper .* running' "$WORK/board.log")" -ge 2 ] ||
  fail "the simulated board did not come back as Klipper: $(cat "$WORK/board.log")"
echo "ok: flash from a running Klipper: Katapult, verified, and back running the image's build ($(python3 -c 'import json,sys; r=json.loads(open(sys.argv[1]).read().splitlines()[-1]); print("%.1f s" % r["klipper_after"]["seconds"])' "$WORK/update.json"))"

# The whole printer: printer.cfg with an [include], two MCUs on serial ports (the first simulator and
# the updated board), one on CAN (not asked yet: said so, and the exit code tells).
printf '[mcu]\nserial: %s\n[include boards/*.cfg]\n[printer]\nkinematics: none\n' "$port" >"$WORK/printer.cfg"
mkdir -p "$WORK/boards"
printf '[mcu toolhead]\nserial: %s\nbaud: 250000\n' "$board/usb-Klipper_stm32f103xe_SIM0003-if00" >"$WORK/boards/toolhead.cfg"
"$MCUFLASH" printer status --config "$WORK/printer.cfg" --json >"$WORK/status.json" 2>"$WORK/status.err" ||
  fail "printer status: $(cat "$WORK/status.err")"
python3 - "$WORK/status.json" "$build/klipper.dict" "$update/klipper.dict" <<'PY' || fail "printer status JSON: $(tail -1 "$WORK/status.json")"
import json, sys
r = json.loads(open(sys.argv[1]).read().splitlines()[-1])
first, second = (json.load(open(p))["version"] for p in sys.argv[2:4])
mcus = {m["name"]: m for m in r["mcus"]}
assert r["answered"] == 2 and len(r["files"]) == 2, r
assert mcus["mcu"]["version"] == first and mcus["toolhead"]["version"] == second, mcus
assert mcus["mcu"]["mcu"] == "stm32f103xe" and mcus["toolhead"]["status"] == "running", mcus
PY
printf '[mcu ebb]\ncanbus_uuid: 0e0d81e4210c\n' >"$WORK/boards/ebb.cfg"
expect_exit 69 "1 of 3 MCUs did not tell" -- "$MCUFLASH" printer status --config "$WORK/printer.cfg"
grep -q "can:can0:0e0d81e4210c" "$WORK/out" && grep -q "no answer" "$WORK/out" || fail "the CAN MCU is not explained: $(cat "$WORK/out")"
echo "ok: printer status: two MCUs identified through printer.cfg and its include, the CAN one (no CAN here) said unanswered (69)"

# Every printer.cfg of Klipper's config/ folder with an [mcu] reads without error (the ports are absent).
started=$(date +%s%N)
count=0
for cfg in "$KLIPPER_PEERS"/config/*.cfg; do
  grep -q '^\[mcu' "$cfg" || continue
  count=$((count + 1))
  set +e
  "$MCUFLASH" printer status --config "$cfg" --json >"$WORK/cfg.json" 2>/dev/null
  set -e
  grep -q '"command":"printer status"' "$WORK/cfg.json" ||
    fail "$cfg: $(tail -1 "$WORK/cfg.json")"
done
echo "ok: $count printer.cfg files of Klipper's config/ read in $((($(date +%s%N) - started) / 1000000)) ms"
