#include "sim/device.hpp"

namespace mcuflash::sim {

const char* reset_cause_name(ResetCause cause) { return cause == ResetCause::Pin ? "pin" : "power"; }

}  // namespace mcuflash::sim
