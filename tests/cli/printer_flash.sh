#!/usr/bin/env bash
# `mcuflash printer flash` with the manifest's devices simulated inside mcuflash (sim:): every MCU
# flashed and verified with its own image, JSON events tagged with the MCU, the Linux host MCU left
# out; an image that does not exist or does not fit its board refuses the whole update before any
# board is touched; one MCU's failure leaves the others done and sets the exit code; --dry-run flashes
# nothing; Ctrl-C stops every MCU at its next exchange; --stop-klipper stops Klipper through Moonraker (a stand-in HTTP server) or systemctl (a
# stand-in in PATH) and starts it again afterwards.
source "$(dirname "$0")/../lib/common.sh"
cd "$WORK"
cp "$SOURCE_DIR/examples/demo-atmega1284p.hex" anet.hex
head -c 30000 /dev/urandom >stm32.bin
cat >printer.cfg <<'EOF'
[mcu]
serial: /dev/ttyAMA0
[mcu second]
serial: /dev/ttyUSB7
[mcu rpi]
serial: /tmp/klipper_host_mcu
EOF
manifest() {  # manifest FILE SECOND_IMAGE SECOND_DEVICE [MAIN_BOARD]
  cat >"$1" <<EOF
[mcu.mcu]
board = "${4:-anet}"
image = "anet.hex"
device = "sim:stk500v1:atmega1284p"

[mcu.second]
image = "$2"
device = "$3"
EOF
}
manifest mcuflash.toml stm32.bin sim:stm32-uart:stm32f103xe

# Both flashed at once and verified; the host MCU left out with its reason.
"$MCUFLASH" --json printer flash --config printer.cfg --sim-fast >events.json 2>err.txt || fail "printer flash: $(cat err.txt events.json)"
python3 - events.json <<'PY' || fail "printer flash JSON: $(cat events.json)"
import json, sys
events = [json.loads(line) for line in open(sys.argv[1])]
result = events[-1]
assert result["event"] == "result" and result["command"] == "printer flash" and result["failed"] == 0, result
by_name = {m["mcu"]: m for m in result["mcus"]}
assert by_name["mcu"]["outcome"] == "flashed" and by_name["second"]["outcome"] == "flashed", by_name
assert "verified (read back)" in by_name["mcu"]["detail"], by_name["mcu"]
assert by_name["rpi"]["outcome"] == "left out" and "Linux process" in by_name["rpi"]["detail"], by_name["rpi"]
flashed = {e["mcu"]: e for e in events if e["event"] == "mcu_flashed"}
assert flashed["mcu"]["verified"] and flashed["mcu"]["bytes_written"] == 16384, flashed["mcu"]
assert flashed["second"]["device"]["chip"] == "stm32f103xe", flashed["second"]
# Every progress event says whose it is, and the two MCUs ran at the same time: the second's
# write started before the first had finished.
assert all("mcu" in e for e in events if e["event"] in ("started", "progress", "finished"))
order = [(e["mcu"], e["event"]) for e in events if e["event"] in ("mcu_started", "mcu_done")]
assert order[:2] == [("mcu", "mcu_started"), ("second", "mcu_started")], order
PY

# The table for people.
"$MCUFLASH" printer flash --config printer.cfg --sim-fast >table.txt 2>err.txt || fail "printer flash: $(cat err.txt)"
grep -Eq '^mcu +anet .*flashed: verified \(read back\)' table.txt || fail "no table row for mcu: $(cat table.txt)"
grep -Eq '^rpi .*left out: the Raspberry Pi as an MCU' table.txt || fail "no row for the host MCU: $(cat table.txt)"

# --dry-run: the order and the images, nothing flashed (no write event at all).
"$MCUFLASH" --json printer flash --config printer.cfg --dry-run >dry.json 2>err.txt || fail "--dry-run: $(cat err.txt)"
! grep -q '"stage":"write"' dry.json || fail "--dry-run wrote: $(cat dry.json)"
grep -q '"dry_run":true' dry.json || fail "--dry-run result: $(cat dry.json)"

# A missing image refuses everything before any board is touched.
manifest missing.toml nothere.bin sim:stm32-uart:stm32f103xe
expect_exit 69 "second: no firmware image at .*nothere.bin" -- "$MCUFLASH" --json printer flash --config printer.cfg --manifest missing.toml --sim-fast
! grep -q '"mcu_started"' "$WORK/out" || fail "an MCU started although an image was missing: $(cat "$WORK/out")"

# An image linked for another board's chip: its .config says stm32f446, the board is an F103.
printf 'CONFIG_MCU="stm32f446xx"\nCONFIG_FLASH_APPLICATION_ADDRESS=0x8008000\nCONFIG_USBSERIAL=y\n' >f446.config
cat >wrongchip.toml <<'EOF'
[mcu.mcu]
board = "anet"
image = "anet.hex"
device = "sim:stk500v1:atmega1284p"
[mcu.second]
board = "btt-skr-mini-e3-v2.0"
kconfig = "f446.config"
image = "stm32.bin"
device = "sim:stm32-uart:stm32f103xe"
EOF
expect_exit 64 "second: the firmware was built for stm32f446xx" -- "$MCUFLASH" printer flash --config printer.cfg --manifest wrongchip.toml --sim-fast
grep -q "nothing was flashed" "$WORK/err" || fail "no word that nothing was flashed: $(cat "$WORK/err")"
! grep -q "write:" "$WORK/err" || fail "written although refused: $(cat "$WORK/err")"

# One MCU fails on its device: the other is still flashed, the exit code is the failure's.
manifest onefails.toml stm32.bin sim:stm32-uart:stm32f103xe ramps-v1.3
expect_exit 64 "1 of 3 MCUs were not updated: mcu" -- "$MCUFLASH" printer flash --config printer.cfg --manifest onefails.toml --sim-fast
grep -Eq '^second .*flashed: verified' "$WORK/out" || fail "the other MCU was not flashed: $(cat "$WORK/out")"
grep -q -- "--only mcu" "$WORK/err" || fail "no retry hint: $(cat "$WORK/err")"
# In JSON the same failure is one error event, with the table in it: no result event before it.
expect_exit 64 "1 of 3 MCUs were not updated" -- "$MCUFLASH" --json printer flash --config printer.cfg --manifest onefails.toml --sim-fast
python3 - "$WORK/out" <<'PY' || fail "printer flash JSON on failure: $(cat "$WORK/out")"
import json, sys
events = [json.loads(line) for line in open(sys.argv[1])]
assert not [e for e in events if e["event"] == "result"], "a result event before the error"
error = events[-1]
assert error["event"] == "error" and error["exit_code"] == 64, error
assert [m["outcome"] for m in error["report"]["mcus"] if m["mcu"] == "second"] == ["flashed"], error["report"]
PY

# --only: just that MCU.
"$MCUFLASH" --json printer flash --config printer.cfg --only second --sim-fast >only.json 2>err.txt || fail "--only: $(cat err.txt)"
! grep -q '"mcu":"mcu"' only.json || fail "--only second touched mcu: $(cat only.json)"
expect_exit 64 "no MCU named 'nobody'" -- "$MCUFLASH" printer flash --config printer.cfg --only nobody

# Ctrl-C: every MCU's flash stops at its next exchange (each child is told once), exit 130, the table
# says what each MCU was doing. Timing on, so the flashes are still running after a second.
"$MCUFLASH" printer flash --config printer.cfg >int.out 2>int.err &
flashing=$!
sleep 1
kill -INT $flashing
set +e; wait $flashing; code=$?; set -e
[ "$code" -eq 130 ] || fail "Ctrl-C: exit $code: $(cat int.err int.out)"
[ "$(grep -c 'failed: interrupted (Ctrl-C)' int.out)" -eq 2 ] || fail "Ctrl-C: the table: $(cat int.out int.err)"

# --stop-klipper through Moonraker: stopped before the first MCU, started again after the last.
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
python3 - "$port" >moonraker.log 2>&1 <<'PY' &
import http.server, sys
class Moonraker(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        print(self.path, flush=True)
        body = b'{"result": "ok"}'
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    def log_message(self, *args): pass
http.server.HTTPServer(("127.0.0.1", int(sys.argv[1])), Moonraker).serve_forever()
PY
BACKGROUND_PIDS+=($!)
for _ in $(seq 50); do grep -q . moonraker.log 2>/dev/null || python3 -c "import socket; socket.create_connection(('127.0.0.1', $port))" 2>/dev/null && break; sleep 0.1; done
"$MCUFLASH" printer flash --config printer.cfg --sim-fast --stop-klipper --moonraker "http://127.0.0.1:$port" >out.txt 2>err.txt ||
  fail "--stop-klipper (Moonraker): $(cat err.txt)"
grep -q "stopped Klipper through Moonraker" err.txt || fail "not stopped through Moonraker: $(cat err.txt)"
grep -q "started Klipper again through Moonraker" err.txt || fail "not started again: $(cat err.txt)"
[ "$(cat moonraker.log)" = "$(printf '/machine/services/stop?service=klipper\n/machine/services/start?service=klipper')" ] ||
  fail "Moonraker was asked: $(cat moonraker.log)"

# ... and through systemctl when no Moonraker answers (port 1 refuses): a stand-in that logs.
mkdir -p bin
cat >bin/systemctl <<EOF
#!/bin/sh
echo "\$*" >>"$WORK/systemctl.log"
[ "\$1" = is-active ] && exit 0
exit 0
EOF
chmod +x bin/systemctl
PATH="$WORK/bin:$PATH" "$MCUFLASH" printer flash --config printer.cfg --sim-fast --stop-klipper --moonraker http://127.0.0.1:1 \
  >out.txt 2>err.txt || fail "--stop-klipper (systemctl): $(cat err.txt)"
[ "$(cat systemctl.log)" = "$(printf 'is-active --quiet klipper\nstop klipper\nstart klipper')" ] ||
  fail "systemctl was asked: $(cat systemctl.log)"
# A systemctl that refuses (no root): nothing is flashed.
printf '#!/bin/sh\n[ "$1" = is-active ] && exit 0\necho "Access denied" >&2\nexit 1\n' >bin/systemctl
PATH="$WORK/bin:$PATH" expect_exit 77 "systemctl stop klipper failed: Access denied" -- \
  "$MCUFLASH" printer flash --config printer.cfg --sim-fast --stop-klipper --moonraker http://127.0.0.1:1
! grep -q "write:" "$WORK/err" || fail "flashed although Klipper could not be stopped: $(cat "$WORK/err")"
echo "printer flash: ok"
