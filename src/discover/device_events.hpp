#pragma once
// Waiting for devices to come and go without polling: the kernel's USB and tty events (through
// libudev's monitor: udevd, or the guest's stand-in, re-broadcasts them once the device nodes
// exist) and new names in chosen folders (inotify: /dev/serial/by-id, /dev, or the folder a
// simulated port lives in). A board that reboots into its bootloader leaves the bus and comes back
// as another device; the caller rescans whenever wait() says something changed.
#include <chrono>
#include <string>
#include <vector>

struct udev;
struct udev_monitor;

namespace mcuflash::discover {

class DeviceEvents {
public:
    // Watches `folders` that exist (others are skipped) and, where libudev's monitor can be opened,
    // the usb and tty subsystems.
    explicit DeviceEvents(const std::vector<std::string>& folders);
    ~DeviceEvents();
    DeviceEvents(const DeviceEvents&) = delete;
    DeviceEvents& operator=(const DeviceEvents&) = delete;

    // Blocks until an event arrives (true; all pending events are consumed), or `timeout` passes or a
    // signal arrives (false).
    bool wait(std::chrono::milliseconds timeout);
    // Whether any source is watched at all (false: wait() can only time out).
    bool watching() const { return inotify_ >= 0 || monitor_fd_ >= 0; }

private:
    int inotify_ = -1;
    ::udev* udev_ = nullptr;
    ::udev_monitor* monitor_ = nullptr;
    int monitor_fd_ = -1;
};

}  // namespace mcuflash::discover
