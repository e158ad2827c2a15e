#pragma once
// STK500v2 messages as a device sees them (Atmel AVR068), written here from the protocol description
// rather than shared with the client in protocol/stk500v2, so that a mistake there cannot hide behind
// the same mistake here.
//
// A message: 1B <sequence> <length MSB> <length LSB> 0E <body: length bytes> <checksum>, the checksum
// being the XOR of every byte before it. The device answers with the host's sequence number.
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <vector>

namespace mcuflash::sim::stk500v2 {

namespace bytes {
constexpr uint8_t kMessageStart = 0x1B;
constexpr uint8_t kToken = 0x0E;

constexpr uint8_t kSignOn = 0x01;
constexpr uint8_t kSetParameter = 0x02;
constexpr uint8_t kGetParameter = 0x03;
constexpr uint8_t kLoadAddress = 0x06;
constexpr uint8_t kEnterProgmodeIsp = 0x10;
constexpr uint8_t kLeaveProgmodeIsp = 0x11;
constexpr uint8_t kChipEraseIsp = 0x12;
constexpr uint8_t kProgramFlashIsp = 0x13;
constexpr uint8_t kReadFlashIsp = 0x14;
constexpr uint8_t kProgramEepromIsp = 0x15;
constexpr uint8_t kReadEepromIsp = 0x16;
constexpr uint8_t kProgramFuseIsp = 0x17;
constexpr uint8_t kReadFuseIsp = 0x18;
constexpr uint8_t kProgramLockIsp = 0x19;
constexpr uint8_t kReadLockIsp = 0x1A;
constexpr uint8_t kReadSignatureIsp = 0x1B;
constexpr uint8_t kReadOscCalIsp = 0x1C;
constexpr uint8_t kSpiMulti = 0x1D;

constexpr uint8_t kStatusOk = 0x00;
constexpr uint8_t kStatusCmdTimeout = 0x80;
constexpr uint8_t kStatusFailed = 0xC0;
constexpr uint8_t kStatusChecksumError = 0xC1;
constexpr uint8_t kStatusUnknown = 0xC9;
constexpr uint8_t kAnswerChecksumError = 0xB0;

constexpr uint8_t kParamBuildNumberLow = 0x80;
constexpr uint8_t kParamBuildNumberHigh = 0x81;
constexpr uint8_t kParamHwVersion = 0x90;
constexpr uint8_t kParamSwMajor = 0x91;
constexpr uint8_t kParamSwMinor = 0x92;
constexpr uint8_t kParamVTarget = 0x94;
constexpr uint8_t kParamSckDuration = 0x98;

constexpr uint32_t kExtendedAddressFlag = 0x80000000;  // LOAD_ADDRESS bit 31
}  // namespace bytes

// The whole message around `body`.
std::vector<uint8_t> frame_message(uint8_t sequence, std::span<const uint8_t> body);

// Collects a message byte by byte as the bootloaders' and programmers' parsers do: bytes before a
// 0x1B are dropped, a wrong token restarts the search, a message whose checksum does not match is
// reported as such (what the device then does differs).
class MessageReader {
public:
    struct Message {
        uint8_t sequence = 0;
        std::vector<uint8_t> body;
        bool checksum_ok = true;
    };
    explicit MessageReader(size_t max_body) : max_body_(max_body) {}
    // The message this byte completed, if any.
    std::optional<Message> take(uint8_t byte);
    void clear() { state_ = State::Start; }
    bool idle() const { return state_ == State::Start; }

private:
    enum class State { Start, Sequence, LengthHigh, LengthLow, Token, Body, Checksum };
    size_t max_body_;
    State state_ = State::Start;
    uint8_t checksum_ = 0;
    size_t length_ = 0;
    Message message_;
};

}  // namespace mcuflash::sim::stk500v2
