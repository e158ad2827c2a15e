#!/usr/bin/env bash
# USB mass-storage bootloaders and drives through a real Linux kernel: mcuflash-sim serves its `msc`,
# `uf2` and `card-reader` simulators over USB/IP; in the QEMU guest (guest-run.sh) `usbip attach`
# makes each a USB device, the kernel's usb-storage + sd driver make it a disk and vfat mounts it.
#  a. the peer: `cp klipper.bin MOUNT/ && sync` to an `msc` drive (an STM32F103 MSC bootloader): it
#     installs the file and leaves the bus;
#  b. mcuflash to `msc` drives: through the mount (-d dir:MOUNT -p msc) and, unmounted, through the
#     block device (-d /dev/sdX -p msc), each waiting for the drive to leave, "not verified";
#  c. UF2 (RP2040 ROM's RPI-RP2): `cp app.uf2 MOUNT/ && sync`, the .uf2 written by this script from
#     the UF2 spec (Debian packages no UF2 writer: no picotool, no elf2uf2);
#     then `mcuflash list` names the drive and `mcuflash flash app.bin -d dir:MOUNT --board
#     btt-skr-pico-v1.0` (INFO_UF2.TXT read, waits for the reset);
#  d. a card reader holding an FAT32 SD-card image: mcuflash writes firmware.bin through the kernel's
#     block device (--chip lpc1768), then `mcuflash-sim sd-boot` plays the LPC176x bootloader at
#     power-on: the file goes into its flash at 0x4000 and is renamed FIRMWARE.CUR; fsck.fat -n passes.
# Every flash file must hold its image byte for byte, erased (0xFF) after it, and the bootloader's
# region (the placeholder the simulator put there) untouched.
# Skipped (77) without guest-run.sh, usbip, mkfs.fat/fsck.fat/mdir, or a QEMU that guest-run.sh can install.
source "$(dirname "$0")/../lib/common.sh"
source "$(dirname "$0")/../lib/guest.sh"
use_guest usbip mkfs.fat fsck.fat mdir

make_guest_dir msc-guest
cd "$GUEST_DIR"
# Firmware images: a Cortex-M vector table (stack, reset handler inside the image) then random bytes.
python3 - <<'PY'
import os, struct
def image(path, size, app):
    data = bytearray(os.urandom(size))
    data[0:8] = struct.pack("<II", 0x20005000, app + 0x101)
    open(path, "wb").write(data)
image("klipper_a.bin", 30000, 0x08002000)
image("klipper_b.bin", 24000, 0x08002000)
image("klipper_c.bin", 41000, 0x08002000)
open("app_uf2.bin", "wb").write(os.urandom(70000))   # RP2040: boot2 and all, from 0x10000000
open("app_flash.bin", "wb").write(os.urandom(50000))
image("firmware.bin", 40000, 0x4000)
PY
# The .uf2 for the peer copy, written here from the UF2 spec (microsoft/uf2 README): Debian packages
# no UF2 writer (no picotool, no elf2uf2), and `mcuflash image convert` cannot give a raw .bin a
# family ID (it keeps the input's), without which the RP2040 ROM ignores every block.
python3 - <<'PY'
import struct
data = open("app_uf2.bin", "rb").read()
blocks = [data[i:i + 256].ljust(256, b"\xff") for i in range(0, len(data), 256)]
with open("app.uf2", "wb") as out:
    for n, payload in enumerate(blocks):
        head = struct.pack("<8I", 0x0A324655, 0x9E5D5157, 0x2000, 0x10000000 + 256 * n, 256, n, len(blocks), 0xE48BFF56)
        out.write(head + payload + b"\0" * (476 - 256) + struct.pack("<I", 0x0AB16F30))
PY
truncate -s 64M card.img
mkfs.fat -F 32 -n SDCARD card.img >/dev/null

start_usbip_sim "$WORK/sim_a.log" msc --chip stm32f103xb --flash-file "$GUEST_DIR/flash_a.bin" -v
PA=$USBIP_PORT
start_usbip_sim "$WORK/sim_b.log" msc --chip stm32f103xb --flash-file "$GUEST_DIR/flash_b.bin"
PB=$USBIP_PORT
start_usbip_sim "$WORK/sim_c.log" msc --chip stm32f103xb --flash-file "$GUEST_DIR/flash_c.bin"
PC=$USBIP_PORT
start_usbip_sim "$WORK/sim_d.log" uf2 --chip rp2040 --flash-file "$GUEST_DIR/flash_d.bin" -v
PD=$USBIP_PORT
start_usbip_sim "$WORK/sim_e.log" uf2 --chip rp2040 --flash-file "$GUEST_DIR/flash_e.bin"
PE=$USBIP_PORT
start_usbip_sim "$WORK/sim_f.log" card-reader --card-image "$GUEST_DIR/card.img"
PF=$USBIP_PORT

set +e
"$GUEST_RUN" --usbip-port "$PA" --usbip-port "$PB" --usbip-port "$PC" --usbip-port "$PD" --usbip-port "$PE" \
  --usbip-port "$PF" --timeout 280 -- sh -c "
  for m in usb-storage sd_mod vfat nls_cp437 nls_iso8859-1; do \$GUEST_MODPROBE \$m; done
  disks() { ls /sys/block | grep '^sd' | sort; }
  # attach PORT: the disk that appears (its name in DISK)
  attach() {
    before=\$(disks)
    usbip --tcp-port \$1 attach -r \$GUEST_HOST_ADDR -b 1-1 || return 1
    i=0
    while :; do
      DISK=\$(disks | grep -vxF \"\$before\" | head -1)
      [ -n \"\$DISK\" ] && [ -e /dev/\$DISK ] && [ \"\$(cat /sys/block/\$DISK/size)\" != 0 ] && break
      i=\$((i+1)); [ \$i -gt 150 ] && return 1; sleep 0.1
    done
    sleep 0.3
  }
  gone() { i=0; while [ -e /sys/block/\$1 ]; do i=\$((i+1)); [ \$i -gt 100 ] && return 1; sleep 0.1; done; }
  dev() { if [ -e /dev/\${1}1 ]; then echo /dev/\${1}1; else echo /dev/\$1; fi; }

  attach $PA || exit 11
  mkdir -p /tmp/ma && mount -t vfat \$(dev \$DISK) /tmp/ma || exit 12
  cp klipper_a.bin /tmp/ma/klipper.bin && sync; echo \"cp exit \$?\" >peer_msc.txt
  gone \$DISK || exit 13
  umount -l /tmp/ma

  attach $PB || exit 21
  mkdir -p /tmp/mb && mount -t vfat \$(dev \$DISK) /tmp/mb || exit 22
  ./mcuflash flash klipper_b.bin -d dir:/tmp/mb -p msc --chip stm32f103xb >msc_dir.txt 2>&1; echo \"exit \$?\" >>msc_dir.txt
  gone \$DISK || exit 23
  umount -l /tmp/mb

  attach $PC || exit 31
  ./mcuflash flash klipper_c.bin -d /dev/\$DISK -p msc --chip stm32f103xb --json >msc_block.txt 2>&1; echo \"exit \$?\" >>msc_block.txt
  gone \$DISK || exit 33

  attach $PD || exit 41
  mkdir -p /tmp/md && mount -t vfat \$(dev \$DISK) /tmp/md || exit 42
  cat /tmp/md/INFO_UF2.TXT >info_uf2.txt; ls /tmp/md >>info_uf2.txt
  cp app.uf2 /tmp/md/ ; sync; echo \"cp done\" >peer_uf2.txt
  gone \$DISK || exit 43
  umount -l /tmp/md

  attach $PE || exit 51
  mkdir -p /tmp/me && mount -t vfat \$(dev \$DISK) /tmp/me || exit 52
  ./mcuflash list >list_uf2.txt 2>&1
  # As \`mcuflash guide 'skr pico'\` says: the board decides the chip.
  ./mcuflash flash app_flash.bin -d dir:/tmp/me --board btt-skr-pico-v1.0 >uf2_dir.txt 2>&1; echo \"exit \$?\" >>uf2_dir.txt
  gone \$DISK || exit 53
  umount -l /tmp/me

  attach $PF || exit 61
  ./mcuflash flash firmware.bin -d /dev/\$DISK --chip lpc1768 >card.txt 2>&1; echo \"exit \$?\" >>card.txt
  sync
  exit 0
" >"$WORK/guest.out" 2>"$WORK/guest.err"
rc=$?
set -e
guest_succeeded "$rc" "1x peer to msc, 2x mcuflash to msc by dir:, 3x mcuflash to msc by /dev/sdX, 4x peer to uf2, 5x mcuflash to uf2, 6x card reader (x1 attach, x2 mount, x3 still on the bus)"

expect "cp exit 0" peer_msc.txt
expect "exit 0" msc_dir.txt
expect "not verified" msc_dir.txt
expect "exit 0" msc_block.txt
expect '"not_verified"' msc_block.txt
expect "Board-ID: RPI-RP2" info_uf2.txt
expect "INDEX.HTM" info_uf2.txt
expect "exit 0" uf2_dir.txt
expect "a UF2 drive: a board in its bootloader (mcuflash flash FILE -d dir:/tmp/me)" list_uf2.txt
expect "not verified" uf2_dir.txt
expect "UF2 Bootloader v3.0 (Raspberry Pi RP2)" uf2_dir.txt
expect "exit 0" card.txt
stop_background

"$MCUFLASH_SIM" sd-boot --card-image card.img --chip lpc1768 --flash-file flash_f.bin >"$WORK/sdboot.log" 2>&1 ||
  case_fail "sd-boot: $(cat "$WORK/sdboot.log")"
grep -q "renamed FIRMWARE.CUR" "$WORK/sdboot.log" || case_fail "sd-boot did not install: $(cat "$WORK/sdboot.log")"
fsck.fat -n card.img >"$WORK/fsck.log" 2>&1 || case_fail "fsck.fat -n card.img: $(cat "$WORK/fsck.log")"
mdir -i card.img -b ::/ >"$WORK/mdir.log" 2>&1 || case_fail "mdir: $(cat "$WORK/mdir.log")"
grep -qi "FIRMWARE.CUR" "$WORK/mdir.log" || case_fail "no FIRMWARE.CUR on the card: $(cat "$WORK/mdir.log")"
grep -qi "firmware.bin" "$WORK/mdir.log" && case_fail "firmware.bin is still on the card: $(cat "$WORK/mdir.log")"
mcopy -n -i card.img ::/FIRMWARE.CUR "$WORK/cur.bin" && cmp -s "$WORK/cur.bin" firmware.bin ||
  case_fail "FIRMWARE.CUR is not firmware.bin"
for n in a d; do grep -q "leaves the bus" "$WORK/sim_$n.log" || case_fail "simulator $n did not leave the bus"; done

python3 - "$GUEST_DIR" <<'PY' || case_fail "the flash files are not what was written"
import sys
d = sys.argv[1]
def check(flash_name, app_name, offset, placeholder, who):
    flash = open(f"{d}/{flash_name}", "rb").read()
    app = open(f"{d}/{app_name}", "rb").read()
    problems = []
    if flash[offset:offset + len(app)] != app:
        problems.append(f"{who}: the image is not at 0x{offset:X}")
    rest = flash[offset + len(app):]
    if rest.count(0xFF) != len(rest):
        problems.append(f"{who}: the flash after the image is not erased")
    if placeholder:
        want = (f"[mcuflash-sim placeholder: {placeholder}] ".encode() * (offset // 20 + 2))[:offset]
        if flash[:offset] != want:
            problems.append(f"{who}: the bootloader's region changed")
    return problems
p = []
p += check("flash_a.bin", "klipper_a.bin", 0x2000, "stm32_msc", "cp to msc")
p += check("flash_b.bin", "klipper_b.bin", 0x2000, "stm32_msc", "mcuflash msc dir:")
p += check("flash_c.bin", "klipper_c.bin", 0x2000, "stm32_msc", "mcuflash msc /dev/sdX")
p += check("flash_d.bin", "app_uf2.bin", 0, None, "cp app.uf2")
p += check("flash_e.bin", "app_flash.bin", 0, None, "mcuflash uf2 dir:")
p += check("flash_f.bin", "firmware.bin", 0x4000, "lpc176x_sd", "card + sd-boot")
for line in p: print(line)
sys.exit(1 if p else 0)
PY
echo "PASS: msc, uf2 and card-reader simulators through the guest kernel's usb-storage, sd and vfat"
