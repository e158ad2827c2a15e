#pragma once
// A HID device driven through a link::UsbDevice, as the kernel's HID driver would drive it: for a
// device no HID driver holds (libusb detaches it), and for the simulators in process.
//
// Output reports go on the HID interface's interrupt OUT endpoint when it has one, else as a
// SET_REPORT(output) on endpoint 0 (Linux's usbhid and hidapi choose the same way); input reports
// come from its interrupt IN endpoint. The interface is claimed when the adapter is made.
#include <memory>

#include "link/hid_device.hpp"
#include "link/usb_device.hpp"

namespace mcuflash::link {

class UsbHidDevice : public HidDevice {
public:
    // Owns `usb`. Claims the HID interface (the first of class 3; interface 0 when the
    // configuration descriptor cannot be read).
    explicit UsbHidDevice(std::unique_ptr<UsbDevice> usb);
    // Drives a UsbDevice owned elsewhere (tests).
    explicit UsbHidDevice(UsbDevice& usb);

    std::string describe() const override { return usb_.describe(); }
    void pause(std::chrono::milliseconds duration) override { usb_.pause(duration); }
    UsbIdentity identity() const override { return usb_.identity(); }
    std::vector<uint8_t> device_descriptor() override;
    std::vector<uint8_t> report_descriptor() override;
    std::string output_route() override;
    bool present() override { return usb_.present(); }

    UsbDevice& usb() { return usb_; }

protected:
    void do_write_report(std::span<const uint8_t> report, unsigned timeout_ms) override;
    std::vector<uint8_t> do_read_report(size_t max_length, unsigned timeout_ms) override;

private:
    void claim();

    std::unique_ptr<UsbDevice> owned_;
    UsbDevice& usb_;
    HidEndpoints endpoints_;
};

}  // namespace mcuflash::link
