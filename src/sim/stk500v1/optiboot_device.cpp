#include "sim/stk500v1/optiboot_device.hpp"

#include <fmt/format.h>

namespace mcuflash::sim::stk500v1 {

using namespace bytes;

std::string OptibootDevice::version() const { return fmt::format("{}.{}", kMajor, kMinor); }

void OptibootDevice::start(Clock::time_point now) {
    address_ = 0;
    rampz_ = 0;
    if (page_buffer_.empty()) page_buffer_.assign(page_size(), 0xFF);
    set_watchdog(kWatchdog, now);
}

uint32_t OptibootDevice::block_length(uint8_t high, uint8_t low) const {
    // A do-while loop on the length: 0 means one more than the counter holds.
    if (page_size() > 255) return (uint32_t{high} << 8 | low) ? (uint32_t{high} << 8 | low) : 0x10000;
    return low ? low : 256;
}

size_t OptibootDevice::command_length(std::span<const uint8_t> frame) const {
    switch (frame[0]) {
        case kGetParameter: return 3;
        case kSetDevice: return 22;
        case kSetDeviceExt: return 7;
        case kLoadAddress: return 4;
        case kUniversal: return 6;
        case kReadPage: return 5;
        case kProgPage: return frame.size() < 3 ? 0 : 4 + block_length(frame[1], frame[2]) + 1;
        default: return 2;  // GET_SYNC, ENTER/LEAVE_PROGMODE, CHIP_ERASE, READ_SIGN and anything unknown
    }
}

void OptibootDevice::execute(std::span<const uint8_t> frame, Clock::time_point now) {
    uint8_t command = frame[0];
    if (command == kLeaveProgmode) set_watchdog(kShortWatchdog, now);
    if (frame.back() != kEop) {
        // verifySpace(): shorten the watchdog and spin until it resets the chip into the application.
        count_bad_eop();
        trace(fmt::format("{}command 0x{:02x} ended with 0x{:02x}, not 0x20: going to the application",
                          trace_prefix(), command, frame.back()));
        set_watchdog(kShortWatchdog, now, false);
        return;
    }
    std::vector<uint8_t> reply{kInSync};
    switch (command) {
        case kGetParameter:
            reply.push_back(frame[1] == kParamSwMajor ? kMajor : frame[1] == kParamSwMinor ? kMinor : 0x03);
            break;
        case kLoadAddress:
            address_ = static_cast<uint16_t>(frame[1] | frame[2] << 8);
            if (has_rampz()) rampz_ = static_cast<uint8_t>((rampz_ & 0xFE) | (address_ >> 15));
            address_ = static_cast<uint16_t>(address_ << 1);  // word -> byte address
            break;
        case kUniversal:
            if (has_rampz() && frame[1] == kOpLoadExtendedAddress)
                rampz_ = static_cast<uint8_t>((rampz_ & 0x01) | (frame[3] << 1));
            reply.push_back(0x00);
            break;
        case kProgPage:
            transmit(reply, now);
            return program_page(frame[3], frame.subspan(4, frame.size() - 5), now);
        case kReadPage: {
            auto data = read_page(frame[3], block_length(frame[1], frame[2]));
            reply.insert(reply.end(), data.begin(), data.end());
            break;
        }
        case kReadSign:
            reply.insert(reply.end(), signature().begin(), signature().end());
            break;
        default:
            break;
    }
    reply.push_back(kOk);
    transmit(reply, now);
}

void OptibootDevice::program_page(uint8_t memory, std::span<const uint8_t> data, Clock::time_point now) {
    if (memory == kMemEeprom) return busy_for(write_eeprom(address_, data), {kOk}, now);

    // The data lands in the RAM buffer; only one page of it reaches the flash.
    std::copy_n(data.begin(), std::min<size_t>(data.size(), page_buffer_.size()), page_buffer_.begin());
    uint32_t address = flash_address() % flash().size();
    uint32_t page_start = address - address % page_size();
    // SPM's page buffer is indexed by the low address bits, so an unaligned start wraps within the page.
    std::vector<uint8_t> image(page_size());
    for (uint32_t i = 0; i < page_size(); ++i) image[(address - page_start + i) % page_size()] = page_buffer_[i];
    busy_for(write_flash_page(page_start, image), {kOk}, now);
}

std::vector<uint8_t> OptibootDevice::read_page(uint8_t memory, uint32_t length) {
    if (memory == kMemEeprom) return read_eeprom(address_, length);
    if (!has_rampz()) return read_flash(address_, length);
    uint32_t start = flash_address();
    // ELPM Z+ increments RAMPZ:Z as one 24-bit register.
    rampz_ = static_cast<uint8_t>((start + length) >> 16);
    return read_flash(start, length);
}

}  // namespace mcuflash::sim::stk500v1
