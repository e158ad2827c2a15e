#include "sim/katapult/simulator.hpp"

#include "sim/katapult/katapult_device.hpp"

namespace mcuflash::sim::katapult {

SimulatorInfo simulator_info() {
    return {"katapult",
            "Katapult (formerly CanBoot) on USB-CDC or a UART (flashtool.py -d), or on CAN with --can",
            {personality_of<KatapultDevice>("katapult")},
            "stm32f103xe"};
}

}  // namespace mcuflash::sim::katapult
