#include "sim/stk500v1/atmegaboot_device.hpp"

#include <fmt/format.h>

namespace mcuflash::sim::stk500v1 {

using namespace bytes;

namespace {
constexpr uint8_t kProgrammerId = '1';
constexpr uint8_t kSetParameter = '@';
constexpr uint8_t kReadOscCal = 'v';
constexpr uint8_t kUniversalReadSignature = 0x30;
constexpr uint8_t kParamAvrStudio = 0x98;
constexpr char kProgrammerName[] = "AVR ISP";
}  // namespace

std::string AtmegabootDevice::version() const { return fmt::format("{}.{}", kMajor, kMinor); }

void AtmegabootDevice::start(Clock::time_point now) {
    address_ = 0;
    errors_ = 0;
    set_watchdog(kReceiveTimeout, now);
}

void AtmegabootDevice::count_error(Clock::time_point now) {
    if (++errors_ == kMaxErrors) run_application(now, fmt::format("{} protocol errors", kMaxErrors));
}

size_t AtmegabootDevice::command_length(std::span<const uint8_t> frame) const {
    switch (frame[0]) {
        case kGetSync:
        case kProgrammerId:
        case kEnterProgmode:
        case kChipErase:
        case kLeaveProgmode:
        case kReadSign:
        case kReadOscCal: return 2;
        case kGetParameter: return 3;
        case kLoadAddress: return 4;
        case kUniversal: return 6;
        case kSetDeviceExt: return 7;
        case kSetDevice: return 22;
        case kReadPage: return 5;
        case kSetParameter: return frame.size() < 2 ? 0 : frame[1] > 0x85 ? 4 : 3;
        case kProgPage: return frame.size() < 3 ? 0 : 4 + (size_t{frame[1]} << 8 | frame[2]) + 1;
        default: return 1;  // not a command: counted as an error, nothing more is read
    }
}

void AtmegabootDevice::execute(std::span<const uint8_t> frame, Clock::time_point now) {
    uint8_t command = frame[0];
    if (frame.size() == 1) return count_error(now);
    if (frame.back() != kEop) {
        count_bad_eop();
        trace(fmt::format("{}command 0x{:02x} ended with 0x{:02x}, not 0x20: no answer", trace_prefix(), command,
                          frame.back()));
        if (command != kReadPage) count_error(now);
        return;
    }
    std::vector<uint8_t> reply{kInSync};
    switch (command) {
        case kProgrammerId:
            reply.insert(reply.end(), std::begin(kProgrammerName), std::end(kProgrammerName) - 1);
            break;
        case kGetParameter: {
            uint8_t p = frame[1];
            reply.push_back(p == kParamHwVersion ? kHwVersion
                            : p == kParamSwMajor ? kMajor
                            : p == kParamSwMinor ? kMinor
                            : p == kParamAvrStudio ? 0x03
                                                   : 0x00);
            break;
        }
        case kLoadAddress:
            address_ = static_cast<uint16_t>(frame[1] | frame[2] << 8);
            break;
        case kUniversal:
            if (frame[1] == kUniversalReadSignature) reply.push_back(signature().at(std::min<uint8_t>(frame[3], 2)));
            else reply.push_back(0x00);
            break;
        case kReadOscCal:
            reply.push_back(0x00);
            break;
        case kReadSign:
            reply.insert(reply.end(), signature().begin(), signature().end());
            break;
        case kProgPage:
            return program(frame[3], frame.subspan(4, frame.size() - 5), now);
        case kReadPage: {
            auto data = read(frame[3], uint32_t{frame[1]} << 8 | frame[2]);
            reply.insert(reply.end(), data.begin(), data.end());
            break;
        }
        default:  // GET_SYNC, SET_DEVICE(_EXT), SET_PARAMETER, ENTER/LEAVE_PROGMODE, CHIP_ERASE
            break;
    }
    reply.push_back(kOk);
    transmit(reply, now);
}

void AtmegabootDevice::program(uint8_t memory, std::span<const uint8_t> data, Clock::time_point now) {
    if (memory == kMemEeprom) {
        address_ = static_cast<uint16_t>(address_ << 1);
        Clock::duration busy = write_eeprom(address_, data);
        address_ = static_cast<uint16_t>(address_ + data.size());
        return busy_for(busy, {kInSync, kOk}, now);
    }
    uint32_t cursor = (upper_half() ? 0x10000u : 0u) + static_cast<uint16_t>(address_ << 1);
    address_ = static_cast<uint16_t>(address_ << 1);
    std::vector<uint8_t> words(data.begin(), data.end());
    if (words.size() % 2) words.push_back(0xFF);  // the odd length is evened up with whatever follows
    Clock::duration busy{};
    for (size_t done = 0; done < words.size();) {
        // A page is erased when its first word is loaded and written once a page's worth is loaded.
        uint32_t at = cursor % flash().size();
        uint32_t page_start = at - at % page_size();
        size_t chunk = std::min<size_t>(page_size(), words.size() - done);
        std::vector<uint8_t> image(page_size(), 0xFF);
        for (size_t i = 0; i < chunk; ++i) image[(at - page_start + i) % page_size()] = words[done + i];
        busy += write_flash_page(page_start, image);
        cursor += static_cast<uint32_t>(chunk);
        done += chunk;
    }
    busy_for(busy, {kInSync, kOk}, now);
}

std::vector<uint8_t> AtmegabootDevice::read(uint8_t memory, uint32_t length) {
    uint32_t segment = upper_half() ? 0x10000u : 0u;
    address_ = static_cast<uint16_t>(address_ << 1);
    std::vector<uint8_t> out;
    out.reserve(length);
    // The address register advances byte by byte and wraps within its 16 bits.
    for (uint32_t i = 0; i < length; ++i, ++address_) {
        out.push_back(memory == kMemEeprom ? read_eeprom(address_, 1)[0] : read_flash(segment + address_, 1)[0]);
    }
    return out;
}

}  // namespace mcuflash::sim::stk500v1
