#include "sim/klipper/klipper_usb.hpp"

#include <fmt/format.h>

#include <algorithm>

#include "sim/klipper/mcu_responder.hpp"

namespace mcuflash::sim::klipper {

namespace {
// Klipper's defaults (src/Kconfig CONFIG_USB_VENDOR_ID / CONFIG_USB_DEVICE_ID).
constexpr uint16_t kKlipperVendor = 0x1D50, kKlipperProduct = 0x614E;
constexpr uint8_t kNotifyEndpoint = 0x81, kBulkOut = 0x02, kBulkIn = 0x83;
// CDC PSTN requests (USB CDC 1.1 section 6.2).
constexpr uint8_t kSetLineCoding = 0x20, kGetLineCoding = 0x21, kSetControlLineState = 0x22;
constexpr uint16_t kDtr = 0x01;
}  // namespace

KlipperUsbDevice::KlipperUsbDevice(std::string mcu, std::string serial, std::unique_ptr<usb::UsbDeviceModel> bootloader,
                                   std::chrono::milliseconds reboot_time, std::vector<uint8_t> identify_data)
    : mcu_(std::move(mcu)), serial_(std::move(serial)), reboot_time_(reboot_time), bootloader_(std::move(bootloader)) {
    if (!identify_data.empty()) responder_ = std::make_unique<McuResponder>(std::move(identify_data));
}

KlipperUsbDevice::~KlipperUsbDevice() = default;

std::vector<uint8_t> KlipperUsbDevice::device_descriptor() const {
    return usb::device_descriptor_bytes(kKlipperVendor, kKlipperProduct, 0x0100, 1, 2, 3, 64);
}

std::vector<uint8_t> KlipperUsbDevice::configuration_descriptor() const {
    return {9, 2, 67, 0, 2, 1, 0, 0xC0, 50,
            // interface 0: communication, ACM, AT commands; one endpoint
            9, 4, 0, 0, 1, 0x02, 0x02, 0x01, 0,
            5, 0x24, 0x00, 0x10, 0x01,  // CDC header 1.10
            4, 0x24, 0x02, 0x06,        // ACM: line coding and break requests
            5, 0x24, 0x06, 0, 1,        // union: interface 0 controls interface 1
            7, 5, kNotifyEndpoint, 0x03, 8, 0, 255,
            // interface 1: data, two bulk endpoints
            9, 4, 1, 0, 2, 0x0A, 0, 0, 0,
            7, 5, kBulkOut, 0x02, 64, 0, 0,
            7, 5, kBulkIn, 0x02, 64, 0, 0};
}

std::string KlipperUsbDevice::string_descriptor(uint8_t index) const {
    switch (index) {
        case 1: return "Klipper";
        case 2: return mcu_;
        case 3: return serial_;
        default: return {};
    }
}

bool KlipperUsbDevice::bulk_out(uint8_t address, std::span<const uint8_t> data, Clock::time_point now) {
    if (address == kBulkOut && responder_) {
        auto answer = responder_->receive(data, now);
        to_host_.insert(to_host_.end(), answer.begin(), answer.end());
    }
    return true;
}

usb::EndpointIn KlipperUsbDevice::bulk_in(uint8_t address, size_t max_length, Clock::time_point) {
    if (address != kBulkIn || to_host_.empty()) return usb::EndpointIn::nak();
    const size_t n = std::min(max_length, to_host_.size());
    std::vector<uint8_t> out(to_host_.begin(), to_host_.begin() + static_cast<long>(n));
    to_host_.erase(to_host_.begin(), to_host_.begin() + static_cast<long>(n));
    return usb::EndpointIn::ok(std::move(out));
}

bool KlipperUsbDevice::has_endpoint(uint8_t address) const {
    return address == kNotifyEndpoint || address == kBulkOut || address == kBulkIn;
}

usb::ControlResult KlipperUsbDevice::class_request(const link::UsbSetup& setup, std::span<const uint8_t> data_out,
                                                   Clock::time_point now) {
    if (setup.request_type == 0x21 && setup.request == kSetLineCoding && data_out.size() == sizeof line_coding_) {
        std::copy(data_out.begin(), data_out.end(), line_coding_);
        trace(fmt::format("Klipper: line coding {} baud", baud()));
        check_reboot(now);
        return usb::ControlResult::ok();
    }
    if (setup.request_type == 0xA1 && setup.request == kGetLineCoding)
        return usb::ControlResult::ok({std::begin(line_coding_), std::end(line_coding_)});
    if (setup.request_type == 0x21 && setup.request == kSetControlLineState) {
        line_state_ = setup.value;
        trace(fmt::format("Klipper: DTR {}, RTS {}", line_state_ & kDtr ? "set" : "clear", line_state_ & 2 ? "set" : "clear"));
        check_reboot(now);
        return usb::ControlResult::ok();
    }
    return usb::ControlResult::stalled();
}

uint32_t KlipperUsbDevice::baud() const {
    return uint32_t(line_coding_[0]) | uint32_t(line_coding_[1]) << 8 | uint32_t(line_coding_[2]) << 16 |
           uint32_t(line_coding_[3]) << 24;
}

// Klipper's check_reboot(): 1200 baud while DTR is clear is the Arduino-style bootloader request.
void KlipperUsbDevice::check_reboot(Clock::time_point now) {
    if (reboot_at_ || baud() != 1200 || (line_state_ & kDtr)) return;
    trace("Klipper: 1200 baud with DTR clear: rebooting into the bootloader");
    reboot_at_ = now;
}

void KlipperUsbDevice::tick(Clock::time_point now) {
    if (reboot_at_ && !rebooted_ && now >= *reboot_at_ + reboot_time_) {
        rebooted_ = true;
        bootloader_->bus_reset(now);
    }
}

void KlipperUsbDevice::restart_klipper(std::vector<uint8_t> identify_data) {
    reboot_at_.reset();
    rebooted_ = false;
    std::fill(std::begin(line_coding_), std::end(line_coding_), uint8_t{0});
    line_state_ = 0;
    to_host_.clear();
    responder_ = identify_data.empty() ? nullptr : std::make_unique<McuResponder>(std::move(identify_data));
}

void KlipperUsbDevice::bus_reset(Clock::time_point) {
    line_state_ = 0;
    configuration_ = 0;
}

std::string KlipperUsbDevice::describe() const {
    return fmt::format("Klipper on a {} (1d50:614e){}", mcu_, rebooted_ ? ", rebooted into " + bootloader_->describe() : "");
}

}  // namespace mcuflash::sim::klipper
