#include "protocol/samba/codec.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <stdexcept>

#include "core/crc.hpp"

namespace mcuflash::protocol::samba {

std::string binary_mode() { return "N#"; }
std::string version() { return "V#"; }
std::string write_word(uint32_t address, uint32_t value) { return fmt::format("W{:08X},{:08X}#", address, value); }
std::string read_word(uint32_t address) { return fmt::format("w{:08X},4#", address); }
std::string write_byte(uint32_t address, uint8_t value) { return fmt::format("O{:08X},{:02X}#", address, value); }
std::string read_byte(uint32_t address) { return fmt::format("o{:08X},4#", address); }
std::string send_data(uint32_t address, uint32_t length) { return fmt::format("S{:08X},{:08X}#", address, length); }
std::string receive_data(uint32_t address, uint32_t length) { return fmt::format("R{:08X},{:08X}#", address, length); }
std::string go(uint32_t address) { return fmt::format("G{:08X}#", address); }
std::string copy_source(uint32_t sram) { return fmt::format("Y{:08X},0#", sram); }
std::string copy_to_flash(uint32_t flash, uint32_t length) { return fmt::format("Y{:08X},{:08X}#", flash, length); }
std::string checksum(uint32_t address, uint32_t length) { return fmt::format("Z{:08X},{:08X}#", address, length); }

Extensions parse_extensions(const std::string& text) {
    Extensions out;
    auto start = text.find("[Arduino:");
    if (start == std::string::npos) return out;
    auto end = text.find(']', start);
    std::string letters = text.substr(start + 9, end == std::string::npos ? std::string::npos : end - start - 9);
    out.erase = letters.find('X') != std::string::npos;
    out.buffered_write = letters.find('Y') != std::string::npos;
    out.checksum = letters.find('Z') != std::string::npos;
    return out;
}

std::optional<uint32_t> parse_checksum_answer(const std::string& answer) {
    if (answer.size() < 10 || answer[0] != 'Z' || answer[9] != '#') return std::nullopt;
    uint32_t value = 0;
    for (size_t i = 1; i < 9; ++i) {
        char c = answer[i];
        int digit = c >= '0' && c <= '9' ? c - '0' : c >= 'A' && c <= 'F' ? c - 'A' + 10 : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
        if (digit < 0) return std::nullopt;
        value = value << 4 | static_cast<uint32_t>(digit);
    }
    return value;
}

Bytes xmodem_block(uint8_t number, std::span<const uint8_t> data) {
    if (data.size() > kXmodemBlock) throw std::length_error(fmt::format("XMODEM block of {} bytes", data.size()));
    Bytes block(3 + kXmodemBlock, 0x00);
    block[0] = kSoh;
    block[1] = number;
    block[2] = static_cast<uint8_t>(~number);
    std::copy(data.begin(), data.end(), block.begin() + 3);
    uint16_t crc = core::crc16_xmodem(std::span<const uint8_t>(block).subspan(3));
    block.push_back(static_cast<uint8_t>(crc >> 8));
    block.push_back(static_cast<uint8_t>(crc));
    return block;
}

std::optional<Bytes> parse_xmodem_block(std::span<const uint8_t> block, uint8_t number) {
    if (block.size() != 3 + kXmodemBlock + 2 || block[0] != kSoh || block[1] != number ||
        block[2] != static_cast<uint8_t>(~number))
        return std::nullopt;
    auto data = block.subspan(3, kXmodemBlock);
    uint16_t crc = core::crc16_xmodem(data);
    if (block[3 + kXmodemBlock] != (crc >> 8) || block[4 + kXmodemBlock] != (crc & 0xFF)) return std::nullopt;
    return Bytes(data.begin(), data.end());
}

}  // namespace mcuflash::protocol::samba
