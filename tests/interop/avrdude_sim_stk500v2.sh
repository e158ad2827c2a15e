#!/usr/bin/env bash
# Real avrdude against mcuflash-sim's STK500v2 simulators on a pty:
#  1. -c wiring -p m2560 (stk500boot_v2): write and verify an application crossing the 64K-word
#     boundary, read the whole flash back, compare with the image and the simulator's flash file
#     (bootloader placeholder intact, nothing refused).
#  2. -c stk500v2 -p m2560 against the ISP programmer simulator: the Arduino IDE's three steps to
#     install the bootloader (chip erase with lock 0x3F and the fuses; the hex; lock 0x0F), then
#     -c avrispv2 reads back fuses, lock and flash, which must match.
#  3. The same install through mcuflash's own `bootloader install`, read back by avrdude.
#  4. -c stk500v2 -p atmega2560 against the Arduino M0 bootloader (samd21g18a): an application at 0x4000.
# Skipped (77) without avrdude.
source "$(dirname "$0")/../lib/common.sh"

command -v avrdude >/dev/null || skip "avrdude not installed"
[ -x "$MCUFLASH_SIM" ] || fail "$MCUFLASH_SIM not built"
BOOT_HEX=/usr/share/arduino/hardware/arduino/avr/bootloaders/stk500v2/stk500boot_v2_mega2560.hex

show_logs() { for log in "$WORK"/*.log; do echo "--- $log" >&2; tail -n 30 "$log" >&2; done; }
case_fail() { show_logs; fail "$*"; }
elapsed() { local ms=$((($(date +%s%N) - $1) / 1000000)); printf '%d.%03d s' $((ms / 1000)) $((ms % 1000)); }

# ---- 1. the wiring bootloader
random_hex "$WORK/app.hex" 140000
start_sim wiring stk500v2 --chip atmega2560 --flash-file "$WORK/wiring.bin" --no-timing
t0=$(date +%s%N)
timeout 120 avrdude -c wiring -p m2560 -P "$WORK/wiring" -b 115200 -D -U "flash:w:$WORK/app.hex:i" \
  >"$WORK/wiring-write.log" 2>&1 || case_fail "wiring: avrdude write/verify failed"
grep -q "140000 bytes of flash verified" "$WORK/wiring-write.log" || case_fail "wiring: avrdude did not verify"
timeout 120 avrdude -c wiring -p m2560 -P "$WORK/wiring" -b 115200 -D -U "flash:r:$WORK/wiring-back.bin:r" \
  >"$WORK/wiring-read.log" 2>&1 || case_fail "wiring: avrdude read failed"
stop_background
! grep -q "refused (protected)" "$WORK/wiring.log" || case_fail "wiring: the simulator refused writes"
hex_to_bin "$WORK/app.hex" "$WORK/app.bin"
python3 - "$WORK" <<'PY' || case_fail "wiring: images differ"
import sys
w = sys.argv[1]
app, flash, back = (open(f"{w}/{n}", "rb").read() for n in ("app.bin", "wiring.bin", "wiring-back.bin"))
text = b"[mcuflash-sim placeholder: stk500boot_v2] "
boot = (text * 200)[:8192]
problems = []
if flash[:len(app)] != app: problems.append("flash file does not hold the application")
if flash[len(app):0x3E000].strip(b"\xff"): problems.append("data after the application")
if flash[0x3E000:] != boot: problems.append("bootloader placeholder damaged")
# avrdude drops trailing 0xFF from raw reads
if back.rstrip(b"\xff") != flash.rstrip(b"\xff") and back != flash: problems.append("read-back differs from the flash file")
if problems: sys.exit("\n".join(problems))
PY
echo "ok: wiring: 140000 bytes written, verified and read back ($(elapsed "$t0"))"

# ---- 2. avrdude's three-step bootloader install through the ISP programmer simulator
[ -f "$BOOT_HEX" ] || skip "arduino-core-avr not installed (no $BOOT_HEX)"
start_sim isp stk500v2-isp --chip atmega2560 --flash-file "$WORK/target.bin" --no-timing
dude=(timeout 120 avrdude -c stk500v2 -p m2560 -P "$WORK/isp" -b 115200)
t0=$(date +%s%N)
"${dude[@]}" -e -U lock:w:0x3F:m -U efuse:w:0xFD:m -U hfuse:w:0xD8:m -U lfuse:w:0xFF:m >"$WORK/isp-1.log" 2>&1 \
  || case_fail "isp: erase and fuses failed"
"${dude[@]}" -U "flash:w:$BOOT_HEX:i" -U lock:w:0x0F:m >"$WORK/isp-2.log" 2>&1 || case_fail "isp: flash and lock failed"
timeout 120 avrdude -c avrispv2 -p m2560 -P "$WORK/isp" -b 115200 -U lfuse:r:-:h -U hfuse:r:-:h -U efuse:r:-:h \
  -U lock:r:-:h -U "flash:r:$WORK/isp-back.hex:i" >"$WORK/isp-3.log" 2>&1 || case_fail "isp: read-back failed"
fuses=$(grep -E '^0x[0-9a-f]+$' "$WORK/isp-3.log" | tr '\n' ' ')
[ "$fuses" = "0xff 0xd8 0xfd 0xcf " ] || case_fail "isp: fuses/lock read back as '$fuses', not 0xff 0xd8 0xfd 0xcf"
grep -q "lfuse=0xFF hfuse=0xD8 efuse=0xFD lock=0xCF" "$WORK/target.bin.fuses" || case_fail "isp: target fuses $(cat "$WORK/target.bin.fuses")"
hex_to_bin "$WORK/isp-back.hex" "$WORK/isp-back.bin"
hex_to_bin "$BOOT_HEX" "$WORK/boot.bin"
python3 - "$WORK" <<'PY' || case_fail "isp: flash differs"
import sys
w = sys.argv[1]
boot, flash, back = (open(f"{w}/{n}", "rb").read() for n in ("boot.bin", "target.bin", "isp-back.bin"))
problems = []
if flash[0x3E000:0x3E000 + len(boot)] != boot: problems.append("the target does not hold the bootloader at 0x3E000")
if flash[:0x3E000].strip(b"\xff") or flash[0x3E000 + len(boot):].strip(b"\xff"): problems.append("data outside the bootloader")
if back[-len(boot):] != boot: problems.append("avrdude's read-back does not end with the bootloader")
if problems: sys.exit("\n".join(problems))
PY
stop_background
echo "ok: isp: avrdude three-step install, fuses ${fuses}and flash read back ($(elapsed "$t0"))"

# ---- 3. mcuflash's own install, checked by avrdude
start_sim isp2 stk500v2-isp --chip atmega2560 --flash-file "$WORK/target2.bin" --no-timing
t0=$(date +%s%N)
"$MCUFLASH" bootloader install --chip atmega2560 -d "$WORK/isp2" >"$WORK/mcuflash-install.log" 2>&1 \
  || case_fail "mcuflash install failed"
timeout 120 avrdude -c stk500v2 -p m2560 -P "$WORK/isp2" -b 115200 -U lfuse:r:-:h -U hfuse:r:-:h -U efuse:r:-:h \
  -U lock:r:-:h -U "flash:v:$BOOT_HEX:i" >"$WORK/isp2-check.log" 2>&1 || case_fail "avrdude could not verify mcuflash's install"
fuses=$(grep -E '^0x[0-9a-f]+$' "$WORK/isp2-check.log" | tr '\n' ' ')
[ "$fuses" = "0xff 0xd8 0xfd 0xcf " ] || case_fail "mcuflash install: avrdude reads fuses/lock '$fuses'"
stop_background
echo "ok: mcuflash bootloader install verified by avrdude ($(elapsed "$t0"))"

# ---- 4. the Arduino M0 bootloader as avrdude drives it
random_hex "$WORK/m0.hex" 30000 0x4000
start_sim m0 stk500v2 --chip samd21g18a --flash-file "$WORK/m0.bin" --no-timing
t0=$(date +%s%N)
timeout 120 avrdude -c stk500v2 -p atmega2560 -P "$WORK/m0" -b 57600 -U "flash:w:$WORK/m0.hex:i" \
  >"$WORK/m0-write.log" 2>&1 || case_fail "m0: avrdude write/verify failed"
grep -q "30000 bytes of flash verified" "$WORK/m0-write.log" || case_fail "m0: avrdude did not verify"
stop_background
hex_to_bin "$WORK/m0.hex" "$WORK/m0-app.bin"
python3 - "$WORK" <<'PY' || case_fail "m0: flash differs"
import sys
w = sys.argv[1]
app, flash = (open(f"{w}/{n}", "rb").read() for n in ("m0-app.bin", "m0.bin"))
text = b"[mcuflash-sim placeholder: arduino_m0_stk500v2] "
problems = []
if flash[:0x4000] != (text * 400)[:0x4000]: problems.append("bootloader placeholder damaged")
if flash[0x4000:0x4000 + len(app)] != app: problems.append("the application is not at 0x4000")
if problems: sys.exit("\n".join(problems))
PY
echo "ok: m0: avrdude -c stk500v2 wrote and verified 30000 bytes at 0x4000 ($(elapsed "$t0"))"
echo "all avrdude STK500v2 interop cases passed"
