#pragma once
// The DFU 1.1 class requests on one interface (USB DFU 1.1 section 6): GETSTATUS, CLRSTATUS, ABORT,
// DNLOAD (then waiting out dfuDNBUSY) and UPLOAD. Both kinds of transfer (DfuSe, plain DFU) use them.
#include <cstdint>
#include <span>
#include <vector>

#include "link/usb_device.hpp"

namespace mcuflash::protocol::dfu {

struct DfuStatus {
    uint8_t status = 0;
    uint32_t poll_timeout_ms = 0;
    uint8_t state = 0;
};
const char* state_name(uint8_t state);
const char* status_text(uint8_t status);

namespace state {
inline constexpr uint8_t kIdle = 2, kDnloadSync = 3, kDnBusy = 4, kDnloadIdle = 5, kUploadIdle = 9, kError = 10;
}

class DfuRequests {
public:
    DfuRequests(link::UsbDevice& usb, link::WarningSink warn) : usb_(usb), warn_(std::move(warn)) {}
    void set_interface(uint8_t interface) { interface_ = interface; }
    uint8_t interface() const { return interface_; }
    link::UsbDevice& usb() { return usb_; }

    DfuStatus get_status();
    void clear_status();
    void abort();
    // From anything to dfuIDLE (CLRSTATUS out of dfuERROR, ABORT otherwise).
    void to_idle();
    // DNLOAD, then GETSTATUS until the device is no longer busy; throws with the device's status when
    // it ends in dfuERROR. `what` and `address` name the operation in messages.
    void download_and_wait(uint16_t block, std::span<const uint8_t> data, const char* what, uint32_t address);
    // DNLOAD without waiting (a zero-length one ends a download).
    void download(uint16_t block, std::span<const uint8_t> data);
    std::vector<uint8_t> upload(uint16_t block, uint16_t length);

private:
    link::UsbDevice& usb_;
    link::WarningSink warn_;
    uint8_t interface_ = 0;
};

}  // namespace mcuflash::protocol::dfu
