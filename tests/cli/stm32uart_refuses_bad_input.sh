#!/usr/bin/env bash
# stm32-uart bad input against `mcuflash-sim stm32-uart` on a pty: each refusal has its exit code and
# a message saying what is wrong, and the simulator's flash file is unchanged afterwards.
source "$(dirname "$0")/../lib/common.sh"

# A device holding a known image, kept as flash.before: a bootloader at the start (a vector table
# there and one at 0x08002000 linked for 0x08002000, as stm32duino and its application) and data above.
head -c 4096 /dev/urandom >"$WORK/small.bin"
head -c $((128 * 1024 + 1024)) /dev/urandom >"$WORK/big.bin"
python3 - "$WORK/bootloader.bin" <<'PY'
import os, struct, sys
data = bytearray(os.urandom(0x2100))
data[0:8] = struct.pack("<II", 0x20005000, 0x08000101)
data[0x2000:0x2008] = struct.pack("<II", 0x20005000, 0x08002101)
open(sys.argv[1], "wb").write(data)
PY
start_sim f103 stm32-uart --chip stm32f103xb --no-timing --flash-file "$WORK/flash.bin"
"$MCUFLASH" flash "$WORK/bootloader.bin" -d "$WORK/f103" -p stm32-uart --address 0x08000000 --write-boot-area --no-start -q \
  >/dev/null 2>&1 || fail "setup: flashing the bootloader layout failed"
"$MCUFLASH" flash "$WORK/small.bin" -d "$WORK/f103" -p stm32-uart --address 0x08010000 --no-start -q >/dev/null 2>&1 ||
  fail "setup: flashing the reference image failed"
cp "$WORK/flash.bin" "$WORK/flash.before"
cmp -s "$WORK/flash.before" <(head -c 131072 /dev/zero | tr '\0' '\377') && fail "setup: the reference image is not in flash"

dev=(-d "$WORK/f103" -p stm32-uart)
# Larger than the 128 KiB of flash (a raw .bin goes to the flash base: the size is what is wrong).
expect_exit 65 "flash is 0x08000000-0x0801FFFF; nothing was written" -- "$MCUFLASH" flash "$WORK/big.bin" "${dev[@]}" --write-boot-area
# Outside flash.
expect_exit 65 "spans 0x08100000-.*flash is 0x08000000-0x0801FFFF" -- "$MCUFLASH" flash "$WORK/small.bin" "${dev[@]}" --address 0x08100000
# Known from --chip before the device is opened.
expect_exit 65 "stm32f103xb" -- "$MCUFLASH" flash "$WORK/small.bin" -d /nonexistent/tty -p stm32-uart --chip stm32f103xb --address 0x08100000
# Where the chip boots, over the bootloader there, without --write-boot-area: refused, naming the
# bootloader and the flag; the same for an unplaced .bin (it goes to the flash base).
expect_exit 65 "starts with a bootloader \(0x08000000-0x08001FFF, with its application at 0x08002000\)" -- \
  "$MCUFLASH" flash "$WORK/small.bin" "${dev[@]}" --address 0x08000000
grep -q -- "--write-boot-area" "$WORK/err" || fail "the refusal does not name --write-boot-area: $(cat "$WORK/err")"
expect_exit 65 "starts with a bootloader" -- "$MCUFLASH" flash "$WORK/small.bin" "${dev[@]}"
# Above the first erase unit but below that bootloader's application (an image built for a smaller
# bootloader offset): it would overwrite the bootloader's end.
expect_exit 65 "application at 0x08002000\): the image starts at 0x08000800 and would overwrite part of it" -- \
  "$MCUFLASH" flash "$WORK/small.bin" "${dev[@]}" --address 0x08000800
stop_background
cmp "$WORK/flash.before" "$WORK/flash.bin" || fail "a refused command changed the device's flash"
echo "ok: too large, outside flash, over a bootloader or below its application without --write-boot-area: refused, flash unchanged"

# A device that never answers 0x7F (everything it sends is lost): not found, and the hint says what
# to check.
start_sim mute stm32-uart --chip stm32f103xb --no-timing --flash-file "$WORK/flash.bin" --faults 'tx:drop@rate=1'
for cmd in info flash; do
  args=()
  [ "$cmd" = flash ] && args=("$WORK/small.bin" --address 0x08004000)
  expect_exit 69 "no stm32-uart bootloader answers" -- timeout 60 "$MCUFLASH" "$cmd" "${args[@]}" -d "$WORK/mute" -p stm32-uart
  for what in "BOOT0" "TX.*RX" "wiring" "parity"; do
    grep -Eq "^hint: .*$what" "$WORK/err" || fail "$cmd on a mute device: the hint does not mention '$what': $(cat "$WORK/err")"
  done
done
stop_background
cmp "$WORK/flash.before" "$WORK/flash.bin" || fail "a mute device's flash changed"
# A pty nobody serves.
python3 -c 'import os, pty, sys, time
m, s = pty.openpty(); os.symlink(os.ttyname(s), sys.argv[1]); time.sleep(60)' "$WORK/nobody" &
BACKGROUND_PIDS+=($!)
wait_for_path "$WORK/nobody"
expect_exit 69 "no stm32-uart bootloader answers.*tried 115200 baud" -- timeout 60 "$MCUFLASH" info -d "$WORK/nobody" -p stm32-uart -b 115200
grep -Eq "^hint: .*BOOT0.*TX.*parity" "$WORK/err" || fail "unserved pty: no hint: $(cat "$WORK/err")"
stop_background
echo "ok: a device that never answers 0x7F: exit 69 with a hint (BOOT0, wiring, TX/RX, parity)"

# An unknown product ID: an STM32F042 (0x445) with the chip removed from a copy of the knowledge
# base (the simulator keeps the built-in one). info says so, flash is refused, read works.
mkdir "$WORK/data"
cp "$SOURCE_DIR"/data/*.toml "$WORK/data/"
python3 - "$WORK/data" <<'PY'
import re, sys
d = sys.argv[1]
chips = open(d + "/chips.toml").read()
cut = re.sub(r"\[chips\.stm32f042x6(?:\.\w+)?\]\n(?:[^\[\n][^\n]*\n)*", "", chips)  # with its sub-tables
assert cut != chips and "0x445" not in cut, "stm32f042x6 row not removed"
open(d + "/chips.toml", "w").write(cut)
boot = open(d + "/bootloaders.toml").read()
cut = re.sub(r" stm32f042x6 = \w+,", "", boot)
assert cut != boot
open(d + "/bootloaders.toml", "w").write(cut)
# ... and the boards that carry it.
boards = open(d + "/boards.toml").read()
cut = re.sub(r"\[boards\.[^\]\n]+\]\n(?:[^\[\n][^\n]*\n)*",
             lambda m: "" if 'chip = "stm32f042x6"' in m.group(0) else m.group(0), boards)
assert cut != boards
open(d + "/boards.toml", "w").write(cut)
PY
# The simulator runs on the built-in knowledge base; only mcuflash gets the trimmed copy.
start_sim f042 stm32-uart --chip stm32f042x6 --no-timing --flash-file "$WORK/f042.bin"
export MCUFLASH_DATA_DIR="$WORK/data"
"$MCUFLASH" chips 2>/dev/null | grep -q stm32f042x6 && fail "setup: the trimmed knowledge base still knows stm32f042x6"
"$MCUFLASH" info -d "$WORK/f042" -p stm32-uart >"$WORK/info.out" 2>"$WORK/info.err" || fail "info on an unknown product ID failed: $(cat "$WORK/info.err")"
grep -Eq "^chip: +unknown STM32 \(product ID 0x445\)" "$WORK/info.out" || fail "info: $(cat "$WORK/info.out")"
grep -q "does not know product ID 0x445: continuing read-only" "$WORK/info.err" || fail "no read-only warning: $(cat "$WORK/info.err")"
cp "$WORK/f042.bin" "$WORK/f042.before"
expect_exit 69 "writing needs the chip's flash layout, and product ID 0x445 is unknown" -- \
  "$MCUFLASH" flash "$WORK/small.bin" -d "$WORK/f042" -p stm32-uart --address 0x08004000
"$MCUFLASH" read -d "$WORK/f042" -p stm32-uart -o "$WORK/f042-back.bin" -q 2>"$WORK/read.err" || fail "read on an unknown product ID failed: $(cat "$WORK/read.err")"
stop_background
cmp "$WORK/f042.before" "$WORK/f042.bin" || fail "the refused flash changed the unknown chip's flash"
[ "$(stat -c %s "$WORK/f042-back.bin")" -eq 32768 ] || fail "read did not bring back the F042's 32 KiB"
cmp "$WORK/f042-back.bin" "$WORK/f042.bin" || fail "read-back differs from the simulator's flash file"
echo "ok: unknown product ID: info says so, flash refused (69, unsupported), read works (32 KiB)"
echo "all stm32-uart bad-input cases passed"
