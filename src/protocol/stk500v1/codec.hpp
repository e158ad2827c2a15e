#pragma once
// STK500v1 as the Arduino bootloaders speak it (optiboot, ATmegaBOOT): pure bytes <-> messages.
// Host frame: <cmd> [args] 0x20. Device answer: 0x14 [data] 0x10.
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <vector>

namespace mcuflash::protocol::stk500v1 {

namespace resp {
constexpr uint8_t kOk = 0x10;
constexpr uint8_t kFailed = 0x11;
constexpr uint8_t kUnknown = 0x12;
constexpr uint8_t kNoDevice = 0x13;
constexpr uint8_t kInSync = 0x14;
constexpr uint8_t kNoSync = 0x15;
}  // namespace resp

namespace cmd {
constexpr uint8_t kGetSync = 0x30;
constexpr uint8_t kGetParameter = 0x41;
constexpr uint8_t kSetDevice = 0x42;
constexpr uint8_t kSetDeviceExt = 0x45;
constexpr uint8_t kEnterProgmode = 0x50;
constexpr uint8_t kLeaveProgmode = 0x51;
constexpr uint8_t kChipErase = 0x52;
constexpr uint8_t kLoadAddress = 0x55;
constexpr uint8_t kUniversal = 0x56;
constexpr uint8_t kProgPage = 0x64;
constexpr uint8_t kReadPage = 0x74;
constexpr uint8_t kReadSign = 0x75;
}  // namespace cmd

constexpr uint8_t kEop = 0x20;  // Sync_CRC_EOP
constexpr uint8_t kParamHwVersion = 0x80;
constexpr uint8_t kParamSwMajor = 0x81;
constexpr uint8_t kParamSwMinor = 0x82;
constexpr uint8_t kMemFlash = 'F';
constexpr uint8_t kMemEeprom = 'E';
// AVR ISP "load extended address" instruction, sent through UNIVERSAL for parts above 64K words.
constexpr uint8_t kOpLoadExtAddress = 0x4D;

using Bytes = std::vector<uint8_t>;

Bytes encode_get_sync();
Bytes encode_get_parameter(uint8_t parameter);
Bytes encode_enter_progmode();
Bytes encode_leave_progmode();
Bytes encode_load_address(uint16_t word_address);
Bytes encode_universal(uint8_t b0, uint8_t b1, uint8_t b2, uint8_t b3);
Bytes encode_load_extended_address(uint8_t extended);  // UNIVERSAL 4D 00 ext 00
Bytes encode_prog_page(uint8_t memory, std::span<const uint8_t> data);
Bytes encode_read_page(uint8_t memory, uint16_t length);
Bytes encode_read_sign();

// Size of the device's answer to a command whose answer carries `data_length` bytes.
constexpr size_t reply_size(size_t data_length) { return data_length + 2; }

// Checks a complete answer (0x14, data, 0x10). Returns nullopt when good, else the problem in words.
std::optional<std::string> check_reply(std::span<const uint8_t> reply);

// Words for a status byte (0x15 -> "NOSYNC: ...").
std::string describe_status(uint8_t status);

}  // namespace mcuflash::protocol::stk500v1
