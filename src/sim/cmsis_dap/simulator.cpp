#include "sim/cmsis_dap/simulator.hpp"

#include "sim/swd/debug_target.hpp"
#include "targets/knowledge.hpp"

namespace mcuflash::sim::cmsis_dap {

namespace {

// DAP_Info's "target device vendor": the chip maker, from the chip family's name.
std::string vendor_of(const std::string& chip) {
    if (chip.rfind("stm32", 0) == 0) return "STMicroelectronics";
    if (chip.rfind("sam", 0) == 0 || chip.rfind("atsam", 0) == 0) return "Microchip";
    return "";
}

}  // namespace

std::unique_ptr<usb::UsbDeviceModel> make_cmsis_dap_probe(const std::string& chip_name, const DeviceOptions& options,
                                                          ProbeVersion version) {
    const std::string chip = chip_name.empty() ? kDefaultChip : chip_name;
    auto target = swd::make_debug_target(chip, options);
    auto probe = std::make_unique<CmsisDapProbe>(std::move(target), version, options.timing, vendor_of(chip), chip);
    if (options.trace) {
        probe->set_trace(options.trace);
        probe->processor().set_trace(options.trace);
    }
    return probe;
}

std::vector<std::string> cmsis_dap_chips() { return swd::debug_target_chips(); }

}  // namespace mcuflash::sim::cmsis_dap
