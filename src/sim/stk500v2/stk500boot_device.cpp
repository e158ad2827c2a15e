#include "sim/stk500v2/stk500boot_device.hpp"

#include <algorithm>
#include <string_view>

#include <fmt/format.h>

namespace mcuflash::sim::stk500v2 {

using namespace bytes;

namespace {

constexpr uint32_t kBootSize = 8192;  // BOOTSIZE for the Mega: APP_END leaves twice this free

std::vector<uint8_t> answer(uint8_t command, std::initializer_list<uint8_t> rest) {
    // Sized first and copied into: GCC 12 warns of a false -Warray-bounds on inserting after a short list.
    std::vector<uint8_t> out(1 + rest.size());
    out[0] = command;
    std::copy(rest.begin(), rest.end(), out.begin() + 1);
    return out;
}

}  // namespace

Stk500bootDevice::Stk500bootDevice(const targets::Chip& chip, const targets::Bootloader& bootloader,
                                   const DeviceOptions& options)
    : AvrBootloaderDevice(chip, bootloader, options),
      app_end_(chip.flash_size > 2 * kBootSize ? chip.flash_size - 2 * kBootSize : 0) {}

std::string Stk500bootDevice::version() const { return fmt::format("{}.{}", kSwMajor, kSwMinor); }

void Stk500bootDevice::start(Clock::time_point now) {
    reader_.clear();
    address_ = 0;
    erase_pointer_ = 0;
    talking_ = false;
    leaving_ = false;
    bytes_read_ = 0;
    exclamations_ = 0;
    in_monitor_ = false;
    set_watchdog(kFirstByteTimeout, now);
}

void Stk500bootDevice::watchdog_fired(Clock::time_point now) {
    if (leaving_ || in_monitor_) {
        run_application(now, leaving_ ? "left programming mode" : "monitor quit");
    } else if (!talking_) {
        run_application(now, "no byte within 1 s of the reset");
    } else if (flash().at(0) != 0xFF || flash().at(1) != 0xFF) {
        run_application(now, "5 s of silence with an application in flash");
    } else {
        set_watchdog(kSilenceTimeout, now);  // no application to start: keep waiting
    }
}

bool Stk500bootDevice::take_byte(uint8_t byte, Clock::time_point now) {
    if (leaving_) return false;
    if (!talking_) {
        talking_ = true;
        set_watchdog(kSilenceTimeout, now);
    }
    if (in_monitor_) {
        monitor_byte(byte, now);
        return false;
    }
    ++bytes_read_;
    if (byte == '!' && bytes_read_ < 10) {
        if (++exclamations_ == 3) {
            enter_monitor(now);
            return false;
        }
    } else {
        exclamations_ = 0;
    }
    if (auto message = reader_.take(byte)) {
        if (message->checksum_ok) {
            handle(*message, now);
        } else {
            ++dropped_messages_;
            trace(fmt::format("{}message with a bad checksum dropped", trace_prefix()));
        }
    }
    return false;
}

void Stk500bootDevice::enter_monitor(Clock::time_point now) {
    in_monitor_ = true;
    trace(fmt::format("{}\"!!!\" among the first bytes: the monitor starts (STK500v2 ignored until reset)",
                      trace_prefix()));
    std::string banner;
    for (int line = 0; line < 5; ++line) banner += std::string(25, '!') + "\r\n";
    banner += "Arduino explorer stk500V2 by MLS\r\nBootloader>";
    transmit(std::span(reinterpret_cast<const uint8_t*>(banner.data()), banner.size()), now);
}

void Stk500bootDevice::monitor_byte(uint8_t byte, Clock::time_point now) {
    // The monitor echoes each command letter (upper-cased) and prompts again; 'Q' quits to the application.
    uint8_t letter = byte >= 0x60 ? static_cast<uint8_t>(byte & 0x5F) : byte;
    std::string reply;
    if (letter >= 0x20) reply += {static_cast<char>(letter), ' '};
    reply += "\r\nBootloader>";
    transmit(std::span(reinterpret_cast<const uint8_t*>(reply.data()), reply.size()), now);
    if (letter == 'Q') {
        leaving_ = true;
        set_watchdog(kLeaveDelay, now, false);
    }
}

uint8_t Stk500bootDevice::fuse_or_lock(uint8_t first, uint8_t second) const {
    // The bootloader reads them with LPM from the chip's fuse rows: the board's values.
    if (first == 0x58 && second == 0x00) return lock_bits_;
    if (first == 0x50) return second == 0x08 ? kExtendedFuse : kLowFuse;
    return kHighFuse;
}

void Stk500bootDevice::handle(const MessageReader::Message& message, Clock::time_point now) {
    const auto& body = message.body;
    std::vector<uint8_t> reply;
    Clock::duration busy{};
    auto at = [&](size_t i) -> uint8_t { return i < body.size() ? body[i] : 0; };
    switch (body[0]) {
        case kSpiMulti: {
            uint8_t value = 0;
            if (at(4) == 0x30) {
                value = signature()[std::min<size_t>(at(6), 2)];
            } else if (at(4) & 0x50) {
                value = at(4) == 0x50 ? kLowFuse : at(4) == 0x58 ? kHighFuse : 0;
            }
            reply = answer(kSpiMulti, {kStatusOk, 0, at(4), 0, value, kStatusOk});
            break;
        }
        case kSignOn:
            reply = answer(kSignOn, {kStatusOk, 8, 'A', 'V', 'R', 'I', 'S', 'P', '_', '2'});
            break;
        case kGetParameter: {
            uint8_t value = 0;
            if (at(1) == kParamHwVersion) value = kHardwareVersion;
            if (at(1) == kParamSwMajor) value = kSwMajor;
            if (at(1) == kParamSwMinor) value = kSwMinor;
            reply = answer(kGetParameter, {kStatusOk, value});
            break;
        }
        case kLeaveProgmodeIsp:
            leaving_ = true;
            set_watchdog(kLeaveDelay, now, false);
            reply = answer(body[0], {kStatusOk});
            break;
        case kSetParameter:
        case kEnterProgmodeIsp:
            reply = answer(body[0], {kStatusOk});
            break;
        case kReadSignatureIsp:
            reply = answer(kReadSignatureIsp, {kStatusOk, signature()[std::min<size_t>(at(4), 2)], kStatusOk});
            break;
        case kReadLockIsp:
            reply = answer(kReadLockIsp, {kStatusOk, lock_bits_, kStatusOk});
            break;
        case kReadFuseIsp:
            reply = answer(kReadFuseIsp, {kStatusOk, fuse_or_lock(at(2), at(3)), kStatusOk});
            break;
        case kProgramLockIsp:
            // Only the boot lock bits (BLBxx, 0x3C) can be programmed from the bootloader.
            lock_bits_ &= static_cast<uint8_t>(~(~at(4) & 0x3C));
            reply = answer(kProgramLockIsp, {kStatusOk, kStatusOk});
            break;
        case kChipEraseIsp:
            erase_pointer_ = 0;
            reply = answer(kChipEraseIsp, {kStatusFailed});
            break;
        case kLoadAddress:
            address_ = ((uint32_t{at(1)} << 24) | (uint32_t{at(2)} << 16) | (uint32_t{at(3)} << 8) | at(4)) << 1;
            reply = answer(kLoadAddress, {kStatusOk});
            break;
        case kProgramFlashIsp:
        case kProgramEepromIsp:
            reply = program(body, busy);
            break;
        case kReadFlashIsp:
        case kReadEepromIsp:
            reply = read_memory(body);
            break;
        default:
            reply = answer(body[0], {kStatusFailed});
            break;
    }
    busy_for(busy, frame_message(message.sequence, reply), now);
}

std::vector<uint8_t> Stk500bootDevice::program(const std::vector<uint8_t>& body, Clock::duration& busy) {
    uint32_t size = body.size() >= 3 ? (uint32_t{body[1]} << 8) | body[2] : 0;
    std::span<const uint8_t> data;
    if (body.size() > 10) data = std::span(body).subspan(10, std::min<size_t>(size, body.size() - 10));
    if (body[0] == kProgramFlashIsp) {
        const uint32_t page = page_size();
        if (erase_pointer_ < app_end_) {
            FlashOutcome erased = flash().erase(erase_pointer_, page);
            busy += erased.busy;
            erase_pointer_ += page;
        }
        // The page buffer is filled word by word at the address's offset in the page (wrapping
        // inside it); words not filled stay 0xFF. The page holding the start address is written.
        std::vector<uint8_t> buffer(page, 0xFF);
        const uint32_t start = address_;
        for (uint32_t i = 0; i + 1 < std::max<uint32_t>(size, 2); i += 2) {
            buffer[(address_ + i) % page] = i < data.size() ? data[i] : 0xFF;
            buffer[(address_ + i + 1) % page] = i + 1 < data.size() ? data[i + 1] : 0xFF;
        }
        address_ += std::max<uint32_t>(size, 2);
        uint32_t page_address = (start % flash().size()) / page * page;
        FlashOutcome written = flash().program(page_address, buffer);
        if (!written.ok())
            trace(fmt::format("{}page write at 0x{:05X} ignored by the chip: {}", trace_prefix(), page_address,
                              flash_status_name(written.status)));
        busy += written.busy;
    } else {
        // EEPROM: the byte address is the loaded (already doubled) address halved.
        busy += write_eeprom(address_ >> 1, data);
        address_ += 2 * static_cast<uint32_t>(data.size());
    }
    return answer(body[0], {kStatusOk});
}

std::vector<uint8_t> Stk500bootDevice::read_memory(const std::vector<uint8_t>& body) {
    uint32_t size = body.size() >= 3 ? (uint32_t{body[1]} << 8) | body[2] : 0;
    std::vector<uint8_t> out{body[0], kStatusOk};
    if (body[0] == kReadFlashIsp) {
        // Whole words: a size of 0 or an odd size still reads (and sends) at least one word.
        uint32_t words = std::max<uint32_t>(1, (size + 1) / 2);
        auto data = read_flash(address_, 2 * words);
        out.insert(out.end(), data.begin(), data.end());
        address_ += 2 * words;
        out.resize(size + 2);  // the message length says size + 3; the extra word byte is not sent
    } else {
        auto data = read_eeprom(address_, std::max<uint32_t>(size, 1));
        out.insert(out.end(), data.begin(), data.begin() + size);
        address_ += std::max<uint32_t>(size, 1);
    }
    out.push_back(kStatusOk);
    return out;
}

}  // namespace mcuflash::sim::stk500v2
