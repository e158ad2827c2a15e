#include "protocol/halfkay/codec.hpp"

#include <algorithm>
#include <cctype>

namespace mcuflash::protocol::halfkay {

const std::vector<Teensy>& teensies() {
    // teensy_loader_cli 2.2's MCU table (code size, block size); the format follows from them as it
    // decides there: blocks up to 256 bytes below 64 KiB of code -> Address16, 256-byte blocks above
    // -> Address8To23, 512/1024-byte blocks -> Address24Padded64.
    static const std::vector<Teensy> all = {
        {"at90usb162", "Teensy 1.0", 15872, 128, BlockFormat::Address16},
        {"atmega32u4", "Teensy 2.0", 32256, 128, BlockFormat::Address16},
        {"at90usb646", "Teensy++ 1.0", 64512, 256, BlockFormat::Address16},
        {"at90usb1286", "Teensy++ 2.0", 130048, 256, BlockFormat::Address8To23},
        {"mkl26z64", "Teensy LC", 63488, 512, BlockFormat::Address24Padded64},
        {"mk20dx128", "Teensy 3.0", 131072, 1024, BlockFormat::Address24Padded64},
        {"mk20dx256", "Teensy 3.1/3.2", 262144, 1024, BlockFormat::Address24Padded64},
        {"mk64fx512", "Teensy 3.5", 524288, 1024, BlockFormat::Address24Padded64},
        {"mk66fx1m0", "Teensy 3.6", 1048576, 1024, BlockFormat::Address24Padded64},
        {"imxrt1062", "Teensy 4.0", 2031616, 1024, BlockFormat::Address24Padded64},
    };
    return all;
}

namespace {
std::string lower(std::string s) {
    std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    return s;
}
}  // namespace

const Teensy* find_teensy(const std::string& name) {
    const std::string wanted = lower(name);
    for (const auto& t : teensies())
        if (lower(t.mcu) == wanted || lower(t.board) == wanted) return &t;
    return nullptr;
}

std::vector<uint8_t> block_report(const Teensy& t, uint32_t address, std::span<const uint8_t> block) {
    std::vector<uint8_t> out(t.header_size(), 0);
    switch (t.format) {
        case BlockFormat::Address16:
            out[0] = static_cast<uint8_t>(address);
            out[1] = static_cast<uint8_t>(address >> 8);
            break;
        case BlockFormat::Address8To23:
            out[0] = static_cast<uint8_t>(address >> 8);
            out[1] = static_cast<uint8_t>(address >> 16);
            break;
        case BlockFormat::Address24Padded64:
            out[0] = static_cast<uint8_t>(address);
            out[1] = static_cast<uint8_t>(address >> 8);
            out[2] = static_cast<uint8_t>(address >> 16);
            break;
    }
    out.insert(out.end(), block.begin(), block.end());
    out.resize(t.report_size(), 0xFF);
    return out;
}

std::vector<uint8_t> boot_report(const Teensy& t) {
    std::vector<uint8_t> out(t.report_size(), 0);
    out[0] = out[1] = out[2] = 0xFF;
    return out;
}

std::optional<Report> decode_report(const Teensy& t, std::span<const uint8_t> report) {
    if (report.size() != t.report_size()) return std::nullopt;
    Report r;
    switch (t.format) {
        case BlockFormat::Address16:
            r.boot = report[0] == 0xFF && report[1] == 0xFF;
            r.address = uint32_t{report[0]} | (uint32_t{report[1]} << 8);
            break;
        case BlockFormat::Address8To23:
            r.boot = report[0] == 0xFF && report[1] == 0xFF;
            r.address = (uint32_t{report[0]} << 8) | (uint32_t{report[1]} << 16);
            break;
        case BlockFormat::Address24Padded64:
            r.boot = report[0] == 0xFF && report[1] == 0xFF && report[2] == 0xFF;
            r.address = uint32_t{report[0]} | (uint32_t{report[1]} << 8) | (uint32_t{report[2]} << 16);
            break;
    }
    r.block = report.subspan(t.header_size());
    return r;
}

std::optional<uint32_t> output_report_bytes(std::span<const uint8_t> d) {
    uint32_t count = 0, size = 0;
    for (size_t at = 0; at < d.size();) {
        const uint8_t prefix = d[at];
        if (prefix == 0xFE) {  // a long item: skip it
            if (at + 1 >= d.size()) return std::nullopt;
            at += 3 + d[at + 1];
            continue;
        }
        const size_t length = (prefix & 3) == 3 ? 4 : (prefix & 3);
        if (at + 1 + length > d.size()) return std::nullopt;
        uint32_t value = 0;
        for (size_t i = 0; i < length; ++i) value |= uint32_t{d[at + 1 + i]} << (8 * i);
        switch (prefix & 0xFC) {
            case 0x74: size = value; break;   // Report Size (bits)
            case 0x94: count = value; break;  // Report Count
            case 0x90:                        // Output
                if (size != 8 || count == 0) return std::nullopt;
                return count;
            default: break;
        }
        at += 1 + length;
    }
    return std::nullopt;
}

}  // namespace mcuflash::protocol::halfkay
