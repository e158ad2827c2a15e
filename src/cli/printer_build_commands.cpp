// `mcuflash printer init`: a first manifest (mcuflash.toml) for the MCUs of printer.cfg, with
// Klipper's .config for each board from the knowledge base. `mcuflash printer build`: Klipper's own
// make in the user's Klipper checkout once per MCU (its .config as KCONFIG_CONFIG, its own OUT
// folder), a few at a time, then every image checked against its board before anything is flashed.
#include <fcntl.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fmt/format.h>

#include <nlohmann/json.hpp>

#include <chrono>
#include <deque>
#include <filesystem>
#include <fstream>
#include <map>
#include <optional>
#include <sstream>
#include <thread>

#include "cli/build_target.hpp"
#include "cli/commands.hpp"
#include "cli/reporter.hpp"
#include "core/error.hpp"
#include "core/hexdump.hpp"
#include "discover/serial_ports.hpp"
#include "protocol/klipper_mcu/codec.hpp"
#include "targets/klipper_config.hpp"
#include "targets/klipper_kconfig.hpp"
#include "targets/knowledge.hpp"
#include "targets/printer_config.hpp"
#include "targets/printer_manifest.hpp"

extern char** environ;

namespace mcuflash::cli {

namespace {

namespace fs = std::filesystem;
namespace km = protocol::klipper_mcu;
using core::Error;
using core::ErrorKind;
using targets::Board;
using targets::KconfigInterface;
using targets::Knowledge;

std::string lower(std::string text) {
    for (auto& c : text) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    return text;
}

std::string home_path(const std::string& path) {
    if (path == "~" || path.starts_with("~/"))
        if (const char* home = std::getenv("HOME")) return (fs::path(home) / path.substr(std::min<size_t>(2, path.size()))).string();
    return path;
}

std::string absolute(const std::string& path) { return fs::absolute(home_path(path)).lexically_normal().string(); }

void write_text(const std::string& path, const std::string& text) {
    fs::create_directories(fs::path(path).parent_path());
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    out << text;
    if (!out.flush()) throw Error(ErrorKind::Io, fmt::format("cannot write {}", path));
}

// The build output the board's firmware goes in as: klipper.uf2 (RP2040 boot ROM), klipper.elf.hex
// (AVR bootloaders), klipper.elf; else klipper.bin (an SD card's firmware.bin is the same bytes).
std::string build_output_of(const Board& board) {
    for (const char* name : {"klipper.uf2", "klipper.elf.hex", "klipper.elf"})
        if (board.firmware_file == name) return name;
    return "klipper.bin";
}

// ---------------------------------------------------------------------------------------------
// printer init

struct InitOptions {
    std::string config;
    std::string manifest;
    std::string klipper;
    std::string out;
    std::vector<std::string> boards;   // MCU=BOARD
    std::vector<std::string> bridges;  // MCU names that are the USB to CAN bridge
    std::optional<uint32_t> can_bitrate;
    bool force = false;
};

// "usb-Klipper_stm32f446xx_0E001E000851-if00" -> "stm32f446xx" (Kalico's ports too).
std::string klipper_usb_mcu(const std::string& serial) {
    const auto port = discover::identify_port(serial);
    return port.kind == discover::PortIdentity::Kind::Klipper ? port.mcu : "";
}

struct InitDecision {
    std::string name;
    std::string device;
    const Board* board = nullptr;
    std::vector<const Board*> candidates;
    KconfigInterface interface = KconfigInterface::Board;
    std::string interface_reason;
    std::string reason;  // how the board was decided, or why not
    std::optional<targets::KlipperKconfig> kconfig;
    std::string kconfig_path;
    std::string kconfig_problem;
    bool bridge = false;
};

// How printer.cfg reaches the MCU says which interface its firmware needs.
void choose_interface(const targets::PrinterMcu& mcu, InitDecision& d) {
    if (!mcu.canbus_uuid.empty()) {
        d.interface = d.bridge ? KconfigInterface::UsbToCan : KconfigInterface::Can;
        d.interface_reason = d.bridge ? "--bridge: USB to the host, CAN to the other nodes"
                                      : fmt::format("printer.cfg reaches it on CAN (canbus_uuid {})", mcu.canbus_uuid);
        return;
    }
    const std::string file = fs::path(mcu.serial).filename().string();
    if (!klipper_usb_mcu(mcu.serial).empty()) {
        d.interface = KconfigInterface::Usb;
        d.interface_reason = "printer.cfg's port is Klipper's own USB device";
    } else if (mcu.serial.find("/by-id/") != std::string::npos || file.starts_with("ttyUSB") || file.starts_with("ttyACM")) {
        d.interface = KconfigInterface::Board;
        d.interface_reason = "printer.cfg's port is a USB device that is not Klipper's own (a USB-serial chip on the "
                             "board): the board's interface";
    } else {
        d.interface = KconfigInterface::Serial;
        d.interface_reason = fmt::format("printer.cfg's port {} is a UART, at baud {}", mcu.serial, mcu.baud);
    }
}

void printer_init_command(GlobalOptions& global, const InitOptions& o) {
    run(global, [&](Reporter& reporter) {
        const auto& kb = Knowledge::builtin();
        const std::string config_path = o.config.empty() ? targets::default_printer_config() : o.config;
        if (config_path.empty())
            throw Error(ErrorKind::Usage, "no printer.cfg in ~/printer_data/config/ or ~/: give it with --config");
        const auto printer = targets::read_printer_config(config_path);
        if (printer.mcus.empty())
            throw Error(ErrorKind::BadInput, fmt::format("{} has no [mcu] section", config_path),
                        "Klipper's printer.cfg names its main board's port in [mcu] serial:");

        targets::PrinterManifest manifest;
        manifest.path = absolute(o.manifest.empty() ? targets::default_manifest_path(config_path) : o.manifest);
        manifest.printer_config = absolute(config_path);
        manifest.klipper_tree = absolute(o.klipper.empty() ? "~/klipper" : o.klipper);
        manifest.out_dir = o.out.empty() ? (fs::path(manifest.path).parent_path() / "mcuflash").string() : absolute(o.out);

        std::map<std::string, std::string> named_boards;
        for (const auto& pair : o.boards) {
            const auto eq = pair.find('=');
            if (eq == std::string::npos || eq == 0 || eq + 1 == pair.size())
                throw Error(ErrorKind::Usage, fmt::format("--board {}: give it as MCU=BOARD (--board mcu=btt-octopus-v1.1-f446)", pair));
            named_boards[pair.substr(0, eq)] = pair.substr(eq + 1);
        }
        auto known_mcu = [&](const std::string& name) {
            return std::any_of(printer.mcus.begin(), printer.mcus.end(), [&](const auto& m) { return m.name == name; });
        };
        std::string names;
        for (const auto& m : printer.mcus) names += (names.empty() ? "" : ", ") + m.name;
        for (const auto& [name, board] : named_boards)
            if (!known_mcu(name))
                throw Error(ErrorKind::Usage, fmt::format("--board {}={}: printer.cfg has no MCU '{}'", name, board, name),
                            "its MCUs: " + names);
        for (const auto& name : o.bridges)
            if (!known_mcu(name))
                throw Error(ErrorKind::Usage, fmt::format("--bridge {}: printer.cfg has no MCU '{}'", name, name),
                            "its MCUs: " + names);

        std::vector<InitDecision> decisions;
        for (const auto& mcu : printer.mcus) {
            InitDecision d;
            d.name = mcu.name;
            d.device = mcu.canbus_uuid.empty() ? mcu.serial : fmt::format("can:{}:{}", mcu.canbus_interface, mcu.canbus_uuid);
            d.bridge = std::find(o.bridges.begin(), o.bridges.end(), mcu.name) != o.bridges.end();
            if (auto named = named_boards.find(mcu.name); named != named_boards.end()) {
                d.board = &one_board(kb, named->second);
                d.reason = fmt::format("--board {}={}", mcu.name, named->second);
            } else if (const auto usb_mcu = klipper_usb_mcu(mcu.serial); !usb_mcu.empty()) {
                for (const auto& [id, board] : kb.boards())
                    if (lower(board.mcu) == lower(usb_mcu)) d.candidates.push_back(&board);
                if (d.candidates.size() == 1) {
                    d.board = d.candidates.front();
                    d.reason = fmt::format("its port names Klipper's MCU {}, and only the {} has it", usb_mcu, d.board->name);
                } else if (d.candidates.empty()) {
                    d.reason = fmt::format("its port names Klipper's MCU {}, which no board of mcuflash's list has: "
                                           "give it with --board {}=BOARD (`mcuflash boards` lists them)",
                                           usb_mcu, mcu.name);
                } else {
                    std::string list;
                    for (const auto* b : d.candidates) list += "\n  " + b->id;
                    d.reason = fmt::format("its port names Klipper's MCU {}, which {} boards have: give it with --board "
                                           "{}=BOARD, one of:{}",
                                           usb_mcu, d.candidates.size(), mcu.name, list);
                }
            } else if (!mcu.canbus_uuid.empty()) {
                d.reason = fmt::format("a CAN node does not say what board it is: give it with --board {}=BOARD "
                                       "(`mcuflash boards` lists them)",
                                       mcu.name);
            } else {
                d.reason = fmt::format("its port {} does not say what board it is: give it with --board {}=BOARD "
                                       "(`mcuflash boards` lists them)",
                                       mcu.serial, mcu.name);
            }
            choose_interface(mcu, d);
            if (d.board) {
                targets::KconfigChoices choices;
                choices.interface = d.interface;
                choices.serial_baud = mcu.baud;
                choices.canbus_bitrate = o.can_bitrate;
                try {
                    d.kconfig = targets::klipper_kconfig_plan(kb, *d.board, nullptr, choices);
                    d.kconfig_path = (fs::path(manifest.out_dir) / (mcu.name + ".config")).string();
                } catch (const Error& e) {
                    d.kconfig_problem = e.what();
                }
            }
            decisions.push_back(std::move(d));
        }

        // Nothing is overwritten unasked: all files are checked before any is written.
        std::vector<std::string> to_write{manifest.path};
        for (const auto& d : decisions)
            if (!d.kconfig_path.empty()) to_write.push_back(d.kconfig_path);
        if (!o.force)
            for (const auto& path : to_write)
                if (fs::exists(path))
                    throw Error(ErrorKind::BadInput, fmt::format("{} exists already: nothing was written", path),
                                "--force overwrites it (the manifest and the .config files)");

        std::vector<std::pair<std::string, std::string>> comments;
        nlohmann::json mcus = nlohmann::json::array();
        std::string table;
        for (const auto& d : decisions) {
            targets::ManifestMcu m;
            m.name = d.name;
            m.board = d.board ? d.board->id : "";
            m.kconfig = d.kconfig_path;
            m.image = (fs::path(manifest.out_dir) / d.name / (d.board ? build_output_of(*d.board) : "klipper.bin")).string();
            if (d.bridge) m.can_bridge = true;
            manifest.mcus.push_back(m);

            std::string comment = fmt::format("[mcu{}] at {}: ", d.name == "mcu" ? "" : " " + d.name, d.device) + d.reason;
            if (d.board) {
                comment += fmt::format("\ninterface: {} ({})", d.kconfig ? d.kconfig->interface : targets::interface_name(d.interface),
                                       d.interface_reason);
                if (d.kconfig && d.kconfig->offset)
                    comment += fmt::format("\noffset: {} ({})", core::hex_address(*d.kconfig->offset), d.kconfig->offset_source);
                if (d.kconfig)
                    for (const auto& note : d.kconfig->notes) comment += "\nleft to Klipper: " + note;
                if (!d.kconfig_problem.empty())
                    comment += "\nno .config written: " + d.kconfig_problem + "; make one with make menuconfig and name "
                               "it in kconfig";
            }
            comments.emplace_back(d.name, comment);

            nlohmann::json entry = {{"name", d.name},
                                    {"device", d.device},
                                    {"board", m.board},
                                    {"reason", d.reason},
                                    {"interface", d.kconfig ? d.kconfig->interface : ""},
                                    {"interface_reason", d.interface_reason},
                                    {"kconfig", d.kconfig_path},
                                    {"image", m.image}};
            if (!d.candidates.empty() && !d.board) {
                nlohmann::json candidates = nlohmann::json::array();
                for (const auto* b : d.candidates) candidates.push_back(b->id);
                entry["candidates"] = candidates;
            }
            if (d.kconfig) {
                entry["notes"] = d.kconfig->notes;
                if (d.kconfig->offset) entry["offset"] = *d.kconfig->offset;
            }
            if (!d.kconfig_problem.empty()) entry["kconfig_problem"] = d.kconfig_problem;
            mcus.push_back(entry);
            table += fmt::format("  {:<10} {:<28} {}\n", d.name, m.board.empty() ? "(board not known)" : m.board,
                                 d.kconfig ? fs::path(d.kconfig_path).filename().string() + ": " + d.kconfig->interface
                                 : d.board ? "no .config: " + d.kconfig_problem
                                           : d.reason.substr(0, d.reason.find('\n')));
        }
        for (const auto& d : decisions)
            if (d.kconfig) write_text(d.kconfig_path, d.kconfig->text);
        write_text(manifest.path, targets::printer_manifest_text(manifest, comments));

        std::string human = fmt::format("{} ({} MCU{}) -> {}\n{}", config_path, decisions.size(),
                                        decisions.size() == 1 ? "" : "s", manifest.path, table);
        const bool all_known = std::all_of(decisions.begin(), decisions.end(), [](const auto& d) { return d.kconfig; });
        if (!all_known) human += "Name the missing boards with --board MCU=BOARD (and --force), or edit the manifest.\n";
        human += fmt::format("Next: review each .config with make -C {} menuconfig KCONFIG_CONFIG=<file>, then mcuflash "
                             "printer build{}\n",
                             manifest.klipper_tree,
                             o.manifest.empty() ? "" : " --manifest " + o.manifest);
        reporter.result({{"command", "printer init"},
                         {"config", config_path},
                         {"manifest", manifest.path},
                         {"klipper", manifest.klipper_tree},
                         {"out", manifest.out_dir},
                         {"mcus", mcus}},
                        human);
    });
}

// ---------------------------------------------------------------------------------------------
// printer build

struct BuildOptions {
    std::string manifest;
    std::string klipper;
    unsigned jobs = 2;
    std::vector<std::string> only;
};

struct BuildJob {
    const targets::ManifestMcu* mcu = nullptr;
    const Board* board = nullptr;
    std::string out;     // OUT/<name>/
    std::string config;  // OUT/<name>/.config: the manifest's kconfig, completed by olddefconfig
    std::string log;
    int stage = 0;       // 0: olddefconfig, 1: make, 2: done
    pid_t pid = -1;
    std::chrono::steady_clock::time_point started;
    double seconds = 0;
    std::string status;  // "ok", "build failed", "refused"
    std::string problem;
    nlohmann::json result;
};

// Runs `make -C TREE KCONFIG_CONFIG=... OUT=... ARGS` with its output appended to the job's log.
pid_t spawn_make(const std::string& tree, const BuildJob& job, const std::vector<std::string>& args) {
    std::vector<std::string> argv{"make", "-C", tree, "KCONFIG_CONFIG=" + job.config, "OUT=" + job.out};
    argv.insert(argv.end(), args.begin(), args.end());
    std::vector<char*> raw;
    for (auto& a : argv) raw.push_back(a.data());
    raw.push_back(nullptr);
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_addopen(&actions, 1, job.log.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
    posix_spawn_file_actions_adddup2(&actions, 1, 2);
    posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0);
    pid_t pid = -1;
    const int rc = posix_spawnp(&pid, "make", &actions, nullptr, raw.data(), environ);
    posix_spawn_file_actions_destroy(&actions);
    if (rc != 0)
        throw Error(ErrorKind::NotFound, fmt::format("cannot run make: {}", std::strerror(rc)),
                    "install it (Debian: sudo apt install build-essential)");
    return pid;
}

std::string log_tail(const std::string& path, size_t lines) {
    std::vector<std::string> all;
    std::ifstream in(path);
    for (std::string line; std::getline(in, line);) all.push_back(line);
    std::string out;
    for (size_t i = all.size() > lines ? all.size() - lines : 0; i < all.size(); ++i) out += "    " + all[i] + "\n";
    return out;
}

// The image of a finished build against its board before anything is flashed: Klipper's CONFIG_MCU,
// the address it is linked for against where the board's bootloader starts the application, and
// its identify data (build_target.*: the checks `flash` makes).
void check_image(BuildJob& job, const std::string& image, Reporter& reporter) {
    const Board& board = *job.board;
    // The manifest's bootloader, else (a board whose config states no offset) the board's first.
    std::string bootloader = job.mcu->bootloader;
    if (bootloader.empty() && !board.app_offset && !board.bootloaders.empty()) bootloader = board.bootloaders.front();
    const std::string version = check_image_for_board(image, board.id, job.config, bootloader, reporter);
    if (version.empty())
        throw Error(ErrorKind::BadInput, fmt::format("{} holds no Klipper identify data", image),
                    fmt::format("see the build's log {}", job.log));
    const auto built = targets::read_klipper_config(job.config);
    job.result["version"] = version;
    job.result["config_mcu"] = built.mcu;
    if (built.application_address) job.result["application_address"] = *built.application_address;
}

void printer_build_command(GlobalOptions& global, const BuildOptions& o) {
    run(global, [&](Reporter& reporter) {
        const auto& kb = Knowledge::builtin();
        std::string manifest_path = o.manifest;
        if (manifest_path.empty()) {
            const auto config = targets::default_printer_config();
            if (config.empty())
                throw Error(ErrorKind::Usage, "no printer.cfg in ~/printer_data/config/ or ~/: give the manifest with --manifest");
            manifest_path = targets::default_manifest_path(config);
        }
        const auto manifest = targets::read_printer_manifest(manifest_path);
        const std::string tree = o.klipper.empty() ? manifest.klipper_tree : absolute(o.klipper);
        if (!fs::exists(fs::path(tree) / "Makefile") || !fs::exists(fs::path(tree) / "src" / "Kconfig"))
            throw Error(ErrorKind::NotFound, fmt::format("no Klipper checkout at {} (no Makefile and src/Kconfig)", tree),
                        "give it with --klipper DIR, or as klipper = \"...\" in the manifest's [printer]");
        for (const auto& name : o.only)
            if (!manifest.find(name))
                throw Error(ErrorKind::Usage, fmt::format("--only {}: the manifest has no MCU '{}'", name, name));
        const unsigned at_once = std::max(1u, o.jobs);
        const unsigned make_jobs = std::max(1u, std::thread::hardware_concurrency() / at_once);

        std::deque<BuildJob> jobs;
        nlohmann::json skipped = nlohmann::json::array();
        std::string human_skipped;
        for (const auto& mcu : manifest.mcus) {
            if (!o.only.empty() && std::find(o.only.begin(), o.only.end(), mcu.name) == o.only.end()) continue;
            std::string why;
            if (mcu.skip) why = "skip = true";
            else if (mcu.kconfig.empty()) why = "no kconfig in the manifest";
            else if (mcu.board.empty()) why = "no board in the manifest: its image could not be checked";
            if (!why.empty()) {
                skipped.push_back({{"name", mcu.name}, {"why", why}});
                human_skipped += fmt::format("  {:<10} skipped: {}\n", mcu.name, why);
                continue;
            }
            if (!fs::exists(mcu.kconfig))
                throw Error(ErrorKind::NotFound, fmt::format("{}: the .config {} does not exist", mcu.where, mcu.kconfig),
                            "`mcuflash printer init` writes one per board; or make one with make menuconfig");
            BuildJob job;
            job.mcu = &mcu;
            job.board = &one_board(kb, mcu.board);
            job.out = (fs::path(manifest.out_dir) / mcu.name).string() + "/";
            job.config = job.out + ".config";
            job.log = job.out + "build.log";
            jobs.push_back(std::move(job));
        }

        // N builds at a time; each runs olddefconfig, then make. The manifest's .config is copied into
        // the build's folder first, so the user's file keeps its comments and the build a record.
        std::deque<BuildJob*> waiting;
        for (auto& job : jobs) waiting.push_back(&job);
        std::map<pid_t, BuildJob*> running;
        auto start_stage = [&](BuildJob& job) {
            job.pid = job.stage == 0 ? spawn_make(tree, job, {"olddefconfig"})
                                     : spawn_make(tree, job, {fmt::format("-j{}", make_jobs)});
            running[job.pid] = &job;
        };
        auto finish = [&](BuildJob& job, const std::string& status) {
            job.status = status;
            job.stage = 2;
            job.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - job.started).count();
        };
        while (!waiting.empty() || !running.empty()) {
            while (!waiting.empty() && running.size() < at_once) {
                BuildJob& job = *waiting.front();
                waiting.pop_front();
                fs::create_directories(job.out);
                fs::copy_file(job.mcu->kconfig, job.config, fs::copy_options::overwrite_existing);
                write_text(job.log, fmt::format("# mcuflash printer build: {} ({}) from {}\n", job.mcu->name,
                                                job.board->id, job.mcu->kconfig));
                job.started = std::chrono::steady_clock::now();
                reporter.info(fmt::format("{}: building for the {} (log {})", job.mcu->name, job.board->name, job.log));
                start_stage(job);
            }
            int status = 0;
            const pid_t pid = waitpid(-1, &status, 0);
            if (pid < 0) {
                if (errno == EINTR) continue;
                throw Error(ErrorKind::Internal, fmt::format("waiting for make: {}", std::strerror(errno)));
            }
            auto it = running.find(pid);
            if (it == running.end()) continue;
            BuildJob& job = *it->second;
            running.erase(it);
            const bool ok = WIFEXITED(status) && WEXITSTATUS(status) == 0;
            if (!ok) {
                finish(job, "build failed");
                job.problem = fmt::format("make {} failed ({})", job.stage == 0 ? "olddefconfig" : "",
                                          WIFEXITED(status) ? fmt::format("exit {}", WEXITSTATUS(status))
                                                            : fmt::format("signal {}", WTERMSIG(status)));
                reporter.warning(fmt::format("{}: the {}'s firmware build failed after {:.1f} s; the end of {}:\n{}",
                                             job.mcu->name, job.board->name, job.seconds, job.log, log_tail(job.log, 20)));
            } else if (job.stage == 0) {
                job.stage = 1;
                start_stage(job);
            } else {
                finish(job, "built");
                reporter.info(fmt::format("{}: built in {:.1f} s", job.mcu->name, job.seconds));
            }
        }

        // Every image checked before anything is flashed.
        nlohmann::json results = nlohmann::json::array();
        std::string human;
        size_t failed = 0, refused = 0;
        for (auto& job : jobs) {
            const std::string image = job.out + build_output_of(*job.board);
            job.result = {{"name", job.mcu->name}, {"board", job.board->id}, {"kconfig", job.mcu->kconfig},
                          {"config", job.config},  {"log", job.log},         {"image", image},
                          {"seconds", job.seconds}};
            if (job.status == "built") {
                try {
                    if (!fs::exists(image))
                        throw Error(ErrorKind::BadInput, fmt::format("the build made no {}", image),
                                    fmt::format("the {} needs {}; see {}", job.board->name, build_output_of(*job.board), job.log));
                    check_image(job, image, reporter);
                    job.result["size"] = fs::file_size(image);
                    job.status = "ok";
                    if (job.mcu->image != image)
                        reporter.warning(fmt::format("{}: the manifest's image is {}, not this build's {}", job.mcu->name,
                                                     job.mcu->image, image));
                } catch (const Error& e) {
                    job.status = "refused";
                    job.problem = e.what();
                }
            }
            job.result["status"] = job.status;
            if (!job.problem.empty()) job.result["problem"] = job.problem;
            if (job.status == "build failed") job.result["log_tail"] = log_tail(job.log, 20);
            failed += job.status == "build failed";
            refused += job.status == "refused";
            results.push_back(job.result);
            human += fmt::format("  {:<10} {:<28} {:<7} {:>6.1f} s  ", job.mcu->name, job.board->id, job.status, job.seconds);
            if (job.status == "ok")
                human += fmt::format("{} ({} bytes, {})\n", image, job.result["size"].get<uint64_t>(),
                                     job.result["version"].get<std::string>());
            else
                human += job.problem + "\n";
        }
        reporter.result({{"command", "printer build"},
                         {"manifest", manifest.path},
                         {"klipper", tree},
                         {"jobs", at_once},
                         {"mcus", results},
                         {"skipped", skipped}},
                        fmt::format("Klipper in {} ({} build{}, {} at a time):\n{}{}", tree, jobs.size(),
                                    jobs.size() == 1 ? "" : "s", at_once, human, human_skipped));
        if (failed)
            throw Error(ErrorKind::Io, fmt::format("{} of {} firmware builds failed", failed, jobs.size()),
                        "each build's log is in its folder (the end of it is above)");
        if (refused)
            throw Error(ErrorKind::BadInput, fmt::format("{} of {} images do not fit their boards: nothing should be flashed",
                                                         refused, jobs.size()),
                        "fix the .config (make menuconfig KCONFIG_CONFIG=...) or the manifest's board, then build again");
    });
}

}  // namespace

void register_printer_build_commands(CLI::App& printer, GlobalOptions& global) {
    static InitOptions init_options;
    auto* init = printer.add_subcommand(
        "init", "write a first manifest (mcuflash.toml) for printer.cfg's MCUs, with Klipper's .config for each board");
    init->add_option("--config", init_options.config,
                     "Klipper's printer.cfg (default ~/printer_data/config/printer.cfg, then ~/printer.cfg)");
    init->add_option("--manifest", init_options.manifest, "the manifest to write (default mcuflash.toml beside printer.cfg)");
    init->add_option("--klipper", init_options.klipper, "the Klipper (or Kalico) checkout builds run in (default ~/klipper)");
    init->add_option("--out", init_options.out, "where the .config files and builds go (default mcuflash/ beside the manifest)");
    init->add_option("--board", init_options.boards,
                     "MCU=BOARD: the board of an MCU (printer.cfg's name: mcu, ebb ...; a board of `mcuflash boards`)");
    init->add_option("--bridge", init_options.bridges,
                     "MCU: this MCU is the USB to CAN bridge (its firmware: USB to the host, CAN to the other nodes)");
    init->add_option("--can-bitrate", init_options.can_bitrate, "the CAN bus bitrate of the host's can0 (default: Klipper's, 1000000)");
    init->add_flag("--force", init_options.force, "overwrite an existing manifest and .config files");
    init->callback([&global] { printer_init_command(global, init_options); });

    static BuildOptions build_options;
    auto* build = printer.add_subcommand(
        "build", "build every MCU's firmware with Klipper's make (its .config from the manifest) and check each image");
    build->add_option("--manifest", build_options.manifest, "the manifest (default mcuflash.toml beside printer.cfg)");
    build->add_option("--klipper", build_options.klipper, "the Klipper checkout (default: the manifest's)");
    build->add_option("--jobs", build_options.jobs, "how many MCUs build at once (default 2)");
    build->add_option("--only", build_options.only, "build only this MCU (may be given more than once)");
    build->callback([&global] { printer_build_command(global, build_options); });
}

}  // namespace mcuflash::cli
