#include "protocol/stm32uart/codec.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <stdexcept>

namespace mcuflash::protocol::stm32uart {

std::string command_name(uint8_t code) {
    const char* name = "unknown command";
    switch (code) {
        case cmd::kGet: name = "Get"; break;
        case cmd::kGetVersion: name = "Get Version"; break;
        case cmd::kGetId: name = "Get ID"; break;
        case cmd::kReadMemory: name = "Read Memory"; break;
        case cmd::kGo: name = "Go"; break;
        case cmd::kWriteMemory: name = "Write Memory"; break;
        case cmd::kErase: name = "Erase"; break;
        case cmd::kExtendedErase: name = "Extended Erase"; break;
        case cmd::kWriteProtect: name = "Write Protect"; break;
        case cmd::kWriteUnprotect: name = "Write Unprotect"; break;
        case cmd::kReadoutProtect: name = "Readout Protect"; break;
        case cmd::kReadoutUnprotect: name = "Readout Unprotect"; break;
        case cmd::kGetChecksum: name = "Get Checksum"; break;
    }
    return fmt::format("{} (0x{:02X})", name, code);
}

uint8_t xor_of(std::span<const uint8_t> bytes) {
    uint8_t x = 0;
    for (uint8_t b : bytes) x ^= b;
    return x;
}

Bytes command(uint8_t code) { return {code, static_cast<uint8_t>(code ^ 0xFF)}; }

Bytes address_block(uint32_t address) {
    Bytes out{static_cast<uint8_t>(address >> 24), static_cast<uint8_t>(address >> 16),
              static_cast<uint8_t>(address >> 8), static_cast<uint8_t>(address)};
    out.push_back(xor_of(out));
    return out;
}

Bytes read_length(size_t count) {
    if (count == 0 || count > kMaxBlock) throw std::length_error(fmt::format("Read Memory of {} bytes", count));
    uint8_t n = static_cast<uint8_t>(count - 1);
    return {n, static_cast<uint8_t>(n ^ 0xFF)};
}

Bytes write_block(std::span<const uint8_t> data) {
    if (data.empty() || data.size() > kMaxBlock || data.size() % 4)
        throw std::length_error(fmt::format("Write Memory of {} bytes (1..256, a multiple of 4)", data.size()));
    Bytes out;
    out.reserve(data.size() + 2);
    out.push_back(static_cast<uint8_t>(data.size() - 1));
    out.insert(out.end(), data.begin(), data.end());
    out.push_back(xor_of(out));
    return out;
}

Bytes erase_pages(std::span<const uint16_t> pages) {
    if (pages.empty() || pages.size() > kMaxLegacyErasePages)
        throw std::length_error(fmt::format("Erase of {} pages", pages.size()));
    Bytes out{static_cast<uint8_t>(pages.size() - 1)};
    for (uint16_t p : pages) {
        if (p > 0xFF) throw std::out_of_range(fmt::format("Erase cannot name page {} (one byte per page)", p));
        out.push_back(static_cast<uint8_t>(p));
    }
    out.push_back(xor_of(out));
    return out;
}

Bytes erase_global() { return {0xFF, 0x00}; }

Bytes extended_erase_pages(std::span<const uint16_t> pages) {
    if (pages.empty() || pages.size() > kMaxExtendedErasePages)
        throw std::length_error(fmt::format("Extended Erase of {} pages", pages.size()));
    uint16_t n = static_cast<uint16_t>(pages.size() - 1);
    Bytes out{static_cast<uint8_t>(n >> 8), static_cast<uint8_t>(n)};
    for (uint16_t p : pages) {
        out.push_back(static_cast<uint8_t>(p >> 8));
        out.push_back(static_cast<uint8_t>(p));
    }
    out.push_back(xor_of(out));
    return out;
}

Bytes extended_erase_mass() { return {0xFF, 0xFF, 0x00}; }

bool BootloaderCommands::has(uint8_t code) const {
    return std::find(commands.begin(), commands.end(), code) != commands.end();
}

std::optional<BootloaderCommands> parse_get(std::span<const uint8_t> body) {
    // N is the number of bytes that follow, minus 1: the version and N command codes.
    if (body.size() < 2 || body.size() != size_t(body[0]) + 2) return std::nullopt;
    BootloaderCommands out;
    out.version = body[1];
    out.commands.assign(body.begin() + 2, body.end());
    return out;
}

std::optional<uint16_t> parse_get_id(std::span<const uint8_t> body) {
    if (body.size() != 3 || body[0] != 1) return std::nullopt;
    return static_cast<uint16_t>(body[1] << 8 | body[2]);
}

std::string version_text(uint8_t version) { return fmt::format("{}.{}", version >> 4, version & 0x0F); }

}  // namespace mcuflash::protocol::stm32uart
