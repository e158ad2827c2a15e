#include "protocol/hid_stm32/codec.hpp"

#include <algorithm>

namespace mcuflash::protocol::hid_stm32 {

namespace {
constexpr uint8_t kSignature[7] = {'B', 'T', 'L', 'D', 'C', 'M', 'D'};
}

std::vector<uint8_t> command_report(Command command) {
    std::vector<uint8_t> report(kReportSize, 0);
    std::copy(std::begin(kSignature), std::end(kSignature), report.begin());
    report[7] = static_cast<uint8_t>(command);
    return report;
}

std::optional<uint8_t> decode_command(std::span<const uint8_t> report) {
    if (report.size() != kReportSize) return std::nullopt;
    if (!std::equal(std::begin(kSignature), std::end(kSignature), report.begin())) return std::nullopt;
    if (std::any_of(report.begin() + 8, report.end(), [](uint8_t b) { return b != 0; })) return std::nullopt;
    return report[7];
}

std::vector<std::vector<uint8_t>> page_reports(std::span<const uint8_t> page, uint8_t fill) {
    std::vector<uint8_t> whole(kPageSize, fill);
    std::copy_n(page.begin(), std::min<size_t>(page.size(), kPageSize), whole.begin());
    std::vector<std::vector<uint8_t>> reports;
    for (uint32_t at = 0; at < kPageSize; at += kReportSize)
        reports.emplace_back(whole.begin() + at, whole.begin() + at + kReportSize);
    return reports;
}

std::optional<PageAck> decode_ack(std::span<const uint8_t> input) {
    if (input.size() < kAckSize || (input[7] & 0xFE) != 0x02) return std::nullopt;
    return PageAck{input[7] == 0x03};
}

std::optional<HidEndpoints> hid_endpoints(std::span<const uint8_t> d) {
    std::optional<HidEndpoints> found;
    bool in_hid_interface = false;
    for (size_t at = 0; at + 2 <= d.size();) {
        const uint8_t length = d[at], type = d[at + 1];
        if (length < 2 || at + length > d.size()) break;
        if (type == 4 && length >= 9) {  // interface
            if (found) break;            // only the first HID interface's endpoints
            in_hid_interface = d[at + 5] == 3;
            if (in_hid_interface) found = HidEndpoints{d[at + 2]};
        } else if (type == 5 && length >= 7 && in_hid_interface) {  // endpoint
            const uint8_t address = d[at + 2];
            const bool interrupt = (d[at + 3] & 0x03) == 0x03;
            const uint16_t size = static_cast<uint16_t>(d[at + 4] | (d[at + 5] << 8));
            if (interrupt && (address & 0x80) && !found->in) found->in = address, found->in_size = size;
            if (interrupt && !(address & 0x80) && !found->out) found->out = address, found->out_size = size;
        }
        at += length;
    }
    return found;
}

}  // namespace mcuflash::protocol::hid_stm32
