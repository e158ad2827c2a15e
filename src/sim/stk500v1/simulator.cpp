#include "sim/stk500v1/simulator.hpp"

#include "sim/stk500v1/atmegaboot_device.hpp"
#include "sim/stk500v1/optiboot_device.hpp"

namespace mcuflash::sim::stk500v1 {

namespace {

template <typename DeviceType>
Personality personality(std::string bootloader) {
    return {std::move(bootloader),
            [](const targets::Chip& chip, const targets::Bootloader& bl, const DeviceOptions& options) {
                return std::unique_ptr<Device>(std::make_unique<DeviceType>(chip, bl, options));
            }};
}

}  // namespace

SimulatorInfo simulator_info() {
    return {"stk500v1",
            "Arduino STK500v1 bootloaders (avrdude -c arduino)",
            {personality<OptibootDevice>("optiboot"), personality<AtmegabootDevice>("atmegaboot")},
            "atmega1284p"};
}

}  // namespace mcuflash::sim::stk500v1
