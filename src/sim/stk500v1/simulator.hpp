#pragma once
// Registration of the STK500v1 simulator (optiboot, ATmegaBOOT).
#include "sim/registry.hpp"

namespace mcuflash::sim::stk500v1 {

SimulatorInfo simulator_info();

}  // namespace mcuflash::sim::stk500v1
