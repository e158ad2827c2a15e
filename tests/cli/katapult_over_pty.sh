#!/usr/bin/env bash
# mcuflash against `mcuflash-sim katapult` on a pty (a USB-CDC or UART board in Katapult): flash +
# verify a raw .bin (placed at the application start Katapult reports), `info` shows the MCU and the
# application start, `read` matches the simulator's flash file; refused: an image into Katapult's own
# 8 KiB (exit 65, nothing written) and a --chip that is not the MCU Katapult reports (exit 64); then
# faults: answers lost or damaged on the way back (a verified flash or a clear error, never success
# with wrong flash), a damaged frame on the way in (Katapult stops taking commands: a clear timeout);
# and the in-process simulator (-d sim:katapult:rp2040). Resets mid-transfer: tests/sim.
source "$(dirname "$0")/../lib/common.sh"

APP=0x08002000
head -c 20000 /dev/urandom >"$WORK/app.bin"

dump_logs() { for log in "$WORK"/*.log "$WORK"/*.err; do [ -f "$log" ] && { echo "--- $log" >&2; tail -n 20 "$log" >&2; }; done; }
die() { dump_logs; fail "$*"; }

# holds FLASH: the app at the application start, the bootloader's placeholder below.
holds() {
  python3 - "$1" "$WORK/app.bin" <<'PY'
import sys
flash, app = open(sys.argv[1], "rb").read(), open(sys.argv[2], "rb").read()
if flash[0x2000:0x2000 + len(app)] != app: sys.exit("the image is not at the application start")
if not flash[:0x2000].startswith(b"[mcuflash-sim placeholder: katapult]"): sys.exit("the bootloader region changed")
PY
}

# ---- a clean line (wire and flash timing on) ----
start_sim clean katapult --chip stm32f103xe --flash-file "$WORK/clean.bin"
"$MCUFLASH" flash "$WORK/app.bin" -d "$WORK/clean" -p katapult >"$WORK/flash.out" 2>"$WORK/flash.err" || die "flash failed"
grep -q "verified (read back)" "$WORK/flash.out" || die "no verify: $(cat "$WORK/flash.out")"
grep -q "application started" "$WORK/flash.out" || die "the application was not started"
grep -q "placed at 0x08002000" "$WORK/flash.err" || die "the raw binary was not placed at Katapult's application start"
"$MCUFLASH" info -d "$WORK/clean" -p katapult >"$WORK/info.out" 2>"$WORK/info.err" || die "info failed"
grep -Eq '^mcu \(Katapult\): +stm32f103xe$' "$WORK/info.out" || die "info lacks the MCU: $(cat "$WORK/info.out")"
grep -Eq '^application start: +0x08002000$' "$WORK/info.out" || die "info lacks the application start"
grep -q "no checksum command" "$WORK/info.out" || die "info does not say how Katapult verifies"
"$MCUFLASH" read -d "$WORK/clean" -p katapult --address $APP --length 20000 -o "$WORK/back.bin" -q \
  >"$WORK/read.out" 2>"$WORK/read.err" || die "read failed"
cmp "$WORK/back.bin" "$WORK/app.bin" || die "read-back differs from the image"
expect_exit 65 "bootloader" -- "$MCUFLASH" flash "$WORK/app.bin" -d "$WORK/clean" -p katapult --address 0x08000000
expect_exit 64 "reports MCU 'stm32f103xe'" -- "$MCUFLASH" flash "$WORK/app.bin" -d "$WORK/clean" -p katapult --chip stm32f407xg
stop_background
holds "$WORK/clean.bin" || die "the flash file is wrong"
echo "ok: clean line: flash+verify at $APP, info, read-back; below the application and a wrong --chip refused"

# ---- faults (no timing; each lost answer costs the client's real 2-5 s timeout) ----
outcomes=""
for faults in "tx:drop@byte=3000,tx:corrupt@byte=9000:mask=0x04"; do
  rm -f "$WORK/faulty.bin"
  start_sim faulty katapult --chip stm32f103xe --no-timing --flash-file "$WORK/faulty.bin" --faults "$faults"
  set +e
  timeout 120 "$MCUFLASH" flash "$WORK/app.bin" -d "$WORK/faulty" -p katapult -q >"$WORK/faulty.out" 2>"$WORK/faulty.err"
  code=$?
  set -e
  stop_background
  case $code in
    0) holds "$WORK/faulty.bin" || die "faults $faults: success reported with wrong flash"; outcomes+=" verified" ;;
    1 | 74 | 75) grep -q '^error: ' "$WORK/faulty.err" || die "faults $faults: exit $code without an error"; outcomes+=" exit-$code" ;;
    *) die "faults $faults: exit $code: $(cat "$WORK/faulty.err")" ;;
  esac
done
echo "ok: answers lost or damaged:$outcomes"

# A frame damaged on its way in: Katapult stops taking commands, the client says so (75).
rm -f "$WORK/wedge.bin"
start_sim wedge katapult --chip stm32f103xe --no-timing --flash-file "$WORK/wedge.bin" --faults "rx:corrupt@byte=3000:mask=0x10"
expect_exit 75 "SEND_BLOCK at 0x0800.*no answer" -- timeout 120 "$MCUFLASH" flash "$WORK/app.bin" -d "$WORK/wedge" -p katapult
stop_background
echo "ok: a frame damaged on the way in ends in a clear timeout"

# ---- in process ----
"$MCUFLASH" flash "$WORK/app.bin" -d sim:katapult:rp2040 --sim-fast >"$WORK/sim.out" 2>"$WORK/sim.err" || die "sim:katapult:rp2040 failed"
grep -q "verified (read back)" "$WORK/sim.out" || die "sim:katapult did not verify"
grep -q "placed at 0x10004000" "$WORK/sim.err" || die "sim:katapult:rp2040: not at 0x10004000"
echo "all katapult pty cases passed"
