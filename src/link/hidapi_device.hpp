#pragma once
// A USB HID device through the kernel's HID driver and its hidraw node, with hidapi's hidraw back
// end (Debian's libhidapi-hidraw0). Nothing is detached from the kernel; the rights needed are the
// hidraw node's (udev-rules gives them for every HID bootloader mcuflash knows).
//
// hidapi gives no descriptors, so they are read where the kernel publishes them: the device
// descriptor and the configuration in the USB device's sysfs `descriptors`, the report descriptor in
// the HID device's `report_descriptor`. Output reports go where the kernel sends them (the interrupt
// OUT endpoint, else SET_REPORT); the kernel bounds each to 5 s, so a report's own timeout is not
// used. Errors as link/hid_device.hpp says.
#include <memory>
#include <string>
#include <vector>

#include "link/hid_device.hpp"
#include "link/libusb_device.hpp"

typedef struct hid_device_ hid_device;

namespace mcuflash::link {

struct HidNode {
    std::string path;        // /dev/hidraw3
    UsbIdentity usb;         // port_path from sysfs ("" when the node is not a USB device's)
    int interface = -1;
    std::string usb_sysfs;   // /sys/devices/.../1-1 ("" when not found)
};

class HidapiDevice : public HidDevice {
public:
    // Every hidraw node of a USB HID device (empty where hidraw is not available).
    static std::vector<HidNode> enumerate();
    // Opens the hidraw node of the one USB device that matches (its first HID interface). Throws
    // NotFound (none), Usage (several devices: lists them), Permission (no rights on the node: names
    // it and the udev rule), Io (anything else).
    static std::unique_ptr<HidapiDevice> open(const UsbMatch& match);

    ~HidapiDevice() override;
    HidapiDevice(const HidapiDevice&) = delete;
    HidapiDevice& operator=(const HidapiDevice&) = delete;

    std::string describe() const override;
    UsbIdentity identity() const override { return node_.usb; }
    std::vector<uint8_t> device_descriptor() override;
    std::vector<uint8_t> report_descriptor() override;
    std::string output_route() override;
    bool present() override;
    const std::string& node_path() const { return node_.path; }

protected:
    void do_write_report(std::span<const uint8_t> report, unsigned timeout_ms) override;
    std::vector<uint8_t> do_read_report(size_t max_length, unsigned timeout_ms) override;

private:
    HidapiDevice(HidNode node, hid_device* handle);
    [[noreturn]] void fail(int error_number, const std::string& what) const;

    HidNode node_;
    hid_device* handle_;
};

}  // namespace mcuflash::link
