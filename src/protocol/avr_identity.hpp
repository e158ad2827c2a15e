#pragma once
// What AVR bootloaders of every protocol share: naming the chip from its signature and the
// bootloader from its software version, and the application region that follows from both.
#include <cstdint>
#include <string>
#include <vector>

#include "protocol/bootloader.hpp"
#include "targets/knowledge.hpp"

namespace mcuflash::protocol {

struct AvrIdentity {
    const targets::Chip* chip = nullptr;
    const targets::Bootloader* bootloader = nullptr;  // nullptr: not identified
    uint32_t boot_size = 0;  // bytes kept free at the top of flash
};

// Fills `info` (chip, geometry, bootloader, application region, "software version") from the
// signature and version the device reported. Throws Protocol for an unknown signature, Usage for a
// --chip or --bootloader that disagrees. An unidentified bootloader keeps the chip's largest boot
// section free. `unidentified_text` names the bootloader when the data knows none that matches.
AvrIdentity identify_avr(DeviceInfo& info, const std::string& protocol, const ConnectOptions& options,
                         const std::vector<uint8_t>& signature, uint8_t sw_major, uint8_t sw_minor,
                         const std::string& unidentified_text);

}  // namespace mcuflash::protocol
