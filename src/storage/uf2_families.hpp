#pragma once
// UF2 family IDs (github.com/microsoft/uf2 utils/uf2families.json): which ID a UF2 bootloader expects
// for a chip. A table, not code: a chip is one row (uf2_families.cpp).
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace mcuflash::storage {

struct Uf2Family {
    const char* name;  // uf2families.json's short name: "RP2040"
    uint32_t id;
    std::vector<std::string> chips;  // data/chips.toml names (prefixes: "stm32f4" covers stm32f401xc ...)
};

const std::vector<Uf2Family>& uf2_families();
// The family of a chip (the longest matching prefix); nullopt when none is known.
std::optional<uint32_t> uf2_family_for_chip(const std::string& chip);
// By short name, any case ("rp2040", "SAMD51").
std::optional<uint32_t> uf2_family_by_name(const std::string& name);

}  // namespace mcuflash::storage
