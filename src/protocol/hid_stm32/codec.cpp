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

}  // namespace mcuflash::protocol::hid_stm32
