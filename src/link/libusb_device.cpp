#include "link/libusb_device.hpp"

#include <fmt/format.h>
#include <libusb.h>

#include <algorithm>
#include <cctype>
#include <thread>

#include "core/deadline.hpp"
#include "core/error.hpp"

namespace mcuflash::link {

using core::Error;
using core::ErrorKind;

// One libusb context per opened device (and per enumeration): no global state, no shared event loop.
struct LibusbDevice::Context {
    libusb_context* raw = nullptr;
    Context() {
        int result = libusb_init(&raw);
        if (result != 0)
            throw Error(ErrorKind::Io, fmt::format("libusb cannot start: {}", libusb_strerror(result)),
                        "is /dev/bus/usb (usbfs) available?");
    }
    ~Context() { libusb_exit(raw); }
};

namespace {

// Device lists are reference counted by libusb; this frees the list and unreferences what was not kept.
class DeviceList {
public:
    explicit DeviceList(libusb_context* context) {
        ssize_t count = libusb_get_device_list(context, &list_);
        if (count < 0)
            throw Error(ErrorKind::Io, fmt::format("cannot list USB devices: {}", libusb_strerror(static_cast<int>(count))));
        count_ = static_cast<size_t>(count);
    }
    ~DeviceList() { libusb_free_device_list(list_, 1); }
    DeviceList(const DeviceList&) = delete;
    DeviceList& operator=(const DeviceList&) = delete;
    libusb_device** begin() const { return list_; }
    libusb_device** end() const { return list_ + count_; }

private:
    libusb_device** list_ = nullptr;
    size_t count_ = 0;
};

std::string port_path_of(libusb_device* device) {
    uint8_t ports[8];
    int depth = libusb_get_port_numbers(device, ports, sizeof ports);
    const int bus = libusb_get_bus_number(device);
    if (depth <= 0) return fmt::format("usb{}", bus);  // a root hub, named as sysfs names it
    std::string path = fmt::format("{}-{}", bus, ports[0]);
    for (int i = 1; i < depth; ++i) path += fmt::format(".{}", ports[i]);
    return path;
}

std::string read_serial(libusb_device_handle* handle, uint8_t index) {
    if (!handle || index == 0) return {};
    unsigned char text[256] = {};
    int length = libusb_get_string_descriptor_ascii(handle, index, text, sizeof text);
    return length > 0 ? std::string(reinterpret_cast<char*>(text), static_cast<size_t>(length)) : std::string();
}

// Identity from the cached descriptor; the serial needs an open handle (nullptr: left empty).
UsbIdentity identity_of(libusb_device* device, libusb_device_handle* handle) {
    libusb_device_descriptor d{};
    libusb_get_device_descriptor(device, &d);  // cannot fail since libusb 1.0.16
    UsbIdentity id;
    id.vendor = d.idVendor;
    id.product = d.idProduct;
    id.bcd_device = d.bcdDevice;
    id.port_path = port_path_of(device);
    id.serial = read_serial(handle, d.iSerialNumber);
    return id;
}

std::string describe_identity(const UsbIdentity& id) {
    std::string out = fmt::format("USB {:04x}:{:04x} at {}", id.vendor, id.product, id.port_path);
    if (!id.serial.empty()) out += fmt::format(" (serial {})", id.serial);
    return out;
}

std::string node_path_of(libusb_device* device) {
    return fmt::format("/dev/bus/usb/{:03}/{:03}", libusb_get_bus_number(device), libusb_get_device_address(device));
}

Error permission_error(libusb_device* device, const UsbIdentity& id) {
    return Error(ErrorKind::Permission,
                 fmt::format("no permission to open {} ({})", describe_identity(id), node_path_of(device)),
                 fmt::format("allow your user to open it with a udev rule, e.g. in /etc/udev/rules.d/70-mcuflash.rules:\n"
                             "  SUBSYSTEM==\"usb\", ATTR{{idVendor}}==\"{:04x}\", ATTR{{idProduct}}==\"{:04x}\", "
                             "MODE=\"0660\", TAG+=\"uaccess\"\n"
                             "then `sudo udevadm control --reload && sudo udevadm trigger` (or replug the device)",
                             id.vendor, id.product));
}

std::optional<uint16_t> parse_hex16(const std::string& text) {
    if (text.empty() || text.size() > 4) return std::nullopt;
    if (!std::all_of(text.begin(), text.end(), [](unsigned char c) { return std::isxdigit(c); })) return std::nullopt;
    return static_cast<uint16_t>(std::stoul(text, nullptr, 16));
}

bool is_port_path(const std::string& text) {
    // BUS-PORT[.PORT...]: digits, one dash, then digits and dots.
    auto dash = text.find('-');
    if (dash == std::string::npos || dash == 0 || dash + 1 >= text.size()) return false;
    auto digits = [](char c) { return std::isdigit(static_cast<unsigned char>(c)) != 0; };
    return std::all_of(text.begin(), text.begin() + static_cast<std::ptrdiff_t>(dash), digits) &&
           std::all_of(text.begin() + static_cast<std::ptrdiff_t>(dash) + 1, text.end(),
                       [&](char c) { return digits(c) || c == '.'; }) &&
           text.back() != '.';
}

std::string setup_words(const UsbSetup& s) {
    return fmt::format("control {} {:02x} {:02x} value {:04x} index {:04x} length {}", s.is_in() ? "IN" : "OUT",
                       s.request_type, s.request, s.value, s.index, s.length);
}

}  // namespace

UsbMatch UsbMatch::parse(const std::string& text_in) {
    std::string text = text_in.rfind("usb:", 0) == 0 ? text_in.substr(4) : text_in;
    UsbMatch match;
    if (is_port_path(text)) {
        match.port_path = text;
        return match;
    }
    auto first = text.find(':');
    auto second = first == std::string::npos ? std::string::npos : text.find(':', first + 1);
    if (first != std::string::npos) {
        match.vendor = parse_hex16(text.substr(0, first));
        match.product = parse_hex16(text.substr(first + 1, second == std::string::npos ? std::string::npos : second - first - 1));
        if (second != std::string::npos) match.serial = text.substr(second + 1);
    }
    if (!match.vendor || !match.product || (second != std::string::npos && match.serial.empty()))
        throw Error(ErrorKind::Usage, fmt::format("'{}' names no USB device", text_in),
                    "write usb:VID:PID (hex, e.g. usb:0483:df11), usb:VID:PID:SERIAL or usb:BUS-PORT (e.g. usb:1-1.4)");
    return match;
}

bool UsbMatch::matches(const UsbIdentity& id) const {
    if (vendor && *vendor != id.vendor) return false;
    if (product && *product != id.product) return false;
    if (!port_path.empty() && port_path != id.port_path) return false;
    if (!serial.empty() && !id.serial.empty() && serial != id.serial) return false;
    return true;
}

std::string UsbMatch::describe() const {
    if (!port_path.empty()) return "USB device at " + port_path;
    std::string out = fmt::format("USB device {:04x}:{:04x}", vendor.value_or(0), product.value_or(0));
    if (!serial.empty()) out += " with serial " + serial;
    return out;
}

LibusbDevice::LibusbDevice(std::shared_ptr<Context> context, libusb_device* device) : context_(std::move(context)) {
    adopt(device);
}

LibusbDevice::~LibusbDevice() { release(); }

void LibusbDevice::adopt(libusb_device* device) {
    libusb_device_handle* handle = nullptr;
    int result = libusb_open(device, &handle);
    if (result == LIBUSB_ERROR_ACCESS) throw permission_error(device, identity_of(device, nullptr));
    if (result != 0)
        throw Error(ErrorKind::Io, fmt::format("cannot open {}: {}", describe_identity(identity_of(device, nullptr)),
                                               libusb_strerror(result)));
    // Claiming an interface a kernel driver holds (e.g. usbhid, cdc_acm) detaches it first.
    libusb_set_auto_detach_kernel_driver(handle, 1);
    device_ = libusb_ref_device(device);
    handle_ = handle;
    bus_ = libusb_get_bus_number(device);
    address_ = libusb_get_device_address(device);
    identity_ = identity_of(device, handle);
}

void LibusbDevice::release() {
    if (handle_) {
        for (uint8_t interface : claimed_) libusb_release_interface(handle_, interface);
        libusb_close(handle_);
    }
    if (device_) libusb_unref_device(device_);
    handle_ = nullptr;
    device_ = nullptr;
    claimed_.clear();
}

std::unique_ptr<LibusbDevice> LibusbDevice::open(const UsbMatch& match) {
    auto context = std::make_shared<Context>();
    DeviceList list(context->raw);
    std::vector<libusb_device*> candidates;
    std::vector<UsbIdentity> identities;
    libusb_device* denied = nullptr;  // a candidate whose serial could not be read for lack of rights
    for (libusb_device* device : list) {
        UsbIdentity id = identity_of(device, nullptr);
        if (!match.matches(id)) continue;
        if (!match.serial.empty()) {
            libusb_device_handle* handle = nullptr;
            int result = libusb_open(device, &handle);
            if (result == LIBUSB_ERROR_ACCESS) {
                if (!denied) denied = device;
                continue;
            }
            if (result != 0) continue;
            id.serial = read_serial(handle, [&] {
                libusb_device_descriptor d{};
                libusb_get_device_descriptor(device, &d);
                return d.iSerialNumber;
            }());
            libusb_close(handle);
            if (id.serial != match.serial) continue;
        }
        candidates.push_back(device);
        identities.push_back(id);
    }
    if (candidates.empty()) {
        if (denied) throw permission_error(denied, identity_of(denied, nullptr));
        throw Error(ErrorKind::NotFound, fmt::format("no {} is connected", match.describe()),
                    "check the cable and that the board is in its bootloader; `lsusb` lists what is connected");
    }
    if (candidates.size() > 1) {
        std::string names;
        for (const auto& id : identities) names += "\n  " + describe_identity(id);
        throw Error(ErrorKind::Usage, fmt::format("{} devices match {}:{}", candidates.size(), match.describe(), names),
                    "name one: usb:VID:PID:SERIAL or usb:BUS-PORT");
    }
    return std::unique_ptr<LibusbDevice>(new LibusbDevice(std::move(context), candidates.front()));
}

std::vector<UsbIdentity> LibusbDevice::enumerate() {
    Context context;
    DeviceList list(context.raw);
    std::vector<UsbIdentity> out;
    for (libusb_device* device : list) {
        libusb_device_handle* handle = nullptr;
        if (libusb_open(device, &handle) != 0) handle = nullptr;  // no rights: no serial
        out.push_back(identity_of(device, handle));
        if (handle) libusb_close(handle);
    }
    std::sort(out.begin(), out.end(), [](const UsbIdentity& a, const UsbIdentity& b) { return a.port_path < b.port_path; });
    return out;
}

std::string LibusbDevice::describe() const { return describe_identity(identity_); }

std::string LibusbDevice::node_path() const {
    return fmt::format("/dev/bus/usb/{:03}/{:03}", bus_, address_);
}

void LibusbDevice::fail(int error, const std::string& what) const {
    const std::string where = fmt::format("{} to {}", what, describe());
    switch (error) {
        case LIBUSB_ERROR_PIPE:
            throw Error(ErrorKind::Protocol, where + ": stalled (the device refused the request)");
        case LIBUSB_ERROR_TIMEOUT:
            throw Error(ErrorKind::Timeout, where + ": no answer in time");
        case LIBUSB_ERROR_NO_DEVICE:
            throw Error(ErrorKind::Io, where + ": the device is gone from the bus");
        case LIBUSB_ERROR_ACCESS:
            throw Error(ErrorKind::Permission, where + ": permission denied (" + node_path() + ")");
        case LIBUSB_ERROR_BUSY:
            throw Error(ErrorKind::Io, where + ": busy", "another program has claimed the interface; close it");
        default:
            throw Error(ErrorKind::Io, fmt::format("{}: {}", where, libusb_strerror(error)));
    }
}

std::vector<uint8_t> LibusbDevice::do_control_in(const UsbSetup& setup, unsigned timeout_ms) {
    if (!setup.is_in()) throw Error(ErrorKind::Usage, "control_in with an OUT request type: " + setup_words(setup));
    if (!handle_) fail(LIBUSB_ERROR_NO_DEVICE, setup_words(setup));
    std::vector<uint8_t> data(setup.length);
    int result = libusb_control_transfer(handle_, setup.request_type, setup.request, setup.value, setup.index,
                                         data.data(), setup.length, timeout_ms);
    if (result < 0) fail(result, setup_words(setup));
    data.resize(static_cast<size_t>(result));
    return data;
}

void LibusbDevice::do_control_out(const UsbSetup& setup, std::span<const uint8_t> data, unsigned timeout_ms) {
    if (setup.is_in()) throw Error(ErrorKind::Usage, "control_out with an IN request type: " + setup_words(setup));
    if (setup.length != data.size())
        throw Error(ErrorKind::Usage, fmt::format("{}: wLength {} but {} data bytes", setup_words(setup), setup.length,
                                                  data.size()));
    if (!handle_) fail(LIBUSB_ERROR_NO_DEVICE, setup_words(setup));
    // libusb wants a mutable buffer even for OUT transfers.
    std::vector<uint8_t> buffer(data.begin(), data.end());
    int result = libusb_control_transfer(handle_, setup.request_type, setup.request, setup.value, setup.index,
                                         buffer.data(), setup.length, timeout_ms);
    if (result < 0) fail(result, setup_words(setup));
    if (static_cast<size_t>(result) != data.size())
        throw Error(ErrorKind::Io, fmt::format("{} to {}: only {} of {} bytes sent", setup_words(setup), describe(),
                                               result, data.size()));
}

std::vector<uint8_t> LibusbDevice::do_endpoint_in(uint8_t endpoint, size_t max_length, unsigned timeout_ms) {
    const std::string what = fmt::format("IN transfer on endpoint {:02X}", endpoint);
    if (!handle_) fail(LIBUSB_ERROR_NO_DEVICE, what);
    std::vector<uint8_t> data(max_length);
    int done = 0;
    // On Linux usbfs turns a "bulk" transfer on an interrupt endpoint into an interrupt one.
    int result = libusb_bulk_transfer(handle_, endpoint, data.data(), static_cast<int>(max_length), &done, timeout_ms);
    if (result < 0 && !(result == LIBUSB_ERROR_OVERFLOW && done > 0)) fail(result, what);
    data.resize(static_cast<size_t>(done));
    return data;
}

void LibusbDevice::do_endpoint_out(uint8_t endpoint, std::span<const uint8_t> data, unsigned timeout_ms) {
    const std::string what = fmt::format("OUT transfer of {} bytes on endpoint {:02X}", data.size(), endpoint);
    if (!handle_) fail(LIBUSB_ERROR_NO_DEVICE, what);
    std::vector<uint8_t> buffer(data.begin(), data.end());
    int done = 0;
    int result = libusb_bulk_transfer(handle_, endpoint, buffer.data(), static_cast<int>(buffer.size()), &done, timeout_ms);
    if (result < 0) fail(result, what);
    if (static_cast<size_t>(done) != data.size())
        throw Error(ErrorKind::Io, fmt::format("{} to {}: only {} bytes sent", what, describe(), done));
}

void LibusbDevice::clear_halt(uint8_t endpoint) {
    const std::string what = fmt::format("clearing the halt of endpoint {:02X}", endpoint);
    if (!handle_) fail(LIBUSB_ERROR_NO_DEVICE, what);
    int result = libusb_clear_halt(handle_, endpoint);
    if (result != 0) fail(result, what);
}

void LibusbDevice::claim_interface(uint8_t interface) {
    if (!handle_) fail(LIBUSB_ERROR_NO_DEVICE, fmt::format("claiming interface {}", interface));
    int result = libusb_claim_interface(handle_, interface);
    if (result != 0) fail(result, fmt::format("claiming interface {}", interface));
    if (std::find(claimed_.begin(), claimed_.end(), interface) == claimed_.end()) claimed_.push_back(interface);
}

void LibusbDevice::set_alt_setting(uint8_t interface, uint8_t alt) {
    if (!handle_) fail(LIBUSB_ERROR_NO_DEVICE, fmt::format("selecting alternate setting {}", alt));
    int result = libusb_set_interface_alt_setting(handle_, interface, alt);
    if (result != 0) fail(result, fmt::format("selecting alternate setting {} of interface {}", alt, interface));
}

void LibusbDevice::reset_port() {
    if (!handle_) return;  // already off the bus: nothing to reset
    int result = libusb_reset_device(handle_);
    // NOT_FOUND: the device came back as something else (or left); this handle is dead either way.
    if (result == LIBUSB_ERROR_NOT_FOUND || result == LIBUSB_ERROR_NO_DEVICE) {
        libusb_close(handle_);
        handle_ = nullptr;
        claimed_.clear();
        return;
    }
    if (result != 0) fail(result, "resetting the port");
}

bool LibusbDevice::present() {
    if (!handle_) return false;
    DeviceList list(context_->raw);
    // Bus and address name one attached device; a re-enumerated device gets a new address.
    return std::any_of(list.begin(), list.end(), [&](libusb_device* d) {
        return libusb_get_bus_number(d) == bus_ && libusb_get_device_address(d) == address_;
    });
}

void LibusbDevice::reopen_after_reenumeration(std::chrono::milliseconds timeout) {
    const std::string port_path = identity_.port_path;
    const std::string before = describe();
    const uint8_t old_address = address_;
    release();
    core::Deadline deadline(timeout);
    std::optional<Error> last_error;
    for (;;) {
        {
            DeviceList list(context_->raw);
            libusb_device* fresh = nullptr;  // at the port with a new address: re-enumerated
            libusb_device* same = nullptr;   // still the old one (the reset kept it as it was)
            for (libusb_device* d : list) {
                if (port_path_of(d) != port_path) continue;
                (libusb_get_device_address(d) == old_address ? same : fresh) = d;
            }
            libusb_device* chosen = fresh ? fresh : (deadline.expired() ? same : nullptr);
            if (chosen) {
                try {
                    adopt(chosen);
                    return;
                } catch (const Error& e) {
                    // Right after enumeration udev may not have set the node's rights yet: retry.
                    last_error = e;
                }
            }
        }
        if (deadline.expired()) break;
        pause(std::chrono::milliseconds(50));
    }
    if (last_error) throw *last_error;
    throw Error(ErrorKind::NotFound,
                fmt::format("{} did not come back at port {} within {} ms", before, port_path, timeout.count()),
                "the device may need a manual reset or replug");
}

}  // namespace mcuflash::link
