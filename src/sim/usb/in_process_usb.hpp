#pragma once
// A simulated USB device inside the process, as a link::UsbDevice: control transfers go straight to
// the model at the simulated clock's instant; pause() sleeps (timing on) or skips the time (off).
// USB faults for tests ("stall@N", "timeout@N", "vanish@N": the Nth transfer, 0-based, is
// stalled, never answered, or the device drops off the bus before it) come from a short spec.
#include <memory>
#include <set>

#include "sim/in_process_link.hpp"
#include "sim/usb/usb_device_model.hpp"

namespace mcuflash::sim::usb {

struct UsbFaults {
    std::set<uint64_t> stall_at, timeout_at;
    std::optional<uint64_t> vanish_at;
    // "stall@3,timeout@10,vanish@40"; throws core::Error(Usage) on anything else.
    static UsbFaults parse(const std::string& text);
};

class InProcessUsb : public link::UsbDevice {
public:
    InProcessUsb(std::unique_ptr<UsbDeviceModel> model, bool timing, UsbFaults faults = {});

    void clear_halt(uint8_t endpoint) override;
    void claim_interface(uint8_t interface) override;
    void set_alt_setting(uint8_t interface, uint8_t alt) override;
    void reset_port() override;
    bool present() override;
    link::UsbIdentity identity() const override { return model_->identity(); }
    std::string describe() const override;
    void pause(std::chrono::milliseconds duration) override;

    UsbDeviceModel& model() { return *model_; }
    uint64_t transfers() const { return transfers_; }

protected:
    std::vector<uint8_t> do_control_in(const link::UsbSetup& setup, unsigned timeout_ms) override;
    void do_control_out(const link::UsbSetup& setup, std::span<const uint8_t> data, unsigned timeout_ms) override;
    std::vector<uint8_t> do_endpoint_in(uint8_t endpoint, size_t max_length, unsigned timeout_ms) override;
    void do_endpoint_out(uint8_t endpoint, std::span<const uint8_t> data, unsigned timeout_ms) override;

private:
    void begin_transfer(const std::string& what, unsigned timeout_ms);
    ControlResult transfer(const link::UsbSetup& setup, std::span<const uint8_t> data, unsigned timeout_ms);

    std::unique_ptr<UsbDeviceModel> model_;
    SimClock clock_;
    UsbFaults faults_;
    uint64_t transfers_ = 0;
    bool vanished_ = false;
};

}  // namespace mcuflash::sim::usb
