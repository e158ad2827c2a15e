#include "targets/printer_manifest.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "core/error.hpp"
#include "targets/toml_reading.hpp"

namespace mcuflash::targets {

namespace fs = std::filesystem;
using core::Error;
using core::ErrorKind;

namespace {

// "~/x" is under $HOME; a relative path is relative to the manifest's folder.
std::string resolve_path(const std::string& value, const fs::path& base) {
    if (value.empty()) return "";
    fs::path path = value;
    if (value == "~" || value.starts_with("~/")) {
        const char* home = std::getenv("HOME");
        if (!home) throw Error(ErrorKind::BadInput, fmt::format("'{}': HOME is not set", value));
        path = fs::path(home) / value.substr(std::min<size_t>(2, value.size()));
    } else if (path.is_relative()) {
        path = base / path;
    }
    return path.lexically_normal().string();
}

// The inverse for writing: relative to the manifest's folder when under it, "~/..." under $HOME.
std::string shown_path(const std::string& absolute, const fs::path& base) {
    if (absolute.empty()) return "";
    const fs::path path = fs::path(absolute).lexically_normal();
    const auto relative = path.lexically_relative(base);
    if (!relative.empty() && *relative.begin() != "..") return relative.string();
    if (const char* home = std::getenv("HOME")) {
        const auto under_home = path.lexically_relative(fs::path(home).lexically_normal());
        if (!under_home.empty() && *under_home.begin() != "..") return "~/" + under_home.string();
    }
    return path.string();
}

std::string quoted(const std::string& text) {
    std::string out = "\"";
    for (const char c : text) {
        if (c == '"' || c == '\\') out += '\\';
        out += c;
    }
    return out + "\"";
}

// A bare TOML key where the name allows one, else a quoted key.
std::string key_text(const std::string& name) {
    const bool bare = !name.empty() && std::all_of(name.begin(), name.end(), [](char c) {
        return std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '-';
    });
    return bare ? name : quoted(name);
}

std::string string_value(const toml::table& table, const char* key, const std::string& where) {
    const auto* node = table.get(key);
    if (!node) return "";
    const auto* text = node->as_string();
    if (!text) bad_data(where, fmt::format("'{}' must be a string in quotes (line {})", key, node->source().begin.line));
    return text->get();
}

}  // namespace

const ManifestMcu* PrinterManifest::find(const std::string& name) const {
    for (const auto& mcu : mcus)
        if (mcu.name == name) return &mcu;
    return nullptr;
}

PrinterManifest read_printer_manifest(const std::string& path) {
    std::error_code ec;
    if (!fs::exists(path, ec))
        throw Error(ErrorKind::NotFound, fmt::format("no manifest at {}", path),
                    "`mcuflash printer init` writes a first one from printer.cfg");
    toml::table document;
    try {
        document = toml::parse_file(path);
    } catch (const toml::parse_error& e) {
        throw Error(ErrorKind::BadInput,
                    fmt::format("{}:{}: {}", path, e.source().begin.line, std::string(e.description())));
    }
    const fs::path base = fs::absolute(fs::path(path)).parent_path();
    const std::string name = fs::path(path).filename().string();
    check_keys(document, {"printer", "mcu"}, name);

    PrinterManifest manifest;
    manifest.path = path;
    if (const auto* node = document.get("printer")) {
        const auto* printer = node->as_table();
        if (!printer) bad_data(where_of(name, *node, "printer"), "must be a table: [printer]");
        const auto where = where_of(name, *node, "printer");
        check_keys(*printer, {"config", "klipper", "out"}, where);
        manifest.printer_config = resolve_path(string_value(*printer, "config", where), base);
        manifest.klipper_tree = resolve_path(string_value(*printer, "klipper", where), base);
        manifest.out_dir = resolve_path(string_value(*printer, "out", where), base);
    }
    if (manifest.printer_config.empty()) manifest.printer_config = (base / "printer.cfg").string();
    if (manifest.klipper_tree.empty()) manifest.klipper_tree = resolve_path("~/klipper", base);
    if (manifest.out_dir.empty()) manifest.out_dir = (base / "mcuflash").string();

    if (const auto* node = document.get("mcu")) {
        const auto* mcus = node->as_table();
        if (!mcus) bad_data(where_of(name, *node, "mcu"), "must be tables: [mcu.NAME]");
        for (auto&& [key, value] : *mcus) {
            const std::string mcu_name(key.str());
            const auto where = where_of(name, value, "mcu." + mcu_name);
            const auto* table = value.as_table();
            if (!table) bad_data(where, fmt::format("must be a table: [mcu.{}]", key_text(mcu_name)));
            check_keys(*table, {"board", "kconfig", "image", "device", "bootloader", "can_bridge", "skip"}, where);
            ManifestMcu mcu;
            mcu.name = mcu_name;
            mcu.where = fmt::format("{}:{}", name, value.source().begin.line);
            mcu.board = string_value(*table, "board", where);
            mcu.kconfig = resolve_path(string_value(*table, "kconfig", where), base);
            mcu.image = resolve_path(string_value(*table, "image", where), base);
            if (mcu.image.empty()) mcu.image = (fs::path(manifest.out_dir) / mcu_name / "klipper.bin").string();
            mcu.device = string_value(*table, "device", where);
            mcu.bootloader = string_value(*table, "bootloader", where);
            for (const char* flag : {"can_bridge", "skip"}) {
                const auto* flag_node = table->get(flag);
                if (!flag_node) continue;
                const auto* boolean = flag_node->as_boolean();
                if (!boolean) bad_data(where, fmt::format("'{}' must be true or false", flag));
                if (std::string_view(flag) == "skip")
                    mcu.skip = boolean->get();
                else
                    mcu.can_bridge = boolean->get();
            }
            manifest.mcus.push_back(std::move(mcu));
        }
    }
    // toml++ keeps tables sorted by key; the file's order is the user's.
    auto line_of = [](const ManifestMcu& m) { return std::stoul(m.where.substr(m.where.rfind(':') + 1)); };
    std::stable_sort(manifest.mcus.begin(), manifest.mcus.end(),
                     [&](const ManifestMcu& a, const ManifestMcu& b) { return line_of(a) < line_of(b); });
    return manifest;
}

std::string printer_manifest_text(const PrinterManifest& manifest,
                                  const std::vector<std::pair<std::string, std::string>>& comments) {
    const fs::path base = fs::absolute(fs::path(manifest.path)).parent_path();
    std::ostringstream out;
    out << "# mcuflash's manifest: the firmware of each MCU of printer.cfg (docs/printer.md).\n"
           "# `mcuflash printer build` builds every image, `mcuflash printer flash` writes them.\n\n"
           "[printer]\n";
    out << "config = " << quoted(shown_path(manifest.printer_config, base)) << "  # Klipper's printer.cfg\n";
    out << "klipper = " << quoted(shown_path(manifest.klipper_tree, base)) << "  # the Klipper (or Kalico) checkout\n";
    out << "out = " << quoted(shown_path(manifest.out_dir, base)) << "  # builds go in OUT/<mcu>/\n";
    for (const auto& mcu : manifest.mcus) {
        out << "\n";
        for (const auto& [name, comment] : comments) {
            if (name != mcu.name) continue;
            std::istringstream lines(comment);
            for (std::string line; std::getline(lines, line);) out << "# " << line << "\n";
        }
        out << "[mcu." << key_text(mcu.name) << "]\n";
        out << "board = " << quoted(mcu.board) << "\n";
        if (!mcu.kconfig.empty()) out << "kconfig = " << quoted(shown_path(mcu.kconfig, base)) << "\n";
        const auto default_image = (fs::path(manifest.out_dir) / mcu.name / "klipper.bin").lexically_normal().string();
        if (!mcu.image.empty() && mcu.image != default_image) out << "image = " << quoted(shown_path(mcu.image, base)) << "\n";
        if (!mcu.device.empty()) out << "device = " << quoted(mcu.device) << "\n";
        if (!mcu.bootloader.empty()) out << "bootloader = " << quoted(mcu.bootloader) << "\n";
        if (mcu.can_bridge) out << "can_bridge = " << (*mcu.can_bridge ? "true" : "false") << "\n";
        if (mcu.skip) out << "skip = true\n";
    }
    return out.str();
}

std::string default_manifest_path(const std::string& printer_config) {
    return (fs::path(printer_config).parent_path() / "mcuflash.toml").string();
}

}  // namespace mcuflash::targets
