#pragma once
// What the STM32F1 (FPEC) and STM32F4 flash drivers share: the unlock with the two keys, the mass
// erase, locking again when done, and the reading of FLASH_SR's error flags. A family gives its
// registers and flags as data (stm32f1.cpp, stm32f4.cpp).
#include <chrono>
#include <string>
#include <utility>
#include <vector>

#include "protocol/swd/flash_driver.hpp"

namespace mcuflash::protocol::swd {

struct Stm32FlashFamily {
    uint32_t keyr = 0, sr = 0, cr = 0;
    uint32_t cr_lock = 0, cr_start = 0;
    uint32_t cr_mass_erase = 0;  // MER, with the program size where the family has one
    uint32_t sr_busy = 0;
    uint32_t sr_clear = 0;       // written to SR before a command: the errors and EOP (write 1 to clear)
    uint32_t sr_write_protect = 0;
    std::vector<std::pair<uint32_t, std::string>> sr_errors;  // each error flag and what it means
    int sr_digits = 8;                                       // FLASH_SR in messages: hex digits
    std::string write_protect_hint;
    std::chrono::milliseconds mass_erase_timeout{};
};

class Stm32Flash : public FlashDriver {
public:
    Stm32Flash(const DriverContext& context, Stm32FlashFamily family) : c_(context), family_(std::move(family)) {}

    void chip_erase() override;
    void finish() override;

protected:
    // KEY1 and KEY2 into KEYR (RM0008, RM0090); throws Protocol when CR's LOCK stays set.
    void unlock();
    // Throws Protocol naming the error flags set in `sr`.
    void check(uint32_t sr, const std::string& what, uint32_t address) const;

    DriverContext c_;
    Stm32FlashFamily family_;

private:
    bool unlocked_ = false;
};

}  // namespace mcuflash::protocol::swd
