// mcuflash-sim: a simulated bootloader on a pty, for programs that open serial ports.
#include <fmt/format.h>
#include <fmt/ranges.h>

#include <CLI/CLI.hpp>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <thread>
#include <string>

#include "core/error.hpp"
#include "protocol/klipper_mcu/codec.hpp"
#include "sim/fault_injector.hpp"
#include "sim/gs_usb/gs_usb_bridge.hpp"
#include "sim/katapult/can_server.hpp"
#include "sim/katapult/katapult_device.hpp"
#include "sim/msc/card_reader.hpp"
#include "sim/klipper/klipper_usb.hpp"
#include "sim/klipper/mcu_responder.hpp"
#include "sim/klipper/running_klipper.hpp"
#include "sim/printer/klipper_usb_board.hpp"
#include "sim/printer/printer_sim.hpp"
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
    std::string mcu;          // klipper: the MCU its USB name carries (default: the chip)
    std::string serial = "SIM0001";
    std::string bootloader_pty;  // klipper: where the bootloader's port appears ("" = beside --pty)
    bool usb = false;            // klipper: --usbip was given (port 0 = any free one)
    std::string can;             // katapult: serve on this CAN interface instead of a pty
    std::string can_uuid;        // katapult --can: the node's UUID (12 hex digits)
    bool can_klipper = false;    // katapult --can: the node starts as a running Klipper
    std::string firmware;        // klipper: what it runs (a klipper.dict or a Klipper image): answers identify
    std::vector<std::string> can_nodes;  // gs-usb: --node KIND:CHIP[:UUID[:FLASH_FILE]]
    std::string chip_id;                 // gs-usb: the bridge's chip id (hex): its USB serial and CAN UUID
    std::string card_image;              // card-reader, sd-boot: the SD card (an image file)
    bool v1 = false;                     // cmsis-dap: serve the v1 (HID) probe instead of v2
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

int serve_usb_model(sim::usb::UsbDeviceModel& model, const std::string& what, const ServeOptions& o);

// ---- Katapult on a CAN interface (--can) ----

// 12 hex digits -> the UUID; without --uuid one of the chip's own, so that it is the same every run.
uint64_t can_node_uuid(const std::string& text, const std::string& chip) {
    if (text.empty()) {
        uint64_t hash = 1469598103934665603ull;  // FNV-1a
        for (unsigned char c : chip) hash = (hash ^ c) * 1099511628211ull;
        return hash & 0xFFFFFFFFFFFFull;
    }
    if (text.size() != 12 || text.find_first_not_of("0123456789abcdefABCDEF") != std::string::npos)
        throw core::Error(core::ErrorKind::Usage, fmt::format("--uuid {}: a CAN UUID is 12 hex digits", text));
    return std::stoull(text, nullptr, 16);
}

int serve_katapult_can(const ServeOptions& o) {
    const auto& kb = targets::Knowledge::builtin();
    const auto& chip = kb.chip(o.chip.empty() ? sim::find_simulator("katapult").default_chip : o.chip);
    const std::string bootloader = o.bootloader.empty() ? "katapult" : o.bootloader;
    const auto* bl = kb.find_bootloader(bootloader);
    if (!bl || bl->protocol != "katapult")
        throw core::Error(core::ErrorKind::Usage, fmt::format("'{}' is no Katapult bootloader", bootloader));
    const uint64_t uuid = can_node_uuid(o.can_uuid, chip.name);
    sim::DeviceOptions device_options;
    device_options.timing = !o.no_timing;
    if (!o.flash_file.empty()) device_options.flash_file = o.flash_file;
    sim::katapult::KatapultConfig config;
    config.canbus_uuid = uuid;  // a CAN build: GET_CANBUS_ID answers it
    sim::katapult::KatapultDevice device(chip, *bl, device_options, config);
    if (o.verbose) device.set_trace(log_line);

    sim::katapult::CanServerOptions server_options;
    server_options.interface = o.can;
    server_options.uuid = uuid;
    server_options.start_as_klipper = o.can_klipper;
    if (!o.firmware.empty()) server_options.identify_data = protocol::klipper_mcu::identify_data_from_file(o.firmware);
    server_options.timing = !o.no_timing;
    server_options.reboot_time = std::chrono::milliseconds(o.no_timing ? 50 : 500);
    server_options.log = log_line;  // admin events are few and worth seeing
    const sim::FaultSpec faults = sim::FaultSpec::parse(o.faults);
    sim::katapult::CanServer server(device, sim::FaultInjector(faults), server_options);
    if (!faults.empty()) log_line("faults: " + faults.to_string());
    log_line(fmt::format("katapult {} on CAN {} uuid {:012x} ({})", chip.name, o.can, uuid,
                         o.can_klipper ? "running Klipper until asked to reboot into Katapult" : "in Katapult"));
    std::fflush(stderr);

    server.run();

    log_line("stopped; " + flash_summary(device.flash()));
    return 0;
}

// The USB simulator of bootloader `bl` on `chip`: what a board running Klipper reboots into.
std::unique_ptr<sim::usb::UsbDeviceModel> usb_bootloader_model(const ServeOptions& o, const std::string& chip,
                                                               const targets::Bootloader& bl) {
    const sim::usb::UsbSimulatorInfo* simulator = nullptr;
    for (const auto& info : sim::usb::usb_simulators())
        if (info.protocol == bl.protocol) simulator = &info;
    if (!simulator)
        throw core::Error(core::ErrorKind::Usage,
                          fmt::format("the {} bootloader ({}) has no USB simulator; over a pty (--pty) it may", bl.name,
                                      bl.protocol));
    sim::DeviceOptions device_options;
    device_options.bootloader = bl.name;
    device_options.timing = !o.no_timing;
    if (!o.flash_file.empty()) device_options.flash_file = o.flash_file;
    if (o.verbose) device_options.trace = log_line;
    auto bootloader = simulator->make(chip, device_options);
    if (o.verbose) bootloader->set_trace(log_line);
    return bootloader;
}

// A board running Klipper on USB/IP: a CDC-ACM device that reboots into a USB bootloader's simulator.
int serve_klipper_usb(const ServeOptions& o, const std::string& chip, const targets::Bootloader& bl, const std::string& mcu) {
    auto bootloader = usb_bootloader_model(o, chip, bl);
    std::vector<uint8_t> identify_data;
    if (!o.firmware.empty()) identify_data = protocol::klipper_mcu::identify_data_from_file(o.firmware);
    const std::chrono::milliseconds reboot_time(o.no_timing ? 50 : 500);
    auto klipper = std::make_unique<sim::klipper::KlipperUsbDevice>(mcu, o.serial, std::move(bootloader), reboot_time,
                                                                    std::move(identify_data));
    if (o.verbose) klipper->set_trace(log_line);
    // After an update the board comes back as Klipper, running whatever its flash holds then.
    auto* device = klipper.get();
    sim::printer::KlipperUsbBoard board(
        std::move(klipper),
        [device](std::vector<uint8_t> data, core::Clock::time_point) { device->restart_klipper(std::move(data)); },
        reboot_time, log_line);
    return serve_usb_model(board, fmt::format("klipper {} (reboots into {})", chip, bl.name), o);
}

// What a board's flash runs once its application starts: the identify data of the Klipper build in
// it, or nothing (not Klipper, or erased: such a board stays silent).
std::vector<uint8_t> klipper_build_in_flash(const sim::FlashMemory& flash) {
    auto found = protocol::klipper_mcu::find_dictionary_in_image(flash.contents());
    return found ? *found : std::vector<uint8_t>{};
}

// A board running Klipper on a pty, which reboots into its bootloader's simulator when asked to and
// comes back running what its flash then holds.
int serve_klipper(const ServeOptions& o) {
    const auto& kb = targets::Knowledge::builtin();
    const std::string chip = kb.chip(o.chip).name;
    const std::string bootloader = o.bootloader.empty() ? "katapult" : o.bootloader;
    const auto* bl = kb.find_bootloader(bootloader);
    if (!bl) throw core::Error(core::ErrorKind::Usage, fmt::format("unknown bootloader '{}' (see `mcuflash bootloaders`)", bootloader));
    const std::string mcu = o.mcu.empty() ? chip : o.mcu;
    if (o.usb) return serve_klipper_usb(o, chip, *bl, mcu);
    if (o.pty.empty()) throw core::Error(core::ErrorKind::Usage, "give --pty PATH (a serial port) or --usbip PORT (USB)");
    const auto& simulator = sim::find_simulator(bl->protocol);  // a bootloader reached as a serial port
    const std::filesystem::path klipper_port = o.pty;
    const std::filesystem::path bootloader_port =
        o.bootloader_pty.empty() ? klipper_port.parent_path() / sim::klipper::bootloader_port_name(bootloader, mcu, o.serial)
                                 : std::filesystem::path(o.bootloader_pty);
    // One board: its bootloader (and flash) lives across the reboots into it and back.
    sim::DeviceOptions device_options;
    device_options.bootloader = bootloader;
    device_options.baud = o.baud;
    device_options.timing = !o.no_timing;
    if (!o.flash_file.empty()) device_options.flash_file = o.flash_file;
    if (o.verbose) device_options.trace = log_line;
    auto device = sim::make_device(simulator.protocol, chip, device_options);

    sim::klipper::RunningKlipperOptions klipper_options;
    klipper_options.link_path = klipper_port;
    klipper_options.log = log_line;
    if (!o.firmware.empty()) klipper_options.identify_data = protocol::klipper_mcu::identify_data_from_file(o.firmware);
    const auto reboot_time = std::chrono::milliseconds(o.no_timing ? 50 : 500);
    for (;;) {
        const std::string version =
            klipper_options.identify_data.empty()
                ? ""
                : " " + sim::klipper::McuResponder(klipper_options.identify_data).dictionary().version;
        log_line(fmt::format("Klipper{} running on a {} on {} (bootloader {})", version, mcu, o.pty, bootloader));
        std::fflush(stderr);
        if (sim::klipper::serve_running_klipper(klipper_options) == sim::klipper::KlipperOutcome::Stopped) break;
        // The board resets and its bootloader enumerates on USB: about half a second on real boards.
        std::this_thread::sleep_for(reboot_time);
        device->reset(sim::ResetCause::Pin, core::Clock::now());
        sim::PtyServerOptions server_options;
        server_options.link_path = bootloader_port;
        server_options.timing = !o.no_timing;
        server_options.check_client_baud = !o.any_baud;
        server_options.stop_when_application_runs = true;
        server_options.reset_on_open = bootloader_port != std::filesystem::path(o.pty);  // a UART's bootloader: no DTR
        if (o.verbose) server_options.log = log_line;
        {
            sim::PtyServer server(*device, sim::FaultInjector(sim::FaultSpec::parse(o.faults)), server_options);
            log_line(fmt::format("{} {} on {} (baud {})", simulator.protocol, chip, bootloader_port.string(),
                                 device->line_settings().baud));
            std::fflush(stderr);
            server.run();
        }
        if (device->in_bootloader()) break;  // stopped (a signal), not left for the application
        // The application starts: what runs is what the flash now holds.
        std::this_thread::sleep_for(reboot_time);
        klipper_options.identify_data = klipper_build_in_flash(device->flash());
        if (klipper_options.identify_data.empty())
            log_line("the application starts, but the flash holds no Klipper build: the board's port stays silent");
    }
    log_line("stopped; " + flash_summary(device->flash()));
    return 0;
}

// A Klipper USB-to-CAN bridge with simulated nodes behind it, over USB/IP: the guest's gs_usb makes it can0.
int serve_gs_usb(const ServeOptions& o) {
    sim::gs_usb::GsUsbBridgeOptions options;
    if (!o.chip.empty()) options.chip = targets::Knowledge::builtin().chip(o.chip).name;
    if (!o.chip_id.empty()) {
        if (o.chip_id.size() % 2 || o.chip_id.size() > 32 || o.chip_id.find_first_not_of("0123456789abcdefABCDEF") != std::string::npos)
            throw core::Error(core::ErrorKind::Usage, fmt::format("--chip-id {}: give the chip id as hex bytes (an STM32's is 24 digits)", o.chip_id));
        for (size_t i = 0; i < o.chip_id.size(); i += 2)
            options.chip_id.push_back(static_cast<uint8_t>(std::stoul(o.chip_id.substr(i, 2), nullptr, 16)));
    }
    options.timing = !o.no_timing;
    for (const auto& text : o.can_nodes) options.nodes.push_back(sim::gs_usb::BridgeNodeSpec::parse(text));
    options.log = log_line;  // bit timing, mode, node ids, reboots: few and worth seeing
    if (!o.bootloader.empty()) {
        const auto* bl = targets::Knowledge::builtin().find_bootloader(o.bootloader);
        if (!bl) throw core::Error(core::ErrorKind::Usage, fmt::format("--bootloader {}: no such bootloader", o.bootloader));
        options.bootloader = usb_bootloader_model(o, options.chip, *bl);
    }
    const std::vector<sim::gs_usb::BridgeNodeSpec> nodes = options.nodes;
    sim::gs_usb::GsUsbBridge bridge(std::move(options));
    if (o.verbose) bridge.set_trace(log_line);
    log_line(fmt::format("bridge: USB serial {}, CAN uuid {:012x}", bridge.serial(), bridge.uuid()));
    for (size_t i = 0; i < bridge.node_count(); ++i)
        log_line(fmt::format("node {:012x}: {} on a {}{}", bridge.node(i).uuid(),
                             bridge.node(i).runs_klipper() ? "Klipper" : "Katapult", bridge.node(i).device().describe(),
                             !nodes[i].flash_file.empty() ? ", flash file " + nodes[i].flash_file : ""));
    const int rc = serve_usb_model(bridge, "gs-usb bridge", o);
    for (const auto& line : bridge.summary()) log_line(line);
    return rc;
}

// A USB simulator behind a USB/IP server: `usbip attach -r HOST -b 1-1` makes it a device of that kernel.
int serve_usb(const sim::usb::UsbSimulatorInfo& info, const ServeOptions& o) {
    if (info.protocol == "gs-usb") return serve_gs_usb(o);
    sim::DeviceOptions device_options;
    device_options.bootloader = o.bootloader;
    device_options.timing = !o.no_timing;
    if (!o.flash_file.empty()) device_options.flash_file = o.flash_file;
    if (o.verbose) device_options.trace = log_line;
    // The card reader's card is no flash file: it comes with --card-image.
    auto model = info.protocol == "card-reader" ? sim::msc::make_card_reader(o.card_image, device_options)
                                                : info.make(o.chip, device_options);
    if (o.verbose) model->set_trace(log_line);
    return serve_usb_model(*model, fmt::format("{} {}", info.protocol, o.chip.empty() ? info.default_chip : o.chip), o);
}

int serve_usb_model(sim::usb::UsbDeviceModel& device, const std::string& what, const ServeOptions& o) {
    sim::usb::UsbipServerOptions server_options;
    server_options.port = o.usbip_port;
    server_options.log = log_line;  // imports and unplugs are rare and worth seeing
    server_options.log_transfers = o.verbose;
    sim::usb::UsbipServer server(device, server_options);
    log_line(fmt::format("{} ({}) on usbip 127.0.0.1:{} bus id {}", what, device.describe(), server.port(),
                         sim::usb::UsbipServer::kBusId));
    std::fflush(stderr);

    server.run();

    const auto s = server.counters();
    log_line(fmt::format("stopped; {} imports, {} control transfers ({} stalled), {} bus resets; {}", s.imports,
                         s.submits, s.stalls, s.bus_resets, flash_summary(device.flash())));
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
        auto* pty = cmd->add_option("--pty", options.pty, "path of the symlink to the pty (the port clients open)");
        if (info.protocol == "katapult") {
            // Katapult also runs on CAN: a node on a SocketCAN interface instead of a pty.
            auto* can = cmd->add_option("--can", options.can,
                                        "instead of --pty: a CAN node on this SocketCAN interface (can0, vcan0), "
                                        "for flashtool.py -i and mcuflash -d can:IFACE:UUID");
            pty->excludes(can);
            cmd->add_option("--uuid", options.can_uuid, "with --can: the node's UUID, 12 hex digits (default: one of the chip's)")
                ->needs(can);
            cmd->add_flag("--klipper", options.can_klipper,
                          "with --can: the node starts as a running Klipper, which reboots into Katapult on Klipper's "
                          "bootloader request")
                ->needs(can);
            cmd->add_option("--firmware", options.firmware,
                            "with --klipper: the Klipper build it runs (klipper.dict, or the image), to answer "
                            "identify as that build over CAN")
                ->needs(can);
        } else {
            pty->required();
        }
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
    bool klipper = false;
    {
        auto* cmd = app.add_subcommand(
            "klipper", "a board running Klipper that reboots into its bootloader's simulator when its port is set to "
                       "1200 baud (or gets Klipper's UART request): tests `mcuflash flash -d .../usb-Klipper_...`");
        cmd->add_option("--chip", options.chip, "the board's chip")->required();
        cmd->add_option("--pty", options.pty, "path of the Klipper port's symlink (name it usb-Klipper_<mcu>_<serial>-if00)");
        auto* usbip = cmd->add_option("--usbip", options.usbip_port,
                                      "instead of --pty: serve Klipper's USB device (1d50:614e) over USB/IP on "
                                      "127.0.0.1:PORT (0: any free port); it reboots into a USB bootloader "
                                      "(st_rom_dfu, stm32duino)");
        cmd->add_option("--bootloader", options.bootloader, "the bootloader it reboots into (default katapult; on a "
                                                           "pty one reached as a serial port: katapult, arduino_zero, ...)");
        cmd->add_option("--bootloader-pty", options.bootloader_pty,
                        "where the bootloader's port appears (default: beside --pty, as its by-id name)");
        cmd->add_option("--mcu", options.mcu, "the MCU name in the port names (default: the chip)");
        cmd->add_option("--firmware", options.firmware,
                        "the Klipper build it runs (its klipper.dict, or the image: .bin/.elf/.hex, whose data "
                        "dictionary is found in it): it then answers identify, get_uptime and get_clock as "
                        "that build");
        cmd->add_option("--serial", options.serial, "the serial number in the port names (default SIM0001)");
        cmd->add_option("--flash-file", options.flash_file,
                        "raw image of the whole flash: loaded if it exists, else created; kept current");
        cmd->add_option("--faults", options.faults, "fault spec for the bootloader (grammar below)");
        cmd->add_flag("--no-timing", options.no_timing, "bytes and flash operations take no time");
        cmd->add_flag("-v,--verbose", options.verbose, "log connections, resets, faults and device events");
        cmd->callback([&klipper, &options, usbip] {
            klipper = true;
            options.usb = usbip->count() > 0;
        });
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
                        info.protocol == "gs-usb"
                            ? "the bridge board's own bootloader (a USB one: st_rom_dfu, hid_stm32, ...), which it "
                              "reboots into on a bootloader request to its UUID; its flash is --flash-file"
                        : info.protocol.starts_with("cmsis-dap")
                            ? "the bootloader the chip's flash holds at the start: a placeholder of its size (arduino_zero, "
                              "hid_stm32, ...; on a SAMD with BOOTPROT set to it); none: erased flash"
                            : "bootloader to impersonate where the chip could have several (default: the chip's)");
        cmd->add_flag("--no-timing", options.no_timing, "flash operations take no time");
        cmd->add_flag("-v,--verbose", options.verbose, "log every control transfer and device event");
        if (info.protocol == "gs-usb") {
            cmd->add_option("--node", options.can_nodes,
                            "a simulated CAN node behind the bridge, KIND:CHIP[:UUID[:FLASH_FILE]]: KIND katapult (in "
                            "its bootloader) or klipper (running Klipper, reboots into Katapult on request); UUID 12 hex "
                            "digits (default: derived from the chip); repeat for more nodes")
                ->take_all();
            cmd->add_option("--chip-id", options.chip_id,
                            "the bridge MCU's chip id in hex: its USB serial number, and (hashed as Klipper does) its "
                            "own CAN UUID");
        }
        if (info.protocol == "cmsis-dap")
            cmd->add_flag("--v1", options.v1,
                          "a CMSIS-DAP v1 probe (HID reports) instead of v2 (bulk endpoints); the same as cmsis-dap-v1");
        if (info.protocol == "card-reader")
            cmd->add_option("--card-image", options.card_image,
                            "the SD card in the reader: an image file (written through); `sd-boot` then plays the "
                            "board taking firmware.bin from it")
                ->required();
        cmd->callback([&chosen_usb, &info] { chosen_usb = &info; });
    }
    bool sd_boot = false;
    {
        auto* cmd = app.add_subcommand(
            "sd-boot", "the board's SD-card bootloader at power-on (LPC176x, BTT): takes firmware.bin from the card "
                       "image into its flash after itself and renames it FIRMWARE.CUR, then exits");
        cmd->add_option("--card-image", options.card_image, "the SD card (an image file, as card-reader serves it)")
            ->required();
        cmd->add_option("--chip", options.chip, "the board's chip (lpc1768, lpc1769, or an STM32 with an SD bootloader)")
            ->required();
        cmd->add_option("--bootloader", options.bootloader,
                        "the SD bootloader (data/bootloaders.toml; default: the chip's one, lpc176x_sd on LPC176x)");
        cmd->add_option("--flash-file", options.flash_file,
                        "raw image of the whole flash: loaded if it exists, else created; kept current");
        cmd->callback([&sd_boot] { sd_boot = true; });
    }

    bool printer = false;
    sim::printer::PrinterSimOptions printer_options;
    std::vector<std::string> printer_firmware;  // CLI11 writes it while parsing: it must outlive the block below
    {
        auto* cmd = app.add_subcommand(
            "printer", "a simulated printer: one simulated MCU per [mcu] section of Klipper's printer.cfg, where it "
                       "says (USB over USB/IP, a UART on a pty, CAN nodes behind a simulated USB-to-CAN bridge or on "
                       "a SocketCAN interface), each the board mcuflash.toml says, running Klipper and rebooting "
                       "into its bootloader when asked");
        cmd->add_option("--config", printer_options.config, "Klipper's printer.cfg")->required();
        cmd->add_option("--manifest", printer_options.manifest, "mcuflash.toml (default: beside printer.cfg)");
        cmd->add_option("--firmware", printer_firmware,
                        "MCU=FILE: the Klipper build the MCU runs (klipper.bin/.elf/.hex, put at its application "
                        "start in its flash file; a klipper.dict answers identify only); repeat per MCU")
            ->each([&printer_options](const std::string& text) {
                const auto equals = text.find('=');
                if (equals == std::string::npos || equals == 0 || equals + 1 == text.size())
                    throw CLI::ValidationError("--firmware", "give MCU=FILE (e.g. mcu=klipper.bin)");
                printer_options.firmware[text.substr(0, equals)] = text.substr(equals + 1);
            });
        auto* usbip = cmd->add_option("--usbip", options.usbip_port,
                                      "USB devices (Klipper on USB, the USB-to-CAN bridge) are served over USB/IP on "
                                      "127.0.0.1:PORT, PORT+1, ... in printer.cfg's order (default: any free port, "
                                      "for one USB device)");
        cmd->add_option("--flash-dir", printer_options.flash_dir,
                        "where each MCU's flash file (NAME.bin) goes, kept current (default: sim-flash/ beside the "
                        "manifest)");
        cmd->add_flag("--no-timing", options.no_timing, "bytes and flash operations take no time");
        cmd->add_flag("-v,--verbose", options.verbose, "log every MCU's connections, resets and device events");
        cmd->callback([&printer, &printer_options, &options, usbip] {
            printer = true;
            if (usbip->count() > 0) printer_options.usbip_port = options.usbip_port;
            printer_options.timing = !options.no_timing;
            printer_options.verbose = options.verbose;
        });
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
        if (chosen_usb && chosen_usb->protocol == "cmsis-dap" && options.v1)
            for (const auto& info : sim::usb::usb_simulators())
                if (info.protocol == "cmsis-dap-v1") chosen_usb = &info;
        if (chosen_usb) return serve_usb(*chosen_usb, options);
        if (sd_boot) {
            sim::DeviceOptions device_options;
            if (!options.flash_file.empty()) device_options.flash_file = options.flash_file;
            const auto result = sim::msc::sd_boot(options.card_image, options.chip, options.bootloader, device_options, log_line);
            return result.outcome == sim::msc::SdBootResult::Outcome::TooLarge ? core::exit_code(core::ErrorKind::BadInput) : 0;
        }
        if (klipper) return serve_klipper(options);
        if (printer)
            return sim::printer::run_printer(sim::printer::plan_printer(printer_options), printer_options, log_line);
        if (!chosen) {
            print_list();
            return 0;
        }
        if (!options.can.empty()) return serve_katapult_can(options);
        if (options.pty.empty()) throw core::Error(core::ErrorKind::Usage, "give --pty PATH (or, for katapult, --can IFACE)");
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
