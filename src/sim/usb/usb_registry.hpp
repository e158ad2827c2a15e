#pragma once
// The simulated USB devices mcuflash-sim can serve (over USB/IP, `--usbip PORT`): protocol name ->
// how to build the device model for a chip. A USB simulator is one folder under sim/ and one entry
// in usb_registry.cpp; mcuflash-sim makes a sub-command of each entry.
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "sim/device.hpp"
#include "sim/usb/usb_device_model.hpp"

namespace mcuflash::sim::usb {

struct UsbSimulatorInfo {
    std::string protocol;     // the sub-command: "dfu"
    std::string description;  // one line for --help and `list`
    std::string default_chip;
    // chip "" = default_chip. DeviceOptions from mcuflash-sim: bootloader ("" = the chip's), timing,
    // flash_file, trace. Throws core::Error(Usage) for a chip it cannot simulate.
    std::function<std::unique_ptr<UsbDeviceModel>(const std::string& chip, const DeviceOptions& options)> make;
    std::vector<std::string> chips{};  // for `list`; empty: not listed
    bool hid = false;  // a HID device: in process its client gets a link::HidDevice over it
};

const std::vector<UsbSimulatorInfo>& usb_simulators();

}  // namespace mcuflash::sim::usb
