#pragma once
#include <cstdint>
#include <span>
#include <string>

namespace mcuflash::core {

// "0x%08X"-style address text used in every message that names an address.
std::string hex_address(uint32_t address);
// "1b 02 00" style, at most `limit` bytes then "...", for traces and protocol errors.
std::string hex_bytes(std::span<const uint8_t> bytes, size_t limit = 32);

}  // namespace mcuflash::core
