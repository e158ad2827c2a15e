// Cards and drives as devices: `img:PATH` (an image file of a card), a block device or partition
// (/dev/sdX, /dev/sdX1, /dev/mmcblk0p1, /dev/disk/by-id/...), written unmounted by mcuflash's own FAT
// writer; `dir:PATH` (a mounted volume), written through its file system. `list` shows the removable
// disks present, with what their card looks like.
#include <fmt/format.h>

#include <filesystem>
#include <fstream>

#include "core/error.hpp"
#include "device/device.hpp"
#include "storage/card_rules.hpp"
#include "storage/drive_presence.hpp"
#include "storage/volume_link.hpp"

namespace mcuflash::device {

namespace {

namespace fs = std::filesystem;

std::string read_line(const fs::path& p) {
    std::ifstream in(p);
    std::string s;
    std::getline(in, s);
    return s;
}

std::string size_words(uint64_t bytes) {
    if (bytes >= (1ull << 30)) return fmt::format("{:.1f} GiB", double(bytes) / (1ull << 30));
    return fmt::format("{:.1f} MiB", double(bytes) / (1ull << 20));
}

// What a card holds that tells it is a firmware card: FIRMWARE.CUR, firmware.bin, a known file name.
std::string firmware_signs(storage::VolumeLink& card, const targets::Knowledge& knowledge) {
    std::vector<std::string> known = {"firmware.bin", "FIRMWARE.CUR", "OLD.BIN"};
    for (const auto& [id, board] : knowledge.boards())
        if (board.flash_method == "sdcard" && !board.firmware_file.empty()) known.push_back(board.firmware_file);
    std::string out;
    for (const auto& f : card.list()) {
        for (const auto& k : known)
            if (f.name.size() == k.size() &&
                std::equal(f.name.begin(), f.name.end(), k.begin(),
                           [](char a, char b) { return std::tolower(uint8_t(a)) == std::tolower(uint8_t(b)); })) {
                out += (out.empty() ? "" : ", ") + f.name;
                break;
            }
    }
    return out;
}

// What a card or drive is: a UF2 drive (INFO_UF2.TXT in its root), an MSC bootloader's drive (its USB
// id is one of an msc bootloader in data/bootloaders.toml), else an SD card.
std::string drive_protocol(const std::string& path, bool directory, const targets::Knowledge& knowledge) {
    try {
        bool uf2 = false;
        if (directory) {
            std::error_code ec;
            uf2 = fs::exists(fs::path(path) / "INFO_UF2.TXT", ec);  // vfat looks names up in any case
        } else if (storage::mounted_at(path).empty()) {
            uf2 = storage::VolumeLink::open_unmounted(path)->find("INFO_UF2.TXT").has_value();
        }
        if (uf2) return std::string("uf2");
        if (auto drive = storage::drive_behind(path); drive && drive->usb)
            for (const auto& [name, bl] : knowledge.bootloaders())
                if (bl.protocol == "msc" &&
                    std::find(bl.usb_ids.begin(), bl.usb_ids.end(), *drive->usb) != bl.usb_ids.end())
                    return std::string("msc");
    } catch (const core::Error&) {
        // not readable as FAT here: the sdcard client says why
    }
    return std::string("sdcard");
}

// Removable disks and USB disks (card readers, the SD slot, boards' drives), each partition that holds FAT.
std::vector<Candidate> discover_cards(const targets::Knowledge& knowledge, const link::WarningSink&) {
    std::vector<Candidate> out;
    std::error_code ec;
    for (const auto& disk : fs::directory_iterator("/sys/block", ec)) {
        const std::string name = disk.path().filename().string();
        const bool mmc = name.rfind("mmcblk", 0) == 0;
        if (!mmc && name.rfind("sd", 0) != 0) continue;
        // Removable media, or any disk on USB: a board's own drive (the RP2040 ROM's) says it is fixed.
        const bool on_usb = fs::canonical(disk.path(), ec).string().find("/usb") != std::string::npos;
        if (!mmc && !on_usb && read_line(disk.path() / "removable") != "1") continue;
        if (read_line(disk.path() / "size") == "0") continue;  // a reader without a card
        std::vector<std::string> paths;
        for (const auto& part : fs::directory_iterator(disk.path(), ec))
            if (fs::exists(part.path() / "partition")) paths.push_back("/dev/" + part.path().filename().string());
        if (paths.empty()) paths.push_back("/dev/" + name);
        std::sort(paths.begin(), paths.end());
        for (const auto& path : paths) {
            // No protocol: a card is never taken as "the one device" when -d is left out.
            Candidate c{path, "", link::LinkKind::Volume, "", {{"path", path}, {"protocol", "sdcard"}}};
            if (auto where = storage::mounted_at(path); !where.empty()) {
                c.device = "dir:" + where;
                c.detail = fmt::format("{} mounted at {}", path, where);
                c.facts["mounted_at"] = where;
                try {
                    auto card = storage::VolumeLink::open_directory(where);
                    auto s = card->summary();
                    c.detail += fmt::format(", {} free of {}", size_words(s.free_bytes), size_words(s.size_bytes));
                    if (auto signs = firmware_signs(*card, knowledge); !signs.empty()) {
                        c.detail += ", a firmware card (" + signs + ")";
                        c.facts["firmware_files"] = signs;
                    }
                } catch (const core::Error&) {
                }
            } else {
                try {
                    auto card = storage::VolumeLink::open_unmounted(path);
                    auto s = card->summary();
                    c.detail = fmt::format("{}{}, {} free of {}", s.file_system, s.label.empty() ? "" : " \"" + s.label + "\"",
                                           size_words(s.free_bytes), size_words(s.size_bytes));
                    c.facts["file_system"] = s.file_system;
                    c.facts["label"] = s.label;
                    c.facts["size"] = std::to_string(s.size_bytes);
                    c.facts["free"] = std::to_string(s.free_bytes);
                    if (auto signs = firmware_signs(*card, knowledge); !signs.empty()) {
                        c.detail += ", a firmware card (" + signs + ")";
                        c.facts["firmware_files"] = signs;
                    }
                } catch (const core::Error& e) {
                    c.detail = fmt::format("a removable disk ({})", e.what());
                }
            }
            // A UF2 drive or an MSC bootloader's drive: the board itself, in its bootloader.
            const bool mounted = c.device.rfind("dir:", 0) == 0;
            const std::string drive = drive_protocol(mounted ? c.device.substr(4) : path, mounted, knowledge);
            if (drive != "sdcard") {
                c.facts["protocol"] = drive;
                c.detail += drive == "uf2" ? "; a UF2 drive: a board in its bootloader (mcuflash flash FILE -d " + c.device + ")"
                                           : "; an MSC bootloader's drive (mcuflash flash FILE -p msc -d " + c.device + ")";
            }
            out.push_back(std::move(c));
        }
    }
    return out;
}

Transport card_transport(std::string scheme, std::string prefix, std::string syntax, bool directory, bool discover) {
    Transport t;
    t.scheme = std::move(scheme);
    t.prefix = std::move(prefix);
    t.syntax = std::move(syntax);
    t.kind = link::LinkKind::Volume;
    const bool keep_prefix = t.prefix.rfind("/dev/", 0) == 0;
    t.open = [directory, keep_prefix, prefix = t.prefix](const Address& address,
                                                         const OpenContext&) -> std::unique_ptr<link::Link> {
        const std::string path = keep_prefix ? prefix + address.rest : address.rest;
        if (directory) return storage::VolumeLink::open_directory(path);
        return storage::VolumeLink::open_unmounted(path);
    };
    t.protocol_for = [directory, keep_prefix, prefix = t.prefix](const Address& address, const targets::Knowledge& kb) {
        return drive_protocol(keep_prefix ? prefix + address.rest : address.rest, directory, kb);
    };
    if (discover) t.discover = discover_cards;
    return t;
}

}  // namespace

storage::CardVerdict check_card(const DeviceOptions& options, const targets::Knowledge& knowledge) {
    const Address address = parse_address(options.device);
    const Transport& transport = transport_for(address);
    if (!transport.kind || *transport.kind != link::LinkKind::Volume)
        throw core::Error(core::ErrorKind::Usage, fmt::format("{} is not a card or drive", options.device),
                          "give the card as img:PATH, /dev/sdX1 or dir:MOUNTPOINT");
    storage::CardRules rules;
    if (!options.board.empty()) {
        const auto found = knowledge.find_boards(options.board);
        if (found.size() != 1)
            throw core::Error(core::ErrorKind::Usage, fmt::format("'{}' names {} boards", options.board, found.size()));
        rules = storage::card_rules(knowledge, *found.front());
    } else if (!options.bootloader.empty()) {
        rules = storage::default_card_rules(options.bootloader);
    } else if (!options.chip.empty() && knowledge.bootloaders_for("sdcard", knowledge.chip(options.chip).name).size() == 1) {
        rules = storage::default_card_rules(knowledge.bootloaders_for("sdcard", knowledge.chip(options.chip).name).front()->name);
    } else {
        throw core::Error(core::ErrorKind::Usage, "say which board the card is for with --board");
    }
    DeviceOptions none;
    auto opened = transport.open(address, OpenContext{none, nullptr, {}, {}});
    return storage::check_card_after_update(link::link_as<storage::VolumeLink>(*opened, "sdcard"), rules);
}

std::vector<Transport> storage_transports() {
    return {
        card_transport("img", "img:", "img:PATH (an image file of an SD card)", false, false),
        card_transport("dir", "dir:", "dir:PATH (a mounted SD card or drive)", true, false),
        card_transport("disk", "/dev/sd", "/dev/sdX[N] (an unmounted SD card in a reader)", false, true),
        card_transport("mmc", "/dev/mmcblk", "/dev/mmcblkNpM (the SD slot)", false, false),
        card_transport("disk-by", "/dev/disk/", "/dev/disk/by-id/... (a card by name)", false, false),
    };
}

}  // namespace mcuflash::device
