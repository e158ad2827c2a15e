#pragma once
// Whether a drive is still on the bus: a USB drive bootloader (an MSC bootloader, a UF2 drive) takes
// its file and resets the board, and the drive disappears. Found from what the kernel shows: the
// block device behind a mounted folder (its st_dev) or a device node (its st_rdev), which is in
// /sys/dev/block/MAJ:MIN while the disk exists (a mount of it outlives it), and the USB device it
// hangs from (idVendor, idProduct in a parent folder of sysfs).
#include <chrono>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>

namespace mcuflash::storage {

struct DriveDevice {
    unsigned major = 0, minor = 0;
    std::string sysfs;  // /sys/dev/block/MAJ:MIN
    std::optional<std::pair<uint16_t, uint16_t>> usb;  // VID:PID of the USB device holding it
    std::string describe() const;  // "block device 8:0 (USB 2e8a:0003)"
};

// The block device behind a folder of a mounted volume or a device node; nullopt for an image file,
// or a folder on a file system without one (tmpfs).
std::optional<DriveDevice> drive_behind(const std::string& path);
bool drive_present(const DriveDevice& drive);

// Waits (pausing with `pause`, 50 ms at a time) until the drive is gone; false when it is still
// there after `limit`.
bool wait_until_drive_leaves(const DriveDevice& drive, std::chrono::milliseconds limit,
                             const std::function<void(std::chrono::milliseconds)>& pause);

}  // namespace mcuflash::storage
