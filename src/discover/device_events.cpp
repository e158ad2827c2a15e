#include "discover/device_events.hpp"

#include <libudev.h>
#include <poll.h>
#include <sys/inotify.h>
#include <unistd.h>

#include <array>
#include <algorithm>
#include <filesystem>

namespace mcuflash::discover {

DeviceEvents::DeviceEvents(const std::vector<std::string>& folders) {
    inotify_ = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
    if (inotify_ >= 0) {
        int watched = 0;
        for (const auto& folder : folders) {
            std::error_code ec;
            if (!std::filesystem::is_directory(folder, ec)) continue;
            if (inotify_add_watch(inotify_, folder.c_str(), IN_CREATE | IN_DELETE | IN_MOVED_TO | IN_ATTRIB) >= 0)
                ++watched;
        }
        if (!watched) {
            close(inotify_);
            inotify_ = -1;
        }
    }
    udev_ = udev_new();
    if (udev_) monitor_ = udev_monitor_new_from_netlink(udev_, "udev");
    if (monitor_) {
        udev_monitor_filter_add_match_subsystem_devtype(monitor_, "usb", "usb_device");
        udev_monitor_filter_add_match_subsystem_devtype(monitor_, "tty", nullptr);
        if (udev_monitor_enable_receiving(monitor_) == 0) monitor_fd_ = udev_monitor_get_fd(monitor_);
    }
}

DeviceEvents::~DeviceEvents() {
    if (inotify_ >= 0) close(inotify_);
    if (monitor_) udev_monitor_unref(monitor_);
    if (udev_) udev_unref(udev_);
}

bool DeviceEvents::wait(std::chrono::milliseconds timeout) {
    std::array<pollfd, 2> fds{};
    nfds_t count = 0;
    if (inotify_ >= 0) fds[count++] = {inotify_, POLLIN, 0};
    if (monitor_fd_ >= 0) fds[count++] = {monitor_fd_, POLLIN, 0};
    // A signal (EINTR) returns false too: the caller checks for Ctrl-C.
    const int ready = poll(fds.data(), count, static_cast<int>(std::max<int64_t>(0, timeout.count())));
    if (ready <= 0) return false;
    if (inotify_ >= 0) {
        std::array<char, 4096> buffer;
        while (read(inotify_, buffer.data(), buffer.size()) > 0) {
        }
    }
    if (monitor_fd_ >= 0)
        while (udev_device* device = udev_monitor_receive_device(monitor_)) udev_device_unref(device);
    return true;
}

}  // namespace mcuflash::discover
