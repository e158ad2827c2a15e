#include "link/hidapi_device.hpp"

#include <hidapi/hidapi.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <map>

#include <fmt/format.h>

#include "core/error.hpp"
#include "core/interrupt.hpp"

namespace mcuflash::link {

using core::Error;
using core::ErrorKind;
namespace fs = std::filesystem;

namespace {

void init_hidapi() {
    static const int result = hid_init();
    if (result != 0) throw Error(ErrorKind::Io, "hidapi cannot start");
}

std::string narrow(const wchar_t* text) {
    std::string out;
    for (; text && *text; ++text) out.push_back(*text < 0x80 ? static_cast<char>(*text) : '?');
    return out;
}

std::vector<uint8_t> read_file(const fs::path& path) {
    std::ifstream in(path, std::ios::binary);
    return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

// The USB device above a hidraw node in sysfs: the first parent with an idVendor.
std::string usb_device_dir(const std::string& node_path) {
    std::error_code ec;
    fs::path at = fs::canonical(fs::path("/sys/class/hidraw") / fs::path(node_path).filename() / "device", ec);
    if (ec) return {};
    for (; at.has_relative_path() && at != at.root_path(); at = at.parent_path())
        if (fs::exists(at / "idVendor", ec)) return at.string();
    return {};
}

std::string describe_node(const HidNode& n) {
    return fmt::format("{} (USB {:04x}:{:04x}{}{})", n.path, n.usb.vendor, n.usb.product,
                       n.usb.port_path.empty() ? "" : " at " + n.usb.port_path,
                       n.usb.serial.empty() ? "" : " serial " + n.usb.serial);
}

Error permission_error(const HidNode& n) {
    return Error(ErrorKind::Permission, fmt::format("no permission to open {}", describe_node(n)),
                 fmt::format("allow your user to open it with a udev rule (`mcuflash udev-rules` writes them all), e.g. "
                             "in /etc/udev/rules.d/70-mcuflash.rules:\n"
                             "  KERNEL==\"hidraw*\", ATTRS{{idVendor}}==\"{:04x}\", ATTRS{{idProduct}}==\"{:04x}\", "
                             "MODE=\"0660\", TAG+=\"uaccess\"\n"
                             "then `sudo udevadm control --reload && sudo udevadm trigger` (or replug the device)",
                             n.usb.vendor, n.usb.product));
}

}  // namespace

std::vector<HidNode> HidapiDevice::enumerate() {
    init_hidapi();
    std::vector<HidNode> out;
    hid_device_info* list = hid_enumerate(0, 0);
    for (const hid_device_info* d = list; d; d = d->next) {
        if (d->bus_type != HID_API_BUS_USB || !d->path) continue;
        HidNode node;
        node.path = d->path;
        node.interface = d->interface_number;
        node.usb.vendor = d->vendor_id;
        node.usb.product = d->product_id;
        node.usb.bcd_device = d->release_number;
        node.usb.serial = narrow(d->serial_number);
        node.usb_sysfs = usb_device_dir(node.path);
        if (!node.usb_sysfs.empty()) node.usb.port_path = fs::path(node.usb_sysfs).filename().string();
        out.push_back(std::move(node));
    }
    hid_free_enumeration(list);
    return out;
}

std::unique_ptr<HidapiDevice> HidapiDevice::open(const UsbMatch& match) {
    // One node per device: its first HID interface (the HID bootloaders have one).
    std::map<std::string, HidNode> devices;
    for (auto& node : enumerate()) {
        if (!match.matches(node.usb)) continue;
        const std::string key = node.usb.port_path.empty() ? node.path : node.usb.port_path;
        auto [at, added] = devices.try_emplace(key, node);
        if (!added && node.interface < at->second.interface) at->second = node;
    }
    if (devices.empty())
        throw Error(ErrorKind::NotFound, fmt::format("no {} has a hidraw node", match.describe()),
                    "check the cable and that the board is in its bootloader; `lsusb` lists what is connected");
    if (devices.size() > 1) {
        std::string names;
        for (const auto& [key, node] : devices) names += "\n  " + describe_node(node);
        throw Error(ErrorKind::Usage, fmt::format("{} devices match {}:{}", devices.size(), match.describe(), names),
                    "name one: usb:VID:PID:SERIAL or usb:BUS-PORT");
    }
    HidNode node = devices.begin()->second;
    if (::access(node.path.c_str(), R_OK | W_OK) != 0 && errno == EACCES) throw permission_error(node);
    hid_device* handle = hid_open_path(node.path.c_str());
    if (!handle)
        throw Error(ErrorKind::Io, fmt::format("cannot open {}: {}", describe_node(node), narrow(hid_error(nullptr))));
    return std::unique_ptr<HidapiDevice>(new HidapiDevice(std::move(node), handle));
}

HidapiDevice::HidapiDevice(HidNode node, hid_device* handle) : node_(std::move(node)), handle_(handle) {}

HidapiDevice::~HidapiDevice() { hid_close(handle_); }

std::string HidapiDevice::describe() const { return describe_node(node_); }

std::vector<uint8_t> HidapiDevice::device_descriptor() {
    // sysfs `descriptors`: the device descriptor, then the active configuration's.
    auto all = node_.usb_sysfs.empty() ? std::vector<uint8_t>{} : read_file(fs::path(node_.usb_sysfs) / "descriptors");
    if (all.size() < 18) throw Error(ErrorKind::Protocol, fmt::format("{}: the kernel shows no device descriptor", describe()));
    all.resize(18);
    return all;
}

std::vector<uint8_t> HidapiDevice::report_descriptor() {
    auto descriptor = read_file(fs::path("/sys/class/hidraw") / fs::path(node_.path).filename() / "device/report_descriptor");
    if (descriptor.empty()) throw Error(ErrorKind::Protocol, fmt::format("{}: the kernel shows no report descriptor", describe()));
    return descriptor;
}

std::string HidapiDevice::output_route() {
    std::optional<HidEndpoints> endpoints;
    if (!node_.usb_sysfs.empty()) {
        auto all = read_file(fs::path(node_.usb_sysfs) / "descriptors");
        if (all.size() > 18) endpoints = hid_endpoints(std::span<const uint8_t>(all).subspan(18));
    }
    // The kernel's choice: the interrupt OUT endpoint when the interface has one.
    return endpoints && endpoints->out ? fmt::format("{}, interrupt OUT endpoint {:02X}", node_.path, endpoints->out)
                                       : fmt::format("{}, SET_REPORT on endpoint 0", node_.path);
}

bool HidapiDevice::present() {
    std::error_code ec;
    return fs::exists(node_.path, ec) && !node_.usb_sysfs.empty() && fs::exists(node_.usb_sysfs, ec);
}

void HidapiDevice::fail(int error_number, const std::string& what) const {
    // A signal (Ctrl-C, SIGTERM) breaks a blocked hidraw write or poll with EINTR: that is the stop,
    // not an I/O failure.
    core::throw_if_interrupted();
    const std::string where = fmt::format("{} {}", what, describe());
    switch (error_number) {
        case EPIPE: throw Error(ErrorKind::Protocol, where + ": stalled (the device refused the report)");
        case ETIMEDOUT: throw Error(ErrorKind::Timeout, where + ": no answer in time");
        case ENODEV:
        case ESHUTDOWN:
        case ENOENT: throw Error(ErrorKind::Io, where + ": the device is gone from the bus");
        case EACCES:
        case EPERM: throw Error(ErrorKind::Permission, where + ": permission denied");
        default: throw Error(ErrorKind::Io, fmt::format("{}: {}", where, std::strerror(error_number)));
    }
}

void HidapiDevice::do_write_report(std::span<const uint8_t> report, unsigned) {
    // hidapi's first byte is the report id: 0, the devices number none.
    std::vector<uint8_t> buffer(report.size() + 1, 0);
    std::copy(report.begin(), report.end(), buffer.begin() + 1);
    const int written = hid_write(handle_, buffer.data(), buffer.size());
    const int error_number = errno;
    if (written < 0) fail(error_number, "sending a report to");
}

std::vector<uint8_t> HidapiDevice::do_read_report(size_t max_length, unsigned timeout_ms) {
    std::vector<uint8_t> buffer(std::max<size_t>(max_length, 64));
    const int got = hid_read_timeout(handle_, buffer.data(), buffer.size(), static_cast<int>(timeout_ms));
    if (got < 0) {
        core::throw_if_interrupted();  // EINTR from the signal, as in fail()
        if (!present()) fail(ENODEV, "reading a report from");
        throw Error(ErrorKind::Io, fmt::format("reading a report from {}: {}", describe(), narrow(hid_error(handle_))));
    }
    if (got == 0) throw Error(ErrorKind::Timeout, fmt::format("no report from {} within {} ms", describe(), timeout_ms));
    buffer.resize(static_cast<size_t>(got));
    return buffer;
}

}  // namespace mcuflash::link
