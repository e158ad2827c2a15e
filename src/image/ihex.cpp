// Intel HEX (Intel "Hexadecimal Object File Format Specification", rev. A, 1988).
#include <fmt/format.h>

#include <algorithm>
#include <ostream>

#include "core/hexdump.hpp"
#include "image/block_list.hpp"
#include "image/byte_order.hpp"
#include "image/handlers.hpp"
#include "image/parse_error.hpp"
#include "image/text_records.hpp"

namespace mcuflash::image {

namespace {

enum RecordType : uint8_t {
    kData = 0x00,
    kEndOfFile = 0x01,
    kExtendedSegmentAddress = 0x02,
    kStartSegmentAddress = 0x03,
    kExtendedLinearAddress = 0x04,
    kStartLinearAddress = 0x05,
};

constexpr size_t kRecordOverhead = 5;  // length, address (2), type, checksum
constexpr uint32_t kSegmentSize = 0x10000;

struct Record {
    uint8_t type = 0;
    uint16_t offset = 0;
    std::span<const uint8_t> data;
};

// The byte that makes all bytes of the record sum to zero.
uint8_t checksum_of(std::span<const uint8_t> bytes) { return static_cast<uint8_t>(-text::byte_sum(bytes)); }

uint32_t big_endian(std::span<const uint8_t> bytes) { return static_cast<uint32_t>(read_big_endian(bytes)); }

// Decodes one line into `storage` and checks its framing: digits, length field, checksum.
Record decode_record(const text::Line& line, const std::string& filename, std::vector<uint8_t>& storage) {
    text::expect_record_mark(line, filename, ':');
    storage = text::decode_record_bytes(line, 1, filename, kRecordOverhead);
    const size_t declared = storage[0];
    text::check_length_field(line, filename, declared, storage.size() - kRecordOverhead, "data bytes");
    text::check_checksum(line, filename, storage.back(), checksum_of(std::span(storage).first(storage.size() - 1)));
    return Record{storage[3], static_cast<uint16_t>(storage[1] << 8 | storage[2]),
                  std::span(storage).subspan(4, declared)};
}

// The data length each non-data record type must have.
std::optional<size_t> required_length(uint8_t type) {
    switch (type) {
        case kEndOfFile: return 0;
        case kExtendedSegmentAddress: return 2;
        case kStartSegmentAddress: return 4;
        case kExtendedLinearAddress: return 2;
        case kStartLinearAddress: return 4;
        default: return std::nullopt;
    }
}

Image parse_intel_hex(std::span<const uint8_t> content, const ParseOptions&, const std::string& filename) {
    Image image;
    BlockList blocks([&](uint64_t line) { return line_origin(filename, line); });
    text::LineCursor lines(content);
    std::vector<uint8_t> storage;
    uint32_t base = 0;
    // Offsets under a type 02 segment wrap within its 64 KiB; under type 04 they run on linearly.
    bool segmented = false;
    bool saw_end = false;

    while (auto line = lines.next_nonblank()) {
        const Record record = decode_record(*line, filename, storage);
        const auto fail = [&](std::string_view problem) { fail_at_line(filename, line->number, problem); };
        if (record.type > kStartLinearAddress) fail(fmt::format("unknown record type 0x{:02X}", record.type));
        if (auto length = required_length(record.type); length && record.data.size() != *length)
            fail(fmt::format("record type 0x{:02X} must hold {} data bytes, not {}", record.type, *length,
                             record.data.size()));

        const auto set_entry = [&](uint32_t address) {
            if (image.entry && *image.entry != address)
                fail(fmt::format("start address {} differs from {} given earlier", core::hex_address(address),
                                 core::hex_address(*image.entry)));
            image.entry = address;
        };

        switch (record.type) {
            case kData: {
                const size_t before_wrap = kSegmentSize - record.offset;
                if (segmented && record.data.size() > before_wrap) {
                    blocks.add(base + record.offset, record.data.first(before_wrap), line->number);
                    blocks.add(base, record.data.subspan(before_wrap), line->number);
                } else {
                    blocks.add(base + record.offset, record.data, line->number);
                }
                break;
            }
            case kEndOfFile: saw_end = true; break;
            case kExtendedSegmentAddress:
                base = big_endian(record.data) << 4;
                segmented = true;
                break;
            case kStartSegmentAddress: {  // CS:IP
                const uint32_t segment = big_endian(record.data.first(2));
                set_entry((segment << 4) + big_endian(record.data.subspan(2)));
                break;
            }
            case kExtendedLinearAddress:
                base = big_endian(record.data) << 16;
                segmented = false;
                break;
            case kStartLinearAddress: set_entry(big_endian(record.data)); break;
        }
        if (saw_end) {
            text::expect_nothing_after_end(lines, filename, line->number, "end-of-file record");
            break;
        }
    }
    if (!saw_end) fail_in_file(filename, "no end-of-file record (is the file truncated?)");
    blocks.add_to(image);
    return image;
}

std::string encode_record(uint8_t type, uint16_t offset, std::span<const uint8_t> data) {
    std::vector<uint8_t> bytes{static_cast<uint8_t>(data.size()), static_cast<uint8_t>(offset >> 8),
                               static_cast<uint8_t>(offset), type};
    bytes.insert(bytes.end(), data.begin(), data.end());
    bytes.push_back(checksum_of(bytes));
    return text::record_line(":", bytes);
}

void write_intel_hex(const Image& image, std::ostream& out) {
    uint32_t upper = 0;  // the upper 16 address bits currently in force
    for (const auto& [start, bytes] : image.runs()) {
        for (size_t done = 0; done < bytes.size();) {
            const uint32_t address = start + static_cast<uint32_t>(done);
            if (address >> 16 != upper) {
                upper = address >> 16;
                out << encode_record(kExtendedLinearAddress, 0, big_endian_bytes(upper, 2));
            }
            // A record must not cross a 64 KiB boundary: its 16-bit offset cannot express that.
            const size_t count =
                std::min({text::kBytesPerRecord, bytes.size() - done, size_t{kSegmentSize - (address & 0xFFFF)}});
            out << encode_record(kData, static_cast<uint16_t>(address), std::span(bytes).subspan(done, count));
            done += count;
        }
    }
    if (image.entry) out << encode_record(kStartLinearAddress, 0, big_endian_bytes(*image.entry, 4));
    out << encode_record(kEndOfFile, 0, {});
}

bool sniff_intel_hex(std::span<const uint8_t> content) {
    // ':' plus at least length, address, type and checksum.
    return text::first_line_is_record(
        content, [](std::string_view lead) { return lead == ":"; }, 1, 2 * kRecordOverhead);
}

}  // namespace

FormatHandler intel_hex_handler() {
    return {
        .id = Format::IntelHex,
        .name = "ihex",
        .title = "Intel HEX",
        .extensions = ".hex .ihex .ihx",
        .sniff = sniff_intel_hex,
        .parse = parse_intel_hex,
        .write = write_intel_hex,
    };
}

}  // namespace mcuflash::image
