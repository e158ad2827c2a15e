#pragma once
// The simulators mcuflash has: protocol name -> how to build a device for a chip. A new protocol's
// simulator is one folder under sim/ and one line in registry.cpp.
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "sim/device.hpp"
#include "targets/knowledge.hpp"

namespace mcuflash::sim {

// One bootloader a simulator can impersonate (a knowledge-base bootloader name), or, for a device with
// no bootloader (an ISP programmer and its target), a name of its own with the chips it works on.
struct Personality {
    std::string bootloader;
    std::function<std::unique_ptr<Device>(const targets::Chip&, const targets::Bootloader&, const DeviceOptions&)> make;
    // Non-empty: `bootloader` is not a knowledge-base bootloader; these chips are simulated, and
    // make() gets an empty Bootloader with only the name and description set.
    std::vector<std::string> chips{};
    std::string description{};
};

// The personality of a bootloader whose device class takes (chip, bootloader, options).
template <typename DeviceType>
Personality personality_of(std::string bootloader) {
    return {std::move(bootloader),
            [](const targets::Chip& chip, const targets::Bootloader& bl, const DeviceOptions& options) {
                return std::unique_ptr<Device>(std::make_unique<DeviceType>(chip, bl, options));
            }};
}

struct SimulatorInfo {
    std::string protocol;
    std::string description;
    std::vector<Personality> personalities;  // the first is the default
    std::string default_chip;
};

const std::vector<SimulatorInfo>& simulators();
// Throws core::Error(Usage) listing the known protocols.
const SimulatorInfo& find_simulator(const std::string& protocol);
// The chips a personality can be simulated on: its own list, or those data/bootloaders.toml gives
// its bootloader a size for.
std::vector<std::string> chips_for(const Personality& personality);

// Builds a device; chip "" = the simulator's default. Without DeviceOptions::bootloader, the first
// personality that exists on the chip is used. Throws core::Error(Usage) for an unknown chip
// (listing the known ones) or a chip the bootloader does not exist for (listing those it does).
std::unique_ptr<Device> make_device(const std::string& protocol, const std::string& chip, const DeviceOptions& options);

}  // namespace mcuflash::sim
