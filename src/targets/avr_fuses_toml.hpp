#pragma once
// Reading `[chips.X.fuses]` and `[bootloaders.B.install.X]` (kept apart from avr_fuses.hpp so that
// only the loader pays for the TOML parser's headers).
#include <initializer_list>
#include <string>
#include <string_view>
#include <toml++/toml.h>

#include "targets/avr_fuses.hpp"
#include "targets/knowledge.hpp"

namespace mcuflash::targets {

// Throws core::Error(BadInput) naming the first key of `table` that is not `known`, and its line.
void check_keys(const toml::table& table, std::initializer_list<std::string_view> known, const std::string& where);

// Both throw core::Error(BadInput) naming `where` and the key on bad data.
AvrFuses parse_avr_fuses(const toml::table& table, const std::string& where);
BootloaderInstall parse_bootloader_install(const toml::table& table, const std::string& where, const Chip& chip);

}  // namespace mcuflash::targets
