// `mcuflash bootloader install` and `mcuflash fuses read|write`: AVR chips through an ISP programmer.
#include <fmt/format.h>

#include <filesystem>

#include "cli/commands.hpp"
#include "cli/device.hpp"
#include "cli/reporter.hpp"
#include "cli/swd_commands.hpp"
#include "core/error.hpp"
#include "core/hexdump.hpp"
#include "image/loader.hpp"
#include "plan/avr_install.hpp"
#include "targets/knowledge.hpp"

namespace mcuflash::cli {

using core::Error;
using core::ErrorKind;
using core::hex_address;
using nlohmann::json;
using targets::FuseByte;
using targets::FuseValues;

namespace {

struct IspOptions {
    DeviceOptions device;
    std::vector<std::string> assignments;  // "lfuse=0xFF" ...
    plan::FuseSafety safety;
};

// `required`: false where --probe (SWD) is the other way (bootloader install).
void add_isp_options(CLI::App* cmd, IspOptions& o, bool required = true) {
    auto* device = cmd->add_option("-d,--device", o.device.device,
                                   "the programmer's serial port, or sim:stk500v2-isp[:CHIP] for a simulated one");
    auto* chip = cmd->add_option("--chip", o.device.chip,
                                 "the target chip (atmega2560, atmega1280, atmega1284p, atmega168, ...; with --probe: "
                                 "stm32f103xb, samd21g18a, ...)");
    if (required) device->required(), chip->required();
    std::string types;
    for (const auto& p : protocol::programmers()) types += fmt::format("\n  {}: {}", p.name, p.description);
    cmd->add_option("--programmer", o.device.protocol, "programmer type (default: the first):" + types);
    cmd->add_option("-b,--baud", o.device.baud, "the programmer's serial baud rate (default 115200)");
    cmd->add_option("--sim-faults", o.device.sim_faults, "fault spec for sim: devices (see mcuflash-sim --help)");
    cmd->add_flag("--sim-fast", o.device.sim_fast, "sim: devices without wire and flash timing");
}

void add_safety_options(CLI::App* cmd, IspOptions& o) {
    cmd->add_flag("--force", o.safety.force,
                  "write fuses that would make the chip unprogrammable (also needs --confirm-brick-risk)");
    cmd->add_flag("--confirm-brick-risk", o.safety.confirm_brick_risk,
                  "the second flag --force needs: you can recover the chip with a high-voltage programmer");
}

const targets::Chip& avr_chip(const std::string& name) {
    const auto& chip = targets::Knowledge::builtin().chip(name);
    if (!chip.fuses)
        throw Error(ErrorKind::Usage, fmt::format("the {} is not an AVR mcuflash can program over ISP", chip.name));
    return chip;
}

FuseValues parse_assignments(const std::vector<std::string>& assignments) {
    FuseValues values;
    for (const auto& text : assignments) {
        auto [fuse, value] = targets::parse_fuse_assignment(text);
        if (values.count(fuse))
            throw Error(ErrorKind::Usage, fmt::format("{} is given twice", targets::fuse_byte_name(fuse)));
        values[fuse] = value;
    }
    return values;
}

json fuses_json(const FuseValues& values) {
    json j = json::object();
    for (auto& [fuse, value] : values) j[targets::fuse_byte_name(fuse)] = fmt::format("0x{:02X}", value);
    return j;
}

// What the boot-section fuses say, in words: "boot section 8192 bytes at 0x3e000, reset starts it".
std::string boot_text(const targets::Chip& chip, const FuseValues& values) {
    const auto& facts = *chip.fuses;
    auto size = facts.boot_size(values);
    auto reset = facts.boot_reset_programmed(values);
    if (!size || !reset) return {};
    return fmt::format("boot section {} bytes at {}; reset starts {}", *size,
                       hex_address(chip.flash_base + chip.flash_size - *size),
                       *reset ? "the boot section (bootloader)" : "the application at 0");
}

void fuses_read_command(GlobalOptions& global, const IspOptions& o) {
    run(global, [&](Reporter& reporter) {
        const auto& chip = avr_chip(o.device.chip);
        auto session = connect_programmer(o.device, chip, reporter);
        FuseValues values = plan::read_fuses(*session.programmer);
        session.programmer->leave_programming();
        json j = {{"command", "fuses read"}, {"chip", chip.name}, {"programmer", session.description},
                  {"fuses", fuses_json(values)}, {"boot", boot_text(chip, values)},
                  {"unsafe", targets::fuse_refusals(*chip.fuses, values)}};
        std::string human = plan::describe_fuses(values) + "\n";
        if (auto boot = boot_text(chip, values); !boot.empty()) human += boot + "\n";
        for (const auto& problem : targets::fuse_refusals(*chip.fuses, values)) human += "warning: " + problem + "\n";
        reporter.result(j, human);
    });
}

void fuses_write_command(GlobalOptions& global, const IspOptions& o) {
    run(global, [&](Reporter& reporter) {
        const auto& chip = avr_chip(o.device.chip);
        FuseValues values = parse_assignments(o.assignments);
        if (values.empty())
            throw Error(ErrorKind::Usage, "nothing to write: give NAME=VALUE pairs (lfuse=0xFF hfuse=0xD8 efuse=0xFD lock=0x0F)");
        // Everything is checked before the programmer is opened.
        for (const auto& problem : plan::check_fuses(chip, values, o.safety))
            reporter.warning("writing anyway (--force --confirm-brick-risk): " + problem);
        auto session = connect_programmer(o.device, chip, reporter);
        reporter.info(fmt::format("{}: {}", session.description, chip.name));
        core::Progress progress([&reporter](const core::ProgressEvent& e) { reporter.on_progress(e); });
        auto writes = plan::write_fuses(*session.programmer, *chip.fuses, values, progress);
        FuseValues now = plan::read_fuses(*session.programmer);
        session.programmer->leave_programming();
        json j = {{"command", "fuses write"}, {"chip", chip.name}, {"programmer", session.description},
                  {"written", fuses_json(values)}, {"fuses", fuses_json(now)}, {"verified", true}};
        reporter.result(j, fmt::format("wrote and verified {}\nnow: {}\n", plan::describe_fuses(values),
                                       plan::describe_fuses(now)));
    });
}

struct InstallOptions {
    std::string hex;
    std::string bootloader;
    std::string board, backup;  // --probe
    ProbeOptions probe;
};

void bootloader_install_command(GlobalOptions& global, const IspOptions& o, const InstallOptions& io) {
    run(global, [&](Reporter& reporter) {
        const auto& kb = targets::Knowledge::builtin();
        const auto& chip = avr_chip(o.device.chip);
        std::string bootloader_name = io.bootloader.empty() ? chip.install_bootloader : io.bootloader;
        if (bootloader_name.empty())
            throw Error(ErrorKind::Usage, fmt::format("mcuflash knows no bootloader to install on the {}", chip.name),
                        "give --hex FILE with --bootloader NAME and the fuses (lfuse=.. hfuse=.. efuse=..)");
        const auto* bootloader = kb.find_bootloader(bootloader_name);
        const targets::BootloaderInstall* known = nullptr;
        if (bootloader)
            if (auto it = bootloader->installs.find(chip.name); it != bootloader->installs.end()) known = &it->second;
        if (!known && (io.hex.empty() || !bootloader))
            throw Error(ErrorKind::Usage,
                        fmt::format("mcuflash does not know how to install '{}' on the {}", bootloader_name, chip.name),
                        "give --hex FILE and the fuses (lfuse=.. hfuse=.. efuse=..), with a known --bootloader name");

        plan::InstallRequest request;
        request.chip = &chip;
        request.bootloader = bootloader_name;
        if (known) {
            request.fuses = known->fuses;
            request.unlock = known->unlock;
            request.lock = known->lock;
            if (io.hex.empty()) request.stray_bytes = known->stray_bytes;
        }
        for (auto& [fuse, value] : parse_assignments(o.assignments)) {
            if (fuse == FuseByte::Lock) request.lock = value;
            else request.fuses[fuse] = value;
        }
        request.image_name = io.hex.empty() ? known->hex : io.hex;
        if (io.hex.empty() && !std::filesystem::exists(known->hex))
            throw Error(ErrorKind::BadInput,
                        fmt::format("the {} bootloader for the {} is {}, which is not installed", bootloader_name,
                                    chip.name, known->hex),
                        fmt::format("install it: sudo apt-get install {} (or give --hex FILE)", known->package));
        reporter.info(fmt::format("bootloader: {} from {}", bootloader_name, request.image_name));
        request.image = image::load_file(request.image_name, {});
        for (const auto& warning : plan::check_install(request, o.safety)) reporter.warning(warning);

        auto session = connect_programmer(o.device, chip, reporter);
        reporter.info(fmt::format("{}: {} (signature {})", session.description, chip.name,
                                  core::hex_bytes(chip.signature)));
        core::Progress progress([&reporter](const core::ProgressEvent& e) { reporter.on_progress(e); });
        plan::InstallReport report;
        try {
            report = plan::install_bootloader(*session.programmer, request, progress);
        } catch (Error& e) {
            e.with_hint((e.hint().empty() ? "" : e.hint() + "\n") +
                        fmt::format("the chip was erased, so the board has no working bootloader until an install "
                                    "succeeds. Retry: mcuflash bootloader install {}{}",
                                    session.retry_hint, io.hex.empty() ? "" : " --hex " + io.hex));
            throw;
        }
        FuseValues now = plan::read_fuses(*session.programmer);
        session.programmer->leave_programming();

        json writes = json::array();
        for (const auto& w : report.fuse_writes)
            writes.push_back({{"byte", targets::fuse_byte_name(w.fuse)},
                              {"value", fmt::format("0x{:02X}", w.value)},
                              {"read_back", fmt::format("0x{:02X}", w.read_back)}});
        json j = {{"command", "bootloader install"},
                  {"chip", chip.name},
                  {"bootloader", bootloader_name},
                  {"hex", request.image_name},
                  {"programmer", session.description},
                  {"fuses_before", fuses_json(report.before)},
                  {"writes", writes},
                  {"fuses", fuses_json(now)},
                  {"flash_start", report.flash_start},
                  {"flash_bytes", report.flash_bytes},
                  {"verified", report.flash_verified}};
        reporter.result(j, fmt::format("installed {} on the {}: chip erased; {} bytes written and verified, boot section at {}\n"
                                       "fuses before: {}\nfuses now:    {}\n{}\n",
                                       bootloader_name, chip.name, report.flash_bytes, hex_address(report.flash_start),
                                       plan::describe_fuses(report.before), plan::describe_fuses(now),
                                       boot_text(chip, now)));
    });
}

}  // namespace

void register_avr_isp_commands(CLI::App& app, GlobalOptions& global) {
    static IspOptions isp;
    static InstallOptions install_options;

    auto* bootloader = app.add_subcommand(
        "bootloader", "install a bootloader: an AVR's through an ISP programmer, an ARM chip's through an SWD probe");
    bootloader->require_subcommand(1);
    bootloader->fallthrough();
    auto* install = bootloader->add_subcommand(
        "install",
        "erase the whole chip (application included), then: AVR (-d ISP programmer): write the bootloader's fuses, "
        "write and verify the bootloader, then the lock bits, every fuse and lock byte read back; ARM (--probe): "
        "open BOOTPROT (SAMD), write and verify the bootloader at the flash base, protect it again");
    add_isp_options(install, isp, false);
    install->add_option("--hex", install_options.hex,
                        "the bootloader image (AVR default: the one Debian's Arduino packages ship for the chip; ARM: "
                        "required, `mcuflash guide BOARD` says where to get it)");
    install->add_option("--board", install_options.board, "--probe: the board (`mcuflash boards`): its chip and bootloader");
    install->add_option("--backup", install_options.backup,
                        "--probe: first read the whole flash, the old bootloader included, into this file");
    add_probe_options(install, install_options.probe);
    install->add_option("--bootloader", install_options.bootloader,
                        "which bootloader (default: the chip's usual one: `mcuflash chips`)");
    install->add_option("fuses", isp.assignments, "override a fuse or the final lock byte: lfuse=0xFF hfuse=0xD8 ...");
    add_safety_options(install, isp);
    install->callback([&global] {
        if (!install_options.probe.probe.empty()) {
            if (!isp.device.device.empty())
                throw CLI::ValidationError("--probe", "give either -d (an AVR ISP programmer) or --probe (an SWD probe)");
            ProbeOptions o = install_options.probe;
            o.board = install_options.board;
            o.chip = isp.device.chip;
            o.bootloader = install_options.bootloader;
            o.sim_faults = isp.device.sim_faults;
            o.sim_fast = isp.device.sim_fast;
            return swd_install_command(global, o, install_options.hex, install_options.backup);
        }
        if (isp.device.device.empty() || isp.device.chip.empty())
            throw CLI::RequiredError("-d and --chip (an AVR's ISP programmer), or --probe (an ARM chip's SWD probe)");
        if (!install_options.board.empty() || !install_options.backup.empty())
            throw CLI::ValidationError("--board/--backup", "apply to --probe only");
        bootloader_install_command(global, isp, install_options);
    });

    auto* fuses = app.add_subcommand("fuses", "read or write an AVR's fuses and lock bits through an ISP programmer");
    fuses->require_subcommand(1);
    fuses->fallthrough();
    auto* read = fuses->add_subcommand("read", "print lfuse, hfuse, efuse and lock");
    add_isp_options(read, isp);
    read->callback([&global] { fuses_read_command(global, isp); });
    auto* write = fuses->add_subcommand(
        "write", "write fuses and/or the lock byte (efuse, hfuse, lfuse, then lock), each read back; values "
                 "that would make the chip unprogrammable are refused");
    add_isp_options(write, isp);
    write->add_option("fuses", isp.assignments, "NAME=VALUE: lfuse=0xFF hfuse=0xD8 efuse=0xFD lock=0x0F")->required();
    add_safety_options(write, isp);
    write->callback([&global] { fuses_write_command(global, isp); });
}

}  // namespace mcuflash::cli
