#pragma once
#include "sim/registry.hpp"

namespace mcuflash::sim::stk500v2 {

// The bootloaders: stk500boot_v2 (atmega2560) and the Arduino M0's (samd21g18a).
SimulatorInfo bootloader_simulator_info();
// An ISP programmer with an AVR target behind it.
SimulatorInfo isp_simulator_info();

}  // namespace mcuflash::sim::stk500v2
