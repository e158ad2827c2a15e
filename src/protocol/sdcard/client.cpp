#include "protocol/sdcard/client.hpp"

#include <fmt/format.h>

#include "core/error.hpp"

namespace mcuflash::protocol::sdcard {

using core::Error;
using core::ErrorKind;

namespace {

std::string folder_of(const std::string& file) {
    auto slash = file.rfind('/');
    return slash == std::string::npos ? "" : file.substr(0, slash);
}

std::string size_words(uint64_t bytes) {
    if (bytes >= (1ull << 30)) return fmt::format("{:.1f} GiB", double(bytes) / (1ull << 30));
    return fmt::format("{:.1f} MiB", double(bytes) / (1ull << 20));
}

// The one SD-card bootloader the knowledge base has for a chip ("" when none, or several).
std::string only_card_bootloader(const targets::Knowledge& kb, const std::string& chip) {
    if (chip.empty()) return {};
    const auto found = kb.bootloaders_for("sdcard", kb.chip(chip).name);
    return found.size() == 1 ? found.front()->name : std::string();
}

}  // namespace

Client::Client(storage::VolumeLink& card, const ConnectOptions& options, bool drive)
    : card_(card), options_(options), drive_(drive) {}

DeviceInfo Client::connect() {
    const auto& kb = options_.knowledge_base();
    std::string chip_name = options_.chip;
    if (!options_.board.empty()) {
        const auto found = kb.find_boards(options_.board);
        if (found.size() != 1)
            throw Error(ErrorKind::Usage, fmt::format("'{}' names {} boards", options_.board, found.size()),
                        "give the board's ID (`mcuflash boards`)");
        const auto& board = *found.front();
        rules_ = storage::card_rules(kb, board);
        if (chip_name.empty()) chip_name = board.chip;
        if (!options_.bootloader.empty()) rules_.bootloader = options_.bootloader;
    } else if (drive_) {
        // An MSC bootloader's drive takes the build's output as it is: klipper.bin.
        std::string bootloader = options_.bootloader;
        if (bootloader.empty() && !chip_name.empty()) {
            const auto found = kb.bootloaders_for("msc", kb.chip(chip_name).name);
            if (found.size() == 1) bootloader = found.front()->name;
        }
        if (bootloader.empty() || chip_name.empty())
            throw Error(ErrorKind::Usage,
                        fmt::format("{}: say which board the MSC bootloader's drive is (--board), or its chip (--chip, "
                                    "and --bootloader where the chip has several)",
                                    card_.describe()),
                        "e.g. --chip stm32f103xb (its MSC bootloader, stm32_msc, leaves the application at 8 KiB)");
        rules_ = storage::default_card_rules(bootloader);
        rules_.file = "klipper.bin";
        rules_.installed_name.clear();
    } else if (!options_.bootloader.empty() && !chip_name.empty()) {
        rules_ = storage::default_card_rules(options_.bootloader);
    } else if (const auto only = only_card_bootloader(kb, chip_name); !only.empty()) {
        rules_ = storage::default_card_rules(only);  // the chip's one SD-card bootloader (LPC176x)
    } else {
        throw Error(ErrorKind::Usage,
                    fmt::format("{} is a card or drive: say which board it is for with --board (the board decides the "
                                "file name and where the application starts)",
                                card_.describe()),
                    "e.g. --board \"skr 1.4\" (`mcuflash boards` lists them); or --chip and --bootloader "
                    "(lpc1768 and lpc176x_sd) for firmware.bin");
    }
    const auto& chip = kb.chip(chip_name);
    const auto* bootloader = kb.find_bootloader(rules_.bootloader);
    if (!bootloader)
        throw Error(ErrorKind::Unsupported, fmt::format("the knowledge base has no bootloader '{}'", rules_.bootloader));
    std::optional<uint32_t> offset;
    if (!options_.board.empty()) {
        const auto& board = *kb.find_boards(options_.board).front();
        offset = board.app_offset;
    }
    if (!offset) offset = bootloader->size_on(chip.name);
    if (!offset)
        throw Error(ErrorKind::Unsupported,
                    fmt::format("the {} bootloader's size on a {} is not known: mcuflash cannot tell where the "
                                "application starts",
                                bootloader->name, chip.name));
    if (bootloader->protocol == "msc") drive_ = true;
    if (drive_) device_ = storage::drive_behind(card_.path());
    info_ = DeviceInfo{};
    info_.chip = chip.name;
    info_.bootloader = bootloader->name;
    info_.bootloader_text = bootloader->description;
    info_.flash_base = chip.flash_base;
    info_.flash_size = chip.flash_size;
    info_.app_start = chip.flash_base + *offset;
    info_.app_end = chip.flash_base + chip.flash_size;
    info_.page_size = 512;
    const auto card = card_.summary();
    info_.details.emplace_back(drive_ ? "drive" : "card", card_.describe());
    if (device_) info_.details.emplace_back("drive device", device_->describe());
    if (card.file_system != "mounted")
        info_.details.emplace_back("file system", fmt::format("{}{}, {} free of {}", card.file_system,
                                                              card.label.empty() ? "" : " \"" + card.label + "\"",
                                                              size_words(card.free_bytes), size_words(card.size_bytes)));
    info_.details.emplace_back("card file", rules_.file + (rules_.transform.empty() ? "" : " (" + rules_.transform + ")"));
    if (options_.warn && !drive_) {
        if (card.file_system == "FAT12" || card.file_system == "FAT16")
            options_.warn(fmt::format("the card is {}: most board bootloaders read FAT32 (FAT16 is read by many, "
                                      "FAT12 by few); if the board does not take the file, format the card FAT32",
                                      card.file_system));
        if (card.size_bytes > 32ull << 30)
            options_.warn(fmt::format("the card holds {}: many board bootloaders read cards of at most 32 GB", size_words(card.size_bytes)));
        if (!rules_.installed_name.empty())
            if (auto old = card_.find((folder_of(rules_.file).empty() ? "" : folder_of(rules_.file) + "/") + rules_.installed_name))
                options_.warn(fmt::format("{} from an earlier update is on the card; it is left alone", old->name));
    }
    return info_;
}

Capabilities Client::capabilities() const {
    Capabilities c;
    c.whole_image = true;
    c.can_read = !drive_;  // a drive's copy of the file is not the flash it was written into
    c.installed_at_next_start = !drive_;
    return c;
}

void Client::write(uint32_t, std::span<const uint8_t>) {
    throw std::logic_error("pages written to a card: the plan gives a card the whole image");
}

void Client::write_image(uint32_t address, std::span<const uint8_t> bytes) {
    if (address < info_.app_start) throw std::logic_error("a card image below the application start");
    // The bootloader writes the file from the application start on: a gap before the image is erased flash.
    std::vector<uint8_t> firmware(address - info_.app_start, 0xFF);
    firmware.insert(firmware.end(), bytes.begin(), bytes.end());
    const auto file = storage::apply_transform(rules_.transform, info_.app_start, firmware);
    written_name_ = storage::file_for_update(rules_);
    read_back_.reset();
    try {
        card_.write_file(written_name_, file);
    } catch (const Error& e) {
        // An MSC bootloader may take the file and reset as soon as its last sector is in, before the
        // host has flushed everything: an I/O error with the drive gone is that.
        if (!drive_ || !device_ || drive_present(*device_) || e.kind() == ErrorKind::Usage) throw;
        left_while_writing_ = true;
        if (options_.warn)
            options_.warn(fmt::format("the drive left while the file was being flushed ({}): the board took it", e.what()));
        return;
    }
    for (const auto& extra : rules_.extra_files) card_.write_file(extra, {});
}

void Client::start_application() {
    if (!drive_ || !device_ || left_while_writing_) return;
    using namespace std::chrono_literals;
    constexpr auto limit = 20s;
    if (!storage::wait_until_drive_leaves(*device_, limit, [this](std::chrono::milliseconds d) { card_.pause(d); }))
        throw Error(ErrorKind::Timeout,
                    fmt::format("the drive is still there {} s after {} was written: the MSC bootloader did not take it",
                                limit.count(), written_name_),
                    "check that the file is for this board (linked for its application offset) and not too large; "
                    "unplug the board and try again");
}

std::vector<uint8_t> Client::read(uint32_t address, uint32_t length) {
    if (drive_)
        throw Error(ErrorKind::Usage, "an MSC bootloader's drive takes a file; it cannot give its flash back");
    if (written_name_.empty())
        throw Error(ErrorKind::Usage, "a card holds files, not flash: only the file just written can be read back");
    if (!read_back_)
        read_back_ = storage::undo_transform(rules_.transform, info_.app_start, card_.read_file(written_name_));
    std::vector<uint8_t> out;
    if (address < info_.app_start) return out;
    const uint64_t from = address - info_.app_start;
    if (from >= read_back_->size()) return out;
    const uint64_t n = std::min<uint64_t>(length, read_back_->size() - from);
    out.assign(read_back_->begin() + long(from), read_back_->begin() + long(from + n));
    return out;
}

ProtocolInfo protocol_info() {
    ProtocolInfo info;
    info.name = "sdcard";
    info.description = "a vendor SD-card bootloader: the board installs a file from its SD card at power-on";
    info.runs_on = link::LinkKind::Volume;
    info.installs_card_file = true;
    info.make = [](link::Link& link, const ConnectOptions& options) -> std::unique_ptr<Bootloader> {
        return std::make_unique<Client>(link::link_as<storage::VolumeLink>(link, "sdcard"), options);
    };
    return info;
}

ProtocolInfo msc_protocol_info() {
    ProtocolInfo info;
    info.name = "msc";
    info.description = "a USB mass-storage bootloader: the board shows a drive and installs the file copied onto it";
    info.runs_on = link::LinkKind::Volume;
    info.make = [](link::Link& link, const ConnectOptions& options) -> std::unique_ptr<Bootloader> {
        return std::make_unique<Client>(link::link_as<storage::VolumeLink>(link, "msc"), options, true);
    };
    return info;
}

}  // namespace mcuflash::protocol::sdcard
