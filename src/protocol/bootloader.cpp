#include "protocol/bootloader.hpp"

#include <fmt/format.h>

#include "core/error.hpp"

namespace mcuflash::protocol {

void Bootloader::erase(uint32_t, uint32_t) {
    throw core::Error(core::ErrorKind::Protocol, "this bootloader has no separate erase command");
}

std::optional<uint32_t> Bootloader::checksum(uint32_t, uint32_t) { return std::nullopt; }

const ProtocolInfo& find_protocol(const std::string& name) {
    for (const auto& p : protocols())
        if (p.name == name) return p;
    std::string known;
    for (const auto& p : protocols()) known += (known.empty() ? "" : ", ") + p.name;
    throw core::Error(core::ErrorKind::Usage, fmt::format("unknown protocol '{}' (known: {})", name, known));
}

}  // namespace mcuflash::protocol
