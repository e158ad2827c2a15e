#include "sim/stk500v2/arduino_m0_device.hpp"

#include <algorithm>

#include <fmt/format.h>

namespace mcuflash::sim::stk500v2 {

using namespace bytes;

namespace {

constexpr uint8_t kSignature[3] = {0x1E, 0x98, 0x01};  // an atmega2560's
constexpr uint8_t kHardwareVersion = 3, kSwMajor = 4, kSwMinor = 5, kBuildLow = 1, kBuildHigh = 2;

FlashTiming nvm_timing(bool timing) {
    // SAMD21 datasheet: row erase 6 ms max, page write 2.5 ms max (64 bytes).
    if (!timing) return {};
    return FlashTiming{std::chrono::microseconds(6000), {}, std::chrono::microseconds(2500)};
}

}  // namespace

ArduinoM0Device::ArduinoM0Device(const targets::Chip& chip, const targets::Bootloader& bootloader,
                                 const DeviceOptions& options)
    : MessageDevice(286),
      chip_(chip),
      baud_(options.baud ? options.baud : bootloader.baud),
      app_start_(bootloader.size_on(chip.name).value_or(0)),
      row_size_(chip.sam ? chip.sam->erase_unit : chip.page_size),
      address_(app_start_),
      flash_(FlashLayout::uniform(0, chip.flash_size, row_size_, chip.page_size), nvm_timing(options.timing)) {
    flash_.protect({0, app_start_, bootloader.name});  // BOOTPROT
    flash_.fill_protected_with_placeholder();
    if (options.flash_file) flash_.attach_file(*options.flash_file);
}

std::string ArduinoM0Device::describe() const { return fmt::format("Arduino M0 bootloader {}.{} on {}", kSwMajor, kSwMinor, chip_.name); }

bool ArduinoM0Device::application_present() const { return flash_.at(app_start_) != 0xFF || flash_.at(app_start_ + 1) != 0xFF; }

bool ArduinoM0Device::starts_listening(ResetCause cause, Clock::time_point now) {
    // main.c: the reset button (external reset) or a watchdog reset runs the bootloader; power-on or
    // a system reset request runs the application when there is one.
    address_ = app_start_;
    leaving_ = false;
    if (cause == ResetCause::PowerOn && application_present()) {
        trace("Arduino M0: power-on reset: application runs");
        return false;
    }
    set_timer(now + kIdleReset);
    return true;
}

void ArduinoM0Device::timer_fired(Clock::time_point now) {
    // The RTC callback counts 8 s without a message (or 500 ms after LEAVE), then resets the CPU by
    // a system reset request: the application runs if there is one, else the bootloader again.
    if (application_present()) {
        stop_listening(leaving_ ? "Arduino M0: left programming mode: application runs"
                                : "Arduino M0: 8 s without a message: application runs");
    } else {
        leaving_ = false;
        address_ = app_start_;
        set_timer(now + kIdleReset);
    }
}

Clock::duration ArduinoM0Device::program(std::span<const uint8_t> data, uint32_t size) {
    Clock::duration busy{};
    if (address_ >= app_start_) {
        // Halfwords go through the page buffer; a full page is written automatically. The model
        // programs them in place: programming only clears bits, as the chip does.
        uint32_t end = std::min<uint32_t>(address_ + size, flash_.size());
        if (end > address_) {
            std::vector<uint8_t> bytes(end - address_, 0xFF);
            std::copy_n(data.begin(), std::min<size_t>(data.size(), bytes.size()), bytes.begin());
            // Whole pages for the flash model: the parts of the page not written keep 0xFF (no change).
            const uint32_t page = chip_.page_size;
            uint32_t first = address_ / page * page, last = (end + page - 1) / page * page;
            std::vector<uint8_t> pages(last - first, 0xFF);
            std::copy(bytes.begin(), bytes.end(), pages.begin() + (address_ - first));
            busy += flash_.program(first, pages).busy;
        }
    }
    address_ += size;
    if (address_ >= app_start_) address_ = (address_ + row_size_ - 1) / row_size_ * row_size_;  // commit_page()
    return busy;
}

MessageDevice::Answer ArduinoM0Device::handle(const std::vector<uint8_t>& body, Clock::time_point now) {
    if (!leaving_) set_timer(now + kIdleReset);  // every message restarts the 8 s count
    auto at = [&](size_t i) -> uint8_t { return i < body.size() ? body[i] : 0; };
    auto reply = [&](std::initializer_list<uint8_t> rest) {
        std::vector<uint8_t> out{body[0]};
        out.insert(out.end(), rest.begin(), rest.end());
        return out;
    };
    switch (body[0]) {
        case kSignOn:
            return {reply({kStatusOk, 8, 'A', 'V', 'R', 'I', 'S', 'P', '_', '2'})};
        case kReadSignatureIsp:
            return {reply({kStatusOk, kSignature[std::min<size_t>(at(4), 2)], kStatusOk})};
        case kGetParameter: {
            uint8_t value = 0;
            switch (at(1)) {
                case kParamBuildNumberLow: value = kBuildLow; break;
                case kParamBuildNumberHigh: value = kBuildHigh; break;
                case kParamHwVersion: value = kHardwareVersion; break;
                case kParamSwMajor: value = kSwMajor; break;
                case kParamSwMinor: value = kSwMinor; break;
                default: break;
            }
            return {reply({kStatusOk, value})};
        }
        case kEnterProgmodeIsp:
        case kSetParameter:
            return {reply({kStatusOk})};
        case kLeaveProgmodeIsp:
            leaving_ = true;
            set_timer(now + kLeaveDelay);
            return {reply({kStatusOk})};
        case kLoadAddress:
            address_ = ((uint32_t{at(1)} << 24) | (uint32_t{at(2)} << 16) | (uint32_t{at(3)} << 8) | at(4)) << 1;
            return {reply({kStatusOk})};
        case kSpiMulti:
            return {reply({kStatusOk, 0, at(4), 0, at(4) == 0x30 ? kSignature[std::min<size_t>(at(6), 2)] : uint8_t{0},
                           kStatusOk})};
        case kChipEraseIsp: {
            Clock::duration busy{};
            for (uint32_t row = app_start_; row < flash_.size(); row += row_size_) busy += flash_.erase(row, row_size_).busy;
            return {reply({kStatusOk}), busy};
        }
        case kProgramFlashIsp: {
            uint32_t size = (uint32_t{at(1)} << 8) | at(2);
            std::span<const uint8_t> data;
            if (body.size() > 10) data = std::span(body).subspan(10);
            return {reply({kStatusOk}), program(data, size)};
        }
        case kReadFlashIsp: {
            uint32_t size = (uint32_t{at(1)} << 8) | at(2);
            std::vector<uint8_t> out{kReadFlashIsp, kStatusOk};
            for (uint32_t i = 0; i < size; ++i) {
                uint32_t a = address_ + i;
                out.push_back(address_ >= app_start_ && a < flash_.size() ? flash_.at(a) : 0xFF);
            }
            out.push_back(kStatusOk);
            address_ += size;
            return {out};
        }
        default:
            return {std::vector<uint8_t>{}};  // return_message_length stays 0: an empty answer
    }
}

}  // namespace mcuflash::sim::stk500v2
