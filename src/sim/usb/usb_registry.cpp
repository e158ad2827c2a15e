#include "sim/usb/usb_registry.hpp"

#include "sim/dfu/simulator.hpp"
#include "sim/halfkay/halfkay_device.hpp"
#include "sim/hid_stm32/hid_stm32_device.hpp"
#include "sim/picoboot/picoboot_device.hpp"

namespace mcuflash::sim::usb {

const std::vector<UsbSimulatorInfo>& usb_simulators() {
    static const std::vector<UsbSimulatorInfo> simulators = [] {
        UsbSimulatorInfo dfu{"dfu", "USB DFU bootloaders: ST's ROM DfuSe (0483:df11), stm32duino (1eaf:0003)",
                             "stm32f407xg",
                             [](const std::string& chip, const DeviceOptions& o) { return dfu::make_dfu_device(chip, o); }};
        for (const auto& entry : dfu::dfu_simulator_chips()) dfu.chips.push_back(entry.chip + " (" + entry.bootloader + ")");
        UsbSimulatorInfo halfkay{"halfkay", "PJRC's HalfKay on a Teensy (16c0:0478)", "at90usb1286",
                                 [](const std::string& chip, const DeviceOptions& o) { return halfkay::make_halfkay_device(chip, o); },
                                 halfkay::halfkay_simulator_chips()};
        UsbSimulatorInfo hid_stm32{"hid-stm32", "the STM32 HID bootloader (1209:beba; F1 and F4 builds)", "stm32f103xb",
                                   [](const std::string& chip, const DeviceOptions& o) { return hid_stm32::make_hid_stm32_device(chip, o); },
                                   hid_stm32::hid_stm32_simulator_chips()};
        halfkay.hid = hid_stm32.hid = true;
        // Only the PICOBOOT interface: the ROM as reset_usb_boot starts it with the UF2 drive disabled.
        UsbSimulatorInfo picoboot{"picoboot", "the RP2040 boot ROM's PICOBOOT interface (2e8a:0003; no UF2 drive)", "rp2040",
                                  [](const std::string& chip, const DeviceOptions& o) { return picoboot::make_picoboot_device(chip, o); },
                                  {"rp2040"}};
        return std::vector<UsbSimulatorInfo>{dfu, halfkay, hid_stm32, picoboot};
    }();
    return simulators;
}

}  // namespace mcuflash::sim::usb
