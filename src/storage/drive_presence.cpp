#include "storage/drive_presence.hpp"

#include <sys/stat.h>
#include <sys/sysmacros.h>

#include <filesystem>
#include <fstream>

#include <fmt/format.h>

namespace mcuflash::storage {

namespace fs = std::filesystem;

namespace {

std::optional<uint16_t> read_hex16(const fs::path& p) {
    std::ifstream in(p);
    std::string s;
    if (!(in >> s)) return std::nullopt;
    try {
        return static_cast<uint16_t>(std::stoul(s, nullptr, 16));
    } catch (const std::exception&) {
        return std::nullopt;
    }
}

}  // namespace

std::string DriveDevice::describe() const {
    return fmt::format("block device {}:{}{}", major, minor,
                       usb ? fmt::format(" (USB {:04x}:{:04x})", usb->first, usb->second) : "");
}

std::optional<DriveDevice> drive_behind(const std::string& path) {
    struct stat st {};
    if (::stat(path.c_str(), &st) != 0) return std::nullopt;
    const dev_t dev = S_ISBLK(st.st_mode) ? st.st_rdev : S_ISDIR(st.st_mode) ? st.st_dev : 0;
    if (dev == 0 || ::major(dev) == 0) return std::nullopt;  // an image file, tmpfs, a FUSE mount
    DriveDevice d;
    d.major = ::major(dev);
    d.minor = ::minor(dev);
    d.sysfs = fmt::format("/sys/dev/block/{}:{}", d.major, d.minor);
    std::error_code ec;
    fs::path at = fs::canonical(d.sysfs, ec);
    if (ec) return std::nullopt;
    for (; !at.empty() && at != at.root_path(); at = at.parent_path()) {
        auto vid = read_hex16(at / "idVendor"), pid = read_hex16(at / "idProduct");
        if (vid && pid) {
            d.usb = std::make_pair(*vid, *pid);
            break;
        }
    }
    return d;
}

bool drive_present(const DriveDevice& drive) {
    std::error_code ec;
    return fs::exists(drive.sysfs, ec);
}

bool wait_until_drive_leaves(const DriveDevice& drive, std::chrono::milliseconds limit,
                             const std::function<void(std::chrono::milliseconds)>& pause) {
    using namespace std::chrono_literals;
    for (auto waited = 0ms; drive_present(drive); waited += 50ms) {
        if (waited >= limit) return false;
        pause(50ms);
    }
    return true;
}

}  // namespace mcuflash::storage
