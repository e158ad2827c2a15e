#pragma once
// ST's USART system-memory bootloader protocol (application note AN3155): pure bytes, no I/O.
//
// The host sends 0x7F once so the ROM can measure the baud rate; every command is then the command
// byte and its complement, each step answered by ACK (0x79) or NACK (0x1F). Addresses go as 4 bytes,
// most significant first, followed by their XOR; data blocks end with the XOR of the length byte and
// the data.
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <vector>

namespace mcuflash::protocol::stm32uart {

using Bytes = std::vector<uint8_t>;

constexpr uint8_t kInit = 0x7F;
constexpr uint8_t kAck = 0x79;
constexpr uint8_t kNack = 0x1F;
constexpr uint8_t kBusy = 0x76;  // newer bootloaders: still working, keep waiting

namespace cmd {
constexpr uint8_t kGet = 0x00;
constexpr uint8_t kGetVersion = 0x01;
constexpr uint8_t kGetId = 0x02;
constexpr uint8_t kReadMemory = 0x11;
constexpr uint8_t kGo = 0x21;
constexpr uint8_t kWriteMemory = 0x31;
constexpr uint8_t kErase = 0x43;
constexpr uint8_t kExtendedErase = 0x44;
constexpr uint8_t kWriteProtect = 0x63;
constexpr uint8_t kWriteUnprotect = 0x73;
constexpr uint8_t kReadoutProtect = 0x82;
constexpr uint8_t kReadoutUnprotect = 0x92;
constexpr uint8_t kGetChecksum = 0xA1;
}  // namespace cmd

constexpr size_t kMaxBlock = 256;            // Read/Write Memory: at most 256 bytes
constexpr size_t kMaxLegacyErasePages = 255;  // Erase: N-1 in one byte, 0xFF means "global"
constexpr size_t kMaxExtendedErasePages = 512;  // stm32flash's chunk; 0xFFFx are special

std::string command_name(uint8_t command);  // "Write Memory (0x31)"

uint8_t xor_of(std::span<const uint8_t> bytes);

// The two bytes that start a command.
Bytes command(uint8_t code);
// 4 address bytes, MSB first, and their XOR.
Bytes address_block(uint32_t address);
// Read Memory's length: N-1 and its complement; N in 1..256.
Bytes read_length(size_t count);
// Write Memory's data block: N-1, the data, XOR of both; N in 1..256 and a multiple of 4 (pad first).
Bytes write_block(std::span<const uint8_t> data);
// Erase (0x43): N-1, page numbers (one byte each), XOR. 1..255 pages below 256.
Bytes erase_pages(std::span<const uint16_t> pages);
Bytes erase_global();  // FF 00
// Extended Erase (0x44): N-1 (2 bytes), 2-byte page numbers, XOR. 1..512 pages.
Bytes extended_erase_pages(std::span<const uint16_t> pages);
Bytes extended_erase_mass();  // FF FF 00

// Answers.
struct BootloaderCommands {
    uint8_t version = 0;  // 0x22 = 2.2
    Bytes commands;       // the command codes the ROM lists
    bool has(uint8_t code) const;
};
// Get's answer between the two ACKs: N, version, N command bytes. nullopt if malformed.
std::optional<BootloaderCommands> parse_get(std::span<const uint8_t> body);
// Get ID's answer between the ACKs: N (=1), PID MSB, PID LSB.
std::optional<uint16_t> parse_get_id(std::span<const uint8_t> body);
std::string version_text(uint8_t version);  // 0x22 -> "2.2"

}  // namespace mcuflash::protocol::stm32uart
