#pragma once
// The STM32 ROM USART bootloader simulator for the registry.
#include "sim/registry.hpp"

namespace mcuflash::sim::stm32uart {

SimulatorInfo simulator_info();

}  // namespace mcuflash::sim::stm32uart
