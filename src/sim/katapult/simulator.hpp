#pragma once
// The Katapult simulator for the registry.
#include "sim/registry.hpp"

namespace mcuflash::sim::katapult {

SimulatorInfo simulator_info();

}  // namespace mcuflash::sim::katapult
