#pragma once
// `mcuflash-sim cmsis-dap` (v2, bulk) and `cmsis-dap-v1` (HID): a CMSIS-DAP probe with a simulated
// chip (sim::swd::make_debug_target) on its SWD port.
#include <memory>
#include <string>
#include <vector>

#include "sim/cmsis_dap/cmsis_dap_probe.hpp"
#include "sim/device.hpp"

namespace mcuflash::sim::cmsis_dap {

constexpr const char* kDefaultChip = "stm32f103xb";

// chip "" = stm32f103xb. DeviceOptions go to the target (bootloader: what its flash holds at start,
// "none" = erased; timing; flash_file; trace). Throws core::Error(Usage) for a chip the target
// model cannot be, naming those it can.
std::unique_ptr<usb::UsbDeviceModel> make_cmsis_dap_probe(const std::string& chip, const DeviceOptions& options,
                                                          ProbeVersion version);
std::vector<std::string> cmsis_dap_chips();

}  // namespace mcuflash::sim::cmsis_dap
