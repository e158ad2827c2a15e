#pragma once
// Internal: the one-line messages every parser throws, so they all read alike:
//   "fw.hex:12: checksum 0x3A, expected 0x3B"            (text formats: file and line)
//   "app.elf: offset 0x34: program header 3 points ..."  (binary formats: file and byte offset)
#include <cstdint>
#include <string>
#include <string_view>

namespace mcuflash::image {

std::string line_origin(std::string_view filename, size_t line);        // "fw.hex:12"
std::string offset_origin(std::string_view filename, uint64_t offset);  // "app.elf: offset 0x34"

// Each throws core::Error(BadInput) "<origin>: <problem>".
[[noreturn]] void fail_at_line(std::string_view filename, size_t line, std::string_view problem);
[[noreturn]] void fail_at_offset(std::string_view filename, uint64_t offset, std::string_view problem);
[[noreturn]] void fail_in_file(std::string_view filename, std::string_view problem);

}  // namespace mcuflash::image
