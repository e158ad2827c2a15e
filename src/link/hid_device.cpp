#include "link/hid_device.hpp"

#include <fmt/format.h>

#include "core/interrupt.hpp"

namespace mcuflash::link {

void HidDevice::write_report(std::span<const uint8_t> report, unsigned timeout_ms) {
    core::throw_if_interrupted();  // a report is a whole transfer
    check_time_limit();
    if (tracing()) trace(TraceDirection::ToDevice, report, "output report");
    do_write_report(report, timeout_ms);
}

std::vector<uint8_t> HidDevice::read_report(size_t max_length, unsigned timeout_ms) {
    core::throw_if_interrupted();
    check_time_limit();
    auto report = do_read_report(max_length, timeout_ms);
    if (tracing()) trace(TraceDirection::FromDevice, report, "input report");
    return report;
}

std::optional<HidEndpoints> hid_endpoints(std::span<const uint8_t> d) {
    std::optional<HidEndpoints> found;
    bool in_hid_interface = false;
    for (size_t at = 0; at + 2 <= d.size();) {
        const uint8_t length = d[at], type = d[at + 1];
        if (length < 2 || at + length > d.size()) break;
        if (type == usb::kDescriptorInterface && length >= 9) {
            if (found) break;  // only the first HID interface's endpoints
            in_hid_interface = d[at + 5] == 3;
            if (in_hid_interface) found = HidEndpoints{d[at + 2]};
        } else if (type == 5 && length >= 7 && in_hid_interface) {  // an endpoint
            const uint8_t address = d[at + 2];
            // Only interrupt endpoints carry reports (an isochronous one in a descriptor is a slip).
            const bool interrupt = (d[at + 3] & 0x03) == 0x03;
            const uint16_t size = static_cast<uint16_t>(d[at + 4] | (d[at + 5] << 8));
            if (interrupt && (address & 0x80) && !found->in) found->in = address, found->in_size = size;
            if (interrupt && !(address & 0x80) && !found->out) found->out = address, found->out_size = size;
        }
        at += length;
    }
    return found;
}

}  // namespace mcuflash::link
