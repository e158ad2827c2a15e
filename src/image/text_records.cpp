#include "image/text_records.hpp"

#include <fmt/format.h>

#include "image/parse_error.hpp"

namespace mcuflash::image::text {

namespace {

// Ctrl-Z counts as blank: DOS-era tools end text files with it.
bool is_blank(char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\v' || c == '\f' || c == '\x1A'; }

std::optional<uint8_t> hex_value(char c) {
    if (c >= '0' && c <= '9') return static_cast<uint8_t>(c - '0');
    if (c >= 'A' && c <= 'F') return static_cast<uint8_t>(c - 'A' + 10);
    if (c >= 'a' && c <= 'f') return static_cast<uint8_t>(c - 'a' + 10);
    return std::nullopt;
}

std::string describe_char(char c) {
    const auto byte = static_cast<unsigned char>(c);
    if (byte >= 0x21 && byte < 0x7F) return fmt::format("'{}'", c);
    return fmt::format("byte 0x{:02X}", byte);
}

}  // namespace

LineCursor::LineCursor(std::span<const uint8_t> content)
    : rest_(reinterpret_cast<const char*>(content.data()), content.size()) {
    constexpr std::string_view kUtf8Bom = "\xEF\xBB\xBF";
    if (rest_.starts_with(kUtf8Bom)) rest_.remove_prefix(kUtf8Bom.size());
}

std::optional<Line> LineCursor::next_nonblank() {
    while (!rest_.empty()) {
        const size_t newline = rest_.find('\n');
        std::string_view raw = rest_.substr(0, newline);
        rest_.remove_prefix(newline == std::string_view::npos ? rest_.size() : newline + 1);
        ++line_number_;

        size_t first = 0;
        while (first < raw.size() && is_blank(raw[first])) ++first;
        size_t last = raw.size();
        while (last > first && is_blank(raw[last - 1])) --last;
        if (first < last) return Line{raw.substr(first, last - first), line_number_, first + 1};
    }
    return std::nullopt;
}

std::vector<uint8_t> decode_hex_pairs(const Line& line, size_t first_digit, std::string_view filename) {
    const std::string_view digits = line.text.substr(std::min(first_digit, line.text.size()));
    for (size_t i = 0; i < digits.size(); ++i)
        if (!hex_value(digits[i]))
            fail_at_line(filename, line.number,
                         fmt::format("{} at column {} is not a hex digit", describe_char(digits[i]),
                                     line.column + first_digit + i));
    if (digits.size() % 2 != 0)
        fail_at_line(filename, line.number, fmt::format("odd number of hex digits ({})", digits.size()));

    std::vector<uint8_t> bytes(digits.size() / 2);
    for (size_t i = 0; i < bytes.size(); ++i)
        bytes[i] = static_cast<uint8_t>(*hex_value(digits[2 * i]) << 4 | *hex_value(digits[2 * i + 1]));
    return bytes;
}

void expect_record_mark(const Line& line, std::string_view filename, char mark) {
    if (line.text.front() != mark)
        fail_at_line(filename, line.number,
                     fmt::format("expected '{}' to start a record, found {}", mark, describe_char(line.text.front())));
}

std::vector<uint8_t> decode_record_bytes(const Line& line, size_t first_digit, std::string_view filename,
                                         size_t min_bytes) {
    auto bytes = decode_hex_pairs(line, first_digit, filename);
    if (bytes.size() < min_bytes)
        fail_at_line(filename, line.number,
                     fmt::format("record too short: {} bytes, a record has at least {}", bytes.size(), min_bytes));
    return bytes;
}

void check_length_field(const Line& line, std::string_view filename, size_t declared, size_t present,
                        std::string_view unit) {
    if (present < declared)
        fail_at_line(
            filename, line.number,
            fmt::format("truncated record: the length field says {} {}, the line holds {}", declared, unit, present));
    if (present > declared)
        fail_at_line(filename, line.number,
                     fmt::format("the line holds {} {} but the length field says {}", present, unit, declared));
}

void check_checksum(const Line& line, std::string_view filename, uint8_t found, uint8_t expected) {
    if (found != expected)
        fail_at_line(filename, line.number, fmt::format("checksum 0x{:02X}, expected 0x{:02X}", found, expected));
}

void expect_nothing_after_end(LineCursor& lines, std::string_view filename, size_t end_line,
                              std::string_view end_record) {
    if (auto extra = lines.next_nonblank())
        fail_at_line(filename, extra->number,
                     fmt::format("content after the {} on line {} (two files joined together?)", end_record, end_line));
}

bool first_line_is_record(std::span<const uint8_t> content, bool (*lead_matches)(std::string_view lead),
                          size_t lead_length, size_t min_digits) {
    LineCursor lines(content);
    const auto line = lines.next_nonblank();
    if (!line || line->text.size() < lead_length + min_digits) return false;
    if (!lead_matches(line->text.substr(0, lead_length))) return false;
    for (char c : line->text.substr(lead_length))
        if (!hex_value(c)) return false;
    return true;
}

uint8_t byte_sum(std::span<const uint8_t> bytes) {
    uint8_t sum = 0;
    for (uint8_t byte : bytes) sum = static_cast<uint8_t>(sum + byte);
    return sum;
}

void append_hex_byte(std::string& out, uint8_t byte) {
    constexpr char kDigits[] = "0123456789ABCDEF";
    out += kDigits[byte >> 4];
    out += kDigits[byte & 0xF];
}

std::string record_line(std::string_view lead, std::span<const uint8_t> bytes) {
    std::string line(lead);
    line.reserve(lead.size() + 2 * bytes.size() + 1);
    for (uint8_t byte : bytes) append_hex_byte(line, byte);
    line += '\n';
    return line;
}

}  // namespace mcuflash::image::text
