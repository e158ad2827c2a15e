// `mcuflash identify`: asks running Klipper (or Kalico) firmware what it is, the way klippy does when
// it connects (the identify exchange of Klipper's MCU protocol), and optionally whether it runs the
// build in a given image.
#include <fmt/format.h>

#include <filesystem>
#include <nlohmann/json.hpp>

#include "cli/commands.hpp"
#include "cli/reporter.hpp"
#include "core/error.hpp"
#include "discover/serial_ports.hpp"
#include "link/serial_port.hpp"
#include "protocol/klipper_mcu/session.hpp"

namespace mcuflash::cli {

namespace {

namespace km = protocol::klipper_mcu;
using core::Error;
using core::ErrorKind;

struct IdentifyOptions {
    std::string device;
    uint32_t baud = 250000;
    std::string image;
};

std::string clock_text(const km::Dictionary& d) {
    auto it = d.config.find("CLOCK_FREQ");
    if (it == d.config.end()) return "";
    try {
        return fmt::format(" at {:g} MHz", std::stod(it->second) / 1e6);
    } catch (const std::exception&) {
        return "";
    }
}

void identify_command(GlobalOptions& global, const IdentifyOptions& o) {
    run(global, [&](Reporter& reporter) {
        if (o.device.empty())
            throw Error(ErrorKind::Usage, "give the port of the board running Klipper: -d /dev/serial/by-id/usb-Klipper_...",
                        "`mcuflash list` shows the ports; printer.cfg's [mcu] serial: names the one Klipper uses");
        if (o.device.find(':') != std::string::npos && o.device.rfind("/", 0) != 0)
            throw Error(ErrorKind::Usage, fmt::format("identify speaks to a serial port (a path), not {}", o.device),
                        "CAN nodes are not asked yet: `mcuflash list --can can0` tells Klipper from Katapult");
        std::error_code ec;
        const std::string node = std::filesystem::canonical(o.device, ec).string();
        if (!ec) {
            const auto holders = discover::port_holders(node);
            if (!holders.empty()) {
                std::string list;
                for (const auto& h : holders) list += (list.empty() ? "" : ", ") + h;
                throw Error(ErrorKind::Usage, fmt::format("{} is held open by {}", o.device, list),
                            "Klipper's host (klippy) owns the port while it runs: stop it first (sudo systemctl stop "
                            "klipper), or ask Klipper itself (the MCU's version is in klippy.log)");
            }
        }
        // No warning sink: a pty's missing modem lines do not matter to a protocol that never resets.
        link::SerialPort port(o.device, {o.baud, link::Parity::None});
        km::Session session(port);
        const auto started = core::Clock::now();
        const auto& identified = session.identify();
        const auto took = std::chrono::duration_cast<std::chrono::milliseconds>(core::Clock::now() - started);
        const auto& d = identified.dictionary;
        const std::string app = d.app.empty() ? "Klipper" : d.app;

        nlohmann::json result = {{"command", "identify"},
                                 {"device", o.device},
                                 {"app", app},
                                 {"version", d.version},
                                 {"build_versions", d.build_versions},
                                 {"mcu", d.mcu()},
                                 {"config", d.config},
                                 {"commands", d.command_count},
                                 {"responses", d.response_count},
                                 {"identify_bytes", identified.identify_data.size()},
                                 {"retransmissions", session.retransmissions()},
                                 {"seconds", took.count() / 1000.0}};
        std::string human = fmt::format("{} {} on {}{}\n  built with: {}\n  {} commands, {} responses ({} bytes of "
                                        "identify data in {:.2f} s)\n",
                                        app, d.version, d.mcu().empty() ? "an unnamed MCU" : d.mcu(), clock_text(d),
                                        d.build_versions, d.command_count, d.response_count,
                                        identified.identify_data.size(), took.count() / 1000.0);
        if (!o.image.empty()) {
            // The firmware carries its identify data in flash: the same bytes mean the same build.
            const auto expected = km::identify_data_from_file(o.image);
            const bool same = expected == identified.identify_data;
            const auto image_dictionary = km::Dictionary::parse(km::inflate(expected));
            result["image"] = o.image;
            result["image_version"] = image_dictionary.version;
            result["runs_image"] = same;
            human += same ? fmt::format("  runs the build in {}: nothing to update\n", o.image)
                          : fmt::format("  does not run the build in {} ({} for {}): flashing it would update it\n",
                                        o.image, image_dictionary.version, image_dictionary.mcu());
        }
        reporter.result(result, human);
    });
}

}  // namespace

void register_klipper_commands(CLI::App& app, GlobalOptions& global) {
    static IdentifyOptions options;
    auto* identify = app.add_subcommand(
        "identify", "ask a board running Klipper which firmware it runs (version, MCU, build), as Klipper's host does");
    identify->add_option("-d,--device", options.device, "the board's serial port (/dev/serial/by-id/usb-Klipper_...)");
    identify->add_option("--baud", options.baud, "the baud rate of a UART connection (printer.cfg's baud; default 250000; "
                                                 "USB ignores it)");
    identify->add_option("--image", options.image,
                         "also tell whether the board runs the build in this file (klipper.bin/.elf/.uf2 or klipper.dict)");
    identify->callback([&global] { identify_command(global, options); });
}

}  // namespace mcuflash::cli
