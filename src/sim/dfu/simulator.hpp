#pragma once
// The DFU simulators: ST's ROM DFU (DfuSe) on the STM32F0/F4 parts that have it, and the stm32duino
// (Maple) bootloader on the STM32F103. Chosen by chip (and DeviceOptions::bootloader where a chip
// could have both).
#include <memory>
#include <string>
#include <vector>

#include "sim/device.hpp"
#include "sim/usb/usb_device_model.hpp"

namespace mcuflash::sim::dfu {

struct DfuSimulatorChip {
    std::string chip;
    std::string bootloader;  // data/bootloaders.toml name
};
const std::vector<DfuSimulatorChip>& dfu_simulator_chips();

// Throws core::Error(Usage) for a chip no DFU simulator runs on, listing those it does.
std::unique_ptr<usb::UsbDeviceModel> make_dfu_device(const std::string& chip, const DeviceOptions& options);

}  // namespace mcuflash::sim::dfu
