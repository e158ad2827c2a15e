#include "protocol/swd/stm32_flash.hpp"

#include <fmt/format.h>

#include "core/error.hpp"

namespace mcuflash::protocol::swd {

using core::Error;
using core::ErrorKind;

void Stm32Flash::unlock() {
    if (unlocked_) return;
    constexpr uint32_t kKey1 = 0x45670123, kKey2 = 0xCDEF89AB;
    if (c_.dap.read32(family_.cr) & family_.cr_lock) {
        auto batch = c_.dap.batch();
        batch.write32(family_.keyr, kKey1);
        batch.write32(family_.keyr, kKey2);
        batch.run("unlocking the flash controller");
        if (c_.dap.read32(family_.cr) & family_.cr_lock)
            throw Error(ErrorKind::Protocol, "the STM32 flash controller stays locked after the unlock keys",
                        "power the board off and on (a wrong key locks it until the next reset), and try again");
    }
    unlocked_ = true;
}

void Stm32Flash::finish() {
    if (unlocked_) c_.dap.write32(family_.cr, family_.cr_lock);
    unlocked_ = false;
}

void Stm32Flash::chip_erase() {
    unlock();
    auto batch = c_.dap.batch();
    batch.write32(family_.sr, family_.sr_clear);
    batch.write32(family_.cr, family_.cr_mass_erase);
    batch.write32(family_.cr, family_.cr_mass_erase | family_.cr_start);
    batch.run("starting the mass erase");
    wait_for(c_.dap, family_.sr, family_.sr_busy, 0, family_.mass_erase_timeout, "the mass erase",
             "the mass erase to finish (FLASH_SR.BSY)");
    const uint32_t sr = c_.dap.read32(family_.sr);
    c_.dap.write32(family_.cr, 0);
    check(sr, "the mass erase", c_.flash_base);
}

void Stm32Flash::check(uint32_t sr, const std::string& what, uint32_t address) const {
    std::string text = fmt::format("FLASH_SR 0x{:0{}X}", sr, family_.sr_digits);
    bool refused = false;
    for (const auto& [flag, meaning] : family_.sr_errors) {
        if (!(sr & flag)) continue;
        text += (refused ? ", " : ": ") + meaning;
        refused = true;
    }
    if (refused)
        throw Error(ErrorKind::Protocol, fmt::format("the flash controller refused: {}", text),
                    sr & family_.sr_write_protect ? family_.write_protect_hint : "")
            .during(what)
            .at_address(address);
}

}  // namespace mcuflash::protocol::swd
