#pragma once
#include "sim/registry.hpp"

namespace mcuflash::sim::samba {

// `samba`: the monitors on the native USB port (raw S/R data).
SimulatorInfo usb_simulator_info();
// `samba-uart`: the same monitors on a UART (autobaud, XMODEM-CRC S/R data).
SimulatorInfo uart_simulator_info();

}  // namespace mcuflash::sim::samba
