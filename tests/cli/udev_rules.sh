#!/usr/bin/env bash
# The udev rules file mcuflash ships (data/udev/70-mcuflash.rules) is what `mcuflash udev-rules`
# prints from the knowledge base: every USB bootloader VID:PID, none missing, none stale.
source "$(dirname "$0")/../lib/common.sh"
"$MCUFLASH" udev-rules >"$WORK/rules"
diff -u "$SOURCE_DIR/data/udev/70-mcuflash.rules" "$WORK/rules" \
  || fail "data/udev/70-mcuflash.rules is stale: regenerate it with: mcuflash udev-rules > data/udev/70-mcuflash.rules"
for id in 0483:df11 1eaf:0003 1d50:6015; do
  grep -q "ATTR{idVendor}==\"${id%:*}\", ATTR{idProduct}==\"${id#*:}\"" "$WORK/rules" || fail "no rule for $id"
done
# The HID bootloaders are opened through hidraw: their hidraw nodes need the rights too.
for id in 1209:beba 16c0:0478; do
  grep -q "KERNEL==\"hidraw\*\", ATTRS{idVendor}==\"${id%:*}\", ATTRS{idProduct}==\"${id#*:}\"" "$WORK/rules" \
    || fail "no hidraw rule for $id"
done
# Debug probes (data/probes.toml) get both: usbfs for v2, hidraw for v1.
for id in 0d28:0204 2e8a:000c; do
  grep -q "SUBSYSTEM==\"usb\", ATTR{idVendor}==\"${id%:*}\", ATTR{idProduct}==\"${id#*:}\"" "$WORK/rules" \
    && grep -q "KERNEL==\"hidraw\*\", ATTRS{idVendor}==\"${id%:*}\", ATTRS{idProduct}==\"${id#*:}\"" "$WORK/rules" \
    || fail "no rules for the probe $id"
done
echo "ok: the shipped udev rules cover every USB bootloader mcuflash knows, the HID ones' hidraw nodes and the debug probes"
