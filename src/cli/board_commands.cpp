// `mcuflash boards [PATTERN]` (the boards of data/boards.toml) and `mcuflash guide BOARD` (how to build
// Klipper or Kalico for a board and get it in, step by step, with mcuflash and with the classic tool).
#include <fmt/format.h>
#include <fmt/ranges.h>

#include <nlohmann/json.hpp>

#include "cli/build_target.hpp"
#include "cli/commands.hpp"
#include "cli/reporter.hpp"
#include "core/error.hpp"
#include "protocol/bootloader.hpp"
#include "targets/knowledge.hpp"

namespace mcuflash::cli {

namespace {

using core::Error;
using core::ErrorKind;
using json = nlohmann::json;
using targets::Board;
using targets::Knowledge;

std::string hex(uint32_t value) { return value ? fmt::format("0x{:X}", value) : "0"; }


// Replaces each {key} in `text` with its value.
std::string fill(std::string text, const std::vector<std::pair<std::string, std::string>>& values) {
    for (const auto& [key, value] : values)
        for (size_t at = 0; (at = text.find("{" + key + "}", at)) != std::string::npos; at += value.size())
            text.replace(at, key.size() + 2, value);
    return text;
}

// What the facts of a board come to: the bootloader the firmware goes through, where the
// application starts and why, what is built, what mcuflash can do with it.
struct Plan {
    const Board& board;
    const targets::Chip& chip;
    const targets::Bootloader* bootloader = nullptr;
    std::optional<uint32_t> offset;
    std::string offset_source;  // "config", "bootloader" (its size on the chip) or "unknown"
    std::string built;          // the build's output
    std::string card_file;      // SD boards: the file that goes on the card
    std::string device;         // how the device is named while in the bootloader
    bool device_is_serial = false;
    const protocol::ProtocolInfo* protocol = nullptr;  // mcuflash's, when it speaks the method
    bool card = false;  // the board installs a file from its SD card (the protocol says so)
    bool supported = false;
    std::string reason;  // why mcuflash cannot do it yet

    Plan(const Knowledge& kb, const Board& b) : board(b), chip(kb.chip(b.chip)) {
        if (!b.bootloaders.empty()) bootloader = kb.find_bootloader(b.bootloaders.front());
        if (b.app_offset) {
            offset = b.app_offset;
            offset_source = "config";
        } else if (auto size = bootloader ? bootloader->size_on(chip.name) : std::nullopt) {
            offset = size;
            offset_source = "bootloader";
        } else {
            offset_source = "unknown";
        }
        protocol = protocol::spoken_protocol(b.flash_method);
        card = protocol && protocol->installs_card_file;
        built = card || b.firmware_file.empty() ? "out/klipper.bin" : "out/" + b.firmware_file;
        if (b.transform == "srec") built = "out/klipper.elf";
        card_file = b.transform.empty() ? "out/klipper.bin" : "out/" + b.firmware_file.substr(b.firmware_file.rfind('/') + 1);
        // A USB id names the device only where the protocol talks USB itself (Katapult is a CDC serial port).
        // A build with no id of its own (the ER-20's 16 KiB HID bootloader) has its protocol's usual one.
        const targets::Bootloader* with_usb_id = bootloader;
        if (with_usb_id && with_usb_id->usb_ids.empty())
            for (const auto& [name, other] : kb.bootloaders())
                if (other.protocol == with_usb_id->protocol && !other.usb_ids.empty()) with_usb_id = &other;
        if (const auto* p = protocol::spoken_protocol(b.flash_method);
            with_usb_id && !with_usb_id->usb_ids.empty() &&
            (!p || p->runs_on == link::LinkKind::Usb || p->runs_on == link::LinkKind::Hid)) {
            device = fmt::format("usb:{:04x}:{:04x}", with_usb_id->usb_ids.front().first, with_usb_id->usb_ids.front().second);
        } else {
            device_is_serial = true;
            device = b.interface.find("ttyAMA0") != std::string::npos ? "/dev/ttyAMA0" : "/dev/serial/by-id/usb-...";
        }
        if (card) {
            // The card's rules (file name, transform, new names) come from the board itself.
            supported = true;
        } else if (b.flash_method == "none") reason = "nothing is flashed";
        else if (!protocol)
            reason = fmt::format("mcuflash does not speak {} yet", b.flash_method);
        else if (!bootloader || !bootloader->size_on(chip.name))
            reason = fmt::format("mcuflash speaks {}, but does not know the {} {} yet", b.flash_method, chip.name,
                                 bootloader ? "with " + bootloader->name : "without a bootloader");
        else supported = true;
    }

    std::string address() const {
        return offset ? fmt::format("0x{:08X}", chip.flash_base + *offset) : "<where the application starts>";
    }

    std::vector<std::pair<std::string, std::string>> placeholders() const {
        std::string usb = bootloader && !bootloader->usb_ids.empty()
                              ? fmt::format("{:04x}:{:04x}", bootloader->usb_ids.front().first, bootloader->usb_ids.front().second)
                              : "";
        std::string baud = bootloader && bootloader->baud ? std::to_string(bootloader->baud) : "115200";
        return {{"file", card ? card_file : built},
                {"port", device_is_serial ? device : "/dev/ttyACM0"},
                {"mcu", board.mcu},
                {"chip", chip.name},
                {"address", address()},
                {"offset", offset ? hex(*offset) : "<the offset>"},
                {"usb", usb},
                {"baud", baud},
                {"firmware_file", card_name()}};
    }

    // The name on the card; one the bootloader has not seen yet where it skips known names.
    std::string card_name() const {
        if (!board.unique_name) return board.firmware_file;
        const auto dot = board.firmware_file.rfind('.');
        return board.firmware_file.substr(0, dot) + "-$(date +%Y%m%d%H%M%S)" + board.firmware_file.substr(dot);
    }

    std::string how() const {
        if (card)
            return "SD card: " + board.firmware_file + (board.transform.empty() ? "" : " (" + board.transform + ")");
        if (board.flash_method == "none") return "nothing to flash";
        if (board.flash_method == "swd" && chip.swd) return "mcuflash (swd, a debug probe) or OpenOCD";
        return supported ? "mcuflash (" + board.flash_method + ")" : board.flash_method + " (classic tool)";
    }
};

json board_json(const Board& b) {
    return {{"id", b.id},
            {"name", b.name},
            {"aliases", b.aliases},
            {"klipper_config", b.klipper_configs},
            {"mcu", b.mcu},
            {"chip", b.chip},
            {"clock", b.clock},
            {"bootloaders", b.bootloaders},
            {"app_offset", b.app_offset ? json(*b.app_offset) : json(nullptr)},
            {"flash_method", b.flash_method},
            {"firmware_file", b.firmware_file},
            {"transform", b.transform},
            {"unique_name", b.unique_name},
            {"interface", b.interface},
            {"entry", b.entry},
            {"notes", b.notes}};
}

void boards_command(GlobalOptions& global, const std::string& pattern) {
    run(global, [&](Reporter& reporter) {
        const auto& kb = Knowledge::builtin();
        std::vector<const Board*> boards;
        if (pattern.empty())
            for (const auto& [id, b] : kb.boards()) boards.push_back(&b);
        else
            boards = kb.find_boards(pattern);
        if (boards.empty()) one_board(kb, pattern);  // throws, naming the nearest boards
        json rows = json::array();
        std::string human = fmt::format("{:<30} {:<40} {:<13} {:<16} {:>7}  {}\n", "ID", "NAME", "CHIP", "BOOTLOADER",
                                        "OFFSET", "FIRMWARE GOES IN BY");
        for (const auto* b : boards) {
            Plan plan(kb, *b);
            json row = board_json(*b);
            row["how"] = plan.how();
            rows.push_back(std::move(row));
            std::string name = b->name.size() > 40 ? b->name.substr(0, 37) + "..." : b->name;
            human += fmt::format("{:<30} {:<40} {:<13} {:<16} {:>7}  {}\n", b->id, name, b->chip,
                                 b->bootloaders.empty() ? "-" : b->bootloaders.front(),
                                 b->app_offset ? hex(*b->app_offset) : "-", plan.how());
        }
        human += fmt::format("{} board(s); `mcuflash guide ID` tells how to flash one\n", boards.size());
        reporter.result({{"command", "boards"}, {"pattern", pattern}, {"boards", rows}}, human);
    });
}

// Klipper's "Micro-controller Architecture" entry for a chip family.
std::string klipper_architecture(const std::string& family) {
    static const std::vector<std::pair<std::vector<std::string>, std::string>> menu{
        {{"avr"}, "Atmega AVR"},
        {{"sam3x", "sam4e", "sam4s", "same70"}, "SAM3/SAM4/SAM E70"},
        {{"samd21", "samd51", "samc21", "same54"}, "SAMC21/SAMD21/SAMD51/SAME5x"},
        {{"lpc176x"}, "LPC176x"},
        {{"hc32f460"}, "Huada Semiconductor HC32F460"},
        {{"rp2040"}, "Raspberry Pi RP2040/RP235x"},
        {{"pru"}, "Beaglebone PRU"},
    };
    if (family.starts_with("stm32")) return "STMicroelectronics STM32";
    for (const auto& [families, name] : menu)
        if (std::find(families.begin(), families.end(), family) != families.end()) return name;
    return family;
}

// The menuconfig entries to choose, in the menu's order: (option, choice).
using Menu = std::vector<std::pair<std::string, std::string>>;

Menu menuconfig_of(const Plan& plan) {
    const Board& b = plan.board;
    const auto& chip = plan.chip;
    Menu menu{{"Micro-controller Architecture", klipper_architecture(chip.family)}};
    if (chip.family == "pru") return menu;
    std::string processor = b.mcu;
    if (chip.family.starts_with("stm32")) {
        processor = b.mcu.substr(0, 9);
        for (auto& c : processor) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
    }
    if (chip.family != "hc32f460") menu.emplace_back("Processor model", processor);
    const std::string prompt = chip.family == "hc32f460" ? "Application Address" : "Bootloader offset";
    if (chip.family == "avr") {
        menu.emplace_back(prompt, "none to choose: the bootloader sits at the top of flash");
    } else if (plan.offset) {
        std::string choice = targets::klipper_offset_choice(chip, *plan.offset);
        if (plan.offset_source == "bootloader")
            choice += fmt::format(" (the config does not say; {} keeps the first {})", plan.bootloader->name,
                                  *plan.offset ? fmt::format("{} KiB", *plan.offset / 1024) : "nothing: it is in ROM");
        menu.emplace_back(prompt, choice);
    } else if (b.flash_method != "none") {
        std::string offered;
        for (uint32_t o : chip.klipper_offsets)
            offered += (offered.empty() ? "" : ", ") + targets::klipper_offset_choice(chip, o);
        menu.emplace_back(prompt, fmt::format("not stated by Klipper's config; the menu offers {} (the first is its default)",
                                              offered));
    }
    if (chip.family.starts_with("stm32")) {
        if (b.clock.empty())
            menu.emplace_back("Clock Reference", "keep the default (8 MHz crystal): the config names no other");
        else if (b.clock == "8MHz")
            menu.emplace_back("Clock Reference", "8 MHz crystal");
        else
            menu.emplace_back("Clock Reference",
                              fmt::format("{} crystal (shown after \"Enable extra low-level configuration options\")",
                                          b.clock.substr(0, b.clock.size() - 3) + " MHz"));
    } else if (!b.clock.empty()) {
        menu.emplace_back("Clock", b.clock + " (as the config says)");
    }
    if (!b.interface.empty()) menu.emplace_back("Communication interface", b.interface);
    return menu;
}

// How a lost or replaced bootloader goes back in over SWD: natively with a CMSIS-DAP probe, or with
// OpenOCD on a Raspberry Pi's GPIO (Klipper's Bootloaders.md).
std::string swd_install_text(const Plan& plan) {
    const auto& bootloader = *plan.bootloader;
    return fmt::format("through the chip's SWD port with a CMSIS-DAP probe: mcuflash bootloader install --probe "
                       "cmsis-dap --board {} --bootloader {} --hex BOOTLOADER.bin --backup backup.bin (the whole chip "
                       "is erased{}). Or with OpenOCD on a Raspberry Pi's GPIO: mcuflash openocd run --board {} "
                       "--bootloader {} --install BOOTLOADER.bin (docs/swd.md).{}",
                       plan.board.id, bootloader.name,
                       plan.chip.swd->openocd_bootprot.empty() ? "" : "; BOOTPROT protects the bootloader again after",
                       plan.board.id, bootloader.name,
                       bootloader.source.empty() ? "" : " The bootloader: " + bootloader.source);
}

void guide_command(GlobalOptions& global, const std::string& name) {
    run(global, [&](Reporter& reporter) {
        const auto& kb = Knowledge::builtin();
        const Board& b = one_board(kb, name);
        const Plan plan(kb, b);
        const auto values = plan.placeholders();
        const auto* guide = targets::guide_for(kb, plan.bootloader ? plan.bootloader->name : b.flash_method);
        const std::string classic = guide ? fill(guide->classic, values) : "";
        std::string install = guide ? fill(guide->install, values) : "";
        if (plan.bootloader && plan.bootloader->installs.count(plan.chip.name))
            install = fmt::format("mcuflash does it with an STK500v2 ISP programmer (AVRISP mkII type) on the ICSP "
                                  "header: mcuflash bootloader install --chip {} -d PROGRAMMER (fuses and lock bits "
                                  "included). Or: {}",
                                  plan.chip.name, install);
        else if (plan.bootloader && plan.chip.swd)
            install = swd_install_text(plan) + (install.empty() ? "" : " Or: " + install);
        std::string transform;
        for (const auto& t : targets::transforms())
            if (t.name == b.transform) transform = fill(t.command, values);
        const Menu menu = menuconfig_of(plan);

        std::vector<std::string> steps;
        std::string build = "Build it: in ~/klipper (or ~/kalico) run make menuconfig and choose";
        json menu_json = json::array();
        for (const auto& [option, choice] : menu) {
            build += fmt::format("\n     {}: {}", option, choice);
            menu_json.push_back({{"option", option}, {"choice", choice}});
        }
        build += b.flash_method == "none" ? "\n   then make." : fmt::format("\n   then make: the firmware is {}.", plan.built);
        steps.push_back(build);
        if (!transform.empty())
            steps.push_back((plan.supported && plan.card
                                 ? "mcuflash converts it itself; to copy it by hand, convert it first: "
                                 : "Convert it for the bootloader: ") +
                            transform);

        std::string mcuflash_command;
        if (b.flash_method == "none") {
            steps.push_back("Nothing is flashed: " + b.notes);
        } else if (plan.card) {
            std::string as = b.unique_name ? "a .bin name it has not installed before" : b.firmware_file;
            // A card board is one whose protocol mcuflash speaks (plan.card comes from it).
            mcuflash_command = fmt::format("mcuflash flash out/klipper.bin -d /dev/sdX1 --board {}", b.id);
            steps.push_back(fmt::format(
                "Write it to the board's SD card (FAT32) in this computer's card reader: {}\n   (the card "
                "unmounted, `mcuflash list` names it; or -d dir:/media/$USER/SDCARD when it is mounted). mcuflash "
                "names the file {}{} and reads it back.\n   Or by hand: copy {} as {}: {}",
                mcuflash_command, as, b.transform.empty() ? "" : ", converts it (" + b.transform + ")",
                plan.card_file, as, classic));
            steps.push_back(fmt::format("Put the card in the board and enter the bootloader: {}.", b.entry));
            steps.push_back(fmt::format("Afterwards, with the card back in the reader: mcuflash verify-sd -d "
                                        "/dev/sdX1 --board {} tells whether the bootloader took the file.",
                                        b.id));
        } else {
            if (!b.entry.empty()) steps.push_back((plan.bootloader ? "Enter the bootloader: " : "Connect: ") + b.entry + ".");
            if (plan.supported) {
                const bool needs_p = plan.protocol->runs_on == link::LinkKind::ByteStream && !plan.protocol->default_on_serial;
                mcuflash_command = fmt::format("mcuflash flash {} -d {}{} --board {}", plan.built, plan.device,
                                               needs_p ? " -p " + b.flash_method : "", b.id);
                steps.push_back(fmt::format("Flash it: {}{}", mcuflash_command,
                                            plan.device.ends_with("...") ? "\n   (the port `ls /dev/serial/by-id/` shows for the board)" : ""));
                // A bootloader that also shows a UF2 drive takes the file there too (no read-back).
                if (plan.bootloader && !plan.bootloader->uf2_drive.empty())
                    steps.push_back(fmt::format(
                        "Or through its {} drive (UF2): mcuflash flash {} -d dir:/media/$USER/{} --board {}\n   (mcuflash "
                        "writes the UF2 file and waits for the board to restart; the drive cannot be read back, so "
                        "this is not verified)",
                        plan.bootloader->uf2_drive, plan.built, plan.bootloader->uf2_drive, b.id));
                if (!classic.empty()) steps.push_back("Or with the classic tool: " + classic);
            } else if (b.flash_method == "swd" && plan.chip.swd) {
                mcuflash_command = fmt::format("mcuflash flash {} --probe cmsis-dap --board {} --erase-chip", plan.built, b.id);
                steps.push_back(fmt::format(
                    "Flash it through SWD with a CMSIS-DAP probe: {}\n   (--erase-chip: the board has no bootloader; "
                    "the whole chip is erased and BOOTPROT cleared first, as Klipper's docs do)\n   Or with OpenOCD on "
                    "a Raspberry Pi's GPIO (SWCLK GPIO25, SWDIO GPIO24, nRST GPIO18): mcuflash openocd run --board {} "
                    "--program {}\n   (docs/swd.md; `mcuflash openocd config` prints the configuration)",
                    mcuflash_command, b.id, plan.built));
            } else {
                steps.push_back(fmt::format("Flash it with the classic tool ({}): {}", plan.reason, classic));
            }
        }
        if (plan.bootloader && !install.empty()) steps.push_back("If the bootloader is missing, or to replace it: " + install);

        std::vector<std::string> warnings;
        if (!b.notes.empty() && b.flash_method != "none") warnings.push_back(b.notes);
        if (plan.offset && *plan.offset && plan.chip.family != "avr")
            warnings.push_back(fmt::format("The application must start at {}: a build for another offset does not "
                                           "start.",
                                           plan.address()));
        if (b.unique_name)
            warnings.push_back("The bootloader skips a file name it installed before: the same name twice installs nothing.");
        std::vector<std::string> others;
        for (size_t i = 1; i < b.bootloaders.size(); ++i)
            if (const auto* other = kb.find_bootloader(b.bootloaders[i])) others.push_back(other->description);

        json j = {{"command", "guide"},
                  {"board", board_json(b)},
                  {"menuconfig", menu_json},
                  {"offset", plan.offset ? json(*plan.offset) : json(nullptr)},
                  {"offset_source", plan.offset_source},
                  {"address", plan.offset ? json(plan.chip.flash_base + *plan.offset) : json(nullptr)},
                  {"bootloader", plan.bootloader ? json{{"name", plan.bootloader->name},
                                                        {"description", plan.bootloader->description},
                                                        {"protocol", plan.bootloader->protocol}}
                                                 : json(nullptr)},
                  {"other_bootloaders", others},
                  {"entry", b.entry},
                  {"firmware", plan.built},
                  {"transform", transform.empty() ? json(nullptr) : json(transform)},
                  {"mcuflash", {{"supported", plan.supported || !mcuflash_command.empty()},
                                {"command", mcuflash_command.empty() ? json(nullptr) : json(mcuflash_command)},
                                {"reason", plan.reason}}},
                  {"classic", classic},
                  {"install", install},
                  {"warnings", warnings},
                  {"steps", steps}};

        std::string human = fmt::format("{} ({})\n  chip:        {}: {}\n  bootloader:  {}\n  firmware in: {}\n  config:      {}\n\n",
                                        b.name, b.id, plan.chip.name, plan.chip.description,
                                        plan.bootloader ? plan.bootloader->name + ": " + plan.bootloader->description : "none",
                                        plan.how(), fmt::join(b.klipper_configs, ", "));
        for (size_t i = 0; i < steps.size(); ++i) human += fmt::format("{}. {}\n", i + 1, steps[i]);
        if (!others.empty()) human += fmt::format("\nAlso on this board: {}.\n", fmt::join(others, "; "));
        if (!warnings.empty()) {
            human += "\nWhat can go wrong:\n";
            for (const auto& w : warnings) human += "  - " + w + "\n";
        }
        reporter.result(j, human);
    });
}

}  // namespace

void register_board_commands(CLI::App& app, GlobalOptions& global) {
    static std::string pattern, board;
    auto* boards = app.add_subcommand("boards", "list the boards mcuflash knows (data/boards.toml), or those matching a name");
    boards->add_option("pattern", pattern, "a board's ID, name or alias, or some of its words (\"skr 1.4\", \"octopus\")");
    boards->callback([&global] { boards_command(global, pattern); });
    auto* guide = app.add_subcommand("guide", "how to build Klipper for a board and flash it, step by step");
    guide->add_option("board", board, "the board's ID, name or alias (`mcuflash boards` lists them)")->required();
    guide->callback([&global] { guide_command(global, board); });
}

}  // namespace mcuflash::cli
