#include "sim/open.hpp"

#include <fmt/format.h>

#include "core/error.hpp"
#include "link/usb_hid_device.hpp"
#include "sim/in_process_link.hpp"
#include "sim/registry.hpp"
#include "sim/usb/in_process_usb.hpp"
#include "sim/usb/usb_registry.hpp"

namespace mcuflash::sim {

namespace {

const usb::UsbSimulatorInfo* find_usb_simulator(const std::string& name) {
    for (const auto& s : usb::usb_simulators())
        if (s.protocol == name) return &s;
    return nullptr;
}

bool is_byte_simulator(const std::string& name) {
    for (const auto& s : simulators())
        if (s.protocol == name) return true;
    return false;
}

}  // namespace

std::optional<link::LinkKind> simulated_link_kind(const std::string& name) {
    if (is_byte_simulator(name)) return link::LinkKind::ByteStream;
    if (const auto* usb_sim = find_usb_simulator(name)) return usb_sim->hid ? link::LinkKind::Hid : link::LinkKind::Usb;
    return std::nullopt;
}

std::unique_ptr<link::Link> open_simulated(const std::string& name, const SimulatedOptions& options) {
    if (const auto* usb_sim = find_usb_simulator(name)) {
        DeviceOptions device_options;
        device_options.timing = options.timing;
        device_options.bootloader = options.bootloader;
        device_options.flash_file = options.flash_file;
        auto device = std::make_unique<usb::InProcessUsb>(usb_sim->make(options.chip, device_options), options.timing,
                                                          usb::UsbFaults::parse(options.faults));
        if (usb_sim->hid) return std::make_unique<link::UsbHidDevice>(std::move(device));
        return device;
    }
    if (!is_byte_simulator(name)) {
        std::string known;
        for (const auto& s : simulators()) known += (known.empty() ? "" : ", ") + s.protocol;
        for (const auto& s : usb::usb_simulators()) known += ", " + s.protocol;
        throw core::Error(core::ErrorKind::Usage, fmt::format("no simulator '{}' (known: {})", name, known));
    }
    InProcessOptions in_process;
    in_process.chip = options.chip;
    in_process.bootloader = options.bootloader;
    in_process.faults = options.faults;
    in_process.timing = options.timing;
    in_process.settings = options.settings;
    in_process.flash_file = options.flash_file;
    return open_in_process(name, in_process);
}

}  // namespace mcuflash::sim
