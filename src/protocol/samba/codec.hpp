#pragma once
// The SAM-BA monitor's text commands (Atmel's ROM monitor on SAM3/SAM4, and the Arduino Zero and
// Adafruit SAMD bootloaders that copy it), as BOSSA sends them, and the XMODEM-CRC blocks the
// monitor uses for data on a UART. Pure bytes, no I/O.
//
// Commands are an ASCII letter, hex arguments (%08X, separated by ','), and '#'.
#include <array>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <vector>

namespace mcuflash::protocol::samba {

using Bytes = std::vector<uint8_t>;

std::string binary_mode();                                    // "N#": answers "\n\r"
std::string version();                                        // "V#": answers a text line
std::string write_word(uint32_t address, uint32_t value);     // "W%08X,%08X#", no answer
std::string read_word(uint32_t address);                      // "w%08X,4#": 4 bytes, little-endian
std::string write_byte(uint32_t address, uint8_t value);      // "O%08X,%02X#", no answer
std::string read_byte(uint32_t address);                      // "o%08X,4#": 1 byte (BOSSA's spelling)
std::string send_data(uint32_t address, uint32_t length);     // "S...": host -> device, data follows
std::string receive_data(uint32_t address, uint32_t length);  // "R...": device -> host
std::string go(uint32_t address);                             // "G%08X#": SP from [a], PC from [a+4]
// Arduino/Adafruit extensions.
std::string copy_source(uint32_t sram);                            // "Y%08X,0#"; answers "Y\n\r"
std::string copy_to_flash(uint32_t flash, uint32_t length);        // "Y%08X,%08X#"; answers "Y\n\r"
std::string checksum(uint32_t address, uint32_t length);           // "Z%08X,%08X#"; answers "Z%08X#\n\r"

// What a version string says the monitor can do beyond the ROM's commands.
struct Extensions {
    bool erase = false;          // X
    bool buffered_write = false;  // Y
    bool checksum = false;        // Z
};
// "[Arduino:XYZ]" anywhere in the version string names the extensions.
Extensions parse_extensions(const std::string& version_text);
// "Z1234ABCD#" (the "\n\r" after it may or may not be included) -> 0x1234ABCD, of which the low 16
// bits are the CRC. nullopt when malformed.
std::optional<uint32_t> parse_checksum_answer(const std::string& answer);

// XMODEM-CRC (UART mode data).
constexpr uint8_t kSoh = 0x01;
constexpr uint8_t kEot = 0x04;
constexpr uint8_t kAck = 0x06;
constexpr uint8_t kNak = 0x15;
constexpr uint8_t kCan = 0x18;
constexpr uint8_t kCrcRequest = 'C';
constexpr size_t kXmodemBlock = 128;
// SOH, n, ~n, 128 data bytes (padded with 0x00 when shorter), CRC16 (XMODEM) big-endian.
Bytes xmodem_block(uint8_t number, std::span<const uint8_t> data);
// The data of a received block when it is well formed and numbered `number`; nullopt otherwise.
std::optional<Bytes> parse_xmodem_block(std::span<const uint8_t> block, uint8_t number);

}  // namespace mcuflash::protocol::samba
