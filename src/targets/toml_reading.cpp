#include "targets/toml_reading.hpp"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>

#include "core/error.hpp"

namespace mcuflash::targets {

void bad_data(const std::string& where, const std::string& problem) {
    throw core::Error(core::ErrorKind::BadInput, fmt::format("{}: {}", where, problem));
}

std::string where_of(const std::string& document, const toml::node& node, const std::string& path) {
    return fmt::format("{}:{}: {}", document, node.source().begin.line, path);
}

void check_keys(const toml::table& t, std::initializer_list<std::string_view> known, const std::string& where) {
    for (auto&& [key, value] : t) {
        if (std::find(known.begin(), known.end(), key.str()) != known.end()) continue;
        bad_data(where, fmt::format("unknown key '{}' (line {}; known here: {})", key.str(), value.source().begin.line,
                                    fmt::join(known, ", ")));
    }
}

}  // namespace mcuflash::targets
