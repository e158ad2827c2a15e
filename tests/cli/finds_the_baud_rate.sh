#!/usr/bin/env bash
# With no --baud, mcuflash tries the usual rates: an ATmegaBOOT board at 57600 is found, and a
# silent port is reported with every rate tried (exit 69).
source "$(dirname "$0")/../lib/common.sh"

start_sim melzi stk500v1 --chip atmega1284p --bootloader atmegaboot --baud 57600 --no-timing
"$MCUFLASH" info -d "$WORK/melzi" --json >"$WORK/info.json"
python3 -c "import json,sys; d=json.loads(open(sys.argv[1]).read().splitlines()[-1]); assert d['bootloader']=='atmegaboot' and '57600' in d['device_path'], d" "$WORK/info.json"

# A pty nobody serves: a bare pty pair held open by python stands in for a board that never answers.
python3 - "$WORK/silent" <<'PY' &
import os, pty, sys, time
master, slave = pty.openpty()
os.symlink(os.ttyname(slave), sys.argv[1])
time.sleep(120)
PY
BACKGROUND_PIDS+=($!)
wait_for_path "$WORK/silent"
set +e
"$MCUFLASH" info -d "$WORK/silent" 2>"$WORK/err"
code=$?
set -e
[ "$code" -eq 69 ] || fail "a silent port exited $code, not 69: $(cat "$WORK/err")"
grep -q "stk500v1 at 115200.*stk500v1 at 57600, stk500v1 at 19200" "$WORK/err" || fail "the rates tried are not named: $(cat "$WORK/err")"
echo ok
