#include "link/usb_device.hpp"

#include <fmt/format.h>

#include <algorithm>

#include "core/interrupt.hpp"

namespace mcuflash::link {

namespace {
std::string setup_text(const UsbSetup& s) {
    return fmt::format("SETUP {:02X} {:02X} {:04X} {:04X} {:04X}", s.request_type, s.request, s.value, s.index, s.length);
}
}  // namespace

std::vector<uint8_t> UsbDevice::control_in(const UsbSetup& setup, unsigned timeout_ms) {
    core::throw_if_interrupted();  // a control transfer is a whole exchange
    check_time_limit();
    if (tracing()) trace(TraceDirection::ToDevice, {}, setup_text(setup));
    auto data = do_control_in(setup, timeout_ms);
    trace(TraceDirection::FromDevice, data, data.empty() ? "no data" : "");
    return data;
}

void UsbDevice::control_out(const UsbSetup& setup, std::span<const uint8_t> data, unsigned timeout_ms) {
    core::throw_if_interrupted();  // a control transfer is a whole exchange
    check_time_limit();
    if (tracing()) trace(TraceDirection::ToDevice, data, setup_text(setup));
    do_control_out(setup, data, timeout_ms);
}

std::vector<uint8_t> UsbDevice::endpoint_in(uint8_t endpoint, size_t max_length, unsigned timeout_ms) {
    core::throw_if_interrupted();
    check_time_limit();
    auto data = do_endpoint_in(static_cast<uint8_t>(endpoint | 0x80), max_length, timeout_ms);
    if (tracing()) trace(TraceDirection::FromDevice, data, fmt::format("IN {:02X}", endpoint | 0x80));
    return data;
}

void UsbDevice::endpoint_out(uint8_t endpoint, std::span<const uint8_t> data, unsigned timeout_ms) {
    core::throw_if_interrupted();
    check_time_limit();
    if (tracing()) trace(TraceDirection::ToDevice, data, fmt::format("OUT {:02X}", endpoint & 0x7F));
    do_endpoint_out(static_cast<uint8_t>(endpoint & 0x7F), data, timeout_ms);
}

std::vector<uint8_t> UsbDevice::descriptor(uint8_t type, uint8_t index, uint16_t language, uint16_t length,
                                           unsigned timeout_ms) {
    UsbSetup setup{0x80, usb::kGetDescriptor, static_cast<uint16_t>((type << 8) | index), language, length};
    return control_in(setup, timeout_ms);
}

std::string UsbDevice::string_descriptor(uint8_t index, unsigned timeout_ms) {
    if (index == 0) return {};
    auto raw = descriptor(usb::kDescriptorString, index, usb::kLanguageEnglishUs, 255, timeout_ms);
    std::string out;
    size_t length = raw.empty() ? 0 : std::min<size_t>(raw[0], raw.size());
    for (size_t i = 2; i + 1 < length; i += 2) {
        uint16_t unit = static_cast<uint16_t>(raw[i] | (raw[i + 1] << 8));
        out.push_back(unit < 0x80 ? static_cast<char>(unit) : '?');
    }
    return out;
}

std::vector<uint8_t> UsbDevice::configuration_descriptor(uint8_t index, unsigned timeout_ms) {
    auto head = descriptor(usb::kDescriptorConfiguration, index, 0, 9, timeout_ms);
    if (head.size() < 4) return head;
    uint16_t total = static_cast<uint16_t>(head[2] | (head[3] << 8));
    return descriptor(usb::kDescriptorConfiguration, index, 0, total, timeout_ms);
}

}  // namespace mcuflash::link
