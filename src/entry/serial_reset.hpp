#pragma once
// Getting an Arduino-style board into its bootloader over a serial port.
#include <chrono>

#include "link/byte_link.hpp"

namespace mcuflash::entry {

// The Arduino auto-reset: DTR/RTS drive RESET through a capacitor, so deasserting them and asserting
// them again pulses RESET. Where the link has no modem lines (a pty), reopening it does the same for
// devices that reset on open (our simulators, the simavr bridge).
void pulse_reset(link::ByteLink& link);

// Opens `link`'s port again, trying every quarter second (pauses of the link) until it opens, as a
// board that rebooted comes back, or `wait` has passed: then the last failure is thrown.
void reopen_when_back(link::ByteLink& link, std::chrono::milliseconds wait);

}  // namespace mcuflash::entry
