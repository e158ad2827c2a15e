#pragma once
// A simulated USB device, device side: its descriptors and what it does with each control transfer
// on endpoint 0, with time passed in (as sim::Device does for byte devices). Two front ends serve it:
// InProcessUsb (a link::UsbDevice inside the process, for fast tests) and the USB/IP server (a real
// Linux kernel attaches it; real dfu-util and libusb see a real device).
//
// The standard requests (GET_DESCRIPTOR, SET/GET_CONFIGURATION, SET_INTERFACE, GET_STATUS) are
// answered here from the descriptors; class and vendor requests go to the personality.
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "core/deadline.hpp"
#include "link/usb_device.hpp"
#include "sim/device.hpp"
#include "sim/flash_memory.hpp"

namespace mcuflash::sim::usb {

using core::Clock;

struct ControlResult {
    bool stall = false;
    std::vector<uint8_t> data;  // IN: the data stage (the front end truncates to wLength)
    bool gone = false;          // the device dropped off the bus instead of answering
    // The status stage completes at this instant (the device NAKs until its flash work is done, as
    // HalfKay does while it erases); the front ends wait for it. Default: at once.
    Clock::time_point done_at{};
    static ControlResult stalled() { return {true, {}, false}; }
    static ControlResult ok(std::vector<uint8_t> data = {}) { return {false, std::move(data), false}; }
    static ControlResult vanished() { return {false, {}, true}; }
};

// What an IN endpoint answers: data (a packet or more), nothing yet (NAK), or STALL.
struct EndpointIn {
    enum class State { Nak, Data, Stall } state = State::Nak;
    std::vector<uint8_t> data;
    static EndpointIn nak() { return {}; }
    static EndpointIn stalled() { return {State::Stall, {}}; }
    static EndpointIn ok(std::vector<uint8_t> data) { return {State::Data, std::move(data)}; }
};

class UsbDeviceModel {
public:
    virtual ~UsbDeviceModel() = default;

    // One control transfer (`data_out`: the OUT data stage). Standard requests are handled here.
    ControlResult control(const link::UsbSetup& setup, std::span<const uint8_t> data_out, Clock::time_point now);

    // The device descriptor (18 bytes), the whole configuration descriptor, string `index` ("" = none).
    virtual std::vector<uint8_t> device_descriptor() const = 0;
    virtual std::vector<uint8_t> configuration_descriptor() const = 0;
    virtual std::string string_descriptor(uint8_t index) const = 0;
    // Other descriptors asked for by GET_DESCRIPTOR (a HID report descriptor: type 0x22, wIndex the
    // interface); empty: stalled.
    virtual std::vector<uint8_t> other_descriptor(uint8_t type, uint8_t index, uint16_t w_index) const {
        (void)type, (void)index, (void)w_index;
        return {};
    }
    // Class/vendor requests.
    virtual ControlResult class_request(const link::UsbSetup& setup, std::span<const uint8_t> data_out,
                                        Clock::time_point now) = 0;
    virtual void set_interface(uint8_t interface, uint8_t alt, Clock::time_point now);
    // Bulk and interrupt endpoints (`address` with 0x80 for IN); none by default. OUT data arrives in
    // bulk_out() (false: the endpoint stalls). An IN transfer asks bulk_in() for what the device has
    // ready now; "nothing yet" (NAK) makes the front end ask again later, as a host controller does.
    virtual bool has_endpoint(uint8_t address) const {
        (void)address;
        return false;
    }
    virtual bool bulk_out(uint8_t address, std::span<const uint8_t> data, Clock::time_point now) {
        (void)address, (void)data, (void)now;
        return true;
    }
    virtual EndpointIn bulk_in(uint8_t address, size_t max_length, Clock::time_point now) {
        (void)address, (void)max_length, (void)now;
        return EndpointIn::nak();
    }
    // CLEAR_FEATURE(ENDPOINT_HALT) from the host: the endpoint takes transfers again.
    virtual void clear_halt(uint8_t address, Clock::time_point now) { (void)address, (void)now; }
    // A USB bus reset (the host's port reset, or attaching the device). The device may come back as
    // something else (a DFU bootloader that starts the application re-enumerates).
    virtual void bus_reset(Clock::time_point now) = 0;
    // False once the device has dropped off the bus (it started its application, or was unplugged).
    virtual bool attached() const { return true; }
    // The device that took this one's place on the bus, once there is one (a board running Klipper
    // that rebooted into its bootloader); front ends serve it from the next plug-in on.
    virtual UsbDeviceModel* successor() { return nullptr; }
    virtual void tick(Clock::time_point now) { (void)now; }
    // When the device next has something to do by itself (a CAN frame finishes on its bus): the USB/IP
    // server wakes then instead of at its next 10 ms tick. nullopt: nothing scheduled.
    virtual std::optional<Clock::time_point> next_event() const { return std::nullopt; }
    virtual std::string describe() const = 0;
    virtual FlashMemory& flash() = 0;

    link::UsbIdentity identity() const;
    uint8_t configuration() const { return configuration_; }
    uint8_t alt_setting() const { return alt_setting_; }

    void set_trace(TraceSink sink) { trace_ = std::move(sink); }

protected:
    void trace(const std::string& message) const {
        if (trace_) trace_(message);
    }
    uint8_t configuration_ = 0;
    uint8_t alt_setting_ = 0;

private:
    TraceSink trace_;
};

// Descriptor builders (USB 2.0 chapter 9) for the personalities.
std::vector<uint8_t> device_descriptor_bytes(uint16_t vendor, uint16_t product, uint16_t bcd_device,
                                             uint8_t manufacturer, uint8_t product_string, uint8_t serial,
                                             uint8_t max_packet0 = 64);
std::vector<uint8_t> string_descriptor_bytes(const std::string& text);

}  // namespace mcuflash::sim::usb
