#pragma once
// A board running Klipper on USB, device side: the CDC-ACM device of Klipper's src/generic/usb_cdc.c
// (1d50:614e, strings "Klipper", the MCU, a serial number; a communication interface with its
// notification endpoint and a data interface with two bulk endpoints). When the host sets the line
// to 1200 baud with DTR clear (SET_LINE_CODING and SET_CONTROL_LINE_STATE, in either order), it
// reboots: it drops off the bus and, after the reboot time, its successor() is the bootloader's
// simulated USB device, which the USB/IP server serves from the next plug-in on. Given a data
// dictionary, what the host writes to the bulk OUT endpoint goes to an McuResponder and its answers
// come back on bulk IN (identify, uptime, clock), as Klipper's USB serial does.
#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "sim/usb/usb_device_model.hpp"

namespace mcuflash::sim::klipper {

class McuResponder;

class KlipperUsbDevice : public usb::UsbDeviceModel {
public:
    // `bootloader`: the device the board becomes (its flash is this board's flash).
    KlipperUsbDevice(std::string mcu, std::string serial, std::unique_ptr<usb::UsbDeviceModel> bootloader,
                     std::chrono::milliseconds reboot_time, std::vector<uint8_t> identify_data = {});
    ~KlipperUsbDevice() override;

    std::vector<uint8_t> device_descriptor() const override;
    std::vector<uint8_t> configuration_descriptor() const override;
    std::string string_descriptor(uint8_t index) const override;
    usb::ControlResult class_request(const link::UsbSetup& setup, std::span<const uint8_t> data_out,
                                     Clock::time_point now) override;
    bool has_endpoint(uint8_t address) const override;
    bool bulk_out(uint8_t address, std::span<const uint8_t> data, Clock::time_point now) override;
    usb::EndpointIn bulk_in(uint8_t address, size_t max_length, Clock::time_point now) override;
    void bus_reset(Clock::time_point now) override;
    bool attached() const override { return !reboot_at_; }
    void tick(Clock::time_point now) override;
    UsbDeviceModel* successor() override { return rebooted_ ? bootloader_.get() : nullptr; }
    std::string describe() const override;
    FlashMemory& flash() override { return bootloader_->flash(); }
    // The board's bootloader started the application again (after an update): Klipper's device is
    // back, its line settings cleared, running `identify_data` (empty: identify unanswered).
    void restart_klipper(std::vector<uint8_t> identify_data);

private:
    void check_reboot(Clock::time_point now);
    uint32_t baud() const;  // dwDTERate of the line coding

    std::string mcu_, serial_;
    std::chrono::milliseconds reboot_time_;
    uint8_t line_coding_[7] = {};  // dwDTERate, bCharFormat, bParityType, bDataBits as the host set them
    uint16_t line_state_ = 0;      // bit 0 DTR, bit 1 RTS
    std::optional<Clock::time_point> reboot_at_;  // the request came: off the bus since
    bool rebooted_ = false;                       // the reboot time has passed: the bootloader runs
    std::unique_ptr<usb::UsbDeviceModel> bootloader_;
    std::unique_ptr<McuResponder> responder_;  // null: identify unanswered
    std::vector<uint8_t> to_host_;             // answers waiting for the host's bulk IN
};

}  // namespace mcuflash::sim::klipper
