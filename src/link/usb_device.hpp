#pragma once
// A USB device as the protocols see it: control transfers on endpoint 0 (all DFU needs), transfers on
// the bulk and interrupt endpoints (PICOBOOT, HID bootloaders, mass storage), interface claiming,
// alternate settings, a port reset, and finding the device again after it re-enumerates.
// Implementations: link/libusb_device.* (real devices through libusb-1.0) and the in-process
// simulator adapter in sim/usb/.
#include <chrono>
#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "link/link.hpp"

namespace mcuflash::link {

// The 8-byte SETUP packet (USB 2.0 section 9.3).
struct UsbSetup {
    uint8_t request_type = 0;  // bit 7: 1 = device-to-host (IN); bits 6-5: 0 standard, 1 class, 2 vendor
    uint8_t request = 0;
    uint16_t value = 0;
    uint16_t index = 0;
    uint16_t length = 0;  // bytes of the data stage (IN: at most this many come back)
    bool is_in() const { return request_type & 0x80; }
};

// Standard requests and descriptor types the protocols use.
namespace usb {
constexpr uint8_t kGetStatus = 0x00, kGetDescriptor = 0x06, kSetConfiguration = 0x09, kSetInterface = 0x0B;
constexpr uint8_t kDescriptorDevice = 1, kDescriptorConfiguration = 2, kDescriptorString = 3,
                  kDescriptorInterface = 4;
constexpr uint16_t kLanguageEnglishUs = 0x0409;
}  // namespace usb

struct UsbIdentity {
    uint16_t vendor = 0, product = 0, bcd_device = 0;
    std::string serial;     // "" when the device has none
    std::string port_path;  // "1-1.4": bus-ports, stable across re-enumeration on the same port
};

class UsbDevice : public Link {
public:
    static constexpr LinkKind kKind = LinkKind::Usb;
    LinkKind kind() const override { return kKind; }
    // Full-speed control transfers with flash erase and write times: a cautious figure.
    uint32_t bytes_per_second() const override { return 16 * 1024; }

    // IN transfer: returns the data stage (possibly shorter than setup.length). OUT transfer: sends
    // `data` (setup.length must equal data.size()). A STALL throws core::Error(Protocol) whose
    // message says "stalled"; no answer in time throws Timeout; a vanished device throws Io. Each
    // checks the time limit and traces the SETUP packet and the data.
    std::vector<uint8_t> control_in(const UsbSetup& setup, unsigned timeout_ms);
    void control_out(const UsbSetup& setup, std::span<const uint8_t> data, unsigned timeout_ms);
    // One transfer on a bulk or interrupt endpoint (`endpoint` with 0x80 for IN). IN returns what the
    // device sent (at most `max_length` bytes; a short packet ends it). Errors as for control
    // transfers: a halted endpoint is Protocol ("stalled"; clear_halt() before the next transfer).
    std::vector<uint8_t> endpoint_in(uint8_t endpoint, size_t max_length, unsigned timeout_ms);
    void endpoint_out(uint8_t endpoint, std::span<const uint8_t> data, unsigned timeout_ms);
    // CLEAR_FEATURE(ENDPOINT_HALT) on `endpoint`, and the host's data toggle reset with it.
    virtual void clear_halt(uint8_t endpoint) = 0;
    virtual void claim_interface(uint8_t interface) = 0;
    virtual void set_alt_setting(uint8_t interface, uint8_t alt) = 0;
    // A USB port reset: after it the device may re-enumerate as something else (DFU -> application).
    virtual void reset_port() = 0;
    // Whether the device is still on the bus (after a detach or leave it may be gone: no error).
    virtual bool present() = 0;
    virtual UsbIdentity identity() const = 0;

    // Helpers over control_in.
    std::vector<uint8_t> descriptor(uint8_t type, uint8_t index, uint16_t language, uint16_t length,
                                    unsigned timeout_ms = 1000);
    // A string descriptor decoded from UTF-16LE (non-ASCII as '?'); "" for index 0.
    std::string string_descriptor(uint8_t index, unsigned timeout_ms = 1000);
    // The whole configuration descriptor (wTotalLength bytes) of configuration `index`.
    std::vector<uint8_t> configuration_descriptor(uint8_t index = 0, unsigned timeout_ms = 1000);

protected:
    virtual std::vector<uint8_t> do_control_in(const UsbSetup& setup, unsigned timeout_ms) = 0;
    virtual void do_control_out(const UsbSetup& setup, std::span<const uint8_t> data, unsigned timeout_ms) = 0;
    virtual std::vector<uint8_t> do_endpoint_in(uint8_t endpoint, size_t max_length, unsigned timeout_ms) = 0;
    virtual void do_endpoint_out(uint8_t endpoint, std::span<const uint8_t> data, unsigned timeout_ms) = 0;
};

}  // namespace mcuflash::link
