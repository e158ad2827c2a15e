#pragma once
// Turning `-d DEVICE` into a link and a connected bootloader client.
#include <memory>
#include <optional>
#include <string>

#include "cli/reporter.hpp"
#include "link/byte_link.hpp"
#include "link/usb_device.hpp"
#include "protocol/bootloader.hpp"
#include "protocol/stk500v2/isp_programmer.hpp"
#include "targets/knowledge.hpp"

namespace mcuflash::cli {

struct DeviceOptions {
    std::string device;    // path, or sim:PROTOCOL[:CHIP]
    std::string protocol;  // "" = the device's or the default
    std::string chip;
    std::string bootloader;
    std::optional<uint32_t> baud;
    bool no_reset = false;
    std::string sim_faults;  // only for sim: devices
    bool sim_fast = false;   // sim: devices without wire and flash timing
};

struct Session {
    std::unique_ptr<link::ByteLink> link;
    std::unique_ptr<link::UsbDevice> usb;  // USB protocols (DFU) instead of `link`
    std::unique_ptr<protocol::Bootloader> bootloader;
    protocol::DeviceInfo info;
    std::string protocol;
    std::string description;  // "/dev/ttyUSB0 at 115200 baud"
    std::string retry_hint;   // device options as they would be typed again
};

// Opens the device and connects to its bootloader (reset, sync, identify).
Session connect(const DeviceOptions& options, Reporter& reporter);

struct ProgrammerSession {
    std::unique_ptr<link::ByteLink> link;
    std::unique_ptr<protocol::stk500v2::IspProgrammer> programmer;
    std::string description;  // "AVRISP_2 on /dev/ttyUSB0 at 115200 baud"
    std::string retry_hint;
};

// Opens an ISP programmer (a serial port, or sim:stk500v2-isp[:CHIP]; options.protocol names the
// programmer type, "" = stk500v2), signs on and puts the target `chip` in programming mode.
ProgrammerSession connect_programmer(const DeviceOptions& options, const targets::Chip& chip, Reporter& reporter);

}  // namespace mcuflash::cli
