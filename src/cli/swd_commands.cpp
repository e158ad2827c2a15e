// The debug-probe side of `flash`, `read`, `info` and `bootloader install` (--probe): a chip
// programmed through SWD by a CMSIS-DAP probe (protocol/swd), natively, as OpenOCD does it for the
// steps of Klipper's docs/Bootloaders.md. `openocd config|run` (openocd_commands.cpp) is the other way.
#include "cli/swd_commands.hpp"

#include <fmt/format.h>

#include <chrono>
#include <filesystem>

#include "cli/build_target.hpp"
#include "cli/reporter.hpp"
#include "core/crc.hpp"
#include "core/error.hpp"
#include "core/hexdump.hpp"
#include "image/loader.hpp"
#include "link/swd/gpiod_pins.hpp"
#include "link/swd/open_probe.hpp"
#include "protocol/swd/swd_target.hpp"
#include "sim/open.hpp"
#include "sim/swd/swd_wire.hpp"

namespace mcuflash::cli {

namespace {

using core::Error;
using core::ErrorKind;
using core::hex_address;
using nlohmann::json;

constexpr const char* kProbeSyntax =
    "cmsis-dap (the one CMSIS-DAP probe connected), cmsis-dap:VID:PID[:SERIAL], cmsis-dap:BUS-PORT; "
    "gpio[:CHIP]:swclk=25,swdio=24[,srst=18] (a Raspberry Pi's GPIO, bit-banged); "
    "sim:cmsis-dap[:CHIP], sim:cmsis-dap-v1[:CHIP] or sim:swd-gpio[:CHIP] for a simulated probe and chip";

// A probe and what it is opened over (a simulated CMSIS-DAP one keeps its in-process USB device here).
struct ProbeSession {
    std::unique_ptr<link::Link> simulated;
    std::unique_ptr<link::swd::DebugProbe> probe;
    std::string name;  // for one-line messages: "the CMSIS-DAP v2 probe 'DAPLink CMSIS-DAP'"
};

std::string cmsis_dap_name(const link::swd::CmsisDapProbe& probe) {
    return fmt::format("the CMSIS-DAP v{} probe '{}'", probe.info().version, probe.info().product);
}

ProbeSession open_probe(const ProbeOptions& options, const std::string& default_chip) {
    ProbeSession s;
    // `swd:cmsis-dap` (the device-string scheme) and `cmsis-dap` name the same probe.
    const std::string spec = options.probe.starts_with("swd:") ? options.probe.substr(4) : options.probe;
    if (spec.starts_with("sim:")) {
        std::string rest = spec.substr(4);
        std::string name = rest.substr(0, rest.find(':'));
        std::string chip = rest.find(':') == std::string::npos ? default_chip : rest.substr(rest.find(':') + 1);
        if (name == "swd-gpio") {
            sim::DeviceOptions device_options;
            device_options.timing = !options.sim_fast;
            if (!options.sim_faults.empty())
                throw Error(ErrorKind::Usage, "--sim-faults applies to the simulated CMSIS-DAP probes only");
            s.probe = sim::swd::make_simulated_gpio_probe(chip.empty() ? "stm32f103xb" : chip, device_options);
            s.name = "the simulated GPIO (bit-banged SWD)";
            return s;
        }
        if (name != "cmsis-dap" && name != "cmsis-dap-v1")
            throw Error(ErrorKind::Usage, fmt::format("--probe {}: the simulated probes are sim:cmsis-dap[:CHIP], "
                                                      "sim:cmsis-dap-v1[:CHIP] and sim:swd-gpio[:CHIP]", spec));
        sim::SimulatedOptions sim_options;
        sim_options.chip = chip;
        sim_options.faults = options.sim_faults;
        sim_options.timing = !options.sim_fast;
        s.simulated = sim::open_simulated(name, sim_options);
        auto probe = name == "cmsis-dap"
                         ? link::swd::CmsisDapProbe::over_bulk(link::link_as<link::UsbDevice>(*s.simulated, name))
                         : link::swd::CmsisDapProbe::over_hid(link::link_as<link::HidDevice>(*s.simulated, name));
        s.name = cmsis_dap_name(*probe);
        s.probe = std::move(probe);
        return s;
    }
    if (!options.sim_faults.empty() || options.sim_fast)
        throw Error(ErrorKind::Usage, "--sim-faults and --sim-fast apply to simulated probes (--probe sim:...) only");
    if (link::swd::is_gpio_probe_spec(spec)) {
        s.probe = link::swd::open_gpio_probe(spec);
        s.name = "the GPIO pins (bit-banged SWD)";
    } else if (link::swd::is_probe_spec(spec)) {
        auto probe = link::swd::open_cmsis_dap(spec);
        s.name = cmsis_dap_name(*probe);
        s.probe = std::move(probe);
    } else {
        throw Error(ErrorKind::Usage, fmt::format("--probe '{}' is not a debug probe: {}", spec, kProbeSyntax));
    }
    return s;
}

// The chip the board or --chip names (the one the probe must find), or "" to take what it reports.
struct SwdPlan {
    const targets::Board* board = nullptr;
    const targets::Chip* chip = nullptr;
    const targets::Bootloader* bootloader = nullptr;  // the board's (or --bootloader)
    std::optional<uint32_t> app_start;                 // where the application starts, when known
};

// Where the application starts on `chip` after `bootloader` (its size there).
uint32_t start_after(const targets::Bootloader& bootloader, const targets::Chip& chip) {
    auto size = bootloader.size_on(chip.name);
    if (!size)
        throw Error(ErrorKind::Usage, fmt::format("the {} bootloader has no size on the {} (data/bootloaders.toml)",
                                                  bootloader.name, chip.name));
    return chip.flash_base + *size;
}

SwdPlan swd_plan(const ProbeOptions& o) {
    const auto& kb = targets::Knowledge::builtin();
    SwdPlan p;
    if (!o.board.empty()) p.board = &one_board(kb, o.board);
    std::string chip = !o.chip.empty() ? o.chip : p.board ? p.board->chip : "";
    if (!chip.empty()) {
        p.chip = &kb.chip(chip);
        if (p.board && p.chip->name != p.board->chip)
            throw Error(ErrorKind::Usage, fmt::format("--chip {} contradicts the board, which has a {}", p.chip->name,
                                                      p.board->chip));
        if (!p.chip->swd)
            throw Error(ErrorKind::Usage, fmt::format("mcuflash cannot program the {} over SWD yet (the chips it can: "
                                                      "STM32F103, STM32F401/F407/F446, SAMD21, SAMC21, SAMD51)",
                                                      p.chip->name));
    }
    if (!o.bootloader.empty()) {
        p.bootloader = kb.find_bootloader(o.bootloader);
        if (!p.bootloader)
            throw Error(ErrorKind::Usage, fmt::format("unknown bootloader '{}' (`mcuflash chips` lists them)", o.bootloader));
    } else if (p.board && !p.board->bootloaders.empty()) {
        p.bootloader = kb.find_bootloader(p.board->bootloaders.front());
    }
    if (p.chip && p.board && p.board->app_offset) p.app_start = p.chip->flash_base + *p.board->app_offset;
    else if (p.chip && p.bootloader) p.app_start = start_after(*p.bootloader, *p.chip);
    else if (p.board && p.board->bootloaders.empty() && p.chip) {
        p.app_start = p.chip->flash_base;  // a board without a bootloader (Duet 3 1LC)
    }
    return p;
}

struct Connected {
    ProbeSession session;
    std::unique_ptr<protocol::swd::SwdTarget> target;
    const protocol::swd::SwdTargetInfo* info = nullptr;
    // For one-line messages; JSON has the whole description.
    std::string probe_name() const { return session.name; }
};

Connected connect_target(const ProbeOptions& o, const SwdPlan& plan, Reporter& reporter, core::Progress& progress) {
    Connected c;
    c.session = open_probe(o, plan.chip ? plan.chip->name : "");
    c.target = std::make_unique<protocol::swd::SwdTarget>(*c.session.probe);
    protocol::swd::SwdConnectOptions connect_options;
    if (plan.chip) connect_options.expected_chip = plan.chip->name;
    if (o.reset_line) connect_options.reset = link::swd::ResetMethod::ResetLine;
    connect_options.under_reset = o.under_reset;
    c.info = &c.target->connect(connect_options, progress);
    std::optional<uint32_t> app_start = plan.app_start;
    // --bootloader without --chip: its size on the chip the probe found.
    if (!app_start && plan.bootloader) app_start = start_after(*plan.bootloader, *c.info->chip);
    if (app_start) c.target->set_application_start(*app_start);
    reporter.info(fmt::format("{}: {} ({}), {} KiB flash", c.probe_name(), c.info->chip->name, c.info->core,
                              c.info->flash_size / 1024));
    if (c.info->protection.active && !o.allow_protected)
        throw Error(ErrorKind::Unsupported,
                    fmt::format("the {} is readout-protected ({}): its flash cannot be read or written",
                                c.info->chip->name, c.info->protection.detail),
                    c.info->protection.way_out);
    return c;
}

json info_json(const protocol::swd::SwdTargetInfo& i) {
    json j = {{"probe", i.probe},
              {"chip", i.chip ? i.chip->name : ""},
              {"core", i.core},
              {"dpidr", fmt::format("0x{:08X}", i.dpidr)},
              {"cpuid", fmt::format("0x{:08X}", i.cpuid)},
              {"id", i.id_detail},
              {"flash_base", i.flash_base},
              {"flash_size", i.flash_size},
              {"application_start", i.application_start},
              {"readout_protected", i.protection.active}};
    if (i.bootloader_protection) j["bootprot_bytes"] = *i.bootloader_protection;
    return j;
}

}  // namespace

void add_probe_options(CLI::App* cmd, ProbeOptions& o) {
    cmd->add_option("--probe", o.probe, std::string("an SWD debug probe instead of a bootloader: ") + kProbeSyntax);
    cmd->add_flag("--reset-line", o.reset_line,
                  "--probe: reset the chip through the probe's nRESET wire instead of asking the core (for a firmware "
                  "that disables SWD at once)");
    cmd->add_flag("--under-reset", o.under_reset,
                  "--probe: connect while the probe holds nRESET (the SAMC21/SAMD21 'cold plugging' of Klipper's docs, "
                  "for boards whose firmware uses the SWD pins for something else; needs nRESET wired)");
}

void swd_info_command(GlobalOptions& global, const ProbeOptions& o) {
    run(global, [&](Reporter& reporter) {
        SwdPlan plan = swd_plan(o);
        core::Progress progress(reporter.sink());
        ProbeOptions lenient = o;
        lenient.allow_protected = true;  // info says what protects it
        Connected c = connect_target(lenient, plan, reporter, progress);
        c.target->reset_and_run();
        reporter.result({{"command", "info"}, {"swd", info_json(*c.info)}}, c.info->describe() + "\n");
    });
}

void swd_read_command(GlobalOptions& global, const ProbeOptions& o, const std::string& out_file,
                      const std::string& format, std::optional<uint32_t> address, std::optional<uint32_t> length) {
    run(global, [&](Reporter& reporter) {
        std::optional<image::Format> named = format.empty() ? image::format_with_extension(out_file)
                                                            : std::optional(image::format_from_name(format));
        SwdPlan plan = swd_plan(o);
        core::Progress progress(reporter.sink());
        Connected c = connect_target(o, plan, reporter, progress);
        const auto& i = *c.info;
        uint32_t from = address.value_or(i.flash_base);
        uint64_t end = uint64_t(i.flash_base) + i.flash_size;
        uint32_t count = length.value_or(static_cast<uint32_t>(end - std::min<uint64_t>(from, end)));
        if (from < i.flash_base || from + uint64_t(count) > end || count == 0)
            throw Error(ErrorKind::Usage, fmt::format("{} + {} bytes is outside the {}'s flash ({} bytes at {})",
                                                      hex_address(from), count, i.chip->name, i.flash_size,
                                                      hex_address(i.flash_base)));
        auto started = std::chrono::steady_clock::now();
        auto data = c.target->read_flash(from, count, progress);
        double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
        c.target->reset_and_run();
        image::Image img;
        img.add(from, data, "device");
        image::save_file(img, out_file, named.value_or(image::Format::Binary));
        json j = {{"command", "read"}, {"file", out_file}, {"address", from}, {"length", count},
                  {"crc32", core::crc32(data)}, {"seconds", seconds}, {"swd", info_json(i)}};
        reporter.result(j, fmt::format("read {} bytes from {} into {} in {:.2f} s (CRC32 {:08x}){}\n", count,
                                       hex_address(from), out_file, seconds, core::crc32(data),
                                       from == i.flash_base && count == i.flash_size
                                           ? ": the whole flash, bootloader included"
                                           : ""));
    });
}

void swd_flash_command(GlobalOptions& global, const ProbeOptions& o, const std::string& file,
                       const ImageOptions& image_options, const std::string& klipper_config, bool erase_chip,
                       bool verify, bool start, bool force) {
    run(global, [&](Reporter& reporter) {
        SwdPlan plan = swd_plan(o);
        image::Image img = load_image(file, image_options, reporter);
        // What the build says about itself (Klipper's .config: its MCU, its application address),
        // checked before the probe touches the chip and again against the chip it finds.
        device::DeviceOptions named;
        named.chip = o.chip;
        const BuildTarget target = resolve_build_target({o.board, klipper_config}, file, named, reporter);
        core::Progress progress(reporter.sink());
        Connected c = connect_target(o, plan, reporter, progress);
        const auto& i = *c.info;
        protocol::DeviceInfo found;
        found.chip = i.chip->name;
        found.flash_base = i.flash_base;
        found.app_start = i.application_start;
        found.bootloader_text = i.application_start == i.flash_base
                                    ? "none"
                                    : fmt::format("{} KiB", (i.application_start - i.flash_base) / 1024);
        check_device(target, found, reporter);
        if (img.source_format == image::Format::Binary && !image_options.base_address) {
            img.shift(i.application_start);
            reporter.info(fmt::format("raw binary placed at {}, where the application starts (--address to choose)",
                                      hex_address(i.application_start)));
        }
        // A build linked for another offset is refused as the bootloader path refuses it: the bootloader
        // jumps to the application start, and a vector table anywhere else never runs.
        if (img.lowest() > i.application_start && !force)
            throw Error(ErrorKind::Unsafe,
                        fmt::format("{} starts at {}, but the application starts at {} on this board: built for "
                                    "another bootloader offset, it would not start",
                                    file, hex_address(img.lowest()), hex_address(i.application_start)),
                        "rebuild with the offset `mcuflash guide BOARD` gives, or --force to write it there anyway");
        if (img.lowest() < i.application_start)
            throw Error(ErrorKind::Unsafe,
                        fmt::format("{} starts at {}, inside the bootloader region ({}-{})", file, hex_address(img.lowest()),
                                    hex_address(i.flash_base), hex_address(i.application_start - 1)),
                        "a bootloader goes in with `mcuflash bootloader install --probe ...`; an application built for "
                        "another offset does not start here");
        auto started = std::chrono::steady_clock::now();
        if (erase_chip) {
            // A board without a bootloader (Duet 3 1LC): the seed's chip-erase and BOOTPROT 0 first.
            if (i.application_start != i.flash_base)
                throw Error(ErrorKind::Unsafe,
                            fmt::format("--erase-chip would erase the bootloader ({} bytes at {}) too",
                                        i.application_start - i.flash_base, hex_address(i.flash_base)),
                            "reinstall it with `mcuflash bootloader install --probe ...`, which erases the chip itself");
            c.target->chip_erase(progress);
            if (c.target->bootloader_protection().value_or(0) != 0) c.target->set_bootloader_protection(0);
        }
        uint64_t written = 0;
        protocol::swd::SwdWriteOptions write_options;
        write_options.verify = verify;
        for (const auto& [address, bytes] : img.runs()) {
            c.target->write_flash(address, bytes, progress, write_options);
            written += bytes.size();
        }
        double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
        if (start) c.target->reset_and_run();
        json j = {{"command", "flash"}, {"file", file}, {"bytes_written", written}, {"verified", verify},
                  {"verify_method", verify ? "read back" : ""}, {"started", start}, {"seconds", seconds},
                  {"swd", info_json(i)}};
        reporter.result(j, fmt::format("wrote {} bytes to the {} through {} in {:.2f} s{}{}\n", written, i.chip->name,
                                       c.probe_name(), seconds,
                                       verify ? ", verified (read back)" : ", not verified (--no-verify)",
                                       start ? "; application started" : "; the core is left halted (--no-start)"));
    });
}

void swd_unprotect_command(GlobalOptions& global, const ProbeOptions& o, bool erase_everything) {
    run(global, [&](Reporter& reporter) {
        if (!erase_everything)
            throw Error(ErrorKind::Usage,
                        "removing readout protection erases the whole chip, bootloader included: add --erase-everything "
                        "to confirm (and `mcuflash bootloader install --probe` afterwards to put a bootloader back)");
        SwdPlan plan = swd_plan(o);
        core::Progress progress(reporter.sink());
        ProbeOptions lenient = o;
        lenient.allow_protected = true;
        Connected c = connect_target(lenient, plan, reporter, progress);
        if (!c.info->protection.active) {
            reporter.result({{"command", "unprotect"}, {"readout", true}, {"was_protected", false}, {"swd", info_json(*c.info)}},
                            fmt::format("the {} is not readout-protected: nothing erased\n", c.info->chip->name));
            return;
        }
        const std::string before = c.info->protection.detail;
        c.target->remove_readout_protection(progress);
        reporter.result({{"command", "unprotect"}, {"readout", true}, {"was_protected", true}, {"swd", info_json(*c.info)}},
                        fmt::format("readout protection removed ({}); the whole flash of the {} is erased, bootloader "
                                    "included\n",
                                    before, c.info->chip->name));
    });
}

void swd_install_command(GlobalOptions& global, const ProbeOptions& o, const std::string& file,
                         const std::string& backup_file) {
    run(global, [&](Reporter& reporter) {
        SwdPlan plan = swd_plan(o);
        if (!plan.chip) throw Error(ErrorKind::Usage, "give the board (--board) or the chip (--chip) the bootloader is for");
        if (!plan.bootloader)
            throw Error(ErrorKind::Usage,
                        fmt::format("which bootloader? {}; give --bootloader NAME (`mcuflash chips` lists them)",
                                    plan.board ? "the board has none in mcuflash's data" : "--chip names no board"));
        const uint32_t boot_size = plan.bootloader->size_on(plan.chip->name).value_or(0);
        if (file.empty())
            throw Error(ErrorKind::Usage, fmt::format("give the {} binary with --hex FILE", plan.bootloader->name),
                        plan.bootloader->source.empty() ? "" : "get it from: " + plan.bootloader->source);
        image::Image img = load_image(file, {}, reporter);
        if (img.source_format == image::Format::Binary) img.shift(plan.chip->flash_base);
        if (img.lowest() < plan.chip->flash_base || img.end() > plan.chip->flash_base + uint64_t(plan.chip->flash_size))
            throw Error(ErrorKind::BadInput, fmt::format("{} lies outside the {}'s flash", file, plan.chip->name));
        if (boot_size && img.end() > plan.chip->flash_base + uint64_t(boot_size))
            throw Error(ErrorKind::BadInput,
                        fmt::format("{} is {} bytes long, more than the {} bytes the {} bootloader keeps on the {}",
                                    file, img.end() - plan.chip->flash_base, boot_size, plan.bootloader->name,
                                    plan.chip->name),
                        "is it the bootloader, and the build for this chip?");

        core::Progress progress(reporter.sink());
        Connected c = connect_target(o, plan, reporter, progress);
        const auto& i = *c.info;
        json j = {{"command", "bootloader install"}, {"bootloader", plan.bootloader->name}, {"file", file},
                  {"swd", info_json(i)}};
        if (!backup_file.empty()) {
            auto old = c.target->read_flash(i.flash_base, i.flash_size, progress);
            image::Image saved;
            saved.add(i.flash_base, old, "device");
            image::save_file(saved, backup_file, image::format_with_extension(backup_file).value_or(image::Format::Binary));
            reporter.info(fmt::format("the whole flash ({} bytes) is saved in {}", old.size(), backup_file));
            j["backup"] = backup_file;
        }
        // From here the bootloader region is being rewritten: say so if anything fails.
        try {
            c.target->chip_erase(progress);
            const bool has_bootprot = c.target->bootloader_protection().has_value();
            if (has_bootprot) c.target->set_bootloader_protection(0);
            protocol::swd::SwdWriteOptions install;
            install.bootloader_install = true;
            for (const auto& [address, bytes] : img.runs()) c.target->write_flash(address, bytes, progress, install);
            if (has_bootprot && boot_size) c.target->set_bootloader_protection(boot_size);
            j["bootprot_bytes"] = has_bootprot ? json(c.target->bootloader_protection().value_or(0)) : json(nullptr);
            c.target->reset_and_run();
        } catch (Error& e) {
            e.with_hint((e.hint().empty() ? "" : e.hint() + "\n") +
                        "the chip was being erased and the bootloader written: the board has no working bootloader "
                        "now. Run the same command again (the probe does not need the bootloader)" +
                        (backup_file.empty() ? "" : "; the old flash is in " + backup_file));
            throw;
        }
        j["verified"] = true;
        reporter.result(j, fmt::format("installed {} ({} bytes) on the {} through {}: chip erased, written at {}, "
                                       "verified (read back){}; started\n",
                                       plan.bootloader->name, img.end() - plan.chip->flash_base, i.chip->name,
                                       c.probe_name(), hex_address(plan.chip->flash_base),
                                       j["bootprot_bytes"].is_number()
                                           ? fmt::format(", BOOTPROT protects {} bytes", j["bootprot_bytes"].get<uint32_t>())
                                           : ""));
    });
}

}  // namespace mcuflash::cli
