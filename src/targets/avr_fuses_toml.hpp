#pragma once
// Reading `[chips.X.fuses]` and `[bootloaders.B.install.X]` (kept apart from avr_fuses.hpp so that
// only the loader pays for the TOML parser's headers).
#include <initializer_list>
#include <string>
#include <string_view>
#include <toml++/toml.h>

#include "targets/avr_fuses.hpp"
#include "targets/knowledge.hpp"
#include "targets/toml_reading.hpp"

namespace mcuflash::targets {

// Both throw core::Error(BadInput) naming `where` and the key on bad data.
AvrFuses parse_avr_fuses(const toml::table& table, const std::string& where);
BootloaderInstall parse_bootloader_install(const toml::table& table, const std::string& where, const Chip& chip);

}  // namespace mcuflash::targets
