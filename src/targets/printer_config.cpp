#include "targets/printer_config.hpp"

#include <fmt/format.h>
#include <glob.h>

#include <algorithm>
#include <cctype>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>

#include "core/error.hpp"

namespace mcuflash::targets {

namespace fs = std::filesystem;
using core::Error;
using core::ErrorKind;

namespace {

using Section = std::map<std::string, std::string>;

struct Reader {
    std::map<std::string, Section> sections;
    std::vector<std::string> section_order;
    std::map<std::string, std::string> section_file;
    std::vector<std::string> files;
    std::set<std::string> visiting;  // the include chain: a file that includes itself is a loop

    void read(const fs::path& path);
};

std::string trim(std::string text) {
    const auto first = text.find_first_not_of(" \t\r\n");
    if (first == std::string::npos) return "";
    const auto last = text.find_last_not_of(" \t\r\n");
    return text.substr(first, last - first + 1);
}

// The line without its comment: '#' anywhere, ';' at the start or after whitespace.
std::string strip_comment(const std::string& line) {
    std::string out = line.substr(0, line.find('#'));
    for (size_t i = 0; i < out.size(); ++i)
        if (out[i] == ';' && (i == 0 || std::isspace(static_cast<unsigned char>(out[i - 1])))) return out.substr(0, i);
    return out;
}

std::vector<fs::path> resolve_include(const fs::path& including, const std::string& spec, const std::string& where) {
    const fs::path pattern = fs::path(spec).is_absolute() ? fs::path(spec) : including.parent_path() / spec;
    glob_t matches{};
    const int result = ::glob(pattern.c_str(), 0, nullptr, &matches);
    std::vector<fs::path> out;
    if (result == 0)
        for (size_t i = 0; i < matches.gl_pathc; ++i) out.emplace_back(matches.gl_pathv[i]);
    globfree(&matches);
    const bool wildcard = spec.find_first_of("*?[") != std::string::npos;
    if (out.empty() && !wildcard)
        throw Error(ErrorKind::BadInput, fmt::format("{}: [include {}]: {} does not exist", where, spec, pattern.string()));
    std::sort(out.begin(), out.end());  // Klipper reads the matches in sorted order
    return out;
}

void Reader::read(const fs::path& path) {
    const std::string key = fs::weakly_canonical(path).string();
    if (visiting.count(key)) throw Error(ErrorKind::BadInput, fmt::format("{} includes itself (an include loop)", path.string()));
    std::ifstream in(path);
    if (!in) throw Error(ErrorKind::BadInput, fmt::format("cannot read {}", path.string()));
    visiting.insert(key);
    files.push_back(path.string());
    std::string section, option, line;
    for (int number = 1; std::getline(in, line); ++number) {
        const std::string where = fmt::format("{}:{}", path.string(), number);
        const std::string text = strip_comment(line);
        if (trim(text).empty()) continue;
        const bool continued = std::isspace(static_cast<unsigned char>(text[0]));
        if (continued && !option.empty()) {
            auto& value = sections[section][option];
            value += (value.empty() ? "" : "\n") + trim(text);
            continue;
        }
        const std::string content = trim(text);
        if (content.front() == '[') {
            if (content.back() != ']') throw Error(ErrorKind::BadInput, fmt::format("{}: a section header without ']'", where));
            const std::string header = trim(content.substr(1, content.size() - 2));
            option.clear();
            if (header.rfind("include ", 0) == 0) {
                for (const auto& included : resolve_include(path, trim(header.substr(8)), where)) read(included);
                section.clear();
                continue;
            }
            section = header;
            if (!sections.count(section)) {
                section_order.push_back(section);
                section_file[section] = path.string();
            }
            sections[section];
            continue;
        }
        const auto separator = content.find_first_of(":=");
        if (section.empty() || separator == std::string::npos || separator == 0)
            throw Error(ErrorKind::BadInput,
                        fmt::format("{}: '{}' is not 'option: value' inside a [section]", where, content));
        option = trim(content.substr(0, separator));
        std::transform(option.begin(), option.end(), option.begin(), [](unsigned char c) { return std::tolower(c); });
        sections[section][option] = trim(content.substr(separator + 1));
    }
    visiting.erase(key);
}

}  // namespace

PrinterConfig read_printer_config(const std::string& path) {
    std::error_code ec;
    if (!fs::exists(path, ec))
        throw Error(ErrorKind::NotFound, fmt::format("{} does not exist", path),
                    "give Klipper's printer.cfg with --config (usually ~/printer_data/config/printer.cfg)");
    Reader reader;
    reader.read(path);
    PrinterConfig config;
    config.path = path;
    config.files = reader.files;
    for (const auto& name : reader.section_order) {
        if (name != "mcu" && name.rfind("mcu ", 0) != 0) continue;
        const Section& s = reader.sections.at(name);
        PrinterMcu mcu;
        mcu.name = name == "mcu" ? "mcu" : trim(name.substr(4));
        mcu.file = reader.section_file.at(name);
        auto get = [&s](const char* key) { return s.count(key) ? s.at(key) : std::string(); };
        mcu.serial = get("serial");
        mcu.canbus_uuid = get("canbus_uuid");
        mcu.canbus_interface = s.count("canbus_interface") ? get("canbus_interface") : "can0";
        mcu.restart_method = get("restart_method");
        if (s.count("baud")) {
            try {
                mcu.baud = static_cast<uint32_t>(std::stoul(get("baud")));
            } catch (const std::exception&) {
                throw Error(ErrorKind::BadInput, fmt::format("{}: [{}] baud: '{}' is not a number", mcu.file, name, get("baud")));
            }
        }
        if (mcu.serial.empty() && mcu.canbus_uuid.empty())
            throw Error(ErrorKind::BadInput, fmt::format("{}: [{}] has neither serial nor canbus_uuid", mcu.file, name),
                        "Klipper needs one of them to reach the MCU");
        config.mcus.push_back(std::move(mcu));
    }
    std::stable_partition(config.mcus.begin(), config.mcus.end(), [](const PrinterMcu& m) { return m.name == "mcu"; });
    return config;
}

std::string default_printer_config() {
    const char* home = std::getenv("HOME");
    if (!home) return "";
    std::error_code ec;
    for (const char* relative : {"printer_data/config/printer.cfg", "printer.cfg"}) {
        const fs::path candidate = fs::path(home) / relative;
        if (fs::exists(candidate, ec)) return candidate.string();
    }
    return "";
}

}  // namespace mcuflash::targets
