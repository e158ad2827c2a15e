#include "sim/dfu/simulator.hpp"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include "core/error.hpp"
#include "sim/dfu/dfu_device.hpp"
#include "targets/knowledge.hpp"

namespace mcuflash::sim::dfu {

const std::vector<DfuSimulatorChip>& dfu_simulator_chips() {
    static const std::vector<DfuSimulatorChip> all = [] {
        std::vector<DfuSimulatorChip> out;
        for (const char* bootloader : {"st_rom_dfu", "stm32duino", "smoothie_dfu"})
            if (const auto* bl = targets::Knowledge::builtin().find_bootloader(bootloader))
                for (const auto& [chip, size] : bl->sizes) out.push_back({chip, bootloader});
        return out;
    }();
    return all;
}

std::unique_ptr<usb::UsbDeviceModel> make_dfu_device(const std::string& chip_name, const DeviceOptions& options) {
    const std::string wanted = chip_name.empty() ? "stm32f407xg" : chip_name;
    std::vector<std::string> known;
    for (const auto& entry : dfu_simulator_chips()) {
        known.push_back(entry.chip);
        if (entry.chip != wanted || (!options.bootloader.empty() && options.bootloader != entry.bootloader)) continue;
        const auto& kb = targets::Knowledge::builtin();
        const auto& chip = kb.chip(wanted);
        const auto& bootloader = *kb.find_bootloader(entry.bootloader);
        auto personality = entry.bootloader == "stm32duino"     ? stm32duino(chip, bootloader)
                           : entry.bootloader == "smoothie_dfu" ? smoothie_dfu(chip, bootloader)
                                                                : st_rom_dfu(chip, bootloader);
        auto device = std::make_unique<DfuDevice>(chip, personality, options);
        if (options.trace) device->set_trace(options.trace);
        return device;
    }
    throw core::Error(core::ErrorKind::Usage, fmt::format("no DFU simulator for '{}' (chips: {})", wanted, fmt::join(known, ", ")));
}

}  // namespace mcuflash::sim::dfu
