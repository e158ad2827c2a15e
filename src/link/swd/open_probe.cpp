#include "link/swd/open_probe.hpp"

#include <fmt/format.h>

#include <fstream>

#include "core/error.hpp"
#include "link/hidapi_device.hpp"
#include "link/usb_hid_device.hpp"

namespace mcuflash::link::swd {

using core::Error;
using core::ErrorKind;

namespace {

constexpr const char* kScheme = "cmsis-dap";

bool names_cmsis_dap(std::string text) {
    for (auto& c : text) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
    return text.find("CMSIS-DAP") != std::string::npos;
}

std::string read_sysfs(const std::string& path) {
    std::ifstream in(path);
    std::string line;
    std::getline(in, line);
    return line;
}

std::string spec_for(const UsbIdentity& id) {
    if (!id.serial.empty()) return fmt::format("{}:{:04x}:{:04x}:{}", kScheme, id.vendor, id.product, id.serial);
    if (!id.port_path.empty()) return fmt::format("{}:{}", kScheme, id.port_path);
    return fmt::format("{}:{:04x}:{:04x}", kScheme, id.vendor, id.product);
}

// The match that opens exactly this device.
UsbMatch exact(const UsbIdentity& id) {
    UsbMatch match;
    if (!id.port_path.empty()) {
        match.port_path = id.port_path;
    } else {
        match.vendor = id.vendor, match.product = id.product, match.serial = id.serial;
    }
    return match;
}

// What a device opened through libusb says of itself: nullopt when it is no CMSIS-DAP probe.
std::optional<ProbeCandidate> look_at(LibusbDevice& device) {
    ProbeCandidate candidate;
    candidate.usb = device.identity();
    const auto descriptor = device.descriptor(usb::kDescriptorDevice, 0, 0, 18);
    if (descriptor.size() >= 16) candidate.product = device.string_descriptor(descriptor[15]);
    const auto configuration = device.configuration_descriptor();
    bool bulk = false, hid = false;
    for (const auto& interface : dap::vendor_bulk_interfaces(configuration))
        if (names_cmsis_dap(device.string_descriptor(interface.string_index))) bulk = true;
    for (const auto& [number, string_index] : dap::hid_interfaces(configuration))
        if (names_cmsis_dap(device.string_descriptor(string_index)) || names_cmsis_dap(candidate.product)) hid = true;
    if (!bulk && !hid) return std::nullopt;
    candidate.version = bulk ? 2 : 1;
    candidate.spec = spec_for(candidate.usb);
    return candidate;
}

}  // namespace

bool is_probe_spec(const std::string& text) { return text.rfind(kScheme, 0) == 0; }

UsbMatch parse_probe_spec(const std::string& spec) {
    if (!is_probe_spec(spec) || (spec.size() > 9 && spec[9] != ':'))
        throw Error(ErrorKind::Usage, fmt::format("'{}' names no debug probe", spec),
                    "write cmsis-dap (the one connected), cmsis-dap:VID:PID[:SERIAL] or cmsis-dap:BUS-PORT");
    if (spec.size() <= 10) return {};
    try {
        return UsbMatch::parse(spec.substr(10));
    } catch (const Error&) {
        throw Error(ErrorKind::Usage, fmt::format("'{}' names no debug probe", spec),
                    "write cmsis-dap (the one connected), cmsis-dap:VID:PID[:SERIAL] (hex IDs, e.g. "
                    "cmsis-dap:2e8a:000c) or cmsis-dap:BUS-PORT (e.g. cmsis-dap:1-1.4)");
    }
}

std::vector<ProbeCandidate> find_cmsis_dap_probes(const UsbMatch& match, size_t* unreadable) {
    std::vector<ProbeCandidate> found;
    size_t skipped = 0;
    std::vector<UsbIdentity> devices;
    try {
        devices = LibusbDevice::enumerate();
    } catch (const Error&) {
        // no USB access here: the hidraw nodes below may still show a version 1 probe
    }
    for (const auto& id : devices) {
        if (!match.matches(id)) continue;
        try {
            auto device = LibusbDevice::open(exact(id));
            if (auto candidate = look_at(*device)) found.push_back(std::move(*candidate));
        } catch (const Error&) {
            ++skipped;  // no rights (or gone meanwhile): looked at through hidraw below
        }
    }
    // Version 1 probes the user may open through hidraw only (udev gave rights to the node).
    try {
        for (const auto& node : HidapiDevice::enumerate()) {
            if (!match.matches(node.usb) || node.usb_sysfs.empty()) continue;
            const bool known = std::any_of(found.begin(), found.end(), [&](const ProbeCandidate& c) {
                return c.usb.port_path == node.usb.port_path && !c.usb.port_path.empty();
            });
            if (known) continue;
            const std::string product = read_sysfs(node.usb_sysfs + "/product");
            if (!names_cmsis_dap(product)) continue;
            ProbeCandidate candidate{node.usb, product, 1, spec_for(node.usb)};
            found.push_back(std::move(candidate));
            if (skipped) --skipped;
        }
    } catch (const Error&) {
    }
    if (unreadable) *unreadable = skipped;
    return found;
}

std::unique_ptr<CmsisDapProbe> open_cmsis_dap(const std::string& spec) {
    const UsbMatch match = parse_probe_spec(spec);
    size_t unreadable = 0;
    auto probes = find_cmsis_dap_probes(match, &unreadable);
    if (probes.empty())
        throw Error(ErrorKind::NotFound, fmt::format("no CMSIS-DAP debug probe{} is connected",
                                                     spec == kScheme ? "" : " matching " + spec),
                    unreadable ? fmt::format("{} USB device(s) could not be opened for lack of rights: a probe may be "
                                             "among them. `mcuflash udev-rules | sudo tee /etc/udev/rules.d/70-mcuflash.rules` gives "
                                             "your user the common probes (then replug it); for another, add a line with "
                                             "its VID:PID from `lsusb`, or run as root once to check",
                                             unreadable)
                               : "check the probe's USB cable; `lsusb` lists what is connected");
    if (probes.size() > 1) {
        std::string list;
        for (const auto& p : probes)
            list += fmt::format("\n  {}  ({}, CMSIS-DAP v{}, usb {})", p.spec, p.product.empty() ? "?" : p.product,
                                p.version, p.usb.port_path);
        throw Error(ErrorKind::Usage, fmt::format("{} CMSIS-DAP debug probes are connected:{}", probes.size(), list),
                    "name one with --probe, as listed");
    }
    const auto& probe = probes.front();
    const UsbMatch which = exact(probe.usb);
    if (probe.version == 2) return CmsisDapProbe::over_bulk(LibusbDevice::open(which));
    try {
        return CmsisDapProbe::over_hid(HidapiDevice::open(which));
    } catch (const Error& e) {
        if (e.kind() != ErrorKind::NotFound) throw;
    }
    return CmsisDapProbe::over_hid(std::make_unique<UsbHidDevice>(LibusbDevice::open(which)));
}

}  // namespace mcuflash::link::swd
