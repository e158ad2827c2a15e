#!/usr/bin/env bash
# mcuflash through a simulated CMSIS-DAP probe in process (--probe sim:cmsis-dap[-v1][:CHIP]): the
# SWD steps of Klipper's docs and their refusals, with exit codes and JSON a script can use.
source "$(dirname "$0")/../lib/common.sh"
cd "$WORK"
head -c 7000 /dev/urandom >boot.bin
head -c 20000 /dev/urandom >app.bin

# A SAMD21 bootloader install with a backup, then an application after it, then the whole flash back.
"$MCUFLASH" --json bootloader install --probe sim:cmsis-dap:samd21g18a --chip samd21g18a --bootloader arduino_zero \
  --hex boot.bin --backup backup.bin --sim-fast >install.json || fail "install: $(cat install.json)"
python3 - <<'PY' || fail "install result: $(cat install.json)"
import json
r = [json.loads(l) for l in open("install.json") if '"result"' in l][-1]
assert r["bootprot_bytes"] == 8192 and r["verified"] is True and r["swd"]["chip"] == "samd21g18a", r
PY
[ "$(stat -c %s backup.bin)" -eq 262144 ] || fail "the backup is not the whole 256 KiB flash"

# Each mcuflash run gets a fresh simulated chip (in process), so these steps do not see each other's
# bytes: the checks are each result's own read-back verification and the refusals.
"$MCUFLASH" --json flash app.bin --probe sim:cmsis-dap-v1:samd21g18a --bootloader arduino_zero --sim-fast >flash.json \
  || fail "flash: $(cat flash.json)"
grep -q '"verified":true' flash.json || fail "flash not verified: $(cat flash.json)"
grep -q '"application_start":8192' flash.json || fail "not after the 8 KiB bootloader: $(cat flash.json)"
"$MCUFLASH" read --probe sim:cmsis-dap:stm32f103xb -o whole.bin --sim-fast >read.txt || fail "read: $(cat read.txt)"
[ "$(stat -c %s whole.bin)" -eq 131072 ] || fail "read: not the whole 128 KiB flash"
grep -q "bootloader included" read.txt || fail "read did not say it holds the bootloader: $(cat read.txt)"
# --bootloader without --chip: the application starts after it on the chip the probe finds (2 KiB).
"$MCUFLASH" --json flash app.bin --probe sim:cmsis-dap:stm32f103xb --bootloader hid_stm32 --sim-fast >f1.json \
  || fail "flash after hid_stm32: $(cat f1.json)"
grep -q '"application_start":134219776' f1.json || fail "not at 0x08000800: $(cat f1.json)"

# The Duet 3 1LC has no bootloader: --erase-chip clears the chip and BOOTPROT, then the image at 0.
"$MCUFLASH" flash app.bin --probe sim:cmsis-dap --board duet3-1lc --erase-chip --sim-fast >1lc.txt \
  || fail "1LC: $(cat 1lc.txt)"
grep -q "samc21g18a" 1lc.txt || fail "1LC: $(cat 1lc.txt)"

# A Raspberry Pi's GPIO, bit-banged: the same steps through the simulated SWD wire.
"$MCUFLASH" --json bootloader install --probe sim:swd-gpio:samd21g18a --chip samd21g18a --bootloader arduino_zero \
  --hex boot.bin --sim-fast >gpio.json || fail "install over the GPIO: $(cat gpio.json)"
grep -q '"bootprot_bytes":8192' gpio.json || fail "install over the GPIO: $(cat gpio.json)"
expect_exit 64 "must name the SWCLK and SWDIO" -- "$MCUFLASH" info --probe gpio:swclk=25

# The device-string scheme (swd:) names the same probe; --under-reset connects with nRESET held.
"$MCUFLASH" --json info --probe swd:sim:cmsis-dap:samc21g18a --under-reset --sim-fast >info.json || fail "info: $(cat info.json)"
grep -q '"chip":"samc21g18a"' info.json || fail "info under reset: $(cat info.json)"

# unprotect --probe: confirmed only with --erase-everything; an unprotected chip is left alone.
expect_exit 64 "add --erase-everything" -- "$MCUFLASH" unprotect --readout --probe sim:cmsis-dap:stm32f103xb --sim-fast
"$MCUFLASH" unprotect --readout --erase-everything --probe sim:cmsis-dap:stm32f103xb --sim-fast >unprotect.txt \
  || fail "unprotect: $(cat unprotect.txt)"
grep -q "not readout-protected: nothing erased" unprotect.txt || fail "unprotect: $(cat unprotect.txt)"

# Refusals.
expect_exit 65 "inside the bootloader region" -- "$MCUFLASH" flash app.bin --address 0x08000000 \
  --probe sim:cmsis-dap:stm32f103xb --bootloader hid_stm32 --sim-fast
expect_exit 65 "built for another bootloader offset" -- "$MCUFLASH" flash app.bin --address 0x08001000 \
  --probe sim:cmsis-dap:stm32f103xb --bootloader hid_stm32 --sim-fast
expect_exit 65 "would erase the bootloader" -- "$MCUFLASH" flash app.bin --probe sim:cmsis-dap:samd21g18a \
  --bootloader arduino_zero --erase-chip --sim-fast
expect_exit 69 "not a stm32f407xg" -- "$MCUFLASH" info --probe sim:cmsis-dap:stm32f103xb --chip stm32f407xg --sim-fast
expect_exit 64 "cannot program the atmega2560 over SWD" -- "$MCUFLASH" flash app.bin --probe sim:cmsis-dap --chip atmega2560
expect_exit 64 "either -d" -- "$MCUFLASH" flash app.bin --probe sim:cmsis-dap -d /dev/ttyACM0
expect_exit 64 "give the arduino_zero binary with --hex" -- "$MCUFLASH" bootloader install --probe sim:cmsis-dap:samd21g18a \
  --chip samd21g18a --bootloader arduino_zero
expect_exit 65 "more than the 8192 bytes" -- "$MCUFLASH" bootloader install --probe sim:cmsis-dap:samd21g18a \
  --chip samd21g18a --bootloader arduino_zero --hex app.bin --sim-fast
expect_exit 64 "not a debug probe" -- "$MCUFLASH" info --probe /dev/ttyACM0
# The probe leaving USB in the middle of an install: an I/O error that says the board has no
# working bootloader now and how to recover.
expect_exit 74 "no working bootloader now" -- "$MCUFLASH" bootloader install --probe sim:cmsis-dap:samd21g18a \
  --chip samd21g18a --bootloader arduino_zero --hex boot.bin --sim-fast --sim-faults vanish@400
# Klipper's .config counts through a probe as through a bootloader: another chip's build, or one
# linked for another offset, is refused; a bootloader's options are refused, not ignored.
printf 'CONFIG_MCU="stm32f103xe"\nCONFIG_FLASH_APPLICATION_ADDRESS=0x8007000\n' >f103.config
printf 'CONFIG_MCU="samd21g18a"\nCONFIG_FLASH_APPLICATION_ADDRESS=0x4000\n' >samd21-16k.config
expect_exit 64 "the firmware is for stm32f103.*CONFIG_MCU in f103.config" -- "$MCUFLASH" flash app.bin \
  --probe sim:cmsis-dap:samd21g18a --bootloader arduino_zero --klipper-config f103.config --sim-fast
expect_exit 65 "linked to start at 0x00004000.*starts the application at 0x00002000" -- "$MCUFLASH" flash app.bin \
  --probe sim:cmsis-dap:samd21g18a --bootloader arduino_zero --klipper-config samd21-16k.config --sim-fast
expect_exit 65 "nothing-there: no such file" -- "$MCUFLASH" flash app.bin --probe sim:cmsis-dap:samd21g18a --bootloader arduino_zero \
  --klipper-config nothing-there --sim-fast
for option in "-p stk500v1" "--baud 115200" "--no-reset" "--time-limit 60" "--write-boot-area" "--rewrite-unchanged"; do
  # shellcheck disable=SC2086
  expect_exit 64 "${option%% *}" -- "$MCUFLASH" flash app.bin --probe sim:cmsis-dap:samd21g18a --bootloader arduino_zero \
    $option --sim-fast
done
expect_exit 64 "unknown image format 'bogus'" -- "$MCUFLASH" flash app.bin --probe sim:cmsis-dap --format bogus
expect_exit 64 "--under-reset: applies to --probe only" -- "$MCUFLASH" flash app.bin -d sim:samba:samd21g18a --under-reset
echo "ok: install, flash, read and the 1LC's chip erase through the simulated probe; unsafe and wrong requests refused"
