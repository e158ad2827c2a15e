# Shared helpers for the shell tests (sourced). ctest sets BUILD_DIR, SOURCE_DIR and FIXTURES.
set -euo pipefail
: "${BUILD_DIR:?BUILD_DIR must name the build folder}"
: "${SOURCE_DIR:?SOURCE_DIR must name the source folder}"
MCUFLASH="$BUILD_DIR/mcuflash"
MCUFLASH_SIM="$BUILD_DIR/mcuflash-sim"
WORK=$(mktemp -d "${TMPDIR:-/tmp}/mcuflash-test.XXXXXX")
BACKGROUND_PIDS=()

cleanup() {
  for pid in "${BACKGROUND_PIDS[@]:-}"; do
    [ -n "$pid" ] && kill "$pid" 2>/dev/null || true
  done
  for pid in "${BACKGROUND_PIDS[@]:-}"; do
    [ -n "$pid" ] && wait "$pid" 2>/dev/null || true
  done
  rm -rf "$WORK"
}
trap cleanup EXIT

fail() { echo "FAIL: $*" >&2; exit 1; }
skip() { echo "SKIP: $*" >&2; exit 77; }

# expect_exit CODE PATTERN -- COMMAND...: the command exits with CODE and its stderr or stdout match the
# extended regular expression PATTERN (left in $WORK/err and $WORK/out).
expect_exit() {
  local want=$1 pattern=$2; shift 3
  set +e
  "$@" >"$WORK/out" 2>"$WORK/err"
  local code=$?
  set -e
  [ "$code" -eq "$want" ] || fail "'$*' exited $code, expected $want: $(cat "$WORK/err" "$WORK/out")"
  grep -Eq -- "$pattern" "$WORK/err" "$WORK/out" || fail "'$*': output lacks '$pattern': $(cat "$WORK/err")"
}

# wait_for_path PATH [SECONDS]: a pty symlink appears once its server is ready.
wait_for_path() {
  local path=$1 limit=${2:-10} i
  for ((i = 0; i < limit * 20; i++)); do [ -e "$path" ] && return 0; sleep 0.05; done
  fail "$path did not appear within ${limit}s"
}

# start_sim NAME ARGS...: runs mcuflash-sim in the background with its pty at $WORK/NAME.
start_sim() {
  local name=$1; shift
  "$MCUFLASH_SIM" "$@" --pty "$WORK/$name" 2>"$WORK/$name.log" &
  BACKGROUND_PIDS+=($!)
  wait_for_path "$WORK/$name"
}

# stop_background: ends every background process (flushing simulator flash files) and waits.
stop_background() {
  for pid in "${BACKGROUND_PIDS[@]:-}"; do [ -n "$pid" ] && kill "$pid" 2>/dev/null || true; done
  for pid in "${BACKGROUND_PIDS[@]:-}"; do [ -n "$pid" ] && wait "$pid" 2>/dev/null || true; done
  BACKGROUND_PIDS=()
}

# random_hex FILE SIZE [BASE] [spin]: an Intel HEX file of SIZE random bytes at BASE (default 0).
# With "spin" the data starts with an AVR `rjmp .`, so the application a bootloader starts
# afterwards loops in place instead of running random bytes (which can crash simavr).
random_hex() {
  python3 - "$1" "$2" "${3:-0}" "${4:-}" <<'PY'
import os, sys
path, size, base = sys.argv[1], int(sys.argv[2]), int(sys.argv[3], 0)
data = os.urandom(size)
if sys.argv[4] == "spin":
    data = b"\xff\xcf" + data[2:]
out, upper = [], None
def rec(kind, addr, payload):
    body = bytes([len(payload), (addr >> 8) & 0xFF, addr & 0xFF, kind]) + payload
    return ':' + body.hex().upper() + '%02X' % ((-sum(body)) & 0xFF)
for off in range(0, size, 16):
    addr = base + off
    if addr >> 16 != upper:
        upper = addr >> 16
        out.append(rec(4, 0, bytes([upper >> 8, upper & 0xFF])))
    out.append(rec(0, addr & 0xFFFF, data[off:off + 16]))
out.append(':00000001FF')
open(path, 'w').write('\n'.join(out) + '\n')
PY
}

# hex_to_bin HEX BIN: the raw bytes of a HEX file from its lowest address (for comparisons).
hex_to_bin() { "$MCUFLASH" image convert "$1" "$2" --to bin >/dev/null; }

# same_prefix A B: file B starts with the bytes of file A.
same_prefix() { cmp -n "$(stat -c %s "$1")" "$1" "$2"; }

# bootloader_intact HEX DUMP: every byte the bootloader hex puts above 0x1000 is unchanged in the dump.
bootloader_intact() {
  python3 - "$1" "$2" <<'PY'
import sys
hex_path, dump_path = sys.argv[1], sys.argv[2]
dump = open(dump_path, 'rb').read()
upper = 0
for line in open(hex_path):
    line = line.strip()
    if not line.startswith(':'): continue
    raw = bytes.fromhex(line[1:])
    n, addr, kind, data = raw[0], (raw[1] << 8) | raw[2], raw[3], raw[4:4 + raw[0]]
    if kind == 2: upper = ((data[0] << 8) | data[1]) << 4
    if kind == 4: upper = ((data[0] << 8) | data[1]) << 16
    if kind == 0 and upper + addr >= 0x1000:
        a = upper + addr
        if dump[a:a + n] != data: sys.exit(f"bootloader differs at 0x{a:05X}")
PY
}

# start_usbip_sim LOG ARGS...: runs `mcuflash-sim ARGS --usbip 0` in the background (its log in LOG)
# and sets USBIP_PORT to the port it chose; fails when it has not started within 5 s.
start_usbip_sim() {
  local log=$1 i
  shift
  "$MCUFLASH_SIM" "$@" --usbip 0 2>"$log" &
  BACKGROUND_PIDS+=($!)
  for ((i = 0; i < 100; i++)); do
    USBIP_PORT=$(grep -o 'on usbip 127.0.0.1:[0-9]*' "$log" 2>/dev/null | head -1 | cut -d: -f2 || true)
    [ -n "$USBIP_PORT" ] && return 0
    sleep 0.05
  done
  fail "mcuflash-sim $* did not start: $(cat "$log")"
}
