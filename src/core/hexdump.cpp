#include "core/hexdump.hpp"

#include <fmt/format.h>

namespace mcuflash::core {

std::string hex_address(uint32_t address) { return fmt::format("0x{:08X}", address); }

std::string hex_bytes(std::span<const uint8_t> bytes, size_t limit) {
    std::string out;
    for (size_t i = 0; i < bytes.size() && i < limit; ++i) {
        if (i) out += ' ';
        out += fmt::format("{:02x}", bytes[i]);
    }
    if (bytes.size() > limit) out += fmt::format(" ... ({} bytes)", bytes.size());
    return out;
}

}  // namespace mcuflash::core
