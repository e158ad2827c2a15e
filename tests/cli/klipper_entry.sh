#!/usr/bin/env bash
# A board running Klipper, named by its port (usb-Klipper_<mcu>_<serial>-if00): mcuflash asks it to reboot
# into its bootloader (the 1200-baud request), waits for the bootloader's port to appear (inotify and
# udev events), and flashes that. `mcuflash-sim klipper` plays the board: a pty that, set to 1200 baud
# or sent Klipper's UART request, disappears and comes back as the bootloader's simulator.
#  1. Katapult on an STM32F103: flashed at 0x08002000 through the usb-katapult_... port that appeared;
#  2. the Arduino Zero bootloader (SAM-BA) on a SAMD21: the new port is probed, found, flashed at 0x2000;
#  3. Katapult's own flashtool.py -r (a real peer) sends the UART request: the bootloader appears;
#     mcuflash -p katapult on a UART Klipper sends the same request, then flashes Katapult there;
#  4. refusals: the port held by another program (exit 64, names it, the board stays in Klipper);
#     --no-reset, a mistyped -p, --sim-fast (64, before the request); a board that never reboots (69
#     after the wait, with the way out).
source "$(dirname "$0")/../lib/common.sh"

head -c 30000 /dev/urandom >"$WORK/app.bin"
klipper_port() { echo "$WORK/usb-Klipper_$1_SIM0001-if00"; }
# start_klipper LOG CHIP ARGS...: a simulated board running Klipper on its port; sets port.
start_klipper() {
  local log=$1 chip=$2; shift 2
  port=$(klipper_port "$chip")
  "$MCUFLASH_SIM" klipper --chip "$chip" --pty "$port" "$@" 2>"$WORK/$log" &
  BACKGROUND_PIDS+=($!)
  wait_for_path "$port"
}

# 1. Katapult
start_klipper sim1.log stm32f103xe --bootloader katapult --flash-file "$WORK/f103.bin"
start=$(date +%s%N)
"$MCUFLASH" flash "$WORK/app.bin" -d "$port" --klipper-config none >"$WORK/out" 2>"$WORK/err" ||
  fail "flash through the Klipper port: $(cat "$WORK/err" "$WORK/sim1.log")"
took=$(( ($(date +%s%N) - start) / 1000000 ))
grep -q "asking it to reboot into its bootloader" "$WORK/err" || fail "no word of the request: $(cat "$WORK/err")"
grep -q "came back after .* s as $WORK/usb-katapult_stm32f103xe_SIM0001-if00" "$WORK/err" || fail "not Katapult's port: $(cat "$WORK/err")"
grep -q "the port was set to 1200 baud" "$WORK/sim1.log" || fail "the simulator saw no 1200-baud request"
stop_background
cmp -n 30000 -i 0:8192 "$WORK/app.bin" "$WORK/f103.bin" || fail "the flash does not hold the image at 0x08002000"
head -c 8192 "$WORK/f103.bin" | grep -aq "mcuflash-sim placeholder: katapult" || fail "Katapult's area was written"
printf 'ok: Klipper -> Katapult on a stm32f103xe (%s), flashed in %d ms\n' "$(grep -o 'came back after [0-9.]* s' "$WORK/err")" "$took"

# 2. SAMD21: the Arduino Zero bootloader speaks SAM-BA; its port's name says nothing, so it is probed.
start_klipper sim2.log samd21g18a --bootloader arduino_zero --flash-file "$WORK/samd.bin"
start=$(date +%s%N)
"$MCUFLASH" flash "$WORK/app.bin" -d "$port" --klipper-config none >"$WORK/out" 2>"$WORK/err" ||
  fail "flash through the SAMD21's Klipper port: $(cat "$WORK/err" "$WORK/sim2.log")"
took=$(( ($(date +%s%N) - start) / 1000000 ))
grep -q "found .*(samba)" "$WORK/err" || fail "SAM-BA was not detected: $(cat "$WORK/err")"
stop_background
cmp -n 30000 -i 0:8192 "$WORK/app.bin" "$WORK/samd.bin" || fail "the SAMD21 does not hold the image at 0x2000"
printf 'ok: Klipper -> SAM-BA on a samd21g18a (%s), detected and flashed in %d ms\n' "$(grep -o 'came back after [0-9.]* s' "$WORK/err")" "$took"

# 3. Katapult's flashtool.py -r sends Klipper's UART request (the way it asks a Klipper on a UART).
# The peer runs from a copy (../shared/peers stays untouched), with Debian's python3 and python3-serial.
FLASHTOOL=$SOURCE_DIR/../shared/peers/katapult/scripts/flashtool.py
PY=/usr/bin/python3
[ -x "$PY" ] || PY=$(command -v python3)
if [ -f "$FLASHTOOL" ] && "$PY" -c 'import serial' 2>/dev/null; then
  mkdir -p "$WORK/peer" && cp "$FLASHTOOL" "$WORK/peer/"
  start_klipper sim3.log stm32f446xe --no-timing
  (cd "$WORK/peer" && timeout 30 "$PY" flashtool.py -r -d "$port" -b 250000 >"$WORK/flashtool.out" 2>&1) ||
    fail "flashtool.py -r: $(cat "$WORK/flashtool.out")"
  wait_for_path "$WORK/usb-katapult_stm32f446xe_SIM0001-if00"
  grep -q "the UART bootloader request arrived" "$WORK/sim3.log" || fail "the simulator missed the UART request"
  stop_background
  echo "ok: flashtool.py -r's UART request reboots the simulated Klipper into Katapult"
else
  echo "skipped: flashtool.py (or python3-serial) is not here"
fi

# 3b. Klipper on a UART (no USB name): -p katapult finds nobody, sends Klipper's UART request, and
# Katapult then answers on the same port.
"$MCUFLASH_SIM" klipper --chip stm32f103xe --pty "$WORK/uart0" --bootloader-pty "$WORK/uart0" \
  --flash-file "$WORK/uart.bin" 2>"$WORK/sim3b.log" &
BACKGROUND_PIDS+=($!)
wait_for_path "$WORK/uart0"
"$MCUFLASH" flash "$WORK/app.bin" -d "$WORK/uart0" -p katapult --klipper-config none >"$WORK/out" 2>"$WORK/err" ||
  fail "flash through Klipper's UART request: $(cat "$WORK/err" "$WORK/sim3b.log")"
grep -q "sending Klipper's serial bootloader request" "$WORK/err" || fail "no word of the UART request: $(cat "$WORK/err")"
grep -q "the UART bootloader request arrived" "$WORK/sim3b.log" || fail "the simulator missed mcuflash's UART request"
stop_background
cmp -n 30000 -i 0:8192 "$WORK/app.bin" "$WORK/uart.bin" || fail "the UART board does not hold the image at 0x08002000"
echo "ok: Klipper on a UART -> Katapult by Klipper's serial request, flashed"

# 4. Refusals.
start_klipper sim4.log stm32f407xg --no-timing
sleep 60 <"$port" &
holder=$!
BACKGROUND_PIDS+=($holder)
expect_exit 64 "is Klipper running on the stm32f407xg, and sleep \(pid $holder\) holds it open" -- \
  "$MCUFLASH" flash "$WORK/app.bin" -d "$port" --klipper-config none
grep -q "systemctl stop klipper" "$WORK/err" || fail "no way out when the port is held: $(cat "$WORK/err")"
kill "$holder"; wait "$holder" 2>/dev/null || true
[ -e "$port" ] || fail "the board left Klipper although the port was held"
expect_exit 64 "is Klipper running on the stm32f407xg, not a bootloader" -- \
  "$MCUFLASH" info -d "$port" --no-reset
[ -e "$port" ] || fail "--no-reset rebooted the board"
# Options wrong in themselves are refused before the board is asked to reboot.
expect_exit 64 "unknown protocol 'katapul'" -- "$MCUFLASH" flash "$WORK/app.bin" -d "$port" -p katapul --klipper-config none
[ -e "$port" ] || fail "a mistyped -p rebooted the board"
expect_exit 64 "applies to simulated devices" -- "$MCUFLASH" flash "$WORK/app.bin" -d "$port" --sim-fast --klipper-config none
[ -e "$port" ] || fail "--sim-fast on a real port rebooted the board"
stop_background
echo "ok: a held port, --no-reset, a mistyped -p and --sim-fast are refused; the board stays in Klipper"

# A port named as a running Klipper that ignores the request (here an STK500v1 simulator behind it).
start_sim deaf stk500v1 --chip atmega328p --no-timing
ln -s "$WORK/deaf" "$WORK/usb-Klipper_stm32f103xe_DEAF-if00"
start=$(date +%s%N)
expect_exit 69 "did not reboot within 10 s of the 1200-baud request" -- \
  "$MCUFLASH" info -d "$WORK/usb-Klipper_stm32f103xe_DEAF-if00"
took=$(( ($(date +%s%N) - start) / 1000000 ))
grep -q "BOOT0" "$WORK/err" || fail "no way out for an STM32 that does not reboot: $(cat "$WORK/err")"
stop_background
printf 'ok: a Klipper that never reboots: exit 69 after %d ms, with the BOOT0 way out\n' "$took"
