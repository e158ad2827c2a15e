// `mcuflash openocd config|run`: the OpenOCD configuration for a board, for those who prefer OpenOCD
// (or need its gdb server). Written from the chip's SWD facts (data/chips.toml [chips.X.swd]) and the
// steps of Klipper's docs/Bootloaders.md: a Raspberry Pi's GPIO (SWCLK GPIO25, SWDIO GPIO24, nRST
// GPIO18) or a CMSIS-DAP probe, the target script, and the erase / BOOTPROT / program steps.
#include <fmt/format.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>

#include <nlohmann/json.hpp>

#include "cli/build_target.hpp"
#include "cli/commands.hpp"
#include "cli/reporter.hpp"
#include "core/error.hpp"
#include "targets/knowledge.hpp"

namespace mcuflash::cli {

namespace {

using core::Error;
using core::ErrorKind;

struct OpenOcdOptions {
    std::string board, chip, bootloader;
    std::string interface = "pi-gpio";
    std::string pins = "swclk=25,swdio=24,srst=18";
    unsigned gpiochip = 0;
    std::string probe;        // cmsis-dap: VID:PID[:SERIAL]
    std::string install, program, backup;
    std::optional<uint32_t> address;  // --program's address (default: the application start)
    bool no_work_area = false;
    unsigned gdb_port = 3333;
    std::string bind;
    std::string output;
};

struct Pins {
    unsigned swclk = 25, swdio = 24;
    std::optional<unsigned> srst = 18;
};

Pins parse_pins(const std::string& text) {
    Pins pins;
    pins.srst.reset();
    bool clock = false, data = false;
    size_t start = 0;
    while (start <= text.size()) {
        size_t end = text.find(',', start);
        if (end == std::string::npos) end = text.size();
        std::string item = text.substr(start, end - start);
        auto eq = item.find('=');
        char* rest = nullptr;
        unsigned long number = eq == std::string::npos ? 0 : std::strtoul(item.c_str() + eq + 1, &rest, 10);
        if (eq == std::string::npos || !rest || *rest || rest == item.c_str() + eq + 1 || number > 511)
            throw Error(ErrorKind::Usage, fmt::format("--pins: '{}' is not NAME=GPIO (swclk=25,swdio=24,srst=18)", item));
        std::string name = item.substr(0, eq);
        if (name == "swclk") pins.swclk = static_cast<unsigned>(number), clock = true;
        else if (name == "swdio") pins.swdio = static_cast<unsigned>(number), data = true;
        else if (name == "srst") pins.srst = static_cast<unsigned>(number);
        else throw Error(ErrorKind::Usage, fmt::format("--pins: '{}' is none of swclk, swdio, srst", name));
        start = end + 1;
    }
    if (!clock || !data) throw Error(ErrorKind::Usage, "--pins needs swclk= and swdio= (srst= is optional)");
    return pins;
}

std::string hex(uint32_t value) { return fmt::format("0x{:08X}", value); }

struct Generated {
    std::string text;
    std::vector<std::string> steps;  // the commands after init, as OpenOCD runs them
    std::string chip;
    std::string board;
};

Generated generate(const OpenOcdOptions& o) {
    const auto& kb = targets::Knowledge::builtin();
    const targets::Board* board = o.board.empty() ? nullptr : &one_board(kb, o.board);
    if (!board && o.chip.empty()) throw Error(ErrorKind::Usage, "give the board (--board, `mcuflash boards` lists them) or --chip");
    const targets::Chip& chip = kb.chip(o.chip.empty() ? board->chip : o.chip);
    if (!chip.swd)
        throw Error(ErrorKind::Usage,
                    fmt::format("mcuflash has no SWD facts for the {} ({}): the chips it knows over SWD are in "
                                "data/chips.toml ([chips.X.swd])",
                                chip.name, chip.description));
    const auto& swd = *chip.swd;

    const targets::Bootloader* bootloader = nullptr;
    if (!o.bootloader.empty()) {
        bootloader = kb.find_bootloader(o.bootloader);
        if (!bootloader) throw Error(ErrorKind::Usage, fmt::format("unknown bootloader '{}' (`mcuflash chips` lists them)", o.bootloader));
    } else if (board && !board->bootloaders.empty()) {
        bootloader = kb.find_bootloader(board->bootloaders.front());
    }
    uint32_t boot_size = 0;
    if (bootloader) {
        auto size = bootloader->size_on(chip.name);
        if (!size)
            throw Error(ErrorKind::Usage, fmt::format("the {} bootloader has no size on the {} in data/bootloaders.toml",
                                                      bootloader->name, chip.name));
        boot_size = *size;
    }
    if (!o.install.empty() && !bootloader)
        throw Error(ErrorKind::Usage, fmt::format("--install needs the bootloader: {} none; give --bootloader NAME",
                                                  board ? "the board has" : "with --chip, there is"));
    if (!o.install.empty() && !o.program.empty())
        throw Error(ErrorKind::Usage, "--install and --program are two separate runs: the bootloader first, then the application");

    Generated g;
    g.chip = chip.name;
    g.board = board ? board->id : "";
    std::string& t = g.text;
    t += fmt::format("# OpenOCD configuration written by mcuflash for {} ({}).\n", board ? board->name : chip.name, chip.name);
    t += "# Run it: openocd -f THIS_FILE  (or: mcuflash openocd run with the same options)\n";
    if (o.interface == "pi-gpio") {
        Pins pins = parse_pins(o.pins);
        t += fmt::format("# Raspberry Pi GPIO: wire GND, SWCLK to GPIO{}, SWDIO to GPIO{}{} (3.3 V targets only;\n"
                         "# power both off while wiring). linuxgpiod works on every Pi (a Pi 5 with a kernel before\n"
                         "# 6.6.45 has its header on gpiochip4: --gpiochip 4).\n",
                         pins.swclk, pins.swdio, pins.srst ? fmt::format(", nRST to GPIO{}", *pins.srst) : "");
        t += "adapter driver linuxgpiod\n";
        t += fmt::format("adapter gpio swclk {} -chip {}\n", pins.swclk, o.gpiochip);
        t += fmt::format("adapter gpio swdio {} -chip {}\n", pins.swdio, o.gpiochip);
        if (pins.srst) t += fmt::format("adapter gpio srst {} -chip {}\n", *pins.srst, o.gpiochip);
        t += "transport select swd\n";
        if (pins.srst) {
            t += "# Reset through the nRST wire, as Klipper's docs do\n";
            t += "reset_config srst_only\nadapter srst delay 100\nadapter srst pulse_width 100\n";
        }
        if (swd.flash_controller == "samd21" && pins.srst)
            t += fmt::format("# SAMC21/SAMD21 boards that use the SWD pins for something else need 'cold plugging'\n"
                             "# first: SWCLK low while nRST is pulsed (Klipper's Bootloaders.md, SAMC21):\n"
                             "#   gpioset gpiochip{0} {1}=0 {2}=0 && gpioset gpiochip{0} {1}=0 {2}=1\n",
                             o.gpiochip, pins.swclk, *pins.srst);
    } else if (o.interface == "cmsis-dap") {
        t += "source [find interface/cmsis-dap.cfg]\n";
        if (!o.probe.empty()) {
            unsigned vid = 0, pid = 0;
            char serial[128] = {};
            int n = std::sscanf(o.probe.c_str(), "%4x:%4x:%127s", &vid, &pid, serial);
            if (n < 2) throw Error(ErrorKind::Usage, fmt::format("--probe '{}' is not VID:PID[:SERIAL] in hex", o.probe));
            t += fmt::format("cmsis_dap_vid_pid 0x{:04x} 0x{:04x}\n", vid, pid);
            if (n == 3) t += fmt::format("adapter serial {}\n", serial);
        }
        t += "transport select swd\n";
    } else {
        throw Error(ErrorKind::Usage, fmt::format("--interface '{}' is neither pi-gpio nor cmsis-dap", o.interface));
    }
    if (o.no_work_area)
        t += "# No working area: OpenOCD writes flash register by register and runs no code on the chip\n"
             "set WORKAREASIZE 0\n";
    t += fmt::format("source [find {}]\n", swd.openocd_target);
    t += "adapter speed 1000\n";
    if (!o.bind.empty()) t += fmt::format("bindto {}\n", o.bind);
    t += fmt::format("gdb_port {}\n", o.gdb_port);

    const uint32_t app_start = chip.flash_base + boot_size;
    auto file = [](const std::string& path) { return std::filesystem::absolute(path).string(); };
    // OpenOCD adds `program`'s address to the addresses an ELF or HEX file carries: only a raw binary
    // is given one.
    auto program = [&](const std::string& path, uint32_t address) {
        std::string ext = std::filesystem::path(path).extension().string();
        for (auto& c : ext) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
        bool raw = ext != ".elf" && ext != ".hex" && ext != ".ihex" && ext != ".s19" && ext != ".srec";
        return raw ? fmt::format("program {} {} verify", file(path), hex(address))
                   : fmt::format("program {} verify", file(path));
    };
    if (!o.backup.empty()) g.steps.push_back(fmt::format("flash read_bank 0 {}", file(o.backup)));
    if (!o.install.empty()) {
        // The seed's bootloader install: erase all (the only way past a protection), open BOOTPROT,
        // write the bootloader at the flash base, protect it again with its own size.
        g.steps.push_back(swd.openocd_erase);
        if (!swd.openocd_bootprot.empty()) g.steps.push_back(swd.openocd_bootprot + " 0");
        g.steps.push_back(program(o.install, chip.flash_base));
        if (!swd.openocd_bootprot.empty()) g.steps.push_back(fmt::format("{} {}", swd.openocd_bootprot, boot_size));
    }
    if (!o.program.empty()) {
        uint32_t address = app_start;
        if (o.address) address = *o.address;
        if (address >= chip.flash_base + uint64_t{chip.flash_size})
            throw Error(ErrorKind::Usage, fmt::format("--address {} is past the end of the {}'s flash ({}-{})", hex(address),
                                                      chip.name, hex(chip.flash_base),
                                                      hex(static_cast<uint32_t>(chip.flash_base + uint64_t{chip.flash_size} - 1))));
        if (address < app_start)
            throw Error(ErrorKind::Usage,
                        fmt::format("--address {} is inside the {} bootloader ({} bytes from {}): use --install for a "
                                    "bootloader",
                                    hex(address), bootloader ? bootloader->name : "", boot_size, hex(chip.flash_base)));
        if (!bootloader && !swd.openocd_bootprot.empty()) {
            // No bootloader (Duet 3 1LC): the seed erases the chip and opens BOOTPROT first.
            g.steps.push_back(swd.openocd_erase);
            g.steps.push_back(swd.openocd_bootprot + " 0");
        }
        g.steps.push_back(program(o.program, address));
    }
    t += "init\ntargets\nreset halt\n";
    if (g.steps.empty()) {
        t += "# OpenOCD now waits: telnet 127.0.0.1 4444 for its prompt, or gdb:\n";
        t += fmt::format("#   gdb-multiarch out/klipper.elf -ex 'target extended-remote {}:{}'\n",
                         o.bind.empty() ? "localhost" : o.bind, o.gdb_port);
        t += fmt::format("# Backup first: flash read_bank 0 backup.bin; erase all: {}\n", swd.openocd_erase);
    } else {
        for (const auto& step : g.steps) t += step + "\n";
        t += "reset run\nshutdown\n";
    }
    return g;
}

void config_command(GlobalOptions& global, const OpenOcdOptions& options) {
    run(global, [&](Reporter& reporter) {
        Generated g = generate(options);
        if (!options.output.empty()) {
            std::ofstream out(options.output);
            out << g.text;
            if (!out.flush()) throw Error(ErrorKind::Io, fmt::format("cannot write {}", options.output));
        }
        nlohmann::json j = {{"command", "openocd config"}, {"chip", g.chip}, {"board", g.board},
                            {"steps", g.steps}, {"config", g.text}, {"file", options.output}};
        reporter.result(j, options.output.empty() ? g.text : fmt::format("wrote {}\n", options.output));
    });
}

void run_command(GlobalOptions& global, const OpenOcdOptions& options) {
    run(global, [&](Reporter& reporter) {
        Generated g = generate(options);
        auto path = std::filesystem::temp_directory_path() / fmt::format("mcuflash-openocd-{}.cfg", ::getpid());
        {
            std::ofstream out(path);
            out << g.text;
            if (!out.flush()) throw Error(ErrorKind::Io, fmt::format("cannot write {}", path.string()));
        }
        reporter.info(fmt::format("openocd -f {}", path.string()));
        pid_t child = ::fork();
        if (child == 0) {
            ::execlp("openocd", "openocd", "-f", path.c_str(), static_cast<char*>(nullptr));
            ::_exit(127);
        }
        int status = 0;
        if (child < 0 || ::waitpid(child, &status, 0) < 0) throw Error(ErrorKind::Io, "could not start openocd");
        std::filesystem::remove(path);
        int code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
        if (code == 127)
            throw Error(ErrorKind::NotFound, "openocd is not installed", "sudo apt install openocd (0.12 or newer)");
        if (code != 0)
            throw Error(ErrorKind::Io, fmt::format("openocd stopped with exit code {}{}", code,
                                                   g.steps.empty() ? "" : ": the steps may not all have run"),
                        "its messages above say why; `mcuflash openocd config` prints the configuration it ran");
        reporter.result({{"command", "openocd run"}, {"chip", g.chip}, {"board", g.board}, {"steps", g.steps}},
                        g.steps.empty() ? "openocd stopped\n" : "openocd ran every step\n");
    });
}

void add_options(CLI::App* command, OpenOcdOptions& o) {
    command->add_option("--board,-b", o.board, "the board (`mcuflash boards` lists them)");
    command->add_option("--chip", o.chip, "the chip, for a board mcuflash does not know");
    command->add_option("--bootloader", o.bootloader, "the bootloader, when not the board's usual one (its size sets BOOTPROT)");
    command->add_option("--interface", o.interface, "pi-gpio (a Raspberry Pi's header, linuxgpiod) or cmsis-dap")
        ->capture_default_str();
    command->add_option("--pins", o.pins, "pi-gpio: the GPIO numbers")->capture_default_str();
    command->add_option("--gpiochip", o.gpiochip, "pi-gpio: the gpiochip of the header")->capture_default_str();
    command->add_option("--probe", o.probe, "cmsis-dap: which probe, VID:PID[:SERIAL] in hex");
    command->add_option("--install", o.install,
                        "install this bootloader file: erase the whole chip, open BOOTPROT (SAMD), write it at the flash "
                        "base, protect it again");
    command->add_option("--program", o.program, "write this file at the application start (after the bootloader)");
    command->add_option("--address", o.address, "--program's address, when not the application start");
    command->add_option("--backup", o.backup, "first read the whole flash, bootloader included, into this file");
    command->add_flag("--no-work-area", o.no_work_area,
                      "let OpenOCD run no code on the chip (set WORKAREASIZE 0): slower, needed for mcuflash's simulators");
    command->add_option("--gdb-port", o.gdb_port, "OpenOCD's gdb server port")->capture_default_str();
    command->add_option("--bind", o.bind, "listen on this address (0.0.0.0: gdb from another computer)");
}

}  // namespace

void register_openocd_commands(CLI::App& app, GlobalOptions& global) {
    static OpenOcdOptions config_options, run_options;
    auto* openocd = app.add_subcommand("openocd", "OpenOCD's configuration for a board's SWD steps, and running it");
    openocd->require_subcommand(1);
    auto* config = openocd->add_subcommand("config", "print (or -o write) the OpenOCD configuration for a board");
    add_options(config, config_options);
    config->add_option("-o,--output", config_options.output, "write it to this file");
    config->callback([&global] { config_command(global, config_options); });
    auto* run_openocd = openocd->add_subcommand("run", "run OpenOCD with that configuration (its steps, or a session for telnet and gdb)");
    add_options(run_openocd, run_options);
    run_openocd->callback([&global] { run_command(global, run_options); });
}

}  // namespace mcuflash::cli
