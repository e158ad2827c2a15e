#pragma once
#include <cstdint>
#include <span>
#include <string>

namespace mcuflash::core {

// CRC-32 (IEEE 802.3, reflected 0xEDB88320, init/xorout 0xFFFFFFFF), as zlib computes it.
uint32_t crc32(std::span<const uint8_t> data, uint32_t previous = 0);
// CRC-16/XMODEM (poly 0x1021, init 0, not reflected): SAM-BA's Z command.
uint16_t crc16_xmodem(std::span<const uint8_t> data, uint16_t crc = 0);
// CRC-16/MCRF4XX (reflected 0x8408, init 0xFFFF): Katapult frames.
uint16_t crc16_mcrf4xx(std::span<const uint8_t> data, uint16_t crc = 0xFFFF);
// SHA-256 as lowercase hex.
std::string sha256_hex(std::span<const uint8_t> data);

}  // namespace mcuflash::core
