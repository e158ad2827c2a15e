// Motorola S-record (S19/S28/S37), as described in the SREC(5) manual page.
#include <fmt/format.h>

#include <array>
#include <ostream>

#include "image/block_list.hpp"
#include "image/byte_order.hpp"
#include "image/handlers.hpp"
#include "image/parse_error.hpp"
#include "image/text_records.hpp"

namespace mcuflash::image {

namespace {

enum class Role { Header, Data, Count, Start, Reserved };

struct RecordKind {
    uint8_t address_bytes;
    Role role;
};

// Indexed by the digit after 'S'.
constexpr std::array<RecordKind, 10> kRecordKinds = {{
    {2, Role::Header},    // S0
    {2, Role::Data},      // S1: 16-bit address
    {3, Role::Data},      // S2: 24-bit address
    {4, Role::Data},      // S3: 32-bit address
    {0, Role::Reserved},  // S4
    {2, Role::Count},     // S5: 16-bit count of data records
    {3, Role::Count},     // S6: 24-bit count
    {4, Role::Start},     // S7: 32-bit start address, ends S3 files
    {3, Role::Start},     // S8: 24-bit, ends S2 files
    {2, Role::Start},     // S9: 16-bit, ends S1 files
}};

constexpr size_t kCountBytes = 1;
constexpr size_t kChecksumBytes = 1;

// Ones' complement of the sum of count, address and data bytes.
uint8_t checksum_of(std::span<const uint8_t> bytes) { return static_cast<uint8_t>(~text::byte_sum(bytes)); }

struct Record {
    char type = '0';
    RecordKind kind{};
    uint32_t address = 0;
    std::span<const uint8_t> data;
};

Record decode_record(const text::Line& line, const std::string& filename, std::vector<uint8_t>& storage) {
    text::expect_record_mark(line, filename, 'S');
    const char type = line.text.size() > 1 ? line.text[1] : ' ';
    if (type < '0' || type > '9')
        fail_at_line(filename, line.number, fmt::format("unknown record type 'S{}'", line.text.substr(1, 1)));
    const RecordKind kind = kRecordKinds[static_cast<size_t>(type - '0')];
    if (kind.role == Role::Reserved)
        fail_at_line(filename, line.number, fmt::format("record type S{} is reserved", type));

    storage = text::decode_record_bytes(line, 2, filename, kCountBytes + kind.address_bytes + kChecksumBytes);
    // The count covers address, data and checksum.
    text::check_length_field(line, filename, storage[0], storage.size() - kCountBytes, "bytes after the count");
    text::check_checksum(line, filename, storage.back(), checksum_of(std::span(storage).first(storage.size() - 1)));
    const auto after_count = std::span(storage).subspan(kCountBytes, storage.size() - kCountBytes - kChecksumBytes);
    return Record{type, kind, static_cast<uint32_t>(read_big_endian(after_count.first(kind.address_bytes))),
                  after_count.subspan(kind.address_bytes)};
}

Image parse_srecord(std::span<const uint8_t> content, const ParseOptions&, const std::string& filename) {
    Image image;
    BlockList blocks([&](uint64_t line) { return line_origin(filename, line); });
    text::LineCursor lines(content);
    std::vector<uint8_t> storage;
    uint32_t data_records = 0;
    bool saw_end = false;
    uint64_t count_line = 0;  // the line of a count record that matched, while no data followed it

    while (auto line = lines.next_nonblank()) {
        const Record record = decode_record(*line, filename, storage);
        const auto fail = [&](std::string_view problem) { fail_at_line(filename, line->number, problem); };
        if ((record.kind.role == Role::Count || record.kind.role == Role::Start) && !record.data.empty())
            fail(fmt::format("an S{} record holds no data, this one has {} bytes", record.type, record.data.size()));

        switch (record.kind.role) {
            case Role::Header: break;  // module name and such: nothing to flash
            case Role::Data:
                blocks.add(record.address, record.data, line->number);
                ++data_records;
                count_line = 0;
                break;
            case Role::Count:
                if (record.address != data_records)
                    fail(fmt::format("the S{} record counts {} data records, but {} precede it", record.type,
                                     record.address, data_records));
                count_line = line->number;
                break;
            case Role::Start:
                // Tools write address 0 when the program has no start address.
                if (record.address != 0) image.entry = record.address;
                saw_end = true;
                break;
            case Role::Reserved: break;  // refused by decode_record()
        }
        if (saw_end) {
            text::expect_nothing_after_end(lines, filename, line->number, fmt::format("S{} record", record.type));
            break;
        }
    }
    // srec_cat writes no S7/S8/S9 when the program has no start address: a count record that ends
    // the file and matches proves it complete.
    if (!saw_end && count_line)
        image.notes.push_back(fmt::format("{}: no termination record (S7, S8 or S9), but the count record on line {} "
                                          "proves all {} data records are there",
                                          filename, count_line, data_records));
    else if (!saw_end)
        fail_in_file(filename, "no termination record (S7, S8 or S9; is the file truncated?)");
    blocks.add_to(image);
    return image;
}

std::string encode_record(char type, uint32_t address, std::span<const uint8_t> data) {
    const size_t address_bytes = kRecordKinds[static_cast<size_t>(type - '0')].address_bytes;
    std::vector<uint8_t> bytes{static_cast<uint8_t>(address_bytes + data.size() + kChecksumBytes)};
    const auto address_field = big_endian_bytes(address, address_bytes);
    bytes.insert(bytes.end(), address_field.begin(), address_field.end());
    bytes.insert(bytes.end(), data.begin(), data.end());
    bytes.push_back(checksum_of(bytes));
    return text::record_line(std::string{'S', type}, bytes);
}

void write_srecord(const Image& image, std::ostream& out) {
    // The narrowest address width that holds every address, and its matching start record.
    const uint64_t highest = std::max<uint64_t>(image.end(), image.entry ? uint64_t{*image.entry} + 1 : 0);
    const auto [data_type, start_type] = highest <= 0x10000     ? std::pair{'1', '9'}
                                         : highest <= 0x1000000 ? std::pair{'2', '8'}
                                                                : std::pair{'3', '7'};
    out << encode_record('0', 0, {});
    size_t data_records = 0;
    for (const auto& [start, bytes] : image.runs()) {
        for (size_t done = 0; done < bytes.size(); done += text::kBytesPerRecord, ++data_records) {
            const size_t count = std::min(text::kBytesPerRecord, bytes.size() - done);
            out << encode_record(data_type, start + static_cast<uint32_t>(done), std::span(bytes).subspan(done, count));
        }
    }
    if (data_records <= 0xFFFF)
        out << encode_record('5', static_cast<uint32_t>(data_records), {});
    else if (data_records <= 0xFFFFFF)
        out << encode_record('6', static_cast<uint32_t>(data_records), {});
    out << encode_record(start_type, image.entry.value_or(0), {});
}

bool sniff_srecord(std::span<const uint8_t> content) {
    // "Sn" plus at least count, a 16-bit address and checksum.
    return text::first_line_is_record(
        content, [](std::string_view lead) { return lead[0] == 'S' && lead[1] >= '0' && lead[1] <= '9'; }, 2, 8);
}

}  // namespace

FormatHandler srecord_handler() {
    return {
        .id = Format::SRecord,
        .name = "srec",
        .title = "Motorola S-record",
        .extensions = ".srec .s19 .s28 .s37 .mot",
        .sniff = sniff_srecord,
        .parse = parse_srecord,
        .write = write_srecord,
    };
}

}  // namespace mcuflash::image
