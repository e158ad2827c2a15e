# Shared by the USB benchmarks (sourced after tests/lib/common.sh, from the guest folder): one guest run
# in which the peer flashes one simulated device and mcuflash a second, fresh one, each timed.
#   peer_then_mcuflash VID:PID PORT1 PORT2 PEER_NAME "PEER COMMAND" "MCUFLASH ARGUMENTS"
# Writes times.txt ("NAME START_NS END_NS EXIT") and mcuflash.json in the current folder; fails with
# the guest's and the tools' output when the guest run does.
peer_then_mcuflash() {
  local id=$1 port1=$2 port2=$3 peer=$4 peer_command=$5 mcuflash_args=$6
  "$GUEST_RUN" --usbip-port "$port1" --usbip-port "$port2" --timeout 300 -- sh -c "
    attach() {
      usbip --tcp-port \$1 attach -r \$GUEST_HOST_ADDR -b 1-1 || return 1
      i=0; until lsusb -d $id >/dev/null 2>&1; do i=\$((i+1)); [ \$i -gt 100 ] && return 1; sleep 0.1; done
    }
    gone() { i=0; while lsusb -d $id >/dev/null 2>&1; do i=\$((i+1)); [ \$i -gt 50 ] && return 1; sleep 0.1; done; }
    attach $port1 || exit 11
    t0=\$(date +%s%N); $peer_command >$peer.txt 2>&1; rc=\$?; t1=\$(date +%s%N)
    echo \"$peer \$t0 \$t1 \$rc\" >times.txt
    gone; sleep 0.5; attach $port2 || exit 12
    t0=\$(date +%s%N); ./mcuflash flash $mcuflash_args --json >mcuflash.json 2>mcuflash.err; rc=\$?; t1=\$(date +%s%N)
    echo \"mcuflash \$t0 \$t1 \$rc\" >>times.txt
  " >"$WORK/guest.out" 2>"$WORK/guest.err" || { tail -20 "$WORK/guest.err" ./*.txt mcuflash.err; fail "guest run failed"; }
}
