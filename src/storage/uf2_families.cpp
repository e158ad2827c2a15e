#include "storage/uf2_families.hpp"

#include <algorithm>
#include <cctype>

namespace mcuflash::storage {

const std::vector<Uf2Family>& uf2_families() {
    // From microsoft/uf2 utils/uf2families.json.
    static const std::vector<Uf2Family> all = {
        {"RP2040", 0xE48BFF56, {"rp2040"}},
        {"RP2350_ARM_S", 0xE48BFF59, {"rp2350"}},
        {"SAMD21", 0x68ED2B88, {"samd21", "atsamd21"}},
        {"SAMD51", 0x55114460, {"samd51", "atsamd51", "same51", "same54"}},
        {"STM32F0", 0x647824B6, {"stm32f0"}},
        {"STM32F1", 0x5EE21072, {"stm32f1"}},
        {"STM32F2", 0x5D1A0A2E, {"stm32f2"}},
        {"STM32F4", 0x57755A57, {"stm32f4"}},
        {"STM32F407", 0x6D0922FA, {"stm32f407"}},
        {"STM32F7", 0x53B80F00, {"stm32f7"}},
        {"STM32G0", 0x300F5633, {"stm32g0"}},
        {"STM32G4", 0x4C71240A, {"stm32g4"}},
        {"STM32L4", 0x00FF6919, {"stm32l4"}},
        {"STM32H7", 0x6DB66082, {"stm32h7"}},
        {"NRF52", 0x1B57745F, {"nrf52"}},
        {"LPC55", 0x2ABC77EC, {"lpc55"}},
    };
    return all;
}

std::optional<uint32_t> uf2_family_for_chip(const std::string& chip) {
    std::string c = chip;
    for (auto& ch : c) ch = char(std::tolower(uint8_t(ch)));
    std::optional<uint32_t> best;
    size_t best_len = 0;
    for (const auto& f : uf2_families())
        for (const auto& prefix : f.chips)
            if (c.rfind(prefix, 0) == 0 && prefix.size() > best_len) {
                best = f.id;
                best_len = prefix.size();
            }
    return best;
}

std::optional<uint32_t> uf2_family_by_name(const std::string& name) {
    for (const auto& f : uf2_families()) {
        const std::string n = f.name;
        if (n.size() == name.size() &&
            std::equal(n.begin(), n.end(), name.begin(), [](char a, char b) { return std::tolower(uint8_t(a)) == std::tolower(uint8_t(b)); }))
            return f.id;
    }
    return std::nullopt;
}

}  // namespace mcuflash::storage
