#!/usr/bin/env bash
# A simulated USB device reaches a real Linux kernel through our USB/IP server: usbip-test-device
# serves the test-only echo device (usbip_echo_model.hpp) on 127.0.0.1; guest-run.sh boots Debian's
# kernel under QEMU, `usbip attach`es it (vhci-hcd), and inside the guest lsusb must show it enumerated
# and usb-probe runs LibusbDevice against it through usbfs: vendor control OUT/IN round trip, a stall
# mapped to Protocol, bulk OUT/IN (an IN held while the device NAKs, a halted endpoint cleared), a port reset reaching the device, re-enumeration as another PID found again
# by reopen_after_reenumeration(), and the unplug when the device leaves the bus.
# Skipped (77) without guest-run.sh, usbip, or a QEMU that guest-run.sh can install.
source "$(dirname "$0")/../lib/common.sh"
source "$(dirname "$0")/../lib/guest.sh"
use_guest usbip
INTEROP="$BUILD_DIR/tests/interop"
[ -x "$INTEROP/usbip-test-device" ] && [ -x "$INTEROP/usb-probe" ] || fail "usbip-test-device/usb-probe not built in $INTEROP"

"$INTEROP/usbip-test-device" --verbose >"$WORK/port" 2>"$WORK/device.log" &
BACKGROUND_PIDS+=($!)
for ((i = 0; i < 100; i++)); do grep -q '^port ' "$WORK/port" && break; sleep 0.05; done
PORT=$(awk '/^port /{print $2}' "$WORK/port")
[ -n "$PORT" ] || case_fail "usbip-test-device did not start"

# The guest sees the host's files but not its /tmp, except its cwd: run from the folder of usb-probe.
cd "$INTEROP"
started=$(date +%s%N)
set +e
"$GUEST_RUN" --usbip-port "$PORT" --timeout 55 -- sh -c "
  usbip --tcp-port $PORT attach -r \$GUEST_HOST_ADDR -b 1-1 || exit 11
  i=0; until lsusb -d 1209:0001 >/dev/null 2>&1; do i=\$((i+1)); [ \$i -gt 100 ] && break; sleep 0.1; done
  lsusb -d 1209:0001 || { dmesg | tail -30 >&2; exit 12; }
  ./usb-probe list || exit 13
  ./usb-probe echo-check 1209:0001 || { dmesg | tail -30 >&2; exit 14; }
" >"$WORK/guest.out" 2>"$WORK/guest.err"
rc=$?
set -e
took_ms=$((($(date +%s%N) - started) / 1000000))
guest_succeeded "$rc" "11 attach, 12 not enumerated, 13 list, 14 checks"

expect() { grep -qF -- "$1" "$WORK/$2" || case_fail "expected in $2: $1"; }
# The kernel enumerated it: VID:PID and the strings it read from the device.
expect "ID 1209:0001 mcuflash tests mcuflash usbip echo" guest.out
# LibusbDevice::enumerate() sees it at port 1-1 with its serial.
grep -Eq '^1-1 +1209:0001 bcd 0100 serial ECHO-0001$' "$WORK/guest.out" || case_fail "usb-probe list does not show 1-1 1209:0001"
expect "OK: vendor control OUT then IN round trip: 300 bytes back" guest.out
expect "OK: stall mapped to Protocol:" guest.out
expect "OK: bulk OUT then IN round trip: 1000 bytes back" guest.out
expect "OK: bulk IN NAKed until the timeout" guest.out
expect "OK: bulk OUT to a halted endpoint stalled" guest.out
expect "OK: bulk OUT taken after clear_halt" guest.out
expect "OK: port reset seen by the device" guest.out
expect "OK: re-enumerated as USB 1209:0002 at 1-1" guest.out
expect "OK: the device dropped off the bus after leave" guest.out
expect "ALL CHECKS PASSED" guest.out
grep -q "^FAIL" "$WORK/guest.out" && case_fail "a check failed"
# The server's side of it.
stop_background
expect "imported 1-1" device.log
expect "control 40 01 value 0000 index 0000 length 300: 300 bytes" device.log
expect "control c0 03 value 0000 index 0000 length 4: STALL" device.log
expect "bus reset: port reset" device.log
expect "IN 81: 1000 bytes" device.log
expect "detached: the device left the bus" device.log

grep -E '^(ID|Bus|OK|ALL)' "$WORK/guest.out" | grep -v 'vhci_hcd' || true
echo "usbip guest test: passed in ${took_ms} ms (guest boot included)"
