#pragma once
// A test-only simulated USB device for the USB/IP server and LibusbDevice tests: a vendor-class device
// (pid.codes test VID:PID 1209:0001) with one interface and two bulk endpoints.
//
// Bulk: OUT 0x01 queues the data; IN 0x81 gives back the oldest queued transfer (at most the
// host's length; the rest stays queued) and NAKs while the queue is empty. OUT 0x02 always stalls
// until the host clears the halt of 0x02 (then it takes one transfer).
//
// Vendor requests (bmRequestType 0x40 OUT / 0xC0 IN):
//   0x01 OUT  store the data stage           0x02 IN   give it back (at most wLength bytes)
//   0x03 any  always stalls                  0x04 OUT  leave: drop off the bus (attached() false)
//   0x05 IN   bus resets seen so far (1 byte)
//   0x06 OUT  come back as 1209:0002 after the next bus reset (as a DFU device re-enumerates)
#include <algorithm>
#include <string>
#include <vector>

#include "sim/flash_memory.hpp"
#include "sim/usb/usb_device_model.hpp"

namespace mcuflash::test {

class UsbEchoModel : public sim::usb::UsbDeviceModel {
public:
    static constexpr uint16_t kVendor = 0x1209, kProduct = 0x0001, kSwitchedProduct = 0x0002;
    static constexpr uint8_t kStore = 0x01, kFetch = 0x02, kStall = 0x03, kLeave = 0x04, kResetCount = 0x05,
                             kSwitchOnReset = 0x06;
    static constexpr const char* kProductName = "mcuflash usbip echo";
    static constexpr const char* kSerial = "ECHO-0001";

    UsbEchoModel() : flash_(sim::FlashLayout::uniform(0, 1024, 256, 4)) {}

    std::vector<uint8_t> device_descriptor() const override {
        auto d = sim::usb::device_descriptor_bytes(kVendor, product_, 0x0100, 1, 2, 3);
        d[4] = 0xFF;  // vendor-specific device class
        return d;
    }
    std::vector<uint8_t> configuration_descriptor() const override {
        return {9, 2, 39, 0, 1, 1, 0, 0x80, 50,   // one interface, configuration 1, bus powered, 100 mA
                9, 4, 0, 0, 3, 0xFF, 0, 0, 0,    // interface 0: vendor class, three endpoints
                7, 5, 0x01, 2, 64, 0, 0,         // bulk OUT 0x01, 64-byte packets
                7, 5, 0x81, 2, 64, 0, 0,         // bulk IN 0x81
                7, 5, 0x02, 2, 64, 0, 0};        // bulk OUT 0x02 (halted)
    }
    std::string string_descriptor(uint8_t index) const override {
        switch (index) {
            case 1: return "mcuflash tests";
            case 2: return kProductName;
            case 3: return kSerial;
            default: return "";
        }
    }
    sim::usb::ControlResult class_request(const link::UsbSetup& setup, std::span<const uint8_t> data_out,
                                          sim::Clock::time_point) override {
        using sim::usb::ControlResult;
        const bool vendor = ((setup.request_type >> 5) & 3) == 2;
        if (!vendor) return ControlResult::stalled();
        switch (setup.request) {
            case kStore:
                if (setup.is_in()) return ControlResult::stalled();
                stored_.assign(data_out.begin(), data_out.end());
                return ControlResult::ok();
            case kFetch:
                return setup.is_in() ? ControlResult::ok(stored_) : ControlResult::stalled();
            case kLeave:
                attached_ = false;
                trace("leaving the bus");
                return ControlResult::ok();
            case kResetCount:
                return ControlResult::ok({static_cast<uint8_t>(bus_resets_)});
            case kSwitchOnReset:
                switch_on_reset_ = true;
                return ControlResult::ok();
            default:
                return ControlResult::stalled();
        }
    }
    bool has_endpoint(uint8_t address) const override {
        return address == 0x01 || address == 0x81 || address == 0x02;
    }
    bool bulk_out(uint8_t address, std::span<const uint8_t> data, sim::Clock::time_point) override {
        if (address == 0x02) {
            if (halted_) return false;
            halted_ = true;
            return true;
        }
        queued_.emplace_back(data.begin(), data.end());
        return true;
    }
    sim::usb::EndpointIn bulk_in(uint8_t, size_t max_length, sim::Clock::time_point) override {
        if (queued_.empty()) return sim::usb::EndpointIn::nak();
        auto& oldest = queued_.front();
        const size_t n = std::min(max_length, oldest.size());
        std::vector<uint8_t> out(oldest.begin(), oldest.begin() + static_cast<std::ptrdiff_t>(n));
        oldest.erase(oldest.begin(), oldest.begin() + static_cast<std::ptrdiff_t>(n));
        if (oldest.empty()) queued_.erase(queued_.begin());
        return sim::usb::EndpointIn::ok(std::move(out));
    }
    void clear_halt(uint8_t address, sim::Clock::time_point) override {
        if (address == 0x02) halted_ = false;
    }
    void bus_reset(sim::Clock::time_point) override {
        ++bus_resets_;
        attached_ = true;
        configuration_ = 0;
        alt_setting_ = 0;
        if (switch_on_reset_) product_ = kSwitchedProduct;
        switch_on_reset_ = false;
    }
    bool attached() const override { return attached_; }
    std::string describe() const override { return "usbip echo test device"; }
    sim::FlashMemory& flash() override { return flash_; }

    unsigned bus_resets() const { return bus_resets_; }
    const std::vector<uint8_t>& stored() const { return stored_; }

private:
    sim::FlashMemory flash_;
    std::vector<uint8_t> stored_;
    unsigned bus_resets_ = 0;
    bool attached_ = true;
    bool switch_on_reset_ = false;
    bool halted_ = true;
    std::vector<std::vector<uint8_t>> queued_;
    uint16_t product_ = kProduct;
};

}  // namespace mcuflash::test
