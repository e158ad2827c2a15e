#pragma once
// What every data/*.toml reader shares: bad data is a core::Error(BadInput) that names the file, the
// line and the key, and unknown keys are refused.
#include <initializer_list>
#include <string>
#include <string_view>
#include <toml++/toml.h>

namespace mcuflash::targets {

[[noreturn]] void bad_data(const std::string& where, const std::string& problem);
// "chips.toml:114: chips.samd21g18a": the document, the line and the key path of a table.
std::string where_of(const std::string& document, const toml::node& node, const std::string& path);
// Throws (bad_data) naming the first key of `table` that is not `known`, and its line.
void check_keys(const toml::table& table, std::initializer_list<std::string_view> known, const std::string& where);

}  // namespace mcuflash::targets
