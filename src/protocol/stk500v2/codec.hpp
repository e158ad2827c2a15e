#pragma once
// STK500v2 (Atmel AVR068) as serial programmers and the Arduino Mega bootloader (stk500boot_v2)
// speak it: pure bytes <-> messages, no I/O.
//
// Frame, both directions: 1B <seq> <lenH> <lenL> 0E <body: lenH:lenL bytes> <xor of all bytes before>.
// A request body is <command> <arguments>; the answer's body is <command> <status> [data] and, for
// the commands that read something, a second status byte at the end.
#include <array>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <vector>

namespace mcuflash::protocol::stk500v2 {

using Bytes = std::vector<uint8_t>;

constexpr uint8_t kMessageStart = 0x1B;
constexpr uint8_t kToken = 0x0E;
constexpr size_t kMaxBody = 275;       // AVR068; stk500boot_v2's buffer is 285 and unchecked
constexpr size_t kFrameOverhead = 6;   // start, seq, 2 length bytes, token, checksum

namespace cmd {
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
constexpr uint8_t kSpiMulti = 0x1D;
// A programmer answers a request whose checksum it found wrong with this command byte (status 0xC1).
constexpr uint8_t kAnswerChecksumError = 0xB0;
}  // namespace cmd

namespace status {
constexpr uint8_t kOk = 0x00;
constexpr uint8_t kCmdTimeout = 0x80;
constexpr uint8_t kRdyBsyTimeout = 0x81;
constexpr uint8_t kSetParamMissing = 0x82;
constexpr uint8_t kFailed = 0xC0;
constexpr uint8_t kChecksumError = 0xC1;
constexpr uint8_t kUnknown = 0xC9;
constexpr uint8_t kIllegalParameter = 0xCA;
}  // namespace status

namespace param {
constexpr uint8_t kBuildNumberLow = 0x80;
constexpr uint8_t kBuildNumberHigh = 0x81;
constexpr uint8_t kHwVersion = 0x90;
constexpr uint8_t kSwMajor = 0x91;
constexpr uint8_t kSwMinor = 0x92;
constexpr uint8_t kVTarget = 0x94;
constexpr uint8_t kSckDuration = 0x98;
constexpr uint8_t kResetPolarity = 0x9E;
}  // namespace param

// ---- framing ----

// XOR of every byte: the frame checksum over start..body.
uint8_t xor_checksum(std::span<const uint8_t> bytes);
// A whole frame around `body`. Throws std::length_error when the body is empty or over kMaxBody.
Bytes encode_frame(uint8_t seq, std::span<const uint8_t> body);

struct Frame {
    uint8_t seq = 0;
    Bytes body;
};

// Finds frames in a byte stream, one byte at a time. Bytes before a start byte are skipped (counted);
// a frame with a wrong token, an impossible length or a wrong checksum is reported in words and the
// search starts again (a start byte inside a rejected header is looked at again).
class FrameDecoder {
public:
    enum class Result { NeedMore, Frame, Error };

    Result push(uint8_t byte);
    // Valid after push() returned Frame, until the next push().
    const Frame& frame() const { return frame_; }
    // Valid after push() returned Error: what was wrong, e.g. "bad checksum: ...".
    const std::string& problem() const { return problem_; }
    // Bytes skipped while looking for a start byte since the last frame or reset().
    size_t skipped() const { return skipped_; }
    void reset();

private:
    enum class State { Start, Seq, LengthHigh, LengthLow, Token, Body, Checksum };
    Result fail(std::string problem);

    State state_ = State::Start;
    uint8_t checksum_ = 0;
    size_t length_ = 0;
    Frame frame_;
    Bytes header_;  // the bytes of the current header, to rescan after a rejected one
    std::string problem_;
    size_t skipped_ = 0;
};

// ---- request bodies (what goes between the token and the checksum) ----

Bytes sign_on();
Bytes set_parameter(uint8_t id, uint8_t value);
Bytes get_parameter(uint8_t id);
// Flash takes WORD addresses, EEPROM byte addresses. `extended` sets bit 31: the programmer must send
// the "load extended address" instruction (parts above 64K words, e.g. atmega2560).
Bytes load_address(uint32_t address, bool extended);

// ENTER_PROGMODE_ISP's 11 parameter bytes (AVR068 names); defaults are the atmega2560's from avrdude.conf.
struct IspEnter {
    uint8_t timeout = 200;        // ms
    uint8_t stab_delay = 100;     // ms
    uint8_t cmd_exe_delay = 25;   // ms
    uint8_t synch_loops = 32;
    uint8_t byte_delay = 0;       // ms
    uint8_t poll_value = 0x53;    // echo of the 2nd byte of "programming enable"
    uint8_t poll_index = 3;       // 0 = no polling, 3 = 3rd byte of the answer
    std::array<uint8_t, 4> command{0xAC, 0x53, 0x00, 0x00};
};
Bytes enter_progmode_isp(const IspEnter& p);
Bytes leave_progmode_isp(uint8_t pre_delay_ms = 1, uint8_t post_delay_ms = 1);
Bytes chip_erase_isp(uint8_t erase_delay_ms, uint8_t poll_method,
                     std::array<uint8_t, 4> command = {0xAC, 0x80, 0x00, 0x00});

// PROGRAM_FLASH_ISP / PROGRAM_EEPROM_ISP parameters (AVR068 "mode" byte and the instructions used).
// mode bit 0: page mode; bits 1-3 word mode delay/value/ready polling; bits 4-6 the same for page
// mode; bit 7: write the page (set on the last block of a page). avrdude: m2560 flash mode 0x41.
struct IspProgram {
    uint8_t mode = 0x41;
    uint8_t delay_ms = 10;
    uint8_t cmd1 = 0x40;   // load program memory page, low byte (0x40) / EEPROM: load page (0xC1)
    uint8_t cmd2 = 0x4C;   // write program memory page (0x4C) / EEPROM: write page (0xC2)
    uint8_t cmd3 = 0x20;   // read program memory, low byte (0x20) / EEPROM: read (0xA0)
    uint8_t poll1 = 0x00;  // value read back while the location is still being written
    uint8_t poll2 = 0x00;
    bool write_page = true;  // sets mode bit 7
};
// Data of at most kMaxBody - 10 bytes; throws std::length_error otherwise.
Bytes program_flash_isp(const IspProgram& p, std::span<const uint8_t> data);
Bytes program_eeprom_isp(const IspProgram& p, std::span<const uint8_t> data);
// `length` of at most kMaxBody - 3 bytes (the answer must fit one frame); throws std::length_error.
Bytes read_flash_isp(uint16_t length, uint8_t read_instruction = 0x20);
Bytes read_eeprom_isp(uint16_t length, uint8_t read_instruction = 0xA0);
Bytes program_fuse_isp(std::array<uint8_t, 4> instruction);
Bytes read_fuse_isp(std::array<uint8_t, 4> instruction, uint8_t ret_addr = 4);
Bytes program_lock_isp(std::array<uint8_t, 4> instruction);
Bytes read_lock_isp(std::array<uint8_t, 4> instruction = {0x58, 0x00, 0x00, 0x00}, uint8_t ret_addr = 4);
Bytes read_signature_isp(uint8_t index, uint8_t ret_addr = 4);  // 1B 04 30 00 idx 00
// SPI_MULTI: sends `tx`, answers `rx_count` bytes starting at received byte `rx_start`.
Bytes spi_multi(std::span<const uint8_t> tx, uint8_t rx_count, uint8_t rx_start);

// The classic ATmega serial-programming instructions for fuses and lock bits (datasheet table
// "Serial Programming Instruction Set"; the same on atmega168/328p/1280/1284p/2560).
namespace isp {
enum class Fuse { Low, High, Extended };
std::array<uint8_t, 4> write_fuse(Fuse fuse, uint8_t value);  // AC A0|A8|A4 00 value
std::array<uint8_t, 4> read_fuse(Fuse fuse);                  // 50 00 | 58 08 | 50 08, then 00 00
std::array<uint8_t, 4> write_lock(uint8_t value);             // AC E0 00 value (bits 7-6 read as 1)
std::array<uint8_t, 4> read_lock();                           // 58 00 00 00
const char* fuse_name(Fuse fuse);                             // "lfuse", "hfuse", "efuse"
}  // namespace isp

// ---- answers ----

// Words for a status byte ("FAILED (0xC0): ...").
std::string describe_status(uint8_t status);
std::string describe_command(uint8_t command);  // "PROGRAM_FLASH_ISP (0x13)"

// Checks `reply` as the answer to `command` sent with `seq`: sequence, command echo, status OK, and
// when `body_size` is given, the exact body size (and the trailing status of reading commands).
// Returns nullopt when good, else the problem in words.
std::optional<std::string> check_reply(const Frame& reply, uint8_t seq, uint8_t command,
                                       std::optional<size_t> body_size = std::nullopt);

// Data of checked answers.
std::string sign_on_name(const Frame& reply);          // "AVRISP_2"
uint8_t single_byte_answer(const Frame& reply);        // GET_PARAMETER value, READ_*_ISP result byte
std::span<const uint8_t> read_data(const Frame& reply);  // READ_FLASH/EEPROM_ISP: between the statuses

// ---- stk500boot_v2's "!!!" monitor ----
// With its monitor compiled in (Mega 2560 builds), stk500boot_v2 counts every byte it receives in a
// 16-bit counter and enters a debug monitor (leaving the session) when three '!' in a row arrive while
// that counter is below 10: in the first 9 bytes after reset, and again each time the counter wraps,
// i.e. around every 65536th byte of a long session. Given how many bytes the device may have received
// so far (at least `received_min`, at most `received_max`), returns how many filler bytes (sent between
// frames, where the bootloader ignores anything but 0x1B) keep `frame` clear of that window; 0 if none
// is needed, or if the uncertainty spans a whole wrap (then no filler can guarantee it).
size_t monitor_guard_fill(uint64_t received_min, uint64_t received_max, std::span<const uint8_t> frame);
constexpr uint8_t kFiller = 0x00;

}  // namespace mcuflash::protocol::stk500v2
