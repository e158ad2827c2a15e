#include "protocol/stk500v2/codec.hpp"

#include <fmt/format.h>

#include <stdexcept>

#include "core/hexdump.hpp"

namespace mcuflash::protocol::stk500v2 {

// ---- framing ----

uint8_t xor_checksum(std::span<const uint8_t> bytes) {
    uint8_t x = 0;
    for (uint8_t b : bytes) x ^= b;
    return x;
}

Bytes encode_frame(uint8_t seq, std::span<const uint8_t> body) {
    if (body.empty() || body.size() > kMaxBody)
        throw std::length_error(fmt::format("STK500v2 body of {} bytes (1 to {} allowed)", body.size(), kMaxBody));
    Bytes out;
    out.reserve(body.size() + kFrameOverhead);
    out.push_back(kMessageStart);
    out.push_back(seq);
    out.push_back(static_cast<uint8_t>(body.size() >> 8));
    out.push_back(static_cast<uint8_t>(body.size() & 0xFF));
    out.push_back(kToken);
    out.insert(out.end(), body.begin(), body.end());
    out.push_back(xor_checksum(out));
    return out;
}

void FrameDecoder::reset() {
    state_ = State::Start;
    header_.clear();
    frame_ = {};
    problem_.clear();
    skipped_ = 0;
}

FrameDecoder::Result FrameDecoder::fail(std::string problem) {
    problem_ = std::move(problem);
    // Look again at the header bytes after the rejected start byte: a real frame may begin there.
    Bytes again(header_.begin() + (header_.empty() ? 0 : 1), header_.end());
    state_ = State::Start;
    header_.clear();
    std::string kept = problem_;
    // A second error inside these few bytes only means they were noise too: report the first.
    for (uint8_t b : again) push(b);
    problem_ = std::move(kept);
    return Result::Error;
}

FrameDecoder::Result FrameDecoder::push(uint8_t byte) {
    switch (state_) {
        case State::Start:
            if (byte != kMessageStart) {
                ++skipped_;
                return Result::NeedMore;
            }
            header_.assign(1, byte);
            checksum_ = byte;
            state_ = State::Seq;
            return Result::NeedMore;
        case State::Seq:
            header_.push_back(byte);
            checksum_ ^= byte;
            frame_.seq = byte;
            state_ = State::LengthHigh;
            return Result::NeedMore;
        case State::LengthHigh:
            header_.push_back(byte);
            checksum_ ^= byte;
            length_ = size_t(byte) << 8;
            state_ = State::LengthLow;
            return Result::NeedMore;
        case State::LengthLow:
            header_.push_back(byte);
            checksum_ ^= byte;
            length_ |= byte;
            if (length_ == 0 || length_ > kMaxBody)
                return fail(fmt::format("impossible frame length {} (1 to {} allowed): header {}", length_, kMaxBody,
                                        core::hex_bytes(header_)));
            state_ = State::Token;
            return Result::NeedMore;
        case State::Token:
            header_.push_back(byte);
            if (byte != kToken)
                return fail(fmt::format("bad token 0x{:02x} (expected 0x0e): header {}", byte, core::hex_bytes(header_)));
            checksum_ ^= byte;
            frame_.body.clear();
            frame_.body.reserve(length_);
            state_ = State::Body;
            return Result::NeedMore;
        case State::Body:
            frame_.body.push_back(byte);
            checksum_ ^= byte;
            if (frame_.body.size() == length_) state_ = State::Checksum;
            return Result::NeedMore;
        case State::Checksum:
            state_ = State::Start;
            header_.clear();
            if (byte != checksum_) {
                problem_ = fmt::format("bad checksum 0x{:02x} (computed 0x{:02x}) on a {}-byte frame, seq {}, body {}",
                                       byte, checksum_, length_, frame_.seq, core::hex_bytes(frame_.body, 8));
                return Result::Error;
            }
            skipped_ = 0;
            return Result::Frame;
    }
    return Result::NeedMore;
}

// ---- request bodies ----

Bytes sign_on() { return {cmd::kSignOn}; }
Bytes set_parameter(uint8_t id, uint8_t value) { return {cmd::kSetParameter, id, value}; }
Bytes get_parameter(uint8_t id) { return {cmd::kGetParameter, id}; }

Bytes load_address(uint32_t address, bool extended) {
    if (extended) address |= 0x80000000u;
    return {cmd::kLoadAddress, static_cast<uint8_t>(address >> 24), static_cast<uint8_t>(address >> 16),
            static_cast<uint8_t>(address >> 8), static_cast<uint8_t>(address)};
}

Bytes enter_progmode_isp(const IspEnter& p) {
    return {cmd::kEnterProgmodeIsp, p.timeout,    p.stab_delay, p.cmd_exe_delay, p.synch_loops, p.byte_delay,
            p.poll_value,          p.poll_index, p.command[0], p.command[1],    p.command[2],  p.command[3]};
}

Bytes leave_progmode_isp(uint8_t pre_delay_ms, uint8_t post_delay_ms) {
    return {cmd::kLeaveProgmodeIsp, pre_delay_ms, post_delay_ms};
}

Bytes chip_erase_isp(uint8_t erase_delay_ms, uint8_t poll_method, std::array<uint8_t, 4> command) {
    return {cmd::kChipEraseIsp, erase_delay_ms, poll_method, command[0], command[1], command[2], command[3]};
}

namespace {

constexpr size_t kProgramHeader = 10;  // command, length (2), mode, delay, cmd1-3, poll1-2
constexpr size_t kReadOverhead = 3;    // answer: command, status, data, status

Bytes program_memory(uint8_t command, const IspProgram& p, std::span<const uint8_t> data) {
    if (data.empty() || data.size() > kMaxBody - kProgramHeader)
        throw std::length_error(
            fmt::format("STK500v2 program block of {} bytes (1 to {} allowed)", data.size(), kMaxBody - kProgramHeader));
    Bytes out{command,
              static_cast<uint8_t>(data.size() >> 8),
              static_cast<uint8_t>(data.size() & 0xFF),
              static_cast<uint8_t>(p.write_page ? (p.mode | 0x80) : (p.mode & 0x7F)),
              p.delay_ms,
              p.cmd1,
              p.cmd2,
              p.cmd3,
              p.poll1,
              p.poll2};
    out.insert(out.end(), data.begin(), data.end());
    return out;
}

Bytes read_memory(uint8_t command, uint16_t length, uint8_t instruction) {
    if (length == 0 || length > kMaxBody - kReadOverhead)
        throw std::length_error(
            fmt::format("STK500v2 read block of {} bytes (1 to {} allowed)", length, kMaxBody - kReadOverhead));
    return {command, static_cast<uint8_t>(length >> 8), static_cast<uint8_t>(length & 0xFF), instruction};
}

Bytes four(uint8_t command, std::array<uint8_t, 4> instruction) {
    return {command, instruction[0], instruction[1], instruction[2], instruction[3]};
}

Bytes read_four(uint8_t command, uint8_t ret_addr, std::array<uint8_t, 4> instruction) {
    return {command, ret_addr, instruction[0], instruction[1], instruction[2], instruction[3]};
}

}  // namespace

Bytes program_flash_isp(const IspProgram& p, std::span<const uint8_t> data) {
    return program_memory(cmd::kProgramFlashIsp, p, data);
}
Bytes program_eeprom_isp(const IspProgram& p, std::span<const uint8_t> data) {
    return program_memory(cmd::kProgramEepromIsp, p, data);
}
Bytes read_flash_isp(uint16_t length, uint8_t read_instruction) {
    return read_memory(cmd::kReadFlashIsp, length, read_instruction);
}
Bytes read_eeprom_isp(uint16_t length, uint8_t read_instruction) {
    return read_memory(cmd::kReadEepromIsp, length, read_instruction);
}
Bytes program_fuse_isp(std::array<uint8_t, 4> instruction) { return four(cmd::kProgramFuseIsp, instruction); }
Bytes read_fuse_isp(std::array<uint8_t, 4> instruction, uint8_t ret_addr) {
    return read_four(cmd::kReadFuseIsp, ret_addr, instruction);
}
Bytes program_lock_isp(std::array<uint8_t, 4> instruction) { return four(cmd::kProgramLockIsp, instruction); }
Bytes read_lock_isp(std::array<uint8_t, 4> instruction, uint8_t ret_addr) {
    return read_four(cmd::kReadLockIsp, ret_addr, instruction);
}
Bytes read_signature_isp(uint8_t index, uint8_t ret_addr) {
    return read_four(cmd::kReadSignatureIsp, ret_addr, {0x30, 0x00, index, 0x00});
}

Bytes spi_multi(std::span<const uint8_t> tx, uint8_t rx_count, uint8_t rx_start) {
    if (tx.size() > 255 || tx.size() + 4 > kMaxBody)
        throw std::length_error(fmt::format("SPI_MULTI of {} bytes", tx.size()));
    Bytes out{cmd::kSpiMulti, static_cast<uint8_t>(tx.size()), rx_count, rx_start};
    out.insert(out.end(), tx.begin(), tx.end());
    return out;
}

namespace isp {

std::array<uint8_t, 4> write_fuse(Fuse fuse, uint8_t value) {
    switch (fuse) {
        case Fuse::Low: return {0xAC, 0xA0, 0x00, value};
        case Fuse::High: return {0xAC, 0xA8, 0x00, value};
        case Fuse::Extended: return {0xAC, 0xA4, 0x00, value};
    }
    return {};
}

std::array<uint8_t, 4> read_fuse(Fuse fuse) {
    switch (fuse) {
        case Fuse::Low: return {0x50, 0x00, 0x00, 0x00};
        case Fuse::High: return {0x58, 0x08, 0x00, 0x00};
        case Fuse::Extended: return {0x50, 0x08, 0x00, 0x00};
    }
    return {};
}

std::array<uint8_t, 4> write_lock(uint8_t value) { return {0xAC, 0xE0, 0x00, value}; }
std::array<uint8_t, 4> read_lock() { return {0x58, 0x00, 0x00, 0x00}; }

const char* fuse_name(Fuse fuse) {
    switch (fuse) {
        case Fuse::Low: return "lfuse";
        case Fuse::High: return "hfuse";
        case Fuse::Extended: return "efuse";
    }
    return "?";
}

}  // namespace isp

// ---- answers ----

std::string describe_status(uint8_t s) {
    switch (s) {
        case status::kOk: return "OK (0x00)";
        case status::kCmdTimeout: return "CMD_TOUT (0x80): the target did not answer in time";
        case status::kRdyBsyTimeout: return "RDY_BSY_TOUT (0x81): the target stayed busy";
        case status::kSetParamMissing: return "SET_PARAM_MISSING (0x82): a required parameter was not set";
        case status::kFailed: return "FAILED (0xC0): the device could not do it";
        case status::kChecksumError: return "CKSUM_ERROR (0xC1): the device received a frame with a bad checksum";
        case status::kUnknown: return "CMD_UNKNOWN (0xC9): the device does not know this command";
        case status::kIllegalParameter: return "ILLEGAL_PARAMETER (0xCA): the device rejected a parameter";
    }
    return fmt::format("0x{:02x} (not an STK500v2 status)", s);
}

std::string describe_command(uint8_t command) {
    const char* name = nullptr;
    switch (command) {
        case cmd::kSignOn: name = "SIGN_ON"; break;
        case cmd::kSetParameter: name = "SET_PARAMETER"; break;
        case cmd::kGetParameter: name = "GET_PARAMETER"; break;
        case cmd::kLoadAddress: name = "LOAD_ADDRESS"; break;
        case cmd::kEnterProgmodeIsp: name = "ENTER_PROGMODE_ISP"; break;
        case cmd::kLeaveProgmodeIsp: name = "LEAVE_PROGMODE_ISP"; break;
        case cmd::kChipEraseIsp: name = "CHIP_ERASE_ISP"; break;
        case cmd::kProgramFlashIsp: name = "PROGRAM_FLASH_ISP"; break;
        case cmd::kReadFlashIsp: name = "READ_FLASH_ISP"; break;
        case cmd::kProgramEepromIsp: name = "PROGRAM_EEPROM_ISP"; break;
        case cmd::kReadEepromIsp: name = "READ_EEPROM_ISP"; break;
        case cmd::kProgramFuseIsp: name = "PROGRAM_FUSE_ISP"; break;
        case cmd::kReadFuseIsp: name = "READ_FUSE_ISP"; break;
        case cmd::kProgramLockIsp: name = "PROGRAM_LOCK_ISP"; break;
        case cmd::kReadLockIsp: name = "READ_LOCK_ISP"; break;
        case cmd::kReadSignatureIsp: name = "READ_SIGNATURE_ISP"; break;
        case cmd::kSpiMulti: name = "SPI_MULTI"; break;
        case cmd::kAnswerChecksumError: name = "ANSWER_CKSUM_ERROR"; break;
    }
    return name ? fmt::format("{} (0x{:02x})", name, command) : fmt::format("command 0x{:02x}", command);
}

namespace {
// Commands whose answer ends with a second status byte after the data.
bool has_trailing_status(uint8_t command) {
    switch (command) {
        case cmd::kReadFlashIsp:
        case cmd::kReadEepromIsp:
        case cmd::kReadFuseIsp:
        case cmd::kReadLockIsp:
        case cmd::kReadSignatureIsp:
        case cmd::kSpiMulti:
        case cmd::kProgramFuseIsp:
        case cmd::kProgramLockIsp: return true;
    }
    return false;
}
}  // namespace

std::optional<std::string> check_reply(const Frame& reply, uint8_t seq, uint8_t command,
                                       std::optional<size_t> body_size) {
    if (reply.seq != seq)
        return fmt::format("sequence mismatch: the answer carries seq {}, the request had {}", reply.seq, seq);
    if (reply.body.size() < 2)
        return fmt::format("answer too short ({} byte body: {})", reply.body.size(), core::hex_bytes(reply.body));
    if (reply.body[0] == cmd::kAnswerChecksumError)
        return fmt::format("the device received {} with a bad checksum ({})", describe_command(command),
                           describe_status(reply.body[1]));
    if (reply.body[0] != command)
        return fmt::format("answer to {} while waiting for {}", describe_command(reply.body[0]), describe_command(command));
    if (reply.body[1] != status::kOk)
        return fmt::format("{} answered {}", describe_command(command), describe_status(reply.body[1]));
    if (body_size && reply.body.size() != *body_size)
        return fmt::format("{} answered {} bytes, expected {}: {}", describe_command(command), reply.body.size(),
                           *body_size, core::hex_bytes(reply.body, 12));
    if (has_trailing_status(command) && reply.body.size() >= 3 && reply.body.back() != status::kOk)
        return fmt::format("{} answered {} at the end", describe_command(command), describe_status(reply.body.back()));
    return std::nullopt;
}

std::string sign_on_name(const Frame& reply) {
    const auto& b = reply.body;
    if (b.size() < 3) return {};
    size_t n = std::min<size_t>(b[2], b.size() - 3);
    return std::string(b.begin() + 3, b.begin() + 3 + static_cast<long>(n));
}

uint8_t single_byte_answer(const Frame& reply) { return reply.body.size() >= 3 ? reply.body[2] : 0; }

std::span<const uint8_t> read_data(const Frame& reply) {
    if (reply.body.size() < 3) return {};
    return std::span(reply.body).subspan(2, reply.body.size() - 3);
}

// ---- the "!!!" monitor ----

size_t monitor_guard_fill(uint64_t received_min, uint64_t received_max, std::span<const uint8_t> frame) {
    constexpr uint64_t kWrap = 65536;  // the bootloader's counter is a 16-bit unsigned int
    constexpr uint64_t kLastStart = 7;  // three '!' all counted below 10: the first at 0..7
    std::vector<size_t> runs;
    for (size_t i = 0; i + 2 < frame.size(); ++i)
        if (frame[i] == '!' && frame[i + 1] == '!' && frame[i + 2] == '!') runs.push_back(i);
    // Unknown by more than a wrap: no filler can keep a run out of the window for sure.
    if (runs.empty() || received_max - received_min >= kWrap - kLastStart - 1) return 0;
    auto hazard = [&](uint64_t fill) {
        for (size_t i : runs) {
            // Byte number (1-based since reset) of the run's first '!' is received + fill + i + 1,
            // and the counter holds that number modulo 65536.
            uint64_t lo = received_min + fill + i + 1, hi = received_max + fill + i + 1;
            if (lo % kWrap <= kLastStart) return true;
            uint64_t next = lo - lo % kWrap + kWrap;
            if (next <= hi) return true;
        }
        return false;
    };
    size_t fill = 0;
    while (hazard(fill)) ++fill;
    return fill;
}

}  // namespace mcuflash::protocol::stk500v2
