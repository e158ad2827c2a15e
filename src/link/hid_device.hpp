#pragma once
// A USB HID device as the HID bootloaders see it: output reports to the device, input reports from
// it, and the descriptors that tell one build from another. Two ways in:
// - link/hidapi_device.*: the kernel's HID driver holds the device and mcuflash talks through its
//   hidraw node (hidapi's hidraw back end). Nothing is detached, and the rights are the hidraw node's.
// - link/usb_hid_device.*: a link::UsbDevice (libusb, or a simulator in process) driven as the
//   kernel's HID driver drives it: output reports on the interface's interrupt OUT endpoint when it
//   has one, else as a SET_REPORT on endpoint 0; input reports from the interrupt IN endpoint.
// Errors follow UsbDevice's: a refused report is Protocol ("stalled"), none in time is Timeout, a
// device gone is Io.
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "link/link.hpp"
#include "link/usb_device.hpp"

namespace mcuflash::link {

class HidDevice : public Link {
public:
    static constexpr LinkKind kKind = LinkKind::Hid;
    LinkKind kind() const override { return kKind; }
    // One 64-byte report per 1 ms frame at full speed, with flash time: a cautious figure.
    uint32_t bytes_per_second() const override { return 32 * 1024; }

    // An output report (without a report id byte: the HID bootloaders number none).
    void write_report(std::span<const uint8_t> report, unsigned timeout_ms);
    // The next input report (at most `max_length` bytes). Timeout when none came within `timeout_ms`.
    std::vector<uint8_t> read_report(size_t max_length, unsigned timeout_ms);

    virtual UsbIdentity identity() const = 0;
    // The USB device descriptor (18 bytes) and the HID report descriptor of the interface.
    virtual std::vector<uint8_t> device_descriptor() = 0;
    virtual std::vector<uint8_t> report_descriptor() = 0;
    // How output reports reach the device, for the report: "interrupt OUT endpoint 01", "SET_REPORT
    // on endpoint 0".
    virtual std::string output_route() = 0;
    // Whether the device is still on the bus.
    virtual bool present() = 0;

protected:
    virtual void do_write_report(std::span<const uint8_t> report, unsigned timeout_ms) = 0;
    virtual std::vector<uint8_t> do_read_report(size_t max_length, unsigned timeout_ms) = 0;
};

// The endpoints of a HID interface, from a configuration descriptor (the first interface of class 3).
struct HidEndpoints {
    uint8_t interface = 0;
    uint8_t in = 0, out = 0;  // addresses (IN with 0x80); 0 = none
    uint16_t in_size = 0, out_size = 0;
};
std::optional<HidEndpoints> hid_endpoints(std::span<const uint8_t> configuration);

}  // namespace mcuflash::link
