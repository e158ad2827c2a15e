#!/usr/bin/env bash
# Ctrl-C, SIGTERM and SIGKILL in the middle of writing, on each serial protocol, Katapult's included
# (simulators on ptys, with their wire and flash timing): SIGINT and SIGTERM end the flash at the
# next exchange with a message saying what was written and exit 130 / 143; after any of the three,
# the same command run again leaves the image in the flash, byte for byte, and the bootloader as it was.
source "$(dirname "$0")/../lib/common.sh"

# interrupt NAME SIGNAL WANT-EXIT IMAGE FLASH-FILE OFFSET SIM-ARGS -- FLASH-ARGS...
interrupt() {
  local name=$1 signal=$2 want=$3 image=$4 flash=$5 offset=$6; shift 6
  local sim_args=() flash_args=()
  while [ "$1" != "--" ]; do sim_args+=("$1"); shift; done
  shift
  flash_args=("$@")
  start_sim "$name" "${sim_args[@]}" --flash-file "$flash"
  cp "$flash" "$WORK/$name.before" 2>/dev/null || true
  "$MCUFLASH" flash "$image" -d "$WORK/$name" "${flash_args[@]}" >"$WORK/$name.out" 2>"$WORK/$name.err" &
  local pid=$! i
  for ((i = 0; i < 600; i++)); do grep -q "^write: 25%" "$WORK/$name.err" && break; sleep 0.05; done
  grep -q "^write: 25%" "$WORK/$name.err" || fail "$name: writing did not start: $(cat "$WORK/$name.err")"
  kill -"$signal" "$pid"
  set +e; wait "$pid"; local code=$?; set -e
  [ "$code" -eq "$want" ] || fail "$name: SIG$signal gave exit $code, expected $want: $(tail -5 "$WORK/$name.err")"
  if [ "$signal" != KILL ]; then
    grep -Eq "interrupted \(Ctrl-C\)|stopped \(SIGTERM\)" "$WORK/$name.err" || fail "$name: no word of the signal: $(tail -5 "$WORK/$name.err")"
    grep -q "bytes written before this" "$WORK/$name.err" || fail "$name: the state is not said: $(tail -5 "$WORK/$name.err")"
    grep -q "Retry: mcuflash flash" "$WORK/$name.err" || fail "$name: no retry command: $(tail -5 "$WORK/$name.err")"
  fi
  "$MCUFLASH" flash "$image" -d "$WORK/$name" "${flash_args[@]}" -q 2>"$WORK/$name.again" ||
    fail "$name: the same command again after SIG$signal failed: $(cat "$WORK/$name.again")"
  stop_background
  local size; size=$(stat -c %s "$image")
  cmp -n "$size" -i "0:$offset" "$image" "$flash" || fail "$name: the flash does not hold the image after SIG$signal and a rerun"
  echo "ok: $name: SIG$signal -> exit $code, then the same command: the image is in the flash"
}

head -c 20000 /dev/urandom >"$WORK/avr.bin"
head -c 24000 /dev/urandom >"$WORK/arm.bin"
interrupt optiboot INT 130 "$WORK/avr.bin" "$WORK/optiboot.flash" 0 stk500v1 --chip atmega328p -- -p stk500v1 --address 0
interrupt mega TERM 143 "$WORK/avr.bin" "$WORK/mega.flash" 0 stk500v2 --chip atmega2560 -- -p stk500v2 --address 0
interrupt stm32 INT 130 "$WORK/arm.bin" "$WORK/stm32.flash" 0 stm32-uart --chip stm32f103xb -- -p stm32-uart --address 0x08000000 --write-boot-area
interrupt zero INT 130 "$WORK/arm.bin" "$WORK/zero.flash" 8192 samba --chip samd21g18a -- -p samba
interrupt katapult TERM 143 "$WORK/arm.bin" "$WORK/katapult.flash" 8192 katapult --chip stm32f103xe -- -p katapult
interrupt optiboot-kill KILL 137 "$WORK/avr.bin" "$WORK/optiboot-kill.flash" 0 stk500v1 --chip atmega328p -- -p stk500v1 --address 0
