#pragma once
// `-d sim:NAME[:CHIP]`: any simulated device inside this process, whatever it is (a serial
// bootloader on a byte stream, a USB one, an ISP programmer), from the two simulator registries.
#include <filesystem>
#include <memory>
#include <optional>
#include <string>

#include "link/byte_link.hpp"
#include "link/link.hpp"

namespace mcuflash::sim {

struct SimulatedOptions {
    std::string chip;        // "" = the simulator's default chip
    std::string bootloader;  // "" = the simulator's default personality
    std::string faults;      // the simulator's fault spec ("" = none)
    bool timing = true;
    link::SerialSettings settings{};  // byte streams: both ends start with these
    std::optional<std::filesystem::path> flash_file;
};

// Throws core::Error(Usage) for an unknown simulator (listing them), chip, bootloader or fault spec.
std::unique_ptr<link::Link> open_simulated(const std::string& name, const SimulatedOptions& options);

// What a simulator's links are: nullopt for a name no simulator has.
std::optional<link::LinkKind> simulated_link_kind(const std::string& name);

}  // namespace mcuflash::sim
