#include "image/format.hpp"

#include <stdexcept>

#include "image/handlers.hpp"

namespace mcuflash::image {

const std::vector<FormatHandler>& formats() {
    // Sniffing order: binary magics first, then the text formats; raw binary has no signature.
    static const std::vector<FormatHandler> table = {
        elf_handler(), uf2_handler(), intel_hex_handler(), srecord_handler(), binary_handler(),
    };
    return table;
}

const FormatHandler& handler(Format format) {
    for (const auto& candidate : formats())
        if (candidate.id == format) return candidate;
    throw std::logic_error("image format missing from the registry");  // a programming error: tested
}

const char* format_name(Format format) { return handler(format).name; }

}  // namespace mcuflash::image
