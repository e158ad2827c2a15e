#include "sim/usb/usb_registry.hpp"

#include "sim/dfu/simulator.hpp"
#include "sim/halfkay/halfkay_device.hpp"

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
        return std::vector<UsbSimulatorInfo>{dfu, halfkay};
    }();
    return simulators;
}

}  // namespace mcuflash::sim::usb
