# Sourced inside the QEMU guest (make_guest_dir copies it into the guest's folder): attaching and
# detaching simulators served over USB/IP. Set USB_ID (VID:PID) to the device's first.
present() { lsusb -d "$USB_ID" >/dev/null 2>&1; }
# attach PORT: the simulator on the host's PORT, waited for until lsusb shows it.
attach() {
  usbip --tcp-port "$1" attach -r "$GUEST_HOST_ADDR" -b 1-1 || return 1
  i=0; until present; do i=$((i+1)); [ $i -gt 100 ] && return 1; sleep 0.1; done
}
# detach: every attached device, waited for until it is gone.
detach() {
  for p in $(usbip port 2>/dev/null | sed -n 's/^Port \([0-9]*\):.*/\1/p'); do usbip detach -p "$p" >/dev/null 2>&1; done
  i=0; while present; do i=$((i+1)); [ $i -gt 50 ] && return 1; sleep 0.1; done
}
