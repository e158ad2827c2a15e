#include "targets/klipper_config.hpp"

#include <fmt/format.h>

#include <charconv>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>

#include "core/error.hpp"

namespace mcuflash::targets {

using core::Error;
using core::ErrorKind;

namespace {

// A Kconfig value: "quoted string" unquoted, else as written.
std::string unquote(std::string value) {
    if (value.size() >= 2 && value.front() == '"' && value.back() == '"') {
        std::string out;
        for (size_t i = 1; i + 1 < value.size(); ++i) {
            if (value[i] == '\\' && i + 2 < value.size()) ++i;
            out += value[i];
        }
        return out;
    }
    return value;
}

std::optional<uint32_t> number(const std::map<std::string, std::string>& values, const std::string& key,
                               const std::string& name) {
    auto it = values.find(key);
    if (it == values.end()) return std::nullopt;
    std::string text = it->second;
    int base = 10;
    if (text.starts_with("0x") || text.starts_with("0X")) {
        text = text.substr(2);
        base = 16;
    }
    uint32_t value = 0;
    auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value, base);
    if (text.empty() || ec != std::errc() || end != text.data() + text.size())
        throw Error(ErrorKind::BadInput, fmt::format("{}: CONFIG_{} = {} is not a number", name, key, it->second));
    return value;
}

bool enabled(const std::map<std::string, std::string>& values, const std::string& key) {
    auto it = values.find(key);
    return it != values.end() && it->second == "y";
}

}  // namespace

KlipperBuildConfig parse_klipper_config(const std::string& text, const std::string& name) {
    std::map<std::string, std::string> values;  // without the CONFIG_ prefix
    std::istringstream lines(text);
    std::string line;
    while (std::getline(lines, line)) {
        if (!line.empty() && line.back() == '\r') line.pop_back();
        if (!line.starts_with("CONFIG_")) continue;  // comments ("# CONFIG_X is not set") and blanks
        const auto eq = line.find('=');
        if (eq == std::string::npos) continue;
        values[line.substr(7, eq - 7)] = unquote(line.substr(eq + 1));
    }
    KlipperBuildConfig config;
    config.path = name;
    auto mcu = values.find("MCU");
    if (mcu == values.end() || mcu->second.empty())
        throw Error(ErrorKind::BadInput, fmt::format("{} is not a Klipper build configuration (it sets no CONFIG_MCU)", name),
                    "it is the .config file `make menuconfig` writes in the Klipper folder");
    config.mcu = mcu->second;
    config.application_address = number(values, "FLASH_APPLICATION_ADDRESS", name);
    config.serial_baud = number(values, "SERIAL_BAUD", name);
    config.canbus_bitrate = number(values, "CANBUS_FREQUENCY", name);
    if (enabled(values, "USBCANBUS")) config.interface = "USB to CAN bridge";
    else if (enabled(values, "USBSERIAL")) config.interface = "USB";
    else if (enabled(values, "CANSERIAL")) config.interface = "CAN";
    else if (enabled(values, "SERIAL")) config.interface = "serial";
    return config;
}

KlipperBuildConfig read_klipper_config(const std::string& path) {
    std::error_code ec;
    if (!std::filesystem::is_regular_file(path, ec))
        throw Error(ErrorKind::BadInput, fmt::format("{}: no such file", path),
                    "--klipper-config takes the .config in the Klipper folder (none: do not look for one)");
    std::ifstream in(path, std::ios::binary);
    std::ostringstream text;
    text << in.rdbuf();
    if (!in && !in.eof()) throw Error(ErrorKind::Io, fmt::format("{}: cannot read it", path));
    // A .config is a few KiB; anything far larger is not one.
    if (text.str().size() > (1u << 20)) throw Error(ErrorKind::BadInput, fmt::format("{} is not a Klipper build configuration (too large)", path));
    return parse_klipper_config(text.str(), path);
}

std::optional<std::string> klipper_config_beside(const std::string& image_path) {
    namespace fs = std::filesystem;
    std::error_code ec;
    const fs::path image = fs::absolute(image_path, ec);
    if (ec || image.parent_path().filename() != "out") return std::nullopt;
    const fs::path config = image.parent_path().parent_path() / ".config";
    if (!fs::is_regular_file(config, ec)) return std::nullopt;
    return config.string();
}

}  // namespace mcuflash::targets
