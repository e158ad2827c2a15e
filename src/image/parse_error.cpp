#include "image/parse_error.hpp"

#include <fmt/format.h>

#include "core/error.hpp"

namespace mcuflash::image {

std::string line_origin(std::string_view filename, size_t line) { return fmt::format("{}:{}", filename, line); }

std::string offset_origin(std::string_view filename, uint64_t offset) {
    return fmt::format("{}: offset 0x{:X}", filename, offset);
}

void fail_at_line(std::string_view filename, size_t line, std::string_view problem) {
    fail_in_file(line_origin(filename, line), problem);
}

void fail_at_offset(std::string_view filename, uint64_t offset, std::string_view problem) {
    fail_in_file(offset_origin(filename, offset), problem);
}

void fail_in_file(std::string_view filename, std::string_view problem) {
    throw core::Error(core::ErrorKind::BadInput, fmt::format("{}: {}", filename, problem));
}

}  // namespace mcuflash::image
