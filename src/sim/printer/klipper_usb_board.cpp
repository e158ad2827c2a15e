#include "sim/printer/klipper_usb_board.hpp"

#include <fmt/format.h>

#include "protocol/klipper_mcu/codec.hpp"

namespace mcuflash::sim::printer {

KlipperUsbBoard::KlipperUsbBoard(std::unique_ptr<usb::UsbDeviceModel> klipper, Restart restart,
                                 std::chrono::milliseconds start_time, std::function<void(const std::string&)> log)
    : klipper_(std::move(klipper)), restart_(std::move(restart)), start_time_(start_time), log_(std::move(log)) {}

void KlipperUsbBoard::log(const std::string& message) const {
    if (log_) log_(message);
    trace(message);
}

usb::UsbDeviceModel& KlipperUsbBoard::current() const {
    return state_ == State::Klipper || !bootloader_ ? *klipper_ : *bootloader_;
}

usb::ControlResult KlipperUsbBoard::class_request(const link::UsbSetup& setup, std::span<const uint8_t> data_out,
                                                  Clock::time_point now) {
    auto result = current().class_request(setup, data_out, now);
    follow(now);
    return result;
}

void KlipperUsbBoard::set_interface(uint8_t interface, uint8_t alt, Clock::time_point now) {
    alt_setting_ = alt;  // GET_INTERFACE is answered here
    current().set_interface(interface, alt, now);
}

bool KlipperUsbBoard::bulk_out(uint8_t address, std::span<const uint8_t> data, Clock::time_point now) {
    const bool taken = current().bulk_out(address, data, now);
    follow(now);
    return taken;
}

usb::EndpointIn KlipperUsbBoard::bulk_in(uint8_t address, size_t max_length, Clock::time_point now) {
    return current().bulk_in(address, max_length, now);
}

void KlipperUsbBoard::bus_reset(Clock::time_point now) {
    configuration_ = 0;
    alt_setting_ = 0;
    if (attached()) current().bus_reset(now);
}

bool KlipperUsbBoard::attached() const {
    if (state_ == State::Starting || state_ == State::NoKlipper) return false;
    return current().attached();
}

void KlipperUsbBoard::tick(Clock::time_point now) {
    if (state_ == State::Klipper || state_ == State::Bootloader) current().tick(now);
    follow(now);
}

std::optional<Clock::time_point> KlipperUsbBoard::next_event() const {
    if (state_ == State::Starting) return starts_at_;
    if (state_ == State::NoKlipper) return std::nullopt;
    return current().next_event();
}

void KlipperUsbBoard::follow(Clock::time_point now) {
    if (state_ == State::Klipper) {
        if (auto* next = klipper_->successor()) {
            // Klipper rebooted into the bootloader (which had its bus reset then).
            bootloader_ = next;
            state_ = State::Bootloader;
            configuration_ = 0;
            log("Klipper rebooted into " + next->describe());
        }
    } else if (state_ == State::Bootloader) {
        if (!bootloader_->attached()) {
            // The bootloader started the application: the board re-enumerates as what it now runs.
            state_ = State::Starting;
            starts_at_ = now + start_time_;
        }
    } else if (state_ == State::Starting && now >= starts_at_) {
        auto found = protocol::klipper_mcu::find_dictionary_in_image(bootloader_->flash().contents());
        if (!found) {
            state_ = State::NoKlipper;
            log("the application starts, but the flash holds no Klipper build: the board stays off the bus");
            return;
        }
        restart_(std::move(*found), now);
        state_ = State::Klipper;
        configuration_ = 0;
        alt_setting_ = 0;
        ++restarts_;
        log("the board is back running Klipper: " + klipper_->describe());
    }
}

}  // namespace mcuflash::sim::printer
