#!/usr/bin/env bash
# The binary against mcuflash-sim on a pty: flash, read back, verify, info; JSON output parses.
source "$(dirname "$0")/../lib/common.sh"

start_sim tty1 stk500v1 --chip atmega1284p --no-timing --flash-file "$WORK/flash.bin"
random_hex "$WORK/app.hex" 20000
hex_to_bin "$WORK/app.hex" "$WORK/app.bin"

"$MCUFLASH" flash "$WORK/app.hex" -d "$WORK/tty1" --json >"$WORK/flash.jsonl" || fail "flash failed: $(cat "$WORK/flash.jsonl")"
python3 - "$WORK/flash.jsonl" <<'PY'
import json, sys
events = [json.loads(l) for l in open(sys.argv[1])]
result = events[-1]
assert result["event"] == "result", result
assert result["verified"] is True and result["started"] is True, result
assert result["device"]["chip"] == "atmega1284p" and result["device"]["bootloader"] == "optiboot", result
assert result["bytes_written"] == 20224, result   # 20000 bytes rounded up to 256-byte pages
stages = {e["stage"] for e in events if e["event"] == "progress"}
assert {"write", "verify"} <= stages, stages
PY

"$MCUFLASH" read -d "$WORK/tty1" --chip atmega1284p --address 0 --length 20000 -o "$WORK/back.bin" -q
cmp "$WORK/app.bin" "$WORK/back.bin" || fail "read-back differs"
"$MCUFLASH" verify "$WORK/app.hex" -d "$WORK/tty1" -q || fail "verify of the flashed image failed"

# A different image must not verify: exit code 1.
random_hex "$WORK/other.hex" 512
set +e
"$MCUFLASH" verify "$WORK/other.hex" -d "$WORK/tty1" -q 2>"$WORK/verify.err"
code=$?
set -e
[ "$code" -eq 1 ] || fail "verify of a different image exited $code, not 1"
grep -q "differs" "$WORK/verify.err" || fail "no mismatch message: $(cat "$WORK/verify.err")"

"$MCUFLASH" info -d "$WORK/tty1" --json >"$WORK/info.json"
python3 -c "import json,sys; d=json.loads(open(sys.argv[1]).read().splitlines()[-1]); assert d['signature']=='1e 97 05' and d['app_end']==0x1FC00, d" "$WORK/info.json"

# Plain output when piped: no carriage-return progress bar, a summary line on stdout.
"$MCUFLASH" flash "$WORK/app.hex" -d "$WORK/tty1" >"$WORK/plain.out" 2>"$WORK/plain.err"
grep -q "verified" "$WORK/plain.out" || fail "no summary on stdout"
if grep -q $'\r' "$WORK/plain.err"; then fail "progress bar drawn into a pipe"; fi

stop_background
same_prefix "$WORK/app.bin" "$WORK/flash.bin" || fail "the simulator's flash file differs from the image"
echo ok
