// data/boards.toml: [boards.ID] rows and [guides.NAME] words, loaded strictly (every key, chip,
// bootloader, protocol and offset checked, with the file and line), and finding boards by name.
#include "targets/boards.hpp"

#include <algorithm>
#include <cctype>
#include <cstdint>
#include <tuple>

#include <fmt/format.h>
#include <toml++/toml.h>

#include "core/error.hpp"
#include "targets/avr_fuses_toml.hpp"
#include "targets/knowledge.hpp"

namespace mcuflash::targets {

namespace {

using core::Error;
using core::ErrorKind;

std::string text(const toml::table& t, const char* key, const std::string& where, bool required = false) {
    const toml::node* node = t.get(key);
    if (!node) {
        if (required) bad_data(where, fmt::format("missing string '{}'", key));
        return {};
    }
    auto value = node->value<std::string>();
    if (!value || (required && value->empty())) bad_data(where, fmt::format("'{}' must be a non-empty string", key));
    return *value;
}

// A string or an array of strings.
std::vector<std::string> texts(const toml::table& t, const char* key, const std::string& where) {
    const toml::node* node = t.get(key);
    if (!node) return {};
    if (auto one = node->value<std::string>()) return {*one};
    std::vector<std::string> out;
    auto* list = node->as_array();
    if (!list) bad_data(where, fmt::format("'{}' must be a string or an array of strings", key));
    for (const auto& e : *list) {
        auto v = e.value<std::string>();
        if (!v || v->empty()) bad_data(where, fmt::format("'{}' must hold non-empty strings", key));
        out.push_back(*v);
    }
    return out;
}

// Methods that need no bootloader on the board: a debug probe, or nothing to flash.
bool needs_bootloader(const std::string& flash_method) { return flash_method != "none" && flash_method != "swd"; }

bool is_slug(const std::string& id) {
    if (id.empty() || !std::isalnum(static_cast<unsigned char>(id.front()))) return false;
    return std::all_of(id.begin(), id.end(), [](char c) {
        return std::islower(static_cast<unsigned char>(c)) || std::isdigit(static_cast<unsigned char>(c)) ||
               c == '-' || c == '.' || c == '+';
    });
}

void check_offset(uint32_t offset, const Chip& chip, const std::string& where) {
    if (offset >= chip.flash_size)
        bad_data(where, fmt::format("app_offset 0x{:X} is past the {}'s {} KiB of flash", offset, chip.name,
                                    chip.flash_size / 1024));
    if (!chip.klipper_offsets.empty()) {
        // Klipper's menu is the authority: it also offers offsets inside an erase unit (128 KiB + 512
        // bytes on the Prusa Buddy), where the bootloader keeps the rest of that unit.
        if (std::find(chip.klipper_offsets.begin(), chip.klipper_offsets.end(), offset) == chip.klipper_offsets.end()) {
            std::string offered;
            for (uint32_t o : chip.klipper_offsets) offered += fmt::format("{}0x{:X}", offered.empty() ? "" : ", ", o);
            bad_data(where, fmt::format("app_offset 0x{:X} is not one Klipper's menuconfig offers for the {} ({})",
                                        offset, chip.name, offered));
        }
        return;
    }
    for (const auto& unit : erase_layout(chip, chip.flash_size))
        if (unit.address - chip.flash_base == offset) return;
    bad_data(where, fmt::format("app_offset 0x{:X} does not start an erase unit of the {}", offset, chip.name));
}

Board parse_board(const std::string& id, const toml::table& t, const std::string& where, const Knowledge& known) {
    check_keys(t,
               {"name", "aliases", "klipper_config", "mcu", "chip", "clock", "bootloaders", "app_offset",
                "flash_method", "firmware_file", "transform", "unique_name", "interface", "entry", "notes"},
               where);
    if (!is_slug(id)) bad_data(where, "a board ID is lower-case letters, digits, '-', '.' and '+'");
    Board b;
    b.id = id;
    b.where = where;
    b.name = text(t, "name", where, true);
    b.aliases = texts(t, "aliases", where);
    b.klipper_configs = texts(t, "klipper_config", where);
    if (b.klipper_configs.empty()) bad_data(where, "missing 'klipper_config': the Klipper config file(s) it comes from");
    b.mcu = text(t, "mcu", where, true);
    b.chip = text(t, "chip", where, true);
    const auto chip = known.chips().find(b.chip);
    if (chip == known.chips().end()) bad_data(where, fmt::format("chip '{}' is not in chips.toml", b.chip));
    b.clock = text(t, "clock", where);
    b.bootloaders = texts(t, "bootloaders", where);
    for (const auto& name : b.bootloaders) {
        if (!known.find_bootloader(name)) bad_data(where, fmt::format("bootloader '{}' is not in bootloaders.toml", name));
        if (std::count(b.bootloaders.begin(), b.bootloaders.end(), name) > 1)
            bad_data(where, fmt::format("bootloader '{}' is named twice", name));
    }
    if (const toml::node* offset = t.get("app_offset")) {
        auto v = offset->value_exact<int64_t>();
        if (!v || *v < 0 || *v > 0xFFFFFFFFll) bad_data(where, "app_offset must be a byte offset from the flash base");
        b.app_offset = static_cast<uint32_t>(*v);
        check_offset(*b.app_offset, chip->second, where);
    }
    b.flash_method = text(t, "flash_method", where, true);
    if (b.flash_method != "none" && !known.protocols().count(b.flash_method))
        bad_data(where, fmt::format("flash_method '{}' is neither a protocol of protocols.toml nor 'none'", b.flash_method));
    if (needs_bootloader(b.flash_method) && b.bootloaders.empty())
        bad_data(where, fmt::format("flash_method '{}' goes through a bootloader: name it in 'bootloaders'", b.flash_method));
    b.firmware_file = text(t, "firmware_file", where);
    b.transform = text(t, "transform", where);
    if (!b.transform.empty()) {
        const auto& all = transforms();
        if (std::none_of(all.begin(), all.end(), [&](const Transform& x) { return x.name == b.transform; }))
            bad_data(where, fmt::format("transform '{}' is none of mks-robin, chitu, srec", b.transform));
    }
    if (const toml::node* unique = t.get("unique_name")) {
        auto v = unique->value<bool>();
        if (!v) bad_data(where, "unique_name must be true or false");
        b.unique_name = *v;
    }
    if ((!b.transform.empty() || b.unique_name || b.firmware_file.find('/') != std::string::npos) &&
        b.flash_method != "sdcard")
        bad_data(where, "transform, unique_name and a folder in firmware_file are for SD-card boards");
    b.interface = text(t, "interface", where);
    b.entry = text(t, "entry", where);
    b.notes = text(t, "notes", where);
    return b;
}

BootloaderGuide parse_guide(const std::string& name, const toml::table& t, const std::string& where,
                            const Knowledge& known) {
    check_keys(t, {"classic", "install"}, where);
    if (!known.find_bootloader(name) && !known.protocols().count(name))
        bad_data(where, fmt::format("'{}' is neither a bootloader of bootloaders.toml nor a protocol", name));
    return {text(t, "classic", where, true), text(t, "install", where, true)};
}

// ---- finding boards by name

std::vector<std::vector<std::string>> names_in_words(const Board& b) {
    std::vector<std::vector<std::string>> out{name_words(b.id), name_words(b.name)};
    for (const auto& alias : b.aliases) out.push_back(name_words(alias));
    return out;
}

bool is_word(const std::string& w) { return !w.empty() && std::isalpha(static_cast<unsigned char>(w.front())); }

// 0: the same word; 1: `typed` begins a longer word ("octo" -> "octopus"); -1: no match.
int word_match(const std::string& typed, const std::string& word) {
    if (typed == word) return 0;
    if (is_word(typed) && typed.size() >= 3 && word.size() > typed.size() && word.compare(0, typed.size(), typed) == 0)
        return 1;
    return -1;
}

// How well the words of one name hold every typed word: the extra words plus the words matched only
// by their beginning (lower is better), or -1 when some typed word is missing.
int fit(const std::vector<std::string>& typed, const std::vector<std::string>& name) {
    int partial = 0;
    for (const auto& t : typed) {
        int best = -1;
        for (const auto& w : name) {
            int m = word_match(t, w);
            if (m >= 0 && (best < 0 || m < best)) best = m;
        }
        if (best < 0) return -1;
        partial += best;
    }
    return static_cast<int>(name.size() - std::min(name.size(), typed.size())) + 2 * partial;
}

size_t edit_distance(const std::string& a, const std::string& b) {
    std::vector<size_t> row(b.size() + 1);
    for (size_t j = 0; j <= b.size(); ++j) row[j] = j;
    for (size_t i = 1; i <= a.size(); ++i) {
        size_t diagonal = row[0];
        row[0] = i;
        for (size_t j = 1; j <= b.size(); ++j) {
            size_t up = row[j];
            row[j] = std::min({row[j] + 1, row[j - 1] + 1, diagonal + (a[i - 1] == b[j - 1] ? 0 : 1)});
            diagonal = up;
        }
    }
    return row[b.size()];
}

}  // namespace

const std::vector<Transform>& transforms() {
    static const std::vector<Transform> all{
        // XORs bytes 320..31039 with a 32-byte key (MKS Robin bootloaders; its own inverse).
        {"mks-robin", "./scripts/update_mks_robin.py out/klipper.bin out/{firmware_file}"},
        // Tronxy Chitu v6: scrambled blocks behind a 12-byte header.
        {"chitu", "./scripts/update_chitu.py out/klipper.bin out/{firmware_file}"},
        // TH3D EZBoard v2.0: Motorola S-record text, named .bin.
        {"srec", "arm-none-eabi-objcopy -O srec out/klipper.elf out/{firmware_file}"},
    };
    return all;
}

std::string klipper_offset_choice(const Chip& chip, uint32_t offset) {
    // The HC32F460 menu names the application address itself; the others a bootloader size.
    if (chip.family == "hc32f460") return fmt::format("0x{:06X}", offset);
    // RP2040's "No bootloader" build starts at 0x100, after the boot2 stage it carries itself.
    if (offset < 1024) return "No bootloader";
    if (offset % 1024 == 0) return fmt::format("{}KiB bootloader", offset / 1024);
    return fmt::format("{}KiB bootloader with {} byte offset", offset / 1024, offset % 1024);
}

std::vector<std::string> name_words(const std::string& text) {
    std::vector<std::string> words;
    for (size_t i = 0; i < text.size();) {
        auto c = static_cast<unsigned char>(text[i]);
        if (std::isalpha(c)) {
            std::string w;
            while (i < text.size() && std::isalpha(static_cast<unsigned char>(text[i])))
                w += static_cast<char>(std::tolower(static_cast<unsigned char>(text[i++])));
            words.push_back(w);
        } else if (std::isdigit(c)) {
            // A number with its dots: "1.4", "4.2.2".
            std::string n;
            while (i < text.size() && (std::isdigit(static_cast<unsigned char>(text[i])) ||
                                       (text[i] == '.' && i + 1 < text.size() &&
                                        std::isdigit(static_cast<unsigned char>(text[i + 1])) && !n.empty())))
                n += text[i++];
            while (n.size() > 2 && n.ends_with(".0")) n.resize(n.size() - 2);
            if (!words.empty() && words.back() == "v") words.pop_back();  // "v1.4" is "1.4"
            words.push_back(n);
        } else {
            ++i;
        }
    }
    return words;
}

BoardTables parse_boards(const std::vector<std::pair<std::string, toml::table>>& documents, const Knowledge& known) {
    BoardTables tables;
    for (const auto& [name, doc] : documents) {
        if (auto* boards = doc["boards"].as_table())
            for (auto&& [key, value] : *boards) {
                std::string id{key.str()};
                std::string where = where_of(name, value, "boards." + id);
                auto* t = value.as_table();
                if (!t) bad_data(where, "must be a table");
                if (tables.boards.count(id)) bad_data(where, "defined twice");
                tables.boards.emplace(id, parse_board(id, *t, where, known));
            }
        if (auto* guides = doc["guides"].as_table())
            for (auto&& [key, value] : *guides) {
                std::string guide{key.str()};
                std::string where = where_of(name, value, "guides." + guide);
                auto* t = value.as_table();
                if (!t) bad_data(where, "must be a table");
                if (tables.guides.count(guide)) bad_data(where, "defined twice");
                tables.guides.emplace(guide, parse_guide(guide, *t, where, known));
            }
    }
    return tables;
}

const BootloaderGuide* guide_for(const Knowledge& knowledge, const std::string& bootloader) {
    const auto& guides = knowledge.guides();
    if (auto it = guides.find(bootloader); it != guides.end()) return &it->second;
    if (const auto* row = knowledge.find_bootloader(bootloader))
        if (auto it = guides.find(row->protocol); it != guides.end()) return &it->second;
    return nullptr;
}

std::vector<const Board*> Knowledge::find_boards(const std::string& pattern) const {
    if (auto it = boards_.find(pattern); it != boards_.end()) return {&it->second};
    const auto typed = name_words(pattern);
    if (typed.empty()) return {};
    std::vector<const Board*> same;
    for (const auto& [id, board] : boards_) {
        const auto names = names_in_words(board);
        if (std::find(names.begin(), names.end(), typed) != names.end()) same.push_back(&board);
    }
    if (!same.empty()) return same;
    // Every board with all the words: one of its names holding them all first, the tightest first.
    std::vector<std::pair<int, const Board*>> ranked;
    for (const auto& [id, board] : boards_) {
        const auto names = names_in_words(board);
        int best = -1;
        std::vector<std::string> all;
        for (const auto& words : names) {
            int f = fit(typed, words);
            if (f >= 0 && (best < 0 || f < best)) best = f;
            all.insert(all.end(), words.begin(), words.end());
        }
        if (best < 0 && fit(typed, all) >= 0) best = 1000;  // spread over its name and aliases
        if (best >= 0) ranked.emplace_back(best, &board);
    }
    std::stable_sort(ranked.begin(), ranked.end(), [](const auto& a, const auto& b) { return a.first < b.first; });
    std::vector<const Board*> out;
    for (const auto& [score, board] : ranked) out.push_back(board);
    return out;
}

std::vector<const Board*> nearest_boards(const Knowledge& knowledge, const std::string& pattern, size_t count) {
    const auto typed = name_words(pattern);
    std::string joined;
    for (const auto& w : typed) joined += w;
    // Typed words that are some word of the board's names, or nearly (a typo, a beginning), count
    // most; then how far the whole name is from what was typed.
    std::vector<std::tuple<int, size_t, const Board*>> scored;
    for (const auto& [id, board] : knowledge.boards()) {
        int hits = 0;
        size_t distance = SIZE_MAX;
        for (const auto& words : names_in_words(board)) {
            int h = 0;
            for (const auto& t : typed) {
                int best = 0;
                for (const auto& w : words) {
                    if (t == w) best = std::max(best, 2);
                    else if (word_match(t, w) == 1 || (is_word(t) && t.size() > 3 && edit_distance(t, w) <= 1))
                        best = std::max(best, 1);
                }
                h += best;
            }
            hits = std::max(hits, h);
            std::string name;
            for (const auto& w : words) name += w;
            distance = std::min(distance, edit_distance(joined, name));
        }
        scored.emplace_back(-hits, distance, &board);
    }
    std::stable_sort(scored.begin(), scored.end(), [](const auto& a, const auto& b) {
        return std::tie(std::get<0>(a), std::get<1>(a)) < std::tie(std::get<0>(b), std::get<1>(b));
    });
    std::vector<const Board*> out;
    for (const auto& entry : scored) {
        if (out.size() == count) break;
        out.push_back(std::get<2>(entry));
    }
    return out;
}

}  // namespace mcuflash::targets
