#!/usr/bin/env bash
# Bad input: clear one-line errors, the right exit codes, and nothing written to the device.
source "$(dirname "$0")/../lib/common.sh"

start_sim tty1 stk500v1 --chip atmega1284p --no-timing --flash-file "$WORK/flash.bin"
# Let the simulator create its flash file, then keep a copy to prove nothing changes.
"$MCUFLASH" info -d "$WORK/tty1" -q >/dev/null
cp "$WORK/flash.bin" "$WORK/flash.before"

# A checksum error names the file and the line.
random_hex "$WORK/bad.hex" 256
sed -i '3s/..$/00/' "$WORK/bad.hex"
sed -n 3p "$WORK/bad.hex" | grep -q '00$' || fail "test setup: line 3 unchanged"
expect_exit 65 "bad.hex:3" -- "$MCUFLASH" flash "$WORK/bad.hex" -d "$WORK/tty1"

# A truncated record.
random_hex "$WORK/trunc.hex" 256
sed -i '5s/.\{10\}$//' "$WORK/trunc.hex"
expect_exit 65 "trunc.hex:5" -- "$MCUFLASH" flash "$WORK/trunc.hex" -d "$WORK/tty1"

# An image that reaches into optiboot's 1 KiB at 0x1FC00.
random_hex "$WORK/big.hex" 1024 0x1F900
expect_exit 65 "0x0001FC00" -- "$MCUFLASH" flash "$WORK/big.hex" -d "$WORK/tty1"
# Past the end of flash, caught from --chip before the device is opened.
random_hex "$WORK/huge.hex" 256 0x20000
expect_exit 65 "flash" -- "$MCUFLASH" flash "$WORK/huge.hex" -d /nonexistent/tty --chip atmega1284p

# The wrong chip.
random_hex "$WORK/ok.hex" 256
expect_exit 64 "not the atmega2560" -- "$MCUFLASH" flash "$WORK/ok.hex" -d "$WORK/tty1" --chip atmega2560
# An unknown chip and an unknown protocol.
expect_exit 64 "unknown chip" -- "$MCUFLASH" flash "$WORK/ok.hex" -d "$WORK/tty1" --chip atmega9999
expect_exit 64 "unknown protocol" -- "$MCUFLASH" flash "$WORK/ok.hex" -d "$WORK/tty1" -p nosuch
# No such device, no such file, bad usage.
expect_exit 69 "cannot open" -- "$MCUFLASH" flash "$WORK/ok.hex" -d /dev/nonexistent-tty
expect_exit 65 "missing.hex" -- "$MCUFLASH" flash "$WORK/missing.hex" -d "$WORK/tty1"
expect_exit 64 "" -- "$MCUFLASH" flash

cmp "$WORK/flash.before" "$WORK/flash.bin" || fail "a refused command changed the device's flash"

# JSON errors are objects with kind, message and exit code.
set +e
"$MCUFLASH" --json flash "$WORK/big.hex" -d "$WORK/tty1" >"$WORK/err.json"
set -e
python3 -c "import json,sys; d=json.loads(open(sys.argv[1]).read().splitlines()[-1]); assert d['event']=='error' and d['kind']=='unsafe' and d['exit_code']==65, d" "$WORK/err.json"
# A file name that is not UTF-8: still one JSON error (the byte as U+FFFD), not an abort; and a good
# flash of such a file is still a result.
expect_exit 65 '"kind":"bad_input"' -- "$MCUFLASH" --json image info "$WORK/"$'\xff'".hex"
cp "$FIXTURES/image/blink.hex" "$WORK/"$'\xfe'".hex"
"$MCUFLASH" --json flash "$WORK/"$'\xfe'".hex" -d sim:stk500v1:atmega328p --sim-fast --no-start >"$WORK/utf8.json" ||
  fail "flashing a file whose name is not UTF-8: $(cat "$WORK/utf8.json")"
python3 -c "import json,sys; d=json.loads(open(sys.argv[1]).read().splitlines()[-1]); assert d['event']=='result' and d['verified'], d" "$WORK/utf8.json"
echo ok
