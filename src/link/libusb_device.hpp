#pragma once
// A real USB device through libusb-1.0 (usbfs on Linux).
//
// Errors follow UsbDevice: a STALL is core::Error(Protocol) with "stalled" in the message, no answer
// in time is Timeout, a device gone from the bus is Io. Opening maps "no such device" to NotFound,
// two or more candidates to Usage (listing them), and no rights on the device node to Permission
// (naming /dev/bus/usb/BBB/DDD and giving a udev rule for the device's VID:PID).
#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "link/usb_device.hpp"

struct libusb_context;
struct libusb_device;
struct libusb_device_handle;

namespace mcuflash::link {

// Which device to open: by VID:PID (and optionally serial), or by port path ("1-1.4").
struct UsbMatch {
    std::optional<uint16_t> vendor, product;
    std::string serial;     // "" = any
    std::string port_path;  // "" = any

    // "0483:df11", "0483:df11:SERIAL" (hex IDs) or "1-1.4" (bus-port[.port...]). Throws Usage.
    static UsbMatch parse(const std::string& text);
    bool matches(const UsbIdentity& identity) const;  // serial compared only when both are known
    std::string describe() const;
};

class LibusbDevice : public UsbDevice {
public:
    // Opens the one device that matches. Throws NotFound (none), Usage (several: lists them),
    // Permission (no rights: names the node and the udev rule), Io (anything else).
    static std::unique_ptr<LibusbDevice> open(const UsbMatch& match);
    // Every USB device on the system (serial "" where it cannot be read, e.g. for lack of rights).
    static std::vector<UsbIdentity> enumerate();

    ~LibusbDevice() override;
    LibusbDevice(const LibusbDevice&) = delete;
    LibusbDevice& operator=(const LibusbDevice&) = delete;

    // Detaches a kernel driver from the interface first when one holds it.
    void clear_halt(uint8_t endpoint) override;
    void claim_interface(uint8_t interface) override;
    void set_alt_setting(uint8_t interface, uint8_t alt) override;
    // libusb_reset_device(). When the device comes back as something else the handle is dead:
    // call reopen_after_reenumeration().
    void reset_port() override;
    bool present() override;
    UsbIdentity identity() const override { return identity_; }
    std::string describe() const override;

    // After the device left the bus and came back (DFU detach + reset, manifestation): waits until a
    // device appears at the same port path, and opens it (a new VID:PID is fine). Throws NotFound when
    // none came back within `timeout`.
    void reopen_after_reenumeration(std::chrono::milliseconds timeout);

    // /dev/bus/usb/BBB/DDD of the open device (for messages).
    std::string node_path() const;

protected:
    std::vector<uint8_t> do_control_in(const UsbSetup& setup, unsigned timeout_ms) override;
    void do_control_out(const UsbSetup& setup, std::span<const uint8_t> data, unsigned timeout_ms) override;
    std::vector<uint8_t> do_endpoint_in(uint8_t endpoint, size_t max_length, unsigned timeout_ms) override;
    void do_endpoint_out(uint8_t endpoint, std::span<const uint8_t> data, unsigned timeout_ms) override;

private:
    struct Context;
    LibusbDevice(std::shared_ptr<Context> context, libusb_device* device);
    void adopt(libusb_device* device);  // opens `device` (referenced) as this object's device
    void release();
    [[noreturn]] void fail(int libusb_error, const std::string& what) const;

    std::shared_ptr<Context> context_;
    libusb_device* device_ = nullptr;
    libusb_device_handle* handle_ = nullptr;
    UsbIdentity identity_;
    uint8_t bus_ = 0, address_ = 0;
    std::vector<uint8_t> claimed_;
};

}  // namespace mcuflash::link
