#include "protocol/uf2drive/client.hpp"

#include <fmt/format.h>

#include <sstream>

#include "core/error.hpp"
#include "image/image.hpp"
#include "image/loader.hpp"
#include "storage/uf2_families.hpp"

namespace mcuflash::protocol::uf2drive {

using core::Error;
using core::ErrorKind;
using namespace std::chrono_literals;

namespace {

std::string trim(std::string s) {
    while (!s.empty() && (s.back() == '\r' || s.back() == ' ' || s.back() == '\t')) s.pop_back();
    size_t i = 0;
    while (i < s.size() && (s[i] == ' ' || s[i] == '\t')) ++i;
    return s.substr(i);
}

std::string lower(std::string s) {
    for (auto& c : s) c = char(std::tolower(uint8_t(c)));
    return s;
}

// The bootloader row of data/bootloaders.toml that shows a UF2 drive on this chip (its size there is
// the application offset).
const targets::Bootloader* uf2_bootloader_on(const std::string& chip, const targets::Knowledge& kb) {
    for (const auto& [name, bootloader] : kb.bootloaders())
        if (!bootloader.uf2_drive.empty() && bootloader.size_on(chip)) return &bootloader;
    return nullptr;
}

// The chip a Board-ID names: "RPI-RP2" is the RP2040 ROM; Adafruit's start with the part
// ("SAMD51J19A-Feather-v0").
std::string chip_from_board_id(const std::string& board_id, const targets::Knowledge& kb) {
    if (board_id == "RPI-RP2") return "rp2040";
    const std::string part = lower(board_id.substr(0, board_id.find('-')));
    if (!part.empty() && kb.find_chip(part)) return kb.find_chip(part)->name;
    return "";
}

// How long a board takes to reset after the last block (the RP2040 ROM: 1 s), plus the host's
// write-back: more than enough.
constexpr std::chrono::milliseconds kLeaveLimit = 20s;

}  // namespace

Uf2Info Uf2Info::parse(const std::string& text) {
    Uf2Info info;
    std::istringstream in(text);
    std::string line;
    bool first = true;
    while (std::getline(in, line)) {
        line = trim(line);
        if (first && !line.empty()) info.bootloader = line;
        first = false;
        if (line.rfind("Model:", 0) == 0) info.model = trim(line.substr(6));
        if (line.rfind("Board-ID:", 0) == 0) info.board_id = trim(line.substr(9));
    }
    return info;
}

Client::Client(storage::VolumeLink& drive, const ConnectOptions& options) : drive_(drive), options_(options) {}

DeviceInfo Client::connect() {
    const auto& kb = options_.knowledge_base();
    if (!drive_.find("INFO_UF2.TXT"))
        throw Error(ErrorKind::NotFound, fmt::format("{} has no INFO_UF2.TXT: it is no UF2 drive", drive_.describe()),
                    "put the board in its UF2 bootloader (RP2040: hold BOOTSEL while plugging it in; Adafruit "
                    "boards: double-tap reset) and give the drive that appears: -d dir:/media/$USER/RPI-RP2");
    const auto text = drive_.read_file("INFO_UF2.TXT");
    info_uf2_ = Uf2Info::parse(std::string(text.begin(), text.end()));
    std::string chip_name = options_.chip;
    if (chip_name.empty() && !options_.board.empty()) {
        const auto found = kb.find_boards(options_.board);
        if (found.size() == 1) chip_name = found.front()->chip;
    }
    const std::string drive_chip = chip_from_board_id(info_uf2_.board_id, kb);
    if (chip_name.empty()) chip_name = drive_chip;
    if (chip_name.empty())
        throw Error(ErrorKind::Usage,
                    fmt::format("{}: INFO_UF2.TXT names the board \"{}\" ({}), which mcuflash cannot tie to a chip",
                                drive_.describe(), info_uf2_.board_id, info_uf2_.model),
                    "say which chip it is with --chip");
    const auto& chip = kb.chip(chip_name);
    if (!drive_chip.empty() && drive_chip != chip.name)
        throw Error(ErrorKind::Usage,
                    fmt::format("the drive is a {} (INFO_UF2.TXT: Board-ID {}), not a {}", drive_chip,
                                info_uf2_.board_id, chip.name),
                    "check --chip or --board");
    const auto family = storage::uf2_family_for_chip(chip.name);
    if (!family)
        throw Error(ErrorKind::Unsupported, fmt::format("no UF2 family ID is known for the {}", chip.name));
    family_ = *family;
    const auto* bootloader =
        !options_.bootloader.empty() ? kb.find_bootloader(options_.bootloader) : uf2_bootloader_on(chip.name, kb);
    const auto size = bootloader ? bootloader->size_on(chip.name) : std::nullopt;
    if (!size)
        throw Error(ErrorKind::Unsupported,
                    fmt::format("mcuflash does not know where a UF2 bootloader on a {} leaves the application", chip.name),
                    "give --bootloader (a row of data/bootloaders.toml with the chip's size)");
    device_ = storage::drive_behind(drive_.path());
    info_ = DeviceInfo{};
    info_.chip = chip.name;
    info_.bootloader = bootloader->name;
    info_.bootloader_text = fmt::format("{} ({})", info_uf2_.bootloader.empty() ? "UF2 bootloader" : info_uf2_.bootloader,
                                        info_uf2_.model.empty() ? info_uf2_.board_id : info_uf2_.model);
    info_.flash_base = chip.flash_base;
    info_.flash_size = chip.flash_size;
    info_.app_start = chip.flash_base + *size;
    info_.app_end = chip.flash_base + chip.flash_size;
    info_.page_size = 256;
    info_.details.emplace_back("drive", drive_.describe());
    if (device_) info_.details.emplace_back("drive device", device_->describe());
    info_.details.emplace_back("board id", info_uf2_.board_id);
    info_.details.emplace_back("uf2 family", fmt::format("0x{:08X}", family_));
    return info_;
}

Capabilities Client::capabilities() const {
    Capabilities c;
    c.whole_image = true;
    c.can_read = false;  // the drive shows no flash to read (CURRENT.UF2, where there is one, is not read)
    return c;
}

void Client::write(uint32_t, std::span<const uint8_t>) {
    throw std::logic_error("pages written to a UF2 drive: the plan gives a drive the whole image");
}

void Client::write_image(uint32_t address, std::span<const uint8_t> bytes) {
    if (address < info_.app_start) throw std::logic_error("a UF2 image below the application start");
    image::Image image;
    image.add(address, bytes, "image");
    image.family_id = family_;
    std::ostringstream out;
    image::write_image(image, out, image::Format::Uf2);
    const std::string uf2 = out.str();
    try {
        drive_.write_file(kUf2FileName, std::span(reinterpret_cast<const uint8_t*>(uf2.data()), uf2.size()));
    } catch (const Error& e) {
        // The board resets once the last block is in, and may take the drive away before the host has
        // written the FAT and directory entry: an I/O error then, with the drive gone, is that reset.
        if (!device_ || drive_present(*device_) || e.kind() == ErrorKind::Usage) throw;
        left_while_writing_ = true;
        if (options_.warn)
            options_.warn(fmt::format("the drive left while the file was being flushed ({}): the board took every "
                                      "block and reset, as UF2 bootloaders do",
                                      e.what()));
    }
}

std::vector<uint8_t> Client::read(uint32_t, uint32_t) {
    throw Error(ErrorKind::Usage, "a UF2 drive takes files; it cannot give its flash back",
                "use the board's other bootloader interface to read (RP2040: -d usb:2e8a:0003 -p picoboot)");
}

void Client::start_application() {
    if (!device_) return;  // an image file or a folder: nothing leaves
    if (left_while_writing_) return;
    const bool left = storage::wait_until_drive_leaves(*device_, kLeaveLimit, [this](std::chrono::milliseconds d) {
        drive_.pause(d);
    });
    if (!left)
        throw Error(ErrorKind::Timeout,
                    fmt::format("the drive is still there {} s after the UF2 file was written: the bootloader did not "
                                "take it (blocks for another family, or for its own region?)",
                                kLeaveLimit.count() / 1000),
                    fmt::format("the UF2 family mcuflash used is 0x{:08X}; INFO_UF2.TXT says: {} / {}", family_,
                                info_uf2_.model, info_uf2_.board_id));
}

ProtocolInfo protocol_info() {
    ProtocolInfo info;
    info.name = "uf2";
    info.description = "a UF2 drive (the RP2040 boot ROM's RPI-RP2, Adafruit's SAMD51 bootloader): the image copied as a .uf2";
    info.runs_on = link::LinkKind::Volume;
    info.make = [](link::Link& link, const ConnectOptions& options) -> std::unique_ptr<Bootloader> {
        return std::make_unique<Client>(link::link_as<storage::VolumeLink>(link, "uf2"), options);
    };
    return info;
}

}  // namespace mcuflash::protocol::uf2drive
