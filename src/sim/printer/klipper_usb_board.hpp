#pragma once
// A board running Klipper on USB over its whole update cycle, as one USB device model for the USB/IP
// server: Klipper's own device (a CDC-ACM port, or the USB-to-CAN bridge) -> on Klipper's bootloader
// request, the bootloader's USB device (the Klipper model's successor()) -> once the bootloader has
// started the application and the board has re-enumerated, Klipper's device again, running what the
// flash now holds. A flash without a Klipper build leaves the board off the bus (its application is
// not Klipper, so it shows no Klipper device).
//
// The USB/IP server follows successor() one way only; this model goes round, so a simulated printer
// can be updated again and again. Standard requests are answered by this model's base class from
// the current device's descriptors; everything else goes to the current device.
#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "sim/usb/usb_device_model.hpp"

namespace mcuflash::sim::printer {

class KlipperUsbBoard : public usb::UsbDeviceModel {
public:
    // Brings `klipper` back as Klipper running `identify_data` (empty: a Klipper build was not found).
    using Restart = std::function<void(std::vector<uint8_t> identify_data, Clock::time_point now)>;

    KlipperUsbBoard(std::unique_ptr<usb::UsbDeviceModel> klipper, Restart restart, std::chrono::milliseconds start_time,
                    std::function<void(const std::string&)> log = {});

    std::vector<uint8_t> device_descriptor() const override { return current().device_descriptor(); }
    std::vector<uint8_t> configuration_descriptor() const override { return current().configuration_descriptor(); }
    std::string string_descriptor(uint8_t index) const override { return current().string_descriptor(index); }
    std::vector<uint8_t> other_descriptor(uint8_t type, uint8_t index, uint16_t w_index) const override {
        return current().other_descriptor(type, index, w_index);
    }
    usb::ControlResult class_request(const link::UsbSetup& setup, std::span<const uint8_t> data_out,
                                     Clock::time_point now) override;
    void set_interface(uint8_t interface, uint8_t alt, Clock::time_point now) override;
    bool has_endpoint(uint8_t address) const override { return current().has_endpoint(address); }
    bool bulk_out(uint8_t address, std::span<const uint8_t> data, Clock::time_point now) override;
    usb::EndpointIn bulk_in(uint8_t address, size_t max_length, Clock::time_point now) override;
    void clear_halt(uint8_t address, Clock::time_point now) override { current().clear_halt(address, now); }
    void bus_reset(Clock::time_point now) override;
    bool attached() const override;
    void tick(Clock::time_point now) override;
    std::optional<Clock::time_point> next_event() const override;
    std::string describe() const override { return current().describe(); }
    // The board's flash: the bootloader's, which holds the application.
    FlashMemory& flash() override { return bootloader_ ? bootloader_->flash() : klipper_->flash(); }

    enum class State { Klipper, Bootloader, Starting, NoKlipper };
    State state() const { return state_; }
    // Times the board came back as Klipper after an update.
    unsigned restarts() const { return restarts_; }

private:
    usb::UsbDeviceModel& current() const;
    void follow(Clock::time_point now);  // state changes after the current device's own events
    void log(const std::string& message) const;

    std::unique_ptr<usb::UsbDeviceModel> klipper_;
    usb::UsbDeviceModel* bootloader_ = nullptr;  // the klipper model's successor, once there was one
    Restart restart_;
    std::chrono::milliseconds start_time_;
    std::function<void(const std::string&)> log_;
    State state_ = State::Klipper;
    Clock::time_point starts_at_{};
    unsigned restarts_ = 0;
};

}  // namespace mcuflash::sim::printer
