#include "storage/card_rules.hpp"

#include <fmt/format.h>

#include <ctime>

#include "core/error.hpp"

namespace mcuflash::storage {

using core::Error;
using core::ErrorKind;

namespace {

std::string folder_of(const std::string& file) {
    auto slash = file.rfind('/');
    return slash == std::string::npos ? "" : file.substr(0, slash);
}
std::string base_of(const std::string& file) {
    auto slash = file.rfind('/');
    return slash == std::string::npos ? file : file.substr(slash + 1);
}
bool same_name(const std::string& a, const std::string& b) {
    return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
               return std::tolower(uint8_t(x)) == std::tolower(uint8_t(y));
           });
}

// What the bootloader renames an installed file to (Klipper's board_defs.py current_firmware_path).
std::string installed_name_for(const std::string& bootloader, const std::string& file) {
    if (bootloader == "creality_sd" || bootloader == "creality_sd_64k") return "";
    if (bootloader == "fysetc_sd") return "OLD.BIN";
    if (bootloader == "fly_sd") return "FLY.CUR";
    const std::string base = base_of(file);
    const auto dot = base.rfind('.');
    const std::string stem = dot == std::string::npos ? base : base.substr(0, dot);
    // "FIRMWARE.CUR" for firmware.bin; Robin_e3.cur, ZNP_ROBIN_NANO.CUR likewise.
    return (stem == "firmware" ? std::string("FIRMWARE") : stem) + ".CUR";
}

}  // namespace

CardRules default_card_rules(const std::string& bootloader) {
    CardRules r;
    r.bootloader = bootloader;
    r.file = "firmware.bin";
    r.installed_name = installed_name_for(bootloader, r.file);
    return r;
}

CardRules card_rules(const targets::Knowledge& knowledge, const targets::Board& board) {
    const targets::Bootloader* card_bootloader = nullptr;
    for (const auto& name : board.bootloaders)
        if (const auto* bl = knowledge.find_bootloader(name); bl && (bl->protocol == "sdcard" || bl->protocol == "msc")) {
            card_bootloader = bl;
            break;
        }
    if (!card_bootloader)
        throw Error(ErrorKind::Usage,
                    fmt::format("the {} takes its firmware through {}, not from an SD card or a drive", board.name,
                                board.flash_method),
                    fmt::format("see `mcuflash guide {}`", board.id));
    CardRules r;
    r.board = board.id;
    r.bootloader = card_bootloader->name;
    // A board updated some other way names its build's output; on a card it is firmware.bin.
    const bool card_method = board.flash_method == "sdcard" || board.flash_method == "msc";
    r.file = card_method && !board.firmware_file.empty() ? board.firmware_file : "firmware.bin";
    if (!r.file.empty() && r.file.front() == '/') r.file.erase(0, 1);
    r.transform = card_method ? board.transform : "";
    r.unique_name = board.unique_name;
    r.installed_name = card_bootloader->protocol == "sdcard" ? installed_name_for(r.bootloader, r.file) : "";
    if (r.bootloader == "monoprice_sd") r.extra_files.push_back("fcupdate.flg");
    return r;
}

std::string file_for_update(const CardRules& rules) {
    if (!rules.unique_name) return rules.file;
    std::time_t t = std::time(nullptr);
    std::tm tm{};
    localtime_r(&t, &tm);
    char stamp[32];
    std::strftime(stamp, sizeof stamp, "%Y%m%d%H%M%S", &tm);
    const std::string folder = folder_of(rules.file);
    return (folder.empty() ? "" : folder + "/") + stamp + base_of(rules.file);
}

const char* verdict_name(CardVerdict::State state) {
    switch (state) {
        case CardVerdict::State::Installed: return "installed";
        case CardVerdict::State::NotInstalled: return "not-installed";
        case CardVerdict::State::NoFile: return "no-file";
        case CardVerdict::State::CannotTell: return "cannot-tell";
    }
    return "?";
}

CardVerdict check_card_after_update(VolumeLink& card, const CardRules& rules) {
    CardVerdict v;
    const std::string folder = folder_of(rules.file);
    const std::string base = base_of(rules.file);
    std::optional<CardFile> pending, installed;
    for (const auto& f : card.list(folder)) {
        if (f.directory) continue;
        const bool is_pending = same_name(f.name, base) ||
                                (rules.unique_name && f.name.size() > base.size() &&
                                 same_name(f.name.substr(f.name.size() - base.size()), base));
        if (is_pending) pending = f;
        if (!rules.installed_name.empty() && same_name(f.name, rules.installed_name)) installed = f;
        if (is_pending || (installed && &f == &*installed)) v.seen.push_back(f);
    }
    if (installed) v.seen.push_back(*installed);
    const std::string where = folder.empty() ? "on the card" : "in " + folder + "/ on the card";
    if (rules.installed_name.empty()) {
        v.state = CardVerdict::State::CannotTell;
        v.words = fmt::format("the {} bootloader leaves the file {}: the card cannot tell whether it was installed; "
                              "check the firmware version the board reports (Klipper's log, or `mcuflash info`)",
                              rules.bootloader, where);
        return v;
    }
    if (pending) {
        v.state = CardVerdict::State::NotInstalled;
        v.words = fmt::format(
            "{} is still {}: the bootloader did not take it. Put the card in the board's own slot, switch the board "
            "off and on (a reset button is not always enough) and wait 30 s; check that the card is FAT32 and at "
            "most 32 GB, and that the file name is what the board's bootloader looks for",
            pending->name, where);
    } else if (installed) {
        v.state = CardVerdict::State::Installed;
        v.words = fmt::format("the bootloader took the file: it is now {} {}", installed->name, where);
    } else {
        v.state = CardVerdict::State::NoFile;
        v.words = fmt::format("neither {} nor {} is {}: some bootloaders delete the file once installed, or this is "
                              "not the card that was written",
                              base, rules.installed_name, where);
    }
    return v;
}

}  // namespace mcuflash::storage
