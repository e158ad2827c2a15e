// `mcuflash identify`: asks running Klipper (or Kalico) firmware what it is, the way klippy does when
// it connects (the identify exchange of Klipper's MCU protocol), and optionally whether it runs the
// build in a given image. `mcuflash printer status`: the same for every MCU of a printer.cfg.
#include <fmt/format.h>

#include <nlohmann/json.hpp>
#include <optional>

#include "cli/commands.hpp"
#include "cli/reporter.hpp"
#include "core/error.hpp"
#include "device/device.hpp"
#include "targets/printer_config.hpp"

namespace mcuflash::cli {

namespace {

namespace km = protocol::klipper_mcu;
using core::Error;
using core::ErrorKind;

struct IdentifyOptions {
    std::string device;
    uint32_t baud = 250000;
    std::string image;
    unsigned wait_seconds = 0;  // wait this long for the board to come back (after a flash)
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
        // The image first: a bad file is found before the board is touched. It carries the build's
        // identify data (a klipper.dict is the same JSON): the same text means the same build.
        std::optional<std::string> image_text;
        if (!o.image.empty()) image_text = km::inflate(km::identify_data_from_file(o.image));
        const auto asked = o.wait_seconds ? device::identify_when_back(o.device, std::chrono::seconds(o.wait_seconds), o.baud)
                                          : device::identify_klipper(o.device, o.baud);
        const auto& identified = asked.identified;
        const auto took = std::chrono::milliseconds(static_cast<long>(asked.seconds * 1000));
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
                                 {"retransmissions", asked.retransmissions},
                                 {"seconds", took.count() / 1000.0}};
        std::string human = fmt::format("{} {} on {}{}\n  built with: {}\n  {} commands, {} responses ({} bytes of "
                                        "identify data in {:.2f} s)\n",
                                        app, d.version, d.mcu().empty() ? "an unnamed MCU" : d.mcu(), clock_text(d),
                                        d.build_versions, d.command_count, d.response_count,
                                        identified.identify_data.size(), took.count() / 1000.0);
        if (image_text) {
            const bool same = *image_text == km::inflate(identified.identify_data);
            const auto image_dictionary = km::Dictionary::parse(*image_text);
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

struct PrinterOptions {
    std::string config;
};

void printer_status_command(GlobalOptions& global, const PrinterOptions& o) {
    run(global, [&](Reporter& reporter) {
        const std::string path = o.config.empty() ? targets::default_printer_config() : o.config;
        if (path.empty())
            throw Error(ErrorKind::Usage, "no printer.cfg in ~/printer_data/config/ or ~/: give it with --config");
        const auto config = targets::read_printer_config(path);
        if (config.mcus.empty())
            throw Error(ErrorKind::BadInput, fmt::format("{} has no [mcu] section", path),
                        "Klipper's printer.cfg names its main board's port in [mcu] serial:");
        nlohmann::json mcus = nlohmann::json::array();
        std::string human = fmt::format("{} ({} MCU{}):\n", path, config.mcus.size(), config.mcus.size() == 1 ? "" : "s");
        size_t answered = 0;
        for (const auto& mcu : config.mcus) {
            nlohmann::json entry = {{"name", mcu.name}};
            std::string line;
            entry["device"] = mcu.canbus_uuid.empty() ? mcu.serial
                                                      : fmt::format("can:{}:{}", mcu.canbus_interface, mcu.canbus_uuid);
            {
                try {
                    const auto asked = device::identify_klipper(entry["device"].get<std::string>(), mcu.baud);
                    const auto& d = asked.identified.dictionary;
                    entry["status"] = "running";
                    entry["app"] = d.app.empty() ? "Klipper" : d.app;
                    entry["version"] = d.version;
                    entry["mcu"] = d.mcu();
                    entry["seconds"] = asked.seconds;
                    line = fmt::format("{} {} on {}", entry["app"].get<std::string>(), d.version, d.mcu());
                    ++answered;
                } catch (const Error& e) {
                    entry["status"] = "no answer";
                    entry["error"] = e.what();
                    entry["exit_code"] = core::exit_code(e.kind());
                    line = fmt::format("no answer: {}", e.what());
                }
            }
            human += fmt::format("  {:<10} {}\n  {:<10} {}\n", mcu.name, entry["device"].get<std::string>(), "", line);
            mcus.push_back(entry);
        }
        const nlohmann::json result = {{"command", "printer status"}, {"config", path}, {"files", config.files},
                                       {"mcus", mcus}, {"answered", answered}};
        if (answered == config.mcus.size()) return reporter.result(result, human);
        reporter.report_before_error(result, human);
        throw Error(ErrorKind::NotFound,
                    fmt::format("{} of {} MCUs did not tell what they run", config.mcus.size() - answered,
                                config.mcus.size()),
                    "see each MCU above; while Klipper runs, its host holds the ports (sudo systemctl stop klipper)");
    });
}

}  // namespace

void register_klipper_commands(CLI::App& app, GlobalOptions& global) {
    static IdentifyOptions options;
    auto* identify = app.add_subcommand(
        "identify", "ask a board running Klipper which firmware it runs (version, MCU, build), as Klipper's host does");
    identify->add_option("-d,--device", options.device,
                         "the board's serial port (/dev/serial/by-id/usb-Klipper_...) or CAN node (can:can0:UUID)");
    identify->add_option("--baud", options.baud, "the baud rate of a UART connection (printer.cfg's baud; default 250000; "
                                                 "USB ignores it)");
    identify->add_option("--image", options.image,
                         "also tell whether the board runs the build in this file (klipper.bin/.elf/.uf2 or klipper.dict)");
    identify->add_option("--wait", options.wait_seconds,
                         "wait up to this many seconds for the board to appear and answer (after flashing, while it "
                         "restarts)")
        ->check(CLI::Range(1u, 600u));
    identify->callback([&global] { identify_command(global, options); });

    static PrinterOptions printer_options;
    auto* printer = app.add_subcommand("printer", "the whole printer: every MCU of Klipper's printer.cfg");
    printer->require_subcommand(1);
    auto* status = printer->add_subcommand(
        "status", "ask every MCU of printer.cfg which Klipper build it runs (stop the klipper service first)");
    status->add_option("--config", printer_options.config,
                       "Klipper's printer.cfg (default ~/printer_data/config/printer.cfg, then ~/printer.cfg); its "
                       "[include]s are read too");
    status->callback([&global] { printer_status_command(global, printer_options); });
    register_printer_build_commands(*printer, global);
    register_printer_flash_commands(*printer, global);
}

}  // namespace mcuflash::cli
