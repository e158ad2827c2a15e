#include "protocol/swd/flash_driver.hpp"

#include <fmt/format.h>

#include "core/error.hpp"

namespace mcuflash::protocol::swd {

using core::Error;
using core::ErrorKind;

void FlashDriver::remove_readout_protection() {
    throw Error(ErrorKind::Unsupported, fmt::format("the {} has no readout protection mcuflash can remove", name()));
}

void FlashDriver::set_bootloader_protection(uint32_t) {
    throw Error(ErrorKind::Unsupported, fmt::format("the {} has no bootloader protection fuse (BOOTPROT)", name()),
                "only SAMD and SAMC chips have one");
}

std::string flash_controller_of(const targets::Chip& chip) {
    if (chip.swd && !chip.swd->flash_controller.empty()) return chip.swd->flash_controller;
    if (chip.family == "stm32f1") return "stm32f1";
    if (chip.family == "stm32f4") return "stm32f4";
    if (chip.family == "samd21" || chip.family == "samc21") return "samd21";
    if (chip.family == "samd51") return "samd51";
    return {};
}

std::unique_ptr<FlashDriver> make_flash_driver(const std::string& controller, const DriverContext& context) {
    if (controller == "stm32f1") return make_stm32f1_driver(context);
    if (controller == "stm32f4") return make_stm32f4_driver(context);
    if (controller == "samd21") return make_samd21_driver(context);
    if (controller == "samd51") return make_samd51_driver(context);
    throw Error(ErrorKind::Unsupported,
                fmt::format("mcuflash cannot program the flash of the {} over SWD{}", context.chip.name,
                            controller.empty() ? "" : fmt::format(" (flash controller '{}')", controller)),
                "over SWD mcuflash programs STM32F1, STM32F4, SAMD21, SAMC21 and SAMD51 chips");
}

void wait_for(link::swd::Adiv5& dap, uint32_t address, uint32_t mask, uint32_t value, std::chrono::milliseconds timeout,
              const std::string& what, const std::string& waiting_for) {
    // The probe's value match answers as soon as the controller is done; a long erase outlasts its
    // retries, and then the host polls (each poll a round trip, each pause on the probe's clock).
    auto batch = dap.batch();
    batch.wait_until(address, mask, value, waiting_for);
    try {
        batch.run(what);
        return;
    } catch (const Error& e) {
        if (e.kind() != ErrorKind::Timeout) throw;
    }
    for (auto waited = std::chrono::milliseconds(0);; waited += std::chrono::milliseconds(5)) {
        if ((dap.read32(address) & mask) == (value & mask)) return;
        if (waited >= timeout)  // counted on the probe's clock: a simulated one may skip time
            throw Error(ErrorKind::Timeout,
                        fmt::format("waited {} ms in vain for {}", timeout.count(), waiting_for),
                        "the chip's flash controller may be stuck: power the board off and on, and try again")
                .during(what)
                .at_address(address);
        dap.probe().pause(std::chrono::milliseconds(5));
    }
}

}  // namespace mcuflash::protocol::swd
