#pragma once
// Internal: what Intel HEX and Motorola S-record have in common: lines of hex-digit records.
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace mcuflash::image::text {

// Data bytes per record the writers emit.
constexpr size_t kBytesPerRecord = 16;

struct Line {
    std::string_view text;  // without surrounding whitespace (CR, Ctrl-Z included)
    size_t number = 0;      // 1-based
    size_t column = 1;      // 1-based column of text[0] in the file's line
};

// Walks text content line by line (LF or CRLF endings), skipping blank lines.
class LineCursor {
public:
    explicit LineCursor(std::span<const uint8_t> content);
    std::optional<Line> next_nonblank();

private:
    std::string_view rest_;
    size_t line_number_ = 0;
};

// Decodes the hex digits of line.text from index `first_digit` on into bytes. Throws naming the line
// and column of a character that is not a hex digit, or an odd number of digits.
std::vector<uint8_t> decode_hex_pairs(const Line& line, size_t first_digit, std::string_view filename);

// Checks that a record starts with `mark` (':' or 'S').
void expect_record_mark(const Line& line, std::string_view filename, char mark);
// decode_hex_pairs(), then checks there are at least `min_bytes` of framing.
std::vector<uint8_t> decode_record_bytes(const Line& line, size_t first_digit, std::string_view filename,
                                         size_t min_bytes);
// Checks a record's length field against the number of bytes the line holds; `unit` names what
// the field counts ("data bytes").
void check_length_field(const Line& line, std::string_view filename, size_t declared, size_t present,
                        std::string_view unit);
void check_checksum(const Line& line, std::string_view filename, uint8_t found, uint8_t expected);

// After the end record, only blank lines may follow. Anything else is most likely a second file
// concatenated onto the first, whose data would silently be lost: refuse it.
void expect_nothing_after_end(LineCursor& lines, std::string_view filename, size_t end_line,
                              std::string_view end_record);

// For the sniffers: whether the first non-blank line is `lead` followed by at least `min_digits`
// hex digits and nothing else.
bool first_line_is_record(std::span<const uint8_t> content, bool (*lead_matches)(std::string_view lead),
                          size_t lead_length, size_t min_digits);

// The sum of the bytes modulo 256: both formats' checksums derive from it.
uint8_t byte_sum(std::span<const uint8_t> bytes);

// Two upper-case hex digits.
void append_hex_byte(std::string& out, uint8_t byte);
// A whole record line: `lead`, then each byte as two hex digits, then '\n'.
std::string record_line(std::string_view lead, std::span<const uint8_t> bytes);

}  // namespace mcuflash::image::text
