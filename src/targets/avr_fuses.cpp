#include "targets/avr_fuses.hpp"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>
#include <bit>

#include "core/error.hpp"
#include "targets/avr_fuses_toml.hpp"

namespace mcuflash::targets {

using core::Error;
using core::ErrorKind;

const char* fuse_byte_name(FuseByte fuse) {
    switch (fuse) {
        case FuseByte::Low: return "lfuse";
        case FuseByte::High: return "hfuse";
        case FuseByte::Extended: return "efuse";
        case FuseByte::Lock: return "lock";
    }
    return "?";
}

std::optional<FuseByte> fuse_byte_from_name(const std::string& name) {
    for (FuseByte f : kAllFuseBytes)
        if (name == fuse_byte_name(f)) return f;
    return std::nullopt;
}

uint8_t AvrFuses::used(FuseByte fuse) const {
    auto it = used_bits.find(fuse);
    return it == used_bits.end() ? 0xFF : it->second;
}

std::optional<uint32_t> AvrFuses::boot_size(const FuseValues& values) const {
    auto it = values.find(boot_size_fuse);
    if (it == values.end() || boot_sizes.empty() || boot_size_mask == 0) return std::nullopt;
    unsigned index = (it->second & boot_size_mask) >> std::countr_zero(boot_size_mask);
    if (index >= boot_sizes.size()) return std::nullopt;
    return boot_sizes[index];
}

std::optional<bool> AvrFuses::boot_reset_programmed(const FuseValues& values) const {
    auto it = values.find(boot_reset_fuse);
    if (it == values.end() || boot_reset_mask == 0) return std::nullopt;
    return (it->second & boot_reset_mask) == 0;
}

std::vector<std::string> fuse_refusals(const AvrFuses& facts, const FuseValues& values) {
    std::vector<std::string> problems;
    for (const auto& rule : facts.rules) {
        auto it = values.find(rule.fuse);
        if (it == values.end()) continue;
        uint8_t bits = it->second & rule.mask;
        if (std::find(rule.allowed.begin(), rule.allowed.end(), bits) != rule.allowed.end()) continue;
        problems.push_back(fmt::format("{}=0x{:02X}: {}", fuse_byte_name(rule.fuse), it->second, rule.why));
    }
    return problems;
}

std::pair<FuseByte, uint8_t> parse_fuse_assignment(const std::string& text) {
    auto eq = text.find('=');
    std::string name = text.substr(0, eq);
    auto fuse = fuse_byte_from_name(name);
    if (eq == std::string::npos || !fuse)
        throw Error(ErrorKind::Usage, fmt::format("'{}' is not NAME=VALUE with NAME one of lfuse, hfuse, efuse, lock", text));
    std::string value = text.substr(eq + 1);
    size_t used = 0;
    unsigned long number = 0;
    try {
        number = std::stoul(value, &used, 0);
    } catch (const std::exception&) {
        used = 0;
    }
    if (value.empty() || used != value.size() || number > 0xFF)
        throw Error(ErrorKind::Usage, fmt::format("{}: '{}' is not a byte value (0..255, e.g. 0xFF)", name, value));
    return {*fuse, static_cast<uint8_t>(number)};
}

// ---- TOML ----

namespace {

uint8_t byte_value(const toml::node& node, const std::string& where, const std::string& key) {
    auto v = node.value_exact<int64_t>();
    if (!v || *v < 0 || *v > 0xFF) bad_data(where, fmt::format("'{}' must be a byte (0..255)", key));
    return static_cast<uint8_t>(*v);
}

FuseByte fuse_name(const toml::node& node, const std::string& where, const std::string& key) {
    auto name = node.value<std::string>();
    auto fuse = name ? fuse_byte_from_name(*name) : std::nullopt;
    if (!fuse) bad_data(where, fmt::format("'{}' must name lfuse, hfuse, efuse or lock", key));
    return *fuse;
}

const toml::node& required(const toml::table& t, const char* key, const std::string& where) {
    const toml::node* node = t.get(key);
    if (!node) bad_data(where, fmt::format("missing '{}'", key));
    return *node;
}

const toml::table& subtable(const toml::table& t, const char* key, const std::string& where) {
    auto* sub = required(t, key, where).as_table();
    if (!sub) bad_data(where, fmt::format("'{}' must be a table", key));
    return *sub;
}

const toml::array& array(const toml::table& t, const char* key, const std::string& where) {
    auto* a = required(t, key, where).as_array();
    if (!a || a->empty()) bad_data(where, fmt::format("'{}' must be a non-empty array", key));
    return *a;
}

uint8_t mask_value(const toml::table& t, const std::string& where, const std::string& what) {
    uint8_t mask = byte_value(required(t, "mask", where), where, what + ".mask");
    if (mask == 0) bad_data(where, fmt::format("'{}.mask' must not be 0", what));
    return mask;
}

}  // namespace

AvrFuses parse_avr_fuses(const toml::table& t, const std::string& where) {
    check_keys(t, {"bits", "boot_size", "boot_reset", "rules"}, where);
    AvrFuses f;
    for (auto&& [key, value] : subtable(t, "bits", where)) {
        std::string name{key.str()};
        auto fuse = fuse_byte_from_name(name);
        if (!fuse) bad_data(where, fmt::format("bits: unknown byte '{}'", name));
        f.used_bits[*fuse] = byte_value(value, where, "bits." + name);
    }

    const auto& boot_size = subtable(t, "boot_size", where);
    check_keys(boot_size, {"fuse", "mask", "sizes"}, where + ".boot_size");
    f.boot_size_fuse = fuse_name(required(boot_size, "fuse", where), where, "boot_size.fuse");
    f.boot_size_mask = mask_value(boot_size, where, "boot_size");
    for (const auto& size : array(boot_size, "sizes", where)) {
        auto v = size.value_exact<int64_t>();
        if (!v || *v <= 0) bad_data(where, "boot_size.sizes must be positive byte counts");
        f.boot_sizes.push_back(static_cast<uint32_t>(*v));
    }
    if (f.boot_sizes.size() != (1u << std::popcount(f.boot_size_mask)))
        bad_data(where, "boot_size.sizes needs one size per value of boot_size.mask");

    const auto& boot_reset = subtable(t, "boot_reset", where);
    check_keys(boot_reset, {"fuse", "mask"}, where + ".boot_reset");
    f.boot_reset_fuse = fuse_name(required(boot_reset, "fuse", where), where, "boot_reset.fuse");
    f.boot_reset_mask = mask_value(boot_reset, where, "boot_reset");

    for (const auto& node : array(t, "rules", where)) {
        auto* rule_table = node.as_table();
        if (!rule_table) bad_data(where, "rules must be tables");
        check_keys(*rule_table, {"fuse", "mask", "allowed", "why"}, where + ".rules");
        FuseRule rule;
        rule.fuse = fuse_name(required(*rule_table, "fuse", where), where, "rules.fuse");
        rule.mask = mask_value(*rule_table, where, "rules");
        for (const auto& value : array(*rule_table, "allowed", where)) {
            uint8_t allowed = byte_value(value, where, "rules.allowed");
            if (allowed & ~rule.mask) bad_data(where, "rules.allowed values must lie inside the rule's mask");
            rule.allowed.push_back(allowed);
        }
        auto why = (*rule_table)["why"].value<std::string>();
        if (!why || why->empty()) bad_data(where, "every rule needs a 'why'");
        rule.why = *why;
        f.rules.push_back(std::move(rule));
    }
    return f;
}

BootloaderInstall parse_bootloader_install(const toml::table& t, const std::string& where, const Chip& chip) {
    check_keys(t, {"hex", "package", "lfuse", "hfuse", "efuse", "stray_bytes", "unlock", "lock"}, where);
    BootloaderInstall install;
    auto hex = t["hex"].value<std::string>();
    if (!hex || hex->empty()) bad_data(where, "missing string 'hex'");
    install.hex = *hex;
    install.package = t["package"].value_or(std::string{});
    for (FuseByte fuse : {FuseByte::Low, FuseByte::High, FuseByte::Extended})
        if (const toml::node* value = t.get(fuse_byte_name(fuse)))
            install.fuses[fuse] = byte_value(*value, where, fuse_byte_name(fuse));
    if (const toml::node* stray = t.get("stray_bytes")) {
        auto* ranges = stray->as_array();
        if (!ranges) bad_data(where, "stray_bytes must be an array of [address, size]");
        for (const auto& range : *ranges) {
            auto* pair = range.as_array();
            auto address = pair && pair->size() == 2 ? pair->at(0).value_exact<int64_t>() : std::nullopt;
            auto size = pair && pair->size() == 2 ? pair->at(1).value_exact<int64_t>() : std::nullopt;
            if (!address || !size || *address < 0 || *size <= 0 || *size > int64_t{chip.flash_size} - *address)
                bad_data(where, "stray_bytes must be [address, size] pairs inside flash");
            install.stray_bytes.emplace_back(static_cast<uint32_t>(*address), static_cast<uint32_t>(*size));
        }
    }
    install.unlock = byte_value(required(t, "unlock", where), where, "unlock");
    install.lock = byte_value(required(t, "lock", where), where, "lock");
    if (!chip.fuses) bad_data(where, fmt::format("the {} has no [fuses] facts in chips.toml", chip.name));
    if (auto problems = fuse_refusals(*chip.fuses, install.fuses); !problems.empty())
        bad_data(where, fmt::format("fuses would brick the board: {}", fmt::join(problems, "; ")));
    if (!chip.fuses->boot_size(install.fuses))
        bad_data(where, fmt::format("needs the {} (it selects the boot section)", fuse_byte_name(chip.fuses->boot_size_fuse)));
    return install;
}

}  // namespace mcuflash::targets
