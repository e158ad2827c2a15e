// mcuflash-sim: a simulated bootloader on a pty, for programs that open serial ports.
#include <fmt/format.h>
#include <fmt/ranges.h>

#include <CLI/CLI.hpp>
#include <cstdio>
#include <string>

#include "core/error.hpp"
#include "sim/fault_injector.hpp"
#include "sim/pty_server.hpp"
#include "sim/registry.hpp"
#include "sim/usb/usb_registry.hpp"
#include "sim/usb/usbip_server.hpp"

namespace {

using namespace mcuflash;

struct ServeOptions {
    std::string chip;
    std::string pty;
    uint32_t baud = 0;
    std::string flash_file;
    std::string faults;
    bool no_timing = false;
    std::string bootloader;
    bool any_baud = false;
    bool uart = false;  // --uart: the protocol's UART twin
    bool verbose = false;
    uint16_t usbip_port = 0;  // USB simulators: the USB/IP server's port
};

void print_list() {
    const auto& kb = targets::Knowledge::builtin();
    for (const auto& sim : sim::simulators()) {
        fmt::print("{}: {}\n", sim.protocol, sim.description);
        for (const auto& personality : sim.personalities) {
            const auto* bl = kb.find_bootloader(personality.bootloader);
            fmt::print("  --bootloader {}: {}{}\n      chips: {}\n", personality.bootloader,
                       bl ? bl->description : personality.description,
                       bl ? fmt::format(", {} baud", bl->baud) : "", fmt::join(sim::chips_for(personality), " "));
        }
    }
    for (const auto& sim : sim::usb::usb_simulators()) {
        fmt::print("{} (USB, served over USB/IP with --usbip PORT): {}\n", sim.protocol, sim.description);
        if (!sim.chips.empty()) fmt::print("      chips: {}\n", fmt::join(sim.chips, " "));
    }
    fmt::print("chips:\n");
    for (const auto& [name, chip] : kb.chips()) fmt::print("  {:<12} {}\n", name, chip.description);
}

void log_line(const std::string& message) { fmt::print(stderr, "mcuflash-sim: {}\n", message); }

// What the simulated flash went through; writes refused by its protection only when there were any.
std::string flash_summary(const sim::FlashMemory& flash) {
    const auto& c = flash.counters();
    std::string text = fmt::format("flash: {} erases, {} programs ({} bytes)", c.erases, c.programs, c.bytes_programmed);
    if (c.violations) text += fmt::format(", {} refused (protected)", c.violations);
    return text;
}

int serve(const sim::SimulatorInfo& info, const ServeOptions& o) {
    sim::FaultSpec faults = sim::FaultSpec::parse(o.faults);
    sim::DeviceOptions device_options;
    device_options.bootloader = o.bootloader;
    device_options.baud = o.baud;
    device_options.timing = !o.no_timing;
    if (!o.flash_file.empty()) device_options.flash_file = o.flash_file;
    if (o.verbose) device_options.trace = log_line;
    auto device = sim::make_device(info.protocol, o.chip, device_options);

    sim::PtyServerOptions server_options;
    server_options.link_path = o.pty;
    server_options.timing = !o.no_timing;
    server_options.check_client_baud = !o.any_baud;
    if (o.verbose) server_options.log = log_line;
    sim::PtyServer server(*device, sim::FaultInjector(faults), server_options);

    if (o.verbose) log_line(fmt::format("{} (pty {})", device->describe(), server.slave_path()));
    if (!faults.empty()) log_line("faults: " + faults.to_string());
    std::string chip = o.chip.empty() ? info.default_chip : o.chip;
    log_line(fmt::format("{} {} on {} (baud {})", info.protocol, chip, o.pty, device->line_settings().baud));
    std::fflush(stderr);

    server.run();

    log_line("stopped; " + flash_summary(device->flash()));
    return 0;
}

// A USB simulator behind a USB/IP server: `usbip attach -r HOST -b 1-1` makes it a device of that kernel.
int serve_usb(const sim::usb::UsbSimulatorInfo& info, const ServeOptions& o) {
    sim::DeviceOptions device_options;
    device_options.bootloader = o.bootloader;
    device_options.timing = !o.no_timing;
    if (!o.flash_file.empty()) device_options.flash_file = o.flash_file;
    if (o.verbose) device_options.trace = log_line;
    auto model = info.make(o.chip, device_options);
    if (o.verbose) model->set_trace(log_line);

    sim::usb::UsbipServerOptions server_options;
    server_options.port = o.usbip_port;
    server_options.log = log_line;  // imports and unplugs are rare and worth seeing
    server_options.log_transfers = o.verbose;
    sim::usb::UsbipServer server(*model, server_options);
    std::string chip = o.chip.empty() ? info.default_chip : o.chip;
    log_line(fmt::format("{} {} ({}) on usbip 127.0.0.1:{} bus id {}", info.protocol, chip, model->describe(),
                         server.port(), sim::usb::UsbipServer::kBusId));
    std::fflush(stderr);

    server.run();

    const auto s = server.counters();
    log_line(fmt::format("stopped; {} imports, {} control transfers ({} stalled), {} bus resets; {}", s.imports,
                         s.submits, s.stalls, s.bus_resets, flash_summary(model->flash())));
    return 0;
}

}  // namespace

int main(int argc, char** argv) {
    CLI::App app{"mcuflash-sim: simulated bootloaders on a pseudo-terminal, for avrdude, stm32flash or mcuflash"};
    app.require_subcommand(1);
    app.footer(std::string("\n") + sim::fault_spec_help());
    app.add_subcommand("list", "list the simulated protocols, their bootloaders and the chips");

    ServeOptions options;
    const sim::SimulatorInfo* chosen = nullptr;
    for (const auto& info : sim::simulators()) {
        auto* cmd = app.add_subcommand(info.protocol, info.description);
        cmd->add_option("--chip", options.chip, "chip to simulate (default " + info.default_chip + "; see `list`)");
        cmd->add_option("--pty", options.pty, "path of the symlink to the pty (the port clients open)")->required();
        cmd->add_option("--baud", options.baud, "the device's baud rate (default: the bootloader's usual one)");
        cmd->add_option("--flash-file", options.flash_file,
                        "raw image of the whole flash: loaded if it exists, else created; kept current");
        cmd->add_option("--faults", options.faults, "fault spec (grammar below)");
        cmd->add_flag("--no-timing", options.no_timing, "bytes and flash operations take no time");
        std::vector<std::string> names;
        for (const auto& p : info.personalities) names.push_back(p.bootloader);
        cmd->add_option("--bootloader", options.bootloader,
                        fmt::format("bootloader to impersonate: {} (default: the first that exists on the chip)", fmt::join(names, ", ")));
        cmd->add_flag("--any-baud", options.any_baud, "accept any client baud rate instead of garbling on a mismatch");
        cmd->add_flag("-v,--verbose", options.verbose, "log connections, resets, faults and device events");
        cmd->footer(std::string("\n") + sim::fault_spec_help());
        // A protocol with a UART twin ("samba" and "samba-uart") takes --uart for the twin.
        const sim::SimulatorInfo* uart_twin = nullptr;
        for (const auto& other : sim::simulators())
            if (other.protocol == info.protocol + "-uart") uart_twin = &other;
        if (uart_twin)
            cmd->add_flag("--uart", options.uart, fmt::format("the UART variant (the same as `{}`)", uart_twin->protocol));
        cmd->callback([&chosen, &info, uart_twin, &options] { chosen = options.uart && uart_twin ? uart_twin : &info; });
    }
    const sim::usb::UsbSimulatorInfo* chosen_usb = nullptr;
    for (const auto& info : sim::usb::usb_simulators()) {
        auto* cmd = app.add_subcommand(info.protocol, info.description + " (USB, over USB/IP)");
        cmd->add_option("--chip", options.chip, "chip to simulate (default " + info.default_chip + "; see `list`)");
        cmd->add_option("--usbip", options.usbip_port,
                        "serve the device over USB/IP on 127.0.0.1:PORT (attach: usbip --tcp-port PORT attach -r HOST -b 1-1)")
            ->required();
        cmd->add_option("--flash-file", options.flash_file,
                        "raw image of the whole flash: loaded if it exists, else created; kept current");
        cmd->add_option("--bootloader", options.bootloader,
                        "bootloader to impersonate where the chip could have several (default: the chip's)");
        cmd->add_flag("--no-timing", options.no_timing, "flash operations take no time");
        cmd->add_flag("-v,--verbose", options.verbose, "log every control transfer and device event");
        cmd->callback([&chosen_usb, &info] { chosen_usb = &info; });
    }

    try {
        app.parse(argc, argv);
    } catch (const CLI::CallForHelp& e) {
        return app.exit(e);
    } catch (const CLI::CallForAllHelp& e) {
        return app.exit(e);
    } catch (const CLI::ParseError& e) {
        app.exit(e);
        return core::exit_code(core::ErrorKind::Usage);
    }

    try {
        if (chosen_usb) return serve_usb(*chosen_usb, options);
        if (!chosen) {
            print_list();
            return 0;
        }
        return serve(*chosen, options);
    } catch (const core::Error& e) {
        fmt::print(stderr, "mcuflash-sim: error: {}\n", e.what());
        if (!e.hint().empty()) fmt::print(stderr, "  hint: {}\n", e.hint());
        return core::exit_code(e.kind());
    } catch (const std::exception& e) {
        fmt::print(stderr, "mcuflash-sim: internal error: {}\n", e.what());
        return 70;
    }
}
