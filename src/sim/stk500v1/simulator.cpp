#include "sim/stk500v1/simulator.hpp"

#include "sim/stk500v1/atmegaboot_device.hpp"
#include "sim/stk500v1/optiboot_device.hpp"

namespace mcuflash::sim::stk500v1 {

SimulatorInfo simulator_info() {
    return {"stk500v1",
            "Arduino STK500v1 bootloaders (avrdude -c arduino)",
            {personality_of<OptibootDevice>("optiboot"), personality_of<AtmegabootDevice>("atmegaboot")},
            "atmega1284p"};
}

}  // namespace mcuflash::sim::stk500v1
