#!/usr/bin/env bash
# An STM32 whose readout protection is on (set here by stm32flash -j against the simulator): mcuflash
# says so at connect, refuses to flash with the way out in the hint and writes nothing, refuses
# `unprotect --readout` without --erase-everything, then removes it (the chip erases its flash) and
# flashes. Skipped (77) without stm32flash, which sets the protection.
source "$(dirname "$0")/../lib/common.sh"
command -v stm32flash >/dev/null || skip "stm32flash not installed"

start_sim rdp stm32-uart --chip stm32f103xb --no-timing --flash-file "$WORK/flash.bin"
DEV=(-d "$WORK/rdp" -p stm32-uart)
head -c 3000 /dev/urandom >"$WORK/app.bin"
"$MCUFLASH" flash "$WORK/app.bin" "${DEV[@]}" --address 0x08004000 -q >/dev/null 2>&1 || fail "first flash failed"
timeout 30 stm32flash -m 8n1 -b 115200 -j "$WORK/rdp" >"$WORK/protect.log" 2>&1 || fail "stm32flash -j failed: $(cat "$WORK/protect.log")"
cp "$WORK/flash.bin" "$WORK/protected.bin"

"$MCUFLASH" info "${DEV[@]}" >"$WORK/info.out" 2>&1 || true
grep -q "readout protection: ON" "$WORK/info.out" || fail "info does not say the readout protection is on: $(cat "$WORK/info.out")"

set +e
"$MCUFLASH" flash "$WORK/app.bin" "${DEV[@]}" --address 0x08008000 >"$WORK/out" 2>"$WORK/err"; code=$?
set -e
[ "$code" -eq 65 ] || fail "flash on a protected chip exited $code, not 65: $(cat "$WORK/err")"
grep -q "unprotect" "$WORK/err" || fail "the refusal does not say how to remove the protection: $(cat "$WORK/err")"
cmp -s "$WORK/flash.bin" "$WORK/protected.bin" || fail "the refused flash changed the chip"

set +e
"$MCUFLASH" unprotect "${DEV[@]}" --readout >"$WORK/out" 2>"$WORK/err"; code=$?
set -e
[ "$code" -eq 64 ] || fail "unprotect --readout without --erase-everything exited $code"
cmp -s "$WORK/flash.bin" "$WORK/protected.bin" || fail "the refused unprotect changed the chip"

"$MCUFLASH" unprotect "${DEV[@]}" --readout --erase-everything >"$WORK/out" 2>&1 || fail "unprotect failed: $(cat "$WORK/out")"
python3 -c "import sys; d=open(sys.argv[1],'rb').read(); sys.exit(0 if d.strip(b'\xff') == b'' else 1)" "$WORK/flash.bin" \
  || fail "the flash is not erased after removing readout protection"
"$MCUFLASH" flash "$WORK/app.bin" "${DEV[@]}" --address 0x08008000 -q >/dev/null 2>"$WORK/err" || fail "flash after unprotect: $(cat "$WORK/err")"
cmp -s -i 0:0x8000 -n 3000 "$WORK/app.bin" "$WORK/flash.bin" || fail "the image is not at 0x08008000"
echo "ok: readout protection reported, refused, removed on request, then flashed"
