#pragma once
// Katapult (formerly CanBoot) frames: pure bytes, no I/O. The same frames go over a UART, USB-CDC and
// (split into 8-byte CAN frames) CAN:
//
//   01 88 <cmd> <len> <payload: len 32-bit words> <crc16 LE> 99 03
//
// The CRC (CRC-16/MCRF4XX, what Klipper and Katapult call crc16_ccitt) covers cmd, len and the
// payload; payload integers are little-endian. Answers are ACK (0xA0, whose payload starts with the
// command it acknowledges), NACK (0xF1: the frame was not understood), command error (0xF2) and busy
// (0xF3). Facts: Katapult's protocol.md, src/command.c and scripts/flashtool.py.
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <vector>

namespace mcuflash::protocol::katapult {

using Bytes = std::vector<uint8_t>;

constexpr uint8_t kHeader0 = 0x01, kHeader1 = 0x88;
constexpr uint8_t kTrailer0 = 0x99, kTrailer1 = 0x03;
constexpr size_t kFrameOverhead = 8;  // header, cmd, len, crc, trailer
constexpr size_t kMaxPayloadWords = 255;

namespace cmd {
constexpr uint8_t kConnect = 0x11;
constexpr uint8_t kSendBlock = 0x12;
constexpr uint8_t kSendEof = 0x13;
constexpr uint8_t kRequestBlock = 0x14;
constexpr uint8_t kComplete = 0x15;
constexpr uint8_t kGetCanbusId = 0x16;
}  // namespace cmd

namespace answer {
constexpr uint8_t kAck = 0xA0;
constexpr uint8_t kNack = 0xF1;
constexpr uint8_t kError = 0xF2;
constexpr uint8_t kBusy = 0xF3;
}  // namespace answer

// The block sizes a Katapult build may announce (flashtool.py refuses any other).
constexpr uint32_t kBlockSizes[] = {64, 128, 256, 512};
bool valid_block_size(uint32_t size);

std::string command_name(uint8_t code);  // "SEND_BLOCK (0x12)", "ACK (0xA0)", "0x42"

struct Frame {
    uint8_t command = 0;
    Bytes payload;  // a multiple of 4 bytes
};

// A whole frame; the payload must be a multiple of 4 bytes and at most 255 words (else
// std::invalid_argument).
Bytes encode(uint8_t command, std::span<const uint8_t> payload = {});
Bytes encode(const Frame& frame);

// Finding frames in a byte stream. Bytes before a header and frames whose length, trailer or CRC
// are wrong are skipped (`skipped` counts them).
class FrameReader {
public:
    void feed(std::span<const uint8_t> bytes);
    // The next complete, valid frame, if one has arrived.
    std::optional<Frame> next();
    size_t skipped() const { return skipped_; }
    size_t buffered() const { return buffer_.size(); }
    void clear() { buffer_.clear(); }

private:
    Bytes buffer_;
    size_t skipped_ = 0;
};

// Payload builders.
Bytes le32(uint32_t value);
uint32_t read_le32(std::span<const uint8_t> bytes);  // the first 4 bytes
// SEND_BLOCK: address, then the block (padded by the caller to the block size).
Bytes send_block_payload(uint32_t address, std::span<const uint8_t> block);
Bytes request_block_payload(uint32_t address);

// An ACK's payload after its first word, when it acknowledges `command`; nullopt when the frame is
// not an ACK, is too short, or acknowledges another command.
std::optional<Bytes> ack_body(const Frame& frame, uint8_t command);

// CONNECT's answer (after the acknowledged command word).
struct ConnectInfo {
    uint32_t protocol_version = 0;  // 0x00010100 = 1.1.0
    uint32_t app_start = 0;
    uint32_t block_size = 0;
    std::string mcu;               // "stm32f103xe"
    std::string software_version;  // `git describe` of the build; "" before protocol 1.1.0
    std::string protocol_text() const;  // "1.1.0"
};
// nullopt when shorter than the three words or the strings are not printable text.
std::optional<ConnectInfo> parse_connect(std::span<const uint8_t> body);
// CONNECT's answer body as a device builds it (for simulators and tests).
Bytes connect_body(const ConnectInfo& info);

// SEND_BLOCK's and REQUEST_BLOCK's answers: the block address first.
struct BlockAnswer {
    uint32_t address = 0;
    Bytes data;  // REQUEST_BLOCK: the block; SEND_BLOCK: empty
};
std::optional<BlockAnswer> parse_block_answer(std::span<const uint8_t> body);

// GET_CANBUS_ID's answer: six UUID bytes (then two zero bytes); as flashtool prints it, big-endian.
std::optional<uint64_t> parse_canbus_id(std::span<const uint8_t> body);

}  // namespace mcuflash::protocol::katapult
