#include "protocol/bootloader.hpp"
#include "protocol/programmer.hpp"

#include <fmt/format.h>

#include "core/error.hpp"

namespace mcuflash::protocol {

const targets::Knowledge& ConnectOptions::knowledge_base() const {
    return knowledge ? *knowledge : targets::Knowledge::builtin();
}

void Bootloader::write_image(uint32_t, std::span<const uint8_t>) {
    throw std::logic_error("write_image on a bootloader that does not take whole images");
}

void Bootloader::erase(uint32_t, uint32_t) {
    throw core::Error(core::ErrorKind::Protocol, "this bootloader has no separate erase command");
}

std::optional<uint32_t> Bootloader::checksum(uint32_t, uint32_t) { return std::nullopt; }

const ProtocolInfo* spoken_protocol(const std::string& name) {
    for (const auto& p : protocols())
        if (p.name == name) return &p;
    return nullptr;
}

const ProtocolInfo& find_protocol(const std::string& name) {
    if (const auto* p = spoken_protocol(name)) return *p;
    throw core::Error(core::ErrorKind::Usage, fmt::format("unknown protocol '{}' (known: {})", name, protocol_names()));
}

const ProgrammerInfo& find_programmer(const std::string& name) {
    std::string known;
    for (const auto& p : programmers()) {
        if (p.name == name) return p;
        known += (known.empty() ? "" : ", ") + p.name;
    }
    throw core::Error(core::ErrorKind::Usage, fmt::format("unknown programmer type '{}' (known: {})", name, known));
}

std::string protocol_names() {
    std::string names;
    for (const auto& p : protocols()) names += (names.empty() ? "" : ", ") + p.name;
    return names;
}

void send_as_it_leaves(const std::function<void()>& send) {
    try {
        send();
    } catch (const core::Error& e) {
        if (e.kind() != core::ErrorKind::Io) throw;
    }
}

}  // namespace mcuflash::protocol
