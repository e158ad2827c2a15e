#include "sim/stm32uart/simulator.hpp"

#include "sim/stm32uart/stm32_rom_device.hpp"

namespace mcuflash::sim::stm32uart {

SimulatorInfo simulator_info() {
    Personality rom{"stm32_rom", [](const targets::Chip& chip, const targets::Bootloader& bootloader,
                                    const DeviceOptions& options) {
                        return std::unique_ptr<Device>(std::make_unique<Stm32RomDevice>(chip, bootloader, options));
                    }};
    return {"stm32-uart", "STM32 ROM USART bootloader, ST AN3155 (stm32flash)", {rom}, "stm32f103xb"};
}

}  // namespace mcuflash::sim::stm32uart
