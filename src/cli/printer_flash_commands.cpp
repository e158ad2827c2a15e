// `mcuflash printer flash`: every MCU of printer.cfg gets the image the manifest names. Every image is
// checked against its board first; then each MCU is asked what it runs (an MCU already running its
// image's build is left alone), flashed, verified and waited for until it is back running the new
// build. Each MCU's work is one child mcuflash (identify, then flash, with --json), so one board's
// failure stays its own; plan/printer_update says which run at the same time.
#include <fmt/format.h>
#include <fmt/ranges.h>
#include <poll.h>
#include <signal.h>
#include <unistd.h>

#include <chrono>
#include <iostream>
#include <memory>
#include <optional>
#include <nlohmann/json.hpp>

#include "cli/build_target.hpp"
#include "cli/child_process.hpp"
#include "cli/commands.hpp"
#include "cli/klipper_service.hpp"
#include "cli/reporter.hpp"
#include "core/error.hpp"
#include "core/interrupt.hpp"
#include "plan/printer_update.hpp"
#include "targets/printer_config.hpp"
#include "targets/printer_manifest.hpp"

namespace mcuflash::cli {

namespace {

using core::Error;
using core::ErrorKind;
using nlohmann::json;
using Clock = std::chrono::steady_clock;

struct PrinterFlashOptions {
    std::string config;
    std::string manifest;
    std::vector<std::string> only;
    bool reflash = false;
    bool dry_run = false;
    bool stop_klipper = false;
    std::string moonraker = "http://127.0.0.1:7125";
    bool sim_fast = false;
};

// Where the manifest and printer.cfg are: each given, or found beside the other, or in the usual place.
std::pair<targets::PrinterConfig, targets::PrinterManifest> read_printer(const PrinterFlashOptions& o) {
    std::string config_path = o.config;
    std::string manifest_path = o.manifest;
    if (manifest_path.empty()) {
        if (config_path.empty()) config_path = targets::default_printer_config();
        if (config_path.empty())
            throw Error(ErrorKind::Usage, "no printer.cfg in ~/printer_data/config/ or ~/: give --config or --manifest");
        manifest_path = targets::default_manifest_path(config_path);
    }
    auto manifest = targets::read_printer_manifest(manifest_path);
    if (config_path.empty()) config_path = manifest.printer_config;
    return {targets::read_printer_config(config_path), std::move(manifest)};
}

// A device mcuflash can ask what runs on it (Klipper's identify) before flashing.
bool can_identify(const std::string& device) {
    return device.starts_with("/") || device.starts_with("can:");
}

struct McuRun {
    const plan::PrinterStep* step = nullptr;
    // Identifying: what runs before; Flashing; Checking: what runs after, when the flash itself did
    // not wait for the board to come back (a UART's Klipper).
    enum class Phase { Waiting, Identifying, Flashing, Checking, Done } phase = Phase::Waiting;
    std::unique_ptr<ChildProcess> child;
    json last_result = json::object();  // the child's result or error event; empty until it says one
    std::string image_version, before, after;
    std::string outcome = "not started";  // flashed | unchanged | left out | failed | not started
    std::string detail;
    std::optional<bool> back;  // came back running the image's build (unknown: not a Klipper build, not asked)
    int exit_code = 0;
    ErrorKind error_kind = ErrorKind::Internal;  // what the failure was, for the exit code
    Clock::time_point started{};
    double seconds = 0;
    std::string stage;
    uint64_t done = 0, total = 0;
};

class PrinterFlash {
public:
    PrinterFlash(const PrinterFlashOptions& options, Reporter& reporter, const plan::PrinterUpdatePlan& plan)
        : options_(options), reporter_(reporter), plan_(plan), self_(own_executable()) {
        for (const auto& step : plan.steps) {
            McuRun run;
            run.step = &step;
            if (!step.skip_reason.empty()) {
                run.phase = McuRun::Phase::Done;
                run.outcome = "left out";
                run.detail = step.skip_reason;
            }
            runs_.push_back(std::move(run));
        }
    }

    // Every image against its board, before any board is touched.
    void check_images() {
        for (auto& run : runs_) {
            if (run.phase == McuRun::Phase::Done) continue;
            const auto& s = *run.step;
            try {
                run.image_version = check_image_for_board(s.image, s.board, s.kconfig, s.bootloader, quiet_);
            } catch (const Error& e) {
                throw Error(e.kind(), fmt::format("{}: {}", s.mcu, e.what()),
                            e.hint().empty() ? "nothing was flashed" : e.hint() + "; nothing was flashed");
            }
        }
    }

    void run_all() {
        if (reporter_.mode() == OutputMode::Terminal) draw();
        bool stopping = false;
        while (true) {
            if (!stopping && core::interrupt_signal()) {
                stopping = true;  // no new MCU starts; the running ones stop at their next exchange
                for (auto& run : runs_)
                    if (run.child) run.child->signal(core::interrupt_signal());
            }
            if (!stopping) start_ready();
            std::vector<pollfd> fds;
            for (auto& run : runs_)
                if (run.child)
                    for (int fd : run.child->open_fds()) fds.push_back({fd, POLLIN, 0});
            if (fds.empty()) break;
            ::poll(fds.data(), fds.size(), 100);
            for (auto& run : runs_) service(run);
            if (reporter_.mode() == OutputMode::Terminal) draw();
        }
        if (stopping)
            for (auto& run : runs_)
                if (run.phase == McuRun::Phase::Waiting) {
                    run.phase = McuRun::Phase::Done;
                    run.detail = "stopped before it started";
                }
    }

    const std::vector<McuRun>& runs() const { return runs_; }

private:
    std::vector<plan::StepState> states() const {
        std::vector<plan::StepState> s;
        for (const auto& run : runs_)
            s.push_back(run.phase == McuRun::Phase::Waiting ? plan::StepState::Waiting
                        : run.phase == McuRun::Phase::Done  ? plan::StepState::Finished
                                                            : plan::StepState::Running);
        return s;
    }

    void start_ready() {
        for (size_t i : plan::ready_steps(plan_, states())) {
            auto& run = runs_[i];
            run.started = Clock::now();
            if (can_identify(run.step->device) && !options_.reflash)
                start_identify(run);
            else
                start_flash(run);
        }
    }

    // What the MCU runs: before the flash (Identifying), or after it, waiting while it restarts (Checking).
    void start_identify(McuRun& run, McuRun::Phase phase = McuRun::Phase::Identifying) {
        const auto& s = *run.step;
        std::vector<std::string> args{"--json", "identify", "-d", s.device, "--image", s.image};
        if (phase == McuRun::Phase::Checking) args.insert(args.end(), {"--wait", "20"});
        if (s.uart_baud) args.insert(args.end(), {"--baud", std::to_string(s.uart_baud)});
        launch(run, phase, args);
    }

    void start_flash(McuRun& run) {
        const auto& s = *run.step;
        std::vector<std::string> args{"--json", "flash", s.image, "-d", s.device};
        if (!s.board.empty()) args.insert(args.end(), {"--board", s.board});
        if (!s.bootloader.empty()) args.insert(args.end(), {"--bootloader", s.bootloader});
        if (!s.kconfig.empty()) args.insert(args.end(), {"--klipper-config", s.kconfig});
        if (options_.sim_fast) args.push_back("--sim-fast");
        launch(run, McuRun::Phase::Flashing, args);
    }

    void note_back(McuRun& run, const std::string& version, bool runs_image) {
        run.after = version;
        run.back = runs_image;
        run.detail += runs_image ? "; back running the image's build"
                                 : fmt::format("; came back running {}, not the image's build", version);
    }

    void note_not_back(McuRun& run, const std::string& why) {
        run.back = false;
        run.detail += "; did not come back as Klipper: " + why;
    }

    void launch(McuRun& run, McuRun::Phase phase, const std::vector<std::string>& args) {
        run.phase = phase;
        run.last_result = json::object();
        run.stage = phase == McuRun::Phase::Flashing ? "connect" : "identify";
        run.done = run.total = 0;
        try {
            run.child = std::make_unique<ChildProcess>(self_, args);
        } catch (const Error& e) {
            finish(run, "failed", e.what(), core::exit_code(e.kind()), e.kind());
            return;
        }
        event(run, {{"event", "mcu_started"},
                    {"phase", phase == McuRun::Phase::Identifying ? "identify"
                              : phase == McuRun::Phase::Flashing  ? "flash"
                                                                  : "check"}});
    }

    // Reads what the MCU's child said; when it has ended, moves the MCU on.
    void service(McuRun& run) {
        if (!run.child) return;
        const bool open = run.child->read_available([&](const std::string& line) {
            auto j = json::parse(line, nullptr, false);
            if (j.is_object()) on_child_event(run, j);
        });
        if (open) return;
        const int code = run.child->wait();
        const std::string errors = run.child->error_text();
        run.child.reset();
        // Empty when the child stopped (Ctrl-C, a crash) before it said anything.
        const json result = run.last_result;
        const bool ok = code == 0 && result.value("event", "") == "result";
        if (run.phase == McuRun::Phase::Identifying) {
            if (ok) {
                run.before = result.value("version", "");
                if (result.value("runs_image", false)) {
                    run.after = run.before;
                    finish(run, "unchanged", "already runs the image's build", 0);
                    return;
                }
            } else if (code != 130 && code != 143) {
                run.before = "no answer";
            } else {
                finish(run, "failed", "stopped", code, code == 130 ? ErrorKind::Interrupted : ErrorKind::Terminated);
                return;
            }
            start_flash(run);  // an MCU that does not answer may be in its bootloader already
            return;
        }
        if (run.phase == McuRun::Phase::Checking) {
            if (ok) note_back(run, result.value("version", ""), result.value("runs_image", false));
            else note_not_back(run, result.value("message", "no answer"));
            finish(run, "flashed", run.detail, 0);
            return;
        }
        if (ok) {
            run.detail = result.value("verified", false)
                             ? fmt::format("verified ({})", result.value("verify_method", "read back"))
                             : fmt::format("written, not verified: {}", result.value("not_verified_because", "?"));
            const auto back = result.value("klipper_after", json());
            if (back.contains("version")) {
                note_back(run, back.value("version", ""), back.value("runs_image", false));
            } else if (back.contains("error")) {
                note_not_back(run, back.value("error", ""));
            } else if (!run.image_version.empty() && can_identify(run.step->device)) {
                start_identify(run, McuRun::Phase::Checking);  // a UART's Klipper: asked here whether it came back
                return;
            }
            finish(run, "flashed", run.detail, 0);
            return;
        }
        std::string message = result.value("message", "");
        // A child the signal reached before it could say anything (still starting) ends without a
        // message: the code says what stopped it.
        if (message.empty())
            message = !errors.empty() ? errors
                      : code == 130  ? "interrupted (Ctrl-C) as it started"
                      : code == 143  ? "stopped (SIGTERM) as it started"
                                     : fmt::format("mcuflash ended with {}", code);
        const ErrorKind kind = result.contains("kind") ? core::kind_by_name(result.value("kind", ""))
                               : code == 130                ? ErrorKind::Interrupted
                               : code == 143                ? ErrorKind::Terminated
                                                            : ErrorKind::Internal;
        finish(run, "failed", message, code ? code : 70, kind);
    }

    void on_child_event(McuRun& run, json j) {
        const std::string kind = j.value("event", "");
        if (kind == "result" || kind == "error") {
            run.last_result = j;
            j["event"] = kind == "error"                            ? "mcu_error"
                         : run.phase == McuRun::Phase::Flashing ? "mcu_flashed"
                                                                : "mcu_identified";
        } else if (kind == "started" || kind == "progress" || kind == "finished") {
            run.stage = j.value("stage", run.stage);
            run.done = j.value("done", uint64_t(0));
            run.total = j.value("total", uint64_t(0));
        } else if (kind == "warning" && reporter_.mode() != OutputMode::Json) {
            say(run, j.value("message", ""));
        }
        if (reporter_.mode() == OutputMode::Json) {
            j["mcu"] = run.step->mcu;
            std::cout << json_line(j) << std::endl;
        } else if (reporter_.mode() == OutputMode::Plain && (kind == "started" && run.total)) {
            say(run, fmt::format("{}: {} bytes", run.stage, run.total));
        }
    }

    void finish(McuRun& run, const std::string& outcome, const std::string& detail, int code,
                ErrorKind kind = ErrorKind::Internal) {
        run.phase = McuRun::Phase::Done;
        run.error_kind = kind;
        run.outcome = outcome;
        run.detail = detail;
        run.exit_code = code;
        run.seconds = std::chrono::duration<double>(Clock::now() - run.started).count();
        event(run, {{"event", "mcu_done"}, {"outcome", outcome}, {"detail", detail}, {"exit_code", code},
                    {"seconds", run.seconds}});
        if (reporter_.mode() == OutputMode::Plain)
            say(run, fmt::format("{}: {} ({:.1f} s)", outcome, detail, run.seconds));
    }

    void event(const McuRun& run, json j) {
        if (reporter_.mode() != OutputMode::Json) return;
        j["mcu"] = run.step->mcu;
        std::cout << json_line(j) << std::endl;
    }

    // A line about one MCU, above the bars on a terminal.
    void say(const McuRun& run, const std::string& text) {
        if (reporter_.mode() == OutputMode::Terminal) erase_drawing();
        fmt::print(stderr, "{}: {}\n", run.step->mcu, text);
        if (reporter_.mode() == OutputMode::Terminal) draw();
    }

    std::string status_line(const McuRun& run) const {
        using Phase = McuRun::Phase;
        switch (run.phase) {
            case Phase::Waiting: return "waiting its turn";
            case Phase::Identifying: return "asking what it runs";
            case Phase::Checking: return "waiting for it to come back running the new build";
            case Phase::Done:
                return fmt::format("{}{}{}", run.outcome, run.detail.empty() ? "" : ": " + run.detail,
                                   run.seconds > 0 ? fmt::format(" ({:.1f} s)", run.seconds) : "");
            case Phase::Flashing: break;
        }
        if (!run.total) return run.stage;
        const int width = 24;
        const double fraction = static_cast<double>(run.done) / run.total;
        std::string bar(static_cast<size_t>(fraction * width), '#');
        bar.resize(width, '.');
        return fmt::format("{:<7} [{}] {:3.0f}%", run.stage, bar, fraction * 100);
    }

    void draw() {
        if (reporter_.mode() != OutputMode::Terminal) return;
        erase_drawing();
        for (const auto& run : runs_) {
            std::string line = fmt::format("{:<10} {}", run.step->mcu, status_line(run));
            if (line.size() > 110) line = line.substr(0, 107) + "...";
            fmt::print(stderr, "{}\n", line);
        }
        drawn_lines_ = runs_.size();
        std::fflush(stderr);
    }

    void erase_drawing() {
        if (drawn_lines_) fmt::print(stderr, "\x1b[{}A\x1b[J", drawn_lines_);
        drawn_lines_ = 0;
    }

    const PrinterFlashOptions& options_;
    Reporter& reporter_;
    Reporter quiet_{OutputMode::Plain, true};
    const plan::PrinterUpdatePlan& plan_;
    const std::string self_;
    std::vector<McuRun> runs_;
    size_t drawn_lines_ = 0;
};

// A version in the table: "-" where nothing was asked or nothing answered.
std::string shorter(const std::string& version) { return version.empty() ? "-" : version; }

void printer_flash_command(GlobalOptions& global, const PrinterFlashOptions& o) {
    run(global, [&](Reporter& reporter) {
        const auto [config, manifest] = read_printer(o);
        const auto plan = plan::plan_printer_update(config, manifest, o.only);
        PrinterFlash flash(o, reporter, plan);
        flash.check_images();
        if (o.dry_run) {
            json steps = json::array();
            std::string human = fmt::format("{} MCUs of {}; nothing is flashed (--dry-run):\n", plan.steps.size(), config.path);
            for (const auto& run : flash.runs()) {
                const auto& s = *run.step;
                steps.push_back({{"mcu", s.mcu}, {"board", s.board}, {"device", s.device}, {"image", s.image},
                                 {"image_version", run.image_version}, {"after", s.after}, {"resources", s.resources},
                                 {"left_out", s.skip_reason}});
                human += fmt::format("  {:<10} {:<24} {}\n  {:<10} {}{}\n", s.mcu, s.board.empty() ? "(no board)" : s.board,
                                     s.device, "",
                                     s.skip_reason.empty() ? fmt::format("{} ({})", s.image, run.image_version.empty() ? "not a Klipper build" : "Klipper " + run.image_version)
                                                           : "left out: " + s.skip_reason,
                                     s.after.empty() ? "" : fmt::format("; after {}", fmt::join(s.after, ", ")));
            }
            reporter.result({{"command", "printer flash"}, {"dry_run", true}, {"mcus", steps}}, human);
            return;
        }
        std::optional<KlipperService> service;
        if (o.stop_klipper) service.emplace(o.moonraker, reporter);
        flash.run_all();
        if (service) service->start_again();

        json mcus = json::array();
        std::string table = fmt::format("{:<10} {:<24} {:<22} {:<22} {:>7}  {}\n", "MCU", "board", "before", "after",
                                        "time", "result");
        const McuRun* first_failure = nullptr;
        size_t failures = 0;
        for (const auto& run : flash.runs()) {
            const auto& s = *run.step;
            mcus.push_back({{"mcu", s.mcu}, {"board", s.board}, {"device", s.device}, {"image", s.image},
                            {"version_before", run.before}, {"version_after", run.after},
                            {"image_version", run.image_version}, {"outcome", run.outcome}, {"detail", run.detail},
                            {"exit_code", run.exit_code}, {"seconds", run.seconds},
                            {"back_running_image", run.back ? json(*run.back) : json()}});
            table += fmt::format("{:<10} {:<24} {:<22} {:<22} {:>6.1f}s  {}{}\n", s.mcu, s.board.empty() ? "-" : s.board,
                                 shorter(run.before), shorter(run.after), run.seconds, run.outcome,
                                 run.detail.empty() ? "" : ": " + run.detail);
            if (run.outcome == "failed" || run.outcome == "not started") {
                ++failures;
                if (!first_failure) first_failure = &run;
            }
        }
        const json result = {{"command", "printer flash"}, {"config", config.path}, {"manifest", manifest.path},
                             {"mcus", mcus}, {"failed", failures}};
        if (core::interrupt_signal() || first_failure)
            reporter.report_before_error(result, table);
        else
            reporter.result(result, table);
        if (core::interrupt_signal()) core::throw_if_interrupted();
        if (first_failure) {
            Error e(first_failure->error_kind,
                    fmt::format("{} of {} MCUs were not updated: {} ({})", failures, flash.runs().size(),
                                first_failure->step->mcu, first_failure->detail),
                    "the others are done; run it again with --only " + first_failure->step->mcu +
                        " once the cause is fixed (the table above says what each MCU runs now)");
            throw e;
        }
    });
}

}  // namespace

void register_printer_flash_commands(CLI::App& printer, GlobalOptions& global) {
    static PrinterFlashOptions o;
    auto* flash = printer.add_subcommand(
        "flash", "flash every MCU of printer.cfg with its image from mcuflash.toml: images checked first, MCUs on "
                 "different transports at once, CAN nodes before their USB-to-CAN bridge, each verified and waited "
                 "for until it runs the new build");
    flash->add_option("--config", o.config,
                      "Klipper's printer.cfg (default: the manifest's, else ~/printer_data/config/printer.cfg)");
    flash->add_option("--manifest", o.manifest, "mcuflash.toml (default: beside printer.cfg)");
    flash->add_option("--only", o.only, "only these MCUs (printer.cfg names: mcu, ebb ...); repeat or comma-separate")
        ->delimiter(',');
    flash->add_flag("--reflash", o.reflash, "flash MCUs that already run their image's build too");
    flash->add_flag("--dry-run", o.dry_run, "check the images and show the order; flash nothing");
    flash->add_flag("--stop-klipper", o.stop_klipper,
                    "stop Klipper while flashing (through Moonraker if it answers, else systemctl) and start it again after");
    flash->add_option("--moonraker", o.moonraker, "Moonraker's address for --stop-klipper")->capture_default_str();
    flash->add_flag("--sim-fast", o.sim_fast, "sim: devices in the manifest without wire and flash timing");
    flash->callback([&global] { printer_flash_command(global, o); });
}

}  // namespace mcuflash::cli
