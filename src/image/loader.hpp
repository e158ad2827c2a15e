#pragma once
// Reading and writing firmware files: format detection, size limits, and the registry's parsers.
//
// load_file() returns an Image whose `source_format` says which format it was read as (rather than a
// separate LoadedImage struct, so that everything downstream takes one type).
#include <cstdint>
#include <iosfwd>
#include <optional>
#include <span>
#include <string>
#include <string_view>

#include "image/format.hpp"
#include "image/image.hpp"

namespace mcuflash::image {

// Files larger than this are refused before they are read: no MCU firmware is anywhere near it.
constexpr uint64_t kMaxFileSize = uint64_t{64} << 20;

struct LoadOptions {
    std::optional<Format> format;          // explicit format: skips detection
    std::optional<uint32_t> base_address;  // where raw binary data starts; refused for other formats
};

// Reads, detects and parses a firmware file. Throws core::Error: BadInput for a missing, unreadable,
// absurdly large, malformed or empty file (one line naming the file and, where it applies, the line
// or byte offset); Usage for a base address given for a format that carries its own addresses.
Image load_file(const std::string& path, const LoadOptions& options = {});

// load_file() for content already in memory; `filename` names it in messages and gives the extension.
Image parse_content(std::span<const uint8_t> content, const LoadOptions& options, const std::string& filename);

// Detection without an explicit format: the content's signature (ELF or UF2 magic, an Intel HEX or
// S-record first line) first, then the file name's extension; whatever matches neither is raw binary.
Format detect_format(std::span<const uint8_t> content, const std::string& filename);

// A format by its command-line name ("ihex", "srec", "elf", "bin", "uf2") or any of its extensions
// without the dot ("hex", "s19", ...), case-insensitively. Throws core::Error(Usage) listing the names.
Format format_from_name(std::string_view name);

// A format from a path's extension (".hex", ".s19", ...). Throws core::Error(Usage) if unknown.
Format format_for_extension(const std::string& path);
// The same, nullopt for an extension no format has (or none).
std::optional<Format> format_with_extension(const std::string& path);

// Writes the image in `format`. Throws core::Error: Usage for a read-only format (ELF, UF2),
// BadInput if the image cannot be expressed (raw binary over 256 MiB), Io if the file cannot be
// written. save_file() leaves no partial file behind when the image cannot be expressed.
void write_image(const Image& image, std::ostream& out, Format format);
void save_file(const Image& image, const std::string& path, Format format);

}  // namespace mcuflash::image
