// Raw binary: the bytes as they go into memory, starting at a base address given by the user.
#include <fmt/format.h>

#include <ostream>

#include "core/error.hpp"
#include "image/handlers.hpp"

namespace mcuflash::image {

namespace {

// A far-apart gap (say flash at 0x08000000 and option bytes at 0x1FFF7800) would fill hundreds
// of MiB with 0xFF; that is never what anyone wants from a firmware file.
constexpr uint64_t kMaxBinarySpan = uint64_t{256} << 20;
constexpr uint8_t kGapFill = 0xFF;  // erased flash

Image parse_binary(std::span<const uint8_t> content, const ParseOptions& options, const std::string& filename) {
    Image image;
    image.add(options.base_address.value_or(0), content, filename);
    return image;
}

void write_binary(const Image& image, std::ostream& out) {
    if (image.empty()) return;
    const uint64_t span = image.end() - image.lowest();
    if (span > kMaxBinarySpan)
        throw core::Error(core::ErrorKind::BadInput,
                          fmt::format("as a raw binary the image {} would take {} bytes with its gaps filled, more "
                                      "than 256 MiB",
                                      image.describe_ranges(), span),
                          "write Intel HEX or S-record instead, or slice the image");
    uint64_t written_to = image.lowest();
    const std::vector<char> gap_block(64 * 1024, static_cast<char>(kGapFill));
    for (const auto& [address, bytes] : image.runs()) {
        for (uint64_t gap = address - written_to; gap > 0;) {
            const auto chunk = static_cast<std::streamsize>(std::min<uint64_t>(gap, gap_block.size()));
            out.write(gap_block.data(), chunk);
            gap -= static_cast<uint64_t>(chunk);
        }
        out.write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
        written_to = address + uint64_t{bytes.size()};
    }
}

}  // namespace

FormatHandler binary_handler() {
    return {
        .id = Format::Binary,
        .name = "bin",
        .title = "raw binary",
        .extensions = ".bin",
        .sniff = nullptr,  // whatever matches no other format is raw binary
        .parse = parse_binary,
        .write = write_binary,
    };
}

}  // namespace mcuflash::image
