#pragma once
// The registry of image formats: one handler per format, listed in ONE table (format.cpp).
// Adding a format is one file plus one line there; nothing else switches over formats.
#include <cstdint>
#include <iosfwd>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "image/image.hpp"

namespace mcuflash::image {

struct ParseOptions {
    std::optional<uint32_t> base_address;  // where raw binary data starts (default 0)
};

struct FormatHandler {
    Format id;
    const char* name;        // short name used on the command line: "ihex", "srec", "elf", "bin", "uf2"
    const char* title;       // for people: "Intel HEX"
    const char* extensions;  // space-separated, lower case, with dots: ".hex .ihex"
    // Whether the content looks like this format; nullptr for formats recognisable only by extension.
    bool (*sniff)(std::span<const uint8_t> content);
    // Throws core::Error(BadInput) with one line naming `filename`, the line or byte offset, and the problem.
    Image (*parse)(std::span<const uint8_t> content, const ParseOptions& options, const std::string& filename);
    void (*write)(const Image& image, std::ostream& out);  // nullptr if the format is read-only
};

// All formats, in sniffing order (most distinctive magic first).
const std::vector<FormatHandler>& formats();
const FormatHandler& handler(Format format);
const char* format_name(Format format);

}  // namespace mcuflash::image
