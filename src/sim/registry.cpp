#include "sim/registry.hpp"

#include <algorithm>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include "core/error.hpp"
#include "sim/katapult/simulator.hpp"
#include "sim/samba/simulator.hpp"
#include "sim/stk500v1/simulator.hpp"
#include "sim/stk500v2/simulator.hpp"
#include "sim/stm32uart/simulator.hpp"

namespace mcuflash::sim {

using core::Error;
using core::ErrorKind;

const std::vector<SimulatorInfo>& simulators() {
    static const std::vector<SimulatorInfo> all{
        stk500v1::simulator_info(),
        samba::usb_simulator_info(),
        samba::uart_simulator_info(),
        stk500v2::bootloader_simulator_info(),
        stk500v2::isp_simulator_info(),
        stm32uart::simulator_info(),
        katapult::simulator_info(),
    };
    return all;
}

const SimulatorInfo& find_simulator(const std::string& protocol) {
    std::vector<std::string> known;
    for (const auto& s : simulators()) {
        if (s.protocol == protocol) return s;
        known.push_back(s.protocol);
    }
    throw Error(ErrorKind::Usage,
                fmt::format("no simulator for protocol '{}' (known: {})", protocol, fmt::join(known, ", ")));
}

namespace {

targets::Bootloader bootloader_of(const Personality& personality) {
    if (!personality.chips.empty()) {
        targets::Bootloader none;
        none.name = personality.bootloader;
        none.description = personality.description;
        return none;
    }
    const auto* bootloader = targets::Knowledge::builtin().find_bootloader(personality.bootloader);
    if (!bootloader)
        throw Error(ErrorKind::BadInput,
                    fmt::format("simulated bootloader '{}' is missing from data/bootloaders.toml", personality.bootloader));
    return *bootloader;
}

}  // namespace

std::vector<std::string> chips_for(const Personality& personality) {
    if (!personality.chips.empty()) return personality.chips;
    std::vector<std::string> chips;
    for (const auto& [chip, size] : bootloader_of(personality).sizes) chips.push_back(chip);
    return chips;
}

std::unique_ptr<Device> make_device(const std::string& protocol, const std::string& chip_name,
                                    const DeviceOptions& options) {
    const SimulatorInfo& info = find_simulator(protocol);
    const auto& chip = targets::Knowledge::builtin().chip(chip_name.empty() ? info.default_chip : chip_name);
    auto exists_on_chip = [&](const Personality& p) {
        const auto chips = chips_for(p);
        return std::find(chips.begin(), chips.end(), chip.name) != chips.end();
    };
    const Personality* personality = &info.personalities.front();
    if (options.bootloader.empty()) {
        auto found = std::find_if(info.personalities.begin(), info.personalities.end(), exists_on_chip);
        if (found != info.personalities.end()) personality = &*found;
    } else {
        personality = nullptr;
        std::vector<std::string> known;
        for (const auto& p : info.personalities) {
            if (p.bootloader == options.bootloader) personality = &p;
            known.push_back(p.bootloader);
        }
        if (!personality)
            throw Error(ErrorKind::Usage, fmt::format("the {} simulator has no bootloader '{}' (known: {})", protocol,
                                                      options.bootloader, fmt::join(known, ", ")));
    }
    const auto bootloader = bootloader_of(*personality);
    if (!exists_on_chip(*personality))
        throw Error(ErrorKind::Usage, fmt::format("{} is not known on the {} (known on: {})", bootloader.name,
                                                  chip.name, fmt::join(chips_for(*personality), ", ")));
    auto device = personality->make(chip, bootloader, options);
    device->set_trace(options.trace);
    return device;
}

}  // namespace mcuflash::sim
