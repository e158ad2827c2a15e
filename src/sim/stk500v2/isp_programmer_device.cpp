#include "sim/stk500v2/isp_programmer_device.hpp"

#include <algorithm>

#include <fmt/format.h>

namespace mcuflash::sim::stk500v2 {

using namespace bytes;

namespace {

// A 1 MHz SPI clock: 8 us per byte shifted to the target.
constexpr auto kSpiByteTime = std::chrono::microseconds(8);

}  // namespace

IspProgrammerDevice::IspProgrammerDevice(const targets::Chip& chip, const DeviceOptions& options)
    : MessageDevice(275),
      baud_(options.baud ? options.baud : kBaud),
      timing_(options.timing),
      target_(chip, options.timing, options.flash_file) {
    parameters_ = {{kParamBuildNumberLow, 0}, {kParamBuildNumberHigh, 0}, {kParamHwVersion, 2},
                   {kParamSwMajor, 2},        {kParamSwMinor, 0x0A},      {kParamVTarget, 50},
                   {kParamSckDuration, 1}};
}

std::string IspProgrammerDevice::describe() const {
    return fmt::format("STK500v2 ISP programmer (AVRISP_2) with an {} target", target_.chip().name);
}

bool IspProgrammerDevice::starts_listening(ResetCause, Clock::time_point) {
    // Opening the port resets nothing on a programmer; a reset of the programmer releases the target.
    if (target_.programming()) target_.leave_programming();
    return true;
}

Clock::duration IspProgrammerDevice::spi_time(size_t bytes) const {
    return timing_ ? std::chrono::duration_cast<Clock::duration>(kSpiByteTime * bytes) : Clock::duration{};
}

MessageDevice::Answer IspProgrammerDevice::bad_checksum(const MessageReader::Message&) {
    return {std::vector<uint8_t>{kAnswerChecksumError, kStatusChecksumError}};
}

uint8_t IspProgrammerDevice::run(const std::vector<uint8_t>& body, size_t offset, uint8_t answer_index,
                                 Clock::duration& busy) {
    std::array<uint8_t, 4> in{};
    for (size_t i = 0; i < 4; ++i) in[i] = offset + i < body.size() ? body[offset + i] : 0;
    auto out = target_.instruction(in, busy);
    busy += spi_time(4);
    return answer_index >= 1 && answer_index <= 4 ? out[answer_index - 1] : 0;
}

MessageDevice::Answer IspProgrammerDevice::handle(const std::vector<uint8_t>& body, Clock::time_point) {
    auto at = [&](size_t i) -> uint8_t { return i < body.size() ? body[i] : 0; };
    const uint8_t command = body[0];
    Clock::duration busy{};
    switch (command) {
        case kSignOn:
            return {std::vector<uint8_t>{kSignOn, kStatusOk, 8, 'A', 'V', 'R', 'I', 'S', 'P', '_', '2'}};
        case kSetParameter:
            parameters_[at(1)] = at(2);
            return {std::vector<uint8_t>{command, kStatusOk}};
        case kGetParameter: {
            auto it = parameters_.find(at(1));
            if (it == parameters_.end()) return {std::vector<uint8_t>{command, kStatusFailed}};
            return {std::vector<uint8_t>{command, kStatusOk, it->second}};
        }
        case kLoadAddress: {
            uint32_t value = (uint32_t{at(1)} << 24) | (uint32_t{at(2)} << 16) | (uint32_t{at(3)} << 8) | at(4);
            address_ = value & ~kExtendedAddressFlag;
            if (value & kExtendedAddressFlag) {
                std::vector<uint8_t> load_extended{0, 0x4D, 0x00, static_cast<uint8_t>(address_ >> 16), 0x00};
                run(load_extended, 1, 0, busy);
            }
            return {std::vector<uint8_t>{command, kStatusOk}, busy};
        }
        case kEnterProgmodeIsp: {
            // timeout stabDelay cmdexeDelay synchLoops byteDelay pollValue pollIndex cmd1..4
            bool entered = target_.enter_programming();
            uint8_t loops = std::max<uint8_t>(1, at(4));
            bool answered = false;
            for (uint8_t i = 0; i < loops && entered && !answered; ++i) {
                uint8_t echo = run(body, 8, at(7), busy);
                answered = at(7) == 0 || echo == at(6);
            }
            if (!answered) {
                target_.leave_programming();
                return {std::vector<uint8_t>{command, kStatusFailed}, busy};
            }
            return {std::vector<uint8_t>{command, kStatusOk}, busy};
        }
        case kLeaveProgmodeIsp:
            target_.leave_programming();
            return {std::vector<uint8_t>{command, kStatusOk}};
        case kChipEraseIsp: {
            run(body, 3, 0, busy);
            // The programmer waits at least the eraseDelay it was given.
            if (timing_) busy = std::max(busy, std::chrono::duration_cast<Clock::duration>(std::chrono::milliseconds(at(1))));
            return {std::vector<uint8_t>{command, kStatusOk}, busy};
        }
        case kProgramFlashIsp:
        case kProgramEepromIsp:
            return program_memory(body, command == kProgramFlashIsp);
        case kReadFlashIsp:
        case kReadEepromIsp:
            return read_memory(body, command == kReadFlashIsp);
        case kProgramFuseIsp:
        case kProgramLockIsp:
            run(body, 1, 0, busy);
            return {std::vector<uint8_t>{command, kStatusOk, kStatusOk}, busy};
        case kReadFuseIsp:
        case kReadLockIsp:
        case kReadSignatureIsp:
        case kReadOscCalIsp: {
            uint8_t value = run(body, 2, at(1), busy);
            return {std::vector<uint8_t>{command, kStatusOk, value, kStatusOk}, busy};
        }
        case kSpiMulti: {
            // numTx numRx rxStartAddr txData: the answer is numRx bytes from rxStartAddr of what came back.
            uint8_t tx = at(1), rx = at(2), start = at(3);
            std::vector<uint8_t> received;
            for (size_t i = 0; i < tx; i += 4) {
                std::array<uint8_t, 4> in{};
                for (size_t j = 0; j < 4; ++j) in[j] = i + j < tx ? at(4 + i + j) : 0;
                auto out = target_.instruction(in, busy);
                received.insert(received.end(), out.begin(), out.begin() + std::min<size_t>(4, tx - i));
            }
            busy += spi_time(tx);
            std::vector<uint8_t> answer{command, kStatusOk};
            for (size_t i = 0; i < rx; ++i) answer.push_back(start + i < received.size() ? received[start + i] : 0);
            answer.push_back(kStatusOk);
            return {answer, busy};
        }
        default:
            return {std::vector<uint8_t>{command, kStatusUnknown}};
    }
}

MessageDevice::Answer IspProgrammerDevice::program_memory(const std::vector<uint8_t>& body, bool flash) {
    // nH nL mode delay cmd1 cmd2 cmd3 poll1 poll2 data...
    if (body.size() < 10) return {std::vector<uint8_t>{body[0], kStatusFailed}};
    const uint32_t count = (uint32_t{body[1]} << 8) | body[2];
    const uint8_t mode = body[3], load = body[5], write = body[6];
    if (!(mode & 0x01) && flash) return {std::vector<uint8_t>{body[0], kStatusFailed}};  // megas have no word mode
    Clock::duration busy{};
    const uint32_t start = address_;
    for (uint32_t i = 0; i < count && 10 + i < body.size(); ++i) {
        const uint32_t address = address_;
        uint8_t opcode = flash ? static_cast<uint8_t>(load | ((i & 1) ? 0x08 : 0x00)) : load;
        std::vector<uint8_t> instruction{0, opcode, static_cast<uint8_t>(address >> 8), static_cast<uint8_t>(address),
                                         body[10 + i]};
        run(instruction, 1, 0, busy);
        if (!flash || (i & 1)) address_ = flash ? ((address_ + 1) & 0xFFFF) | (address_ & 0xFF0000) : address_ + 1;
    }
    if (mode & 0x80) {
        std::vector<uint8_t> instruction{0, write, static_cast<uint8_t>(start >> 8), static_cast<uint8_t>(start), 0};
        run(instruction, 1, 0, busy);
    }
    return {std::vector<uint8_t>{body[0], kStatusOk}, busy};
}

MessageDevice::Answer IspProgrammerDevice::read_memory(const std::vector<uint8_t>& body, bool flash) {
    const uint32_t count = (uint32_t{body.size() > 1 ? body[1] : uint8_t{0}} << 8) | (body.size() > 2 ? body[2] : 0);
    const uint8_t read = body.size() > 3 ? body[3] : (flash ? 0x20 : 0xA0);
    Clock::duration busy{};
    std::vector<uint8_t> answer{body[0], kStatusOk};
    for (uint32_t i = 0; i < count; ++i) {
        uint8_t opcode = flash ? static_cast<uint8_t>(read | ((i & 1) ? 0x08 : 0x00)) : read;
        std::vector<uint8_t> instruction{0, opcode, static_cast<uint8_t>(address_ >> 8), static_cast<uint8_t>(address_), 0};
        answer.push_back(run(instruction, 1, 4, busy));
        if (!flash || (i & 1)) address_ = flash ? ((address_ + 1) & 0xFFFF) | (address_ & 0xFF0000) : address_ + 1;
    }
    answer.push_back(kStatusOk);
    return {answer, busy};
}

}  // namespace mcuflash::sim::stk500v2
