#include "cli/build_target.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <filesystem>

#include "cli/reporter.hpp"
#include "core/error.hpp"
#include "core/hexdump.hpp"
#include "discover/serial_ports.hpp"
#include "protocol/klipper_mcu/codec.hpp"

namespace mcuflash::cli {

using core::Error;
using core::ErrorKind;
using core::hex_address;
using targets::Board;
using targets::Chip;
using targets::Knowledge;

namespace {

std::string board_line(const Board& b) { return fmt::format("  {:<30} {}", b.id, b.name); }

std::string chip_names(const std::vector<const Chip*>& chips) {
    std::string out;
    for (const auto* c : chips) out += (out.empty() ? "" : " or ") + c->name;
    return out;
}

// Keeps the chips of `into` that are also in `other` (an empty list stands for any chip).
std::vector<const Chip*> common(const std::vector<const Chip*>& into, const std::vector<const Chip*>& other) {
    if (into.empty()) return other;
    if (other.empty()) return into;
    std::vector<const Chip*> out;
    for (const auto* c : into)
        if (std::find(other.begin(), other.end(), c) != other.end()) out.push_back(c);
    return out;
}

// The menuconfig words for an application start on a chip.
std::string menu_choice(const Chip& chip, uint32_t address) {
    return address >= chip.flash_base ? targets::klipper_offset_choice(chip, address - chip.flash_base) : hex_address(address);
}

// The chips a build for Klipper's CONFIG_MCU runs on. On STM32 it names the line, not the flash
// size: every STM32F103 build says "stm32f103xe", the F4s "stm32f446xx".
std::vector<const Chip*> klipper_mcu_chips(const Knowledge& kb, const std::string& mcu) {
    std::string lower = mcu;
    for (auto& c : lower) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    if (!lower.starts_with("stm32") || lower.size() < 9) return kb.chips_matching(mcu);
    std::vector<const Chip*> out;
    for (const auto& [name, chip] : kb.chips())
        if (name.starts_with(lower.substr(0, 9))) out.push_back(&chip);
    return out;
}

}  // namespace

const Board& one_board(const Knowledge& kb, const std::string& pattern) {
    const auto found = kb.find_boards(pattern);
    if (found.size() == 1) return *found.front();
    std::string list;
    if (found.empty()) {
        for (const auto* b : targets::nearest_boards(kb, pattern, 5)) list += "\n" + board_line(*b);
        throw Error(ErrorKind::Usage, fmt::format("no board is called '{}'", pattern),
                    "the nearest names:" + list + "\n`mcuflash boards` lists them all");
    }
    for (const auto* b : found) list += "\n" + board_line(*b);
    throw Error(ErrorKind::Usage, fmt::format("'{}' could be {} boards: say which (the ID is enough)", pattern, found.size()),
                "candidates:" + list);
}

BuildTarget resolve_build_target(const TargetOptions& options, const std::string& image_file,
                                 device::DeviceOptions& device, Reporter& reporter) {
    const auto& kb = Knowledge::builtin();
    BuildTarget target;
    std::string chip_source;  // who named the chips in target.chips, for messages

    if (!options.board.empty()) {
        target.board = &one_board(kb, options.board);
        target.chips = {&kb.chip(target.board->chip)};
        chip_source = fmt::format("the {}", target.board->name);
    }
    if (!device.chip.empty()) {
        const Chip& named = kb.chip(device.chip);
        if (common(target.chips, {&named}).empty())
            throw Error(ErrorKind::Usage,
                        fmt::format("--chip {} contradicts --board: {} has an {}", named.name, target.board->name,
                                    target.board->chip),
                        "give one of them (the board is enough)");
        target.chips = {&named};
        if (chip_source.empty()) chip_source = "--chip";
    }

    std::string config_path = options.klipper_config;
    const bool config_named = !config_path.empty() && config_path != "none";
    if (config_path.empty() && !image_file.empty())
        if (auto beside = targets::klipper_config_beside(image_file)) config_path = *beside;
    if (!config_path.empty() && config_path != "none") {
        target.config = targets::read_klipper_config(config_path);
        const auto& config = *target.config;
        if (!config_named)
            reporter.info(fmt::format("checking the image against Klipper's build configuration {} (MCU {}{}); "
                                      "--klipper-config none skips this",
                                      config.path, config.mcu,
                                      config.application_address
                                          ? fmt::format(", application at {}", hex_address(*config.application_address))
                                          : ""));
        const auto built_for = klipper_mcu_chips(kb, config.mcu);
        if (built_for.empty()) {
            reporter.warning(fmt::format("{}: CONFIG_MCU={} is a chip mcuflash does not know; the chip is not checked",
                                         config.path, config.mcu));
        } else {
            const auto both = common(target.chips, built_for);
            if (both.empty())
                throw Error(ErrorKind::Usage,
                            fmt::format("the firmware was built for {} (CONFIG_MCU in {}), but {} has {}", config.mcu,
                                        config.path, chip_source, chip_names(target.chips)),
                            "run `make menuconfig` in the Klipper folder, choose the board's micro-controller, then "
                            "`make`; or name the right board");
            target.chips = both;
        }
        if (config.application_address) {
            target.app_address = config.application_address;
            target.app_address_source = fmt::format("Klipper's build configuration {}", config.path);
        }
    }
    if (!target.app_address && target.board && target.board->app_offset && target.chips.size() == 1 &&
        target.board->chip == target.chips.front()->name) {
        target.app_address = target.chips.front()->flash_base + *target.board->app_offset;
        target.app_address_source = fmt::format("Klipper's config for the {}", target.board->name);
    }

    if (device.chip.empty() && target.chips.size() == 1) device.chip = target.chips.front()->name;
    if (target.board) device.board = target.board->id;  // an SD card takes its file name and transform from it

    // A board says how its firmware goes in; on a serial port that is the protocol to speak.
    if (target.board && device.protocol.empty()) {
        const Board& b = *target.board;
        const bool on_serial_port = !device.device.empty() && device::parse_address(device.device).scheme == "serial";
        // A running Klipper's USB port: asked to reboot, the board comes back as its USB bootloader.
        const bool klipper_port =
            on_serial_port && discover::identify_port(device::parse_address(device.device).rest).kind ==
                                  discover::PortIdentity::Kind::Klipper;
        // A bootloader the user named (Katapult put on a board that came with an SD-card one) says
        // how the firmware goes in now, not the board's usual way.
        const targets::Bootloader* named = device.bootloader.empty() ? nullptr : kb.find_bootloader(device.bootloader);
        const protocol::ProtocolInfo* spoken = protocol::spoken_protocol(named ? named->protocol : b.flash_method);
        if (on_serial_port && spoken && spoken->runs_on == link::LinkKind::ByteStream) {
            device.protocol = spoken->name;
        } else if (on_serial_port && !klipper_port && (!spoken || spoken->runs_on != link::LinkKind::ByteStream)) {
            const std::string how = spoken && spoken->installs_card_file
                                        ? fmt::format("takes its firmware from the SD card ({})", b.firmware_file)
                                    : b.flash_method == "none" ? "has nothing to flash"
                                                               : fmt::format("is flashed through {}", b.flash_method);
            throw Error(ErrorKind::Unsupported,
                        fmt::format("the {} {}, not through a serial port", b.name, how),
                        fmt::format("`mcuflash guide {}` shows the steps; give -p PROTOCOL if the board has another "
                                    "bootloader on this port",
                                    b.id));
        }
    }
    return target;
}

void check_device(const BuildTarget& target, const protocol::DeviceInfo& info, Reporter& reporter) {
    if (!target.chips.empty() && !info.chip.empty() &&
        std::none_of(target.chips.begin(), target.chips.end(), [&](const Chip* c) { return c->name == info.chip; }))
        throw Error(ErrorKind::Usage,
                    fmt::format("the device is an {}, but the firmware is for {}{}", info.chip, chip_names(target.chips),
                                target.config ? fmt::format(" (CONFIG_MCU in {})", target.config->path) : ""),
                    "a build for another chip does not run: check the board, or rebuild for this one");
    if (!target.app_address) return;
    const uint32_t built = *target.app_address;
    const uint32_t starts = info.app_start;
    if (built == starts) return;
    const auto& kb = Knowledge::builtin();
    const Chip* chip = kb.find_chip(info.chip);
    auto choice = [&](uint32_t address) { return chip ? menu_choice(*chip, address) : hex_address(address); };
    const bool bootloader_in_flash = starts > info.flash_base;
    if (built > starts && !bootloader_in_flash) {
        // A ROM bootloader writes anywhere; the image then runs only behind the flash bootloader below it.
        reporter.info(fmt::format("the firmware is linked for {} ({}): it starts only if the bootloader below it "
                                  "({}-{}) is on the board",
                                  hex_address(built), choice(built), hex_address(info.flash_base), hex_address(built - 1)));
        return;
    }
    throw Error(ErrorKind::Unsafe,
                fmt::format("the firmware is linked to start at {} (\"{}\", from {}), but this board's bootloader "
                            "({}) starts the application at {} (\"{}\"): it would not start, or it would overwrite "
                            "the bootloader",
                            hex_address(built), choice(built), target.app_address_source, info.bootloader_text,
                            hex_address(starts), choice(starts)),
                fmt::format("rebuild: `make menuconfig`, Bootloader offset: {}, then `make`{}", choice(starts),
                            target.config ? fmt::format("; an image not built from {}: --klipper-config none", target.config->path)
                                          : fmt::format("; a raw .bin built for {}: --address {}", hex_address(starts),
                                                        hex_address(starts))));
}

std::string check_image_for_board(const std::string& image_file, const std::string& board, const std::string& kconfig,
                                  const std::string& bootloader, Reporter& reporter) {
    namespace km = protocol::klipper_mcu;
    std::error_code ec;
    if (!std::filesystem::is_regular_file(image_file, ec))
        throw Error(ErrorKind::NotFound, fmt::format("no firmware image at {}", image_file),
                    "`mcuflash printer build` builds it, or set `image =` in the manifest");
    device::DeviceOptions no_device;
    const BuildTarget target = resolve_build_target({board, kconfig}, image_file, no_device, reporter);
    std::string version;
    try {
        const auto dictionary = km::Dictionary::parse(km::inflate(km::identify_data_from_file(image_file)));
        version = dictionary.version;
        if (target.board && !dictionary.mcu().empty() && dictionary.mcu() != target.board->mcu)
            throw Error(ErrorKind::Usage,
                        fmt::format("{} is a Klipper build for {}, but the {} has an {}", image_file, dictionary.mcu(),
                                    target.board->name, target.board->mcu),
                        "rebuild it with the board's .config (mcuflash printer build)");
    } catch (const Error& e) {
        if (e.kind() == ErrorKind::Usage) throw;  // not a Klipper build otherwise: nothing more to compare
    }
    if (!target.board) return version;
    const auto& kb = Knowledge::builtin();
    const Chip& chip = kb.chip(target.board->chip);
    const std::string loader = !bootloader.empty()                  ? bootloader
                               : target.board->bootloaders.empty() ? ""
                                                                   : target.board->bootloaders.front();
    std::optional<uint32_t> offset = bootloader.empty() ? target.board->app_offset : std::nullopt;
    if (!bootloader.empty())
        if (const auto* b = kb.find_bootloader(bootloader))
            if (const auto size = b->size_on(chip.name))
                offset = b->placement == targets::Placement::Bottom ? *size : 0;
    if (!offset) return version;  // where the application starts is not known without the device
    protocol::DeviceInfo expected;
    expected.chip = chip.name;
    expected.flash_base = chip.flash_base;
    expected.flash_size = chip.flash_size;
    expected.app_start = chip.flash_base + *offset;
    expected.bootloader = loader;
    expected.bootloader_text = loader.empty() ? "its bootloader" : loader;
    check_device(target, expected, reporter);
    return version;
}

}  // namespace mcuflash::cli
