#pragma once
// Finding and opening a CMSIS-DAP debug probe on USB.
//
// A probe is told by its strings, whatever its VID:PID: a USB device whose product string, or one of
// whose interface strings, holds "CMSIS-DAP" (what the CMSIS-DAP specification asks of every probe).
// Version 2 (a vendor interface with bulk endpoints) is preferred; version 1 (HID) otherwise, through
// the kernel's hidraw node where there is one, else through libusb.
//
// The spec a user gives (`--probe SPEC`):
//   cmsis-dap                      the one CMSIS-DAP probe connected (several: refused, with the list)
//   cmsis-dap:VID:PID              the one probe with that USB ID (hex), e.g. cmsis-dap:2e8a:000c
//   cmsis-dap:VID:PID:SERIAL       that probe by its USB serial number
//   cmsis-dap:BUS-PORT             the probe on that USB port, e.g. cmsis-dap:1-1.4
#include <memory>
#include <string>
#include <vector>

#include "link/libusb_device.hpp"
#include "link/swd/cmsis_dap_probe.hpp"

namespace mcuflash::link::swd {

struct ProbeCandidate {
    UsbIdentity usb;
    std::string product;  // the USB product string
    int version = 2;      // 2: bulk interface, 1: HID only
    std::string spec;     // what --probe takes to name it: cmsis-dap:VID:PID:SERIAL (or :BUS-PORT)
};

// "cmsis-dap[:...]" -> the match (any device for plain "cmsis-dap"). Throws Usage on anything else.
UsbMatch parse_probe_spec(const std::string& spec);
bool is_probe_spec(const std::string& text);  // starts with "cmsis-dap"

// The CMSIS-DAP probes connected now that `match` names. Devices that cannot be opened (no rights)
// are looked at through their hidraw node only; `unreadable` (if given) gets how many were skipped.
std::vector<ProbeCandidate> find_cmsis_dap_probes(const UsbMatch& match = {}, size_t* unreadable = nullptr);

// Opens the one probe `spec` names. Throws NotFound (none: with the udev hint when some USB devices
// could not be read), Usage (several: lists each with the spec that names it).
std::unique_ptr<CmsisDapProbe> open_cmsis_dap(const std::string& spec);

}  // namespace mcuflash::link::swd
