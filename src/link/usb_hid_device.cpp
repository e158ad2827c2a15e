#include "link/usb_hid_device.hpp"

#include <fmt/format.h>

#include "core/error.hpp"

namespace mcuflash::link {

namespace {
constexpr uint8_t kClassOut = 0x21, kSetReport = 0x09;
constexpr uint16_t kOutputReport = 0x0200;  // report type output, report id 0
constexpr uint8_t kHidReportDescriptor = 0x22;
}  // namespace

UsbHidDevice::UsbHidDevice(std::unique_ptr<UsbDevice> usb) : owned_(std::move(usb)), usb_(*owned_) { claim(); }

UsbHidDevice::UsbHidDevice(UsbDevice& usb) : usb_(usb) { claim(); }

void UsbHidDevice::claim() {
    try {
        if (auto found = hid_endpoints(usb_.configuration_descriptor())) endpoints_ = *found;
    } catch (const core::Error& e) {
        // A device that answers no GET_DESCRIPTOR still takes SET_REPORT on interface 0.
        if (e.kind() != core::ErrorKind::Protocol && e.kind() != core::ErrorKind::Timeout) throw;
    }
    if (!endpoints_.in) endpoints_.in = 0x81;
    usb_.claim_interface(endpoints_.interface);
}

std::vector<uint8_t> UsbHidDevice::device_descriptor() {
    return usb_.descriptor(usb::kDescriptorDevice, 0, 0, 18);
}

std::vector<uint8_t> UsbHidDevice::report_descriptor() {
    return usb_.control_in({0x81, usb::kGetDescriptor, kHidReportDescriptor << 8, endpoints_.interface, 1024}, 1000);
}

std::string UsbHidDevice::output_route() {
    return endpoints_.out ? fmt::format("interrupt OUT endpoint {:02X}", endpoints_.out)
                          : std::string("SET_REPORT on endpoint 0");
}

void UsbHidDevice::do_write_report(std::span<const uint8_t> report, unsigned timeout_ms) {
    if (endpoints_.out)
        usb_.endpoint_out(endpoints_.out, report, timeout_ms);
    else
        usb_.control_out({kClassOut, kSetReport, kOutputReport, endpoints_.interface, static_cast<uint16_t>(report.size())},
                         report, timeout_ms);
}

std::vector<uint8_t> UsbHidDevice::do_read_report(size_t max_length, unsigned timeout_ms) {
    return usb_.endpoint_in(endpoints_.in, std::max<size_t>(max_length, endpoints_.in_size), timeout_ms);
}

}  // namespace mcuflash::link
