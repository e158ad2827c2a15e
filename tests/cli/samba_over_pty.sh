#!/usr/bin/env bash
# mcuflash against the SAMD21 SAM-BA simulator (Arduino Zero bootloader, USB mode) on a pty: a raw
# .bin goes to the application start (0x2000) by default, verifies, and the `bossac --offset=0`
# mistake (`--address 0`) is refused with exit 65 and the bootloader left intact.
source "$(dirname "$0")/../lib/common.sh"

# Into a file first: grep -q stops reading early, and the writer dies of SIGPIPE (pipefail).
"$MCUFLASH_SIM" list >"$WORK/simulators"
grep -qw samba "$WORK/simulators" || skip "mcuflash-sim has no samba simulator"

python3 -c "import os,sys; open(sys.argv[1],'wb').write(os.urandom(30000))" "$WORK/app.bin"
start_sim zero samba --chip samd21g18a --no-timing --flash-file "$WORK/flash.bin"

"$MCUFLASH" flash "$WORK/app.bin" -d "$WORK/zero" -p samba --json >"$WORK/flash.jsonl" ||
  fail "flash failed: $(cat "$WORK/flash.jsonl")"
python3 - "$WORK/flash.jsonl" <<'PY'
import json, sys
result = [json.loads(l) for l in open(sys.argv[1])][-1]
assert result["event"] == "result" and result["verified"] is True, result
assert result["device"]["chip"] == "samd21g18a", result
PY
"$MCUFLASH" verify "$WORK/app.bin" -d "$WORK/zero" -p samba -q || fail "verify of the flashed image failed"

# The classic bossac --offset=0 brick: refused, exit 65, nothing written.
set +e
"$MCUFLASH" flash "$WORK/app.bin" --address 0 -d "$WORK/zero" -p samba 2>"$WORK/zero.err"
code=$?
set -e
[ "$code" -eq 65 ] || fail "an image at 0 exited $code, not 65: $(cat "$WORK/zero.err")"
grep -q "bootloader" "$WORK/zero.err" || fail "the refusal does not name the bootloader: $(cat "$WORK/zero.err")"

stop_background
# The flash file holds the whole flash from 0: the bootloader's 8 KiB, then the application.
python3 - "$WORK/app.bin" "$WORK/flash.bin" <<'PY'
import sys
app, flash = open(sys.argv[1], 'rb').read(), open(sys.argv[2], 'rb').read()
assert flash[0x2000:0x2000 + len(app)] == app, "the application is not at 0x2000"
assert flash[:0x2000] != b"\xff" * 0x2000, "the bootloader region was erased"
PY
echo ok
