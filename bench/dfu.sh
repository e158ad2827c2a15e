#!/usr/bin/env bash
# Benchmark: a 200 KiB download into the STM32F407 ROM DfuSe simulator (timing on: sector erase and
# word programming times), through a real kernel: mcuflash-sim serves it over USB/IP, guest-run.sh
# boots Debian's kernel under QEMU, `usbip attach`, then, in the same guest, dfu-util 0.11
# (`-a 0 -s 0x08020000:leave -D`, no verify) and mcuflash (`flash --address 0x08020000`: erase,
# write, verify by upload, leave), each against a freshly attached device. Prints both, mcuflash's
# phases, the ratios, and the limit (the simulator's erase and program time plus the data at USB
# full speed). It prints numbers; it asserts nothing.
#   bench/dfu.sh [BUILD_DIR] [SIZE_BYTES]
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD_DIR=$(realpath "${1:-build}")
SIZE=${2:-204800}
export BUILD_DIR SOURCE_DIR=$PWD
source tests/lib/common.sh
source tests/lib/guest.sh
use_guest dfu-util usbip

make_guest_dir bench-dfu  # mcuflash copied into it (the guest cannot see the host's /tmp)
head -c "$SIZE" /dev/urandom >"$GUEST_DIR/app.bin"
start_usbip_sim "$WORK/sim.log" dfu --chip stm32f407xg --flash-file "$GUEST_DIR/flash.bin"
PORT=$USBIP_PORT

cd "$GUEST_DIR"
"$GUEST_RUN" --usbip-port "$PORT" --timeout 300 -- sh -c "
  attach() {
    usbip --tcp-port $PORT attach -r \$GUEST_HOST_ADDR -b 1-1 || return 1
    i=0; until lsusb -d 0483:df11 >/dev/null 2>&1; do i=\$((i+1)); [ \$i -gt 100 ] && return 1; sleep 0.1; done
  }
  gone() { i=0; while lsusb -d 0483:df11 >/dev/null 2>&1; do i=\$((i+1)); [ \$i -gt 50 ] && return 1; sleep 0.1; done; }
  attach || exit 11
  t0=\$(date +%s%N); dfu-util -a 0 -s 0x08020000:leave -D app.bin >dfu-util.txt 2>&1; t1=\$(date +%s%N)
  echo \"dfu-util \$t0 \$t1\" >times.txt
  gone; sleep 0.5; attach || exit 12
  t0=\$(date +%s%N); ./mcuflash flash app.bin -d usb:0483:df11 --address 0x08020000 --rewrite-unchanged --json >mcuflash.json 2>mcuflash.err; t1=\$(date +%s%N)
  echo \"mcuflash \$t0 \$t1\" >>times.txt
" >"$WORK/guest.out" 2>"$WORK/guest.err" || { tail -20 "$WORK/guest.err" "$GUEST_DIR"/*.txt "$GUEST_DIR"/mcuflash.err; fail "guest run failed"; }
stop_background

python3 - "$GUEST_DIR" "$SIZE" <<'PY'
import json, sys
d, size = sys.argv[1], int(sys.argv[2])
times = {line.split()[0]: (int(line.split()[2]) - int(line.split()[1])) / 1e9 for line in open(f"{d}/times.txt")}
result = [json.loads(l) for l in open(f"{d}/mcuflash.json") if '"result"' in l][-1]
erase, write, verify = result["seconds_erase"], result["seconds_write"], result["seconds_verify"]
theirs, ours = times["dfu-util"], times["mcuflash"]
# Limit: two 128 KiB sector erases at the simulator's 1 s each, 16 us per programmed word, and the
# data once at USB full speed (about 1 MB/s for control transfers of 2 KiB).
sectors = -(-size // (128 * 1024))
limit = sectors * 1.0 + (size / 4) * 16e-6 + size / 1.0e6
print(f"dfu (STM32F407 ROM DfuSe) {size} bytes over USB/IP into a QEMU guest, simulator timing on")
print(f"  limit (erase + program + data at full speed): {limit:6.2f} s")
print(f"  dfu-util 0.11 (write only, no verify)       : {theirs:6.2f} s = {theirs / limit:.2f} x limit")
print(f"  mcuflash total (erase+write+verify+leave)   : {ours:6.2f} s = {ours / theirs:.2f} x dfu-util   (target <= 1.5)")
print(f"  mcuflash erase+write phase                  : {erase + write:6.2f} s = {(erase + write) / theirs:.2f} x dfu-util   (target <= 1.0)")
print(f"  mcuflash verify (upload)                    : {verify:6.2f} s")
PY
