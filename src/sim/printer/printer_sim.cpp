#include "sim/printer/printer_sim.hpp"

#include <fcntl.h>
#include <fmt/format.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <memory>
#include <mutex>
#include <regex>
#include <thread>

#include "core/error.hpp"
#include "image/loader.hpp"
#include "protocol/klipper_mcu/codec.hpp"
#include "sim/gs_usb/gs_usb_bridge.hpp"
#include "sim/katapult/katapult_device.hpp"
#include "sim/klipper/klipper_usb.hpp"
#include "sim/printer/klipper_usb_board.hpp"
#include "sim/registry.hpp"
#include "sim/usb/usb_registry.hpp"
#include "sim/usb/usbip_server.hpp"
#include "targets/klipper_config.hpp"
#include "targets/knowledge.hpp"
#include "targets/printer_config.hpp"
#include "targets/printer_manifest.hpp"

namespace mcuflash::sim::printer {

namespace fs = std::filesystem;
using core::Error;
using core::ErrorKind;

namespace {

std::string section_of(const std::string& name) { return name == "mcu" ? "[mcu]" : "[mcu " + name + "]"; }

// The USB simulator of a bootloader protocol; the bridge and the card reader are not bootloaders.
const usb::UsbSimulatorInfo* usb_bootloader_simulator(const std::string& protocol) {
    for (const auto& info : usb::usb_simulators())
        if (info.protocol == protocol && protocol != "gs-usb" && protocol != "card-reader") return &info;
    return nullptr;
}

const SimulatorInfo* byte_stream_simulator(const std::string& protocol) {
    for (const auto& info : simulators())
        if (info.protocol == protocol) return &info;
    return nullptr;
}

std::optional<uint64_t> parse_uuid(const std::string& text) {
    if (text.size() != 12 || text.find_first_not_of("0123456789abcdefABCDEF") != std::string::npos) return std::nullopt;
    return std::stoull(text, nullptr, 16);
}

std::chrono::milliseconds reboot_time(bool timing) { return std::chrono::milliseconds(timing ? 500 : 50); }

}  // namespace

std::vector<SimulatedMcu> plan_printer(const PrinterSimOptions& options) {
    const auto config = targets::read_printer_config(options.config);
    const std::string manifest_path =
        options.manifest.empty() ? targets::default_manifest_path(config.path) : options.manifest;
    const auto manifest = targets::read_printer_manifest(manifest_path);
    const auto& kb = targets::Knowledge::builtin();
    const fs::path flash_dir = options.flash_dir.empty() ? fs::absolute(manifest_path).parent_path() / "sim-flash"
                                                         : fs::absolute(options.flash_dir);

    for (const auto& [name, file] : options.firmware) {
        bool known = false;
        for (const auto& m : config.mcus) known = known || m.name == name;
        if (!known)
            throw Error(ErrorKind::Usage, fmt::format("--firmware {}={}: {} has no {} section", name, file, config.path,
                                                      section_of(name)));
    }

    std::vector<SimulatedMcu> mcus;
    static const std::regex usb_klipper(R"(.*/usb-Klipper_([^_/]+)_([^/]+)-if00)");
    for (const auto& m : config.mcus) {
        SimulatedMcu mcu;
        mcu.name = m.name;
        const auto* entry = manifest.find(m.name);
        if (!entry || entry->board.empty())
            throw Error(ErrorKind::BadInput,
                        fmt::format("mcu '{}' ({} in {}): {} gives it no board, so it cannot be simulated", m.name,
                                    section_of(m.name), m.file, manifest_path),
                        fmt::format("add [mcu.{}] with board = \"...\" (`mcuflash boards` lists them)", m.name));
        const auto board_it = kb.boards().find(entry->board);
        if (board_it == kb.boards().end())
            throw Error(ErrorKind::BadInput, fmt::format("mcu '{}': {}: no board '{}' in the knowledge base", m.name,
                                                         entry->where, entry->board),
                        "`mcuflash boards` lists them");
        const targets::Board& board = board_it->second;
        mcu.board = board.id;
        const auto& chip = kb.chip(board.chip);
        mcu.chip = chip.name;
        if (entry->bootloader.empty() && board.bootloaders.empty())
            throw Error(ErrorKind::BadInput, fmt::format("mcu '{}': the board {} has no bootloader in the knowledge base; "
                                                         "give one in {} (bootloader = ...)",
                                                         m.name, board.id, manifest_path));
        mcu.bootloader = entry->bootloader.empty() ? board.bootloaders.front() : entry->bootloader;
        const auto* bl = kb.find_bootloader(mcu.bootloader);
        if (!bl)
            throw Error(ErrorKind::BadInput,
                        fmt::format("mcu '{}': {}: no bootloader '{}' (see `mcuflash bootloaders`)", m.name, entry->where,
                                    mcu.bootloader));
        mcu.bootloader_protocol = bl->protocol;
        // The board's offset is for its first bootloader; another one keeps its own size.
        const bool boards_own = mcu.bootloader == (board.bootloaders.empty() ? "" : board.bootloaders.front());
        uint32_t offset = 0;
        if (boards_own && board.app_offset) offset = *board.app_offset;
        else if (bl->placement == targets::Placement::Bottom) offset = bl->size_on(chip.name).value_or(0);
        mcu.application_start = chip.flash_base + offset;
        mcu.flash_file = (flash_dir / (m.name + ".bin")).string();
        if (auto it = options.firmware.find(m.name); it != options.firmware.end())
            mcu.firmware = fs::absolute(it->second).string();
        mcu.baud = m.baud;

        if (!m.canbus_uuid.empty()) {
            const auto uuid = parse_uuid(m.canbus_uuid);
            if (!uuid)
                throw Error(ErrorKind::BadInput, fmt::format("mcu '{}': canbus_uuid '{}' in {} is not 12 hex digits",
                                                             m.name, m.canbus_uuid, m.file));
            mcu.uuid = *uuid;
            mcu.can_interface = m.canbus_interface.empty() ? "can0" : m.canbus_interface;
            bool bridge = false;
            if (entry->can_bridge) bridge = *entry->can_bridge;
            else if (!entry->kconfig.empty() && fs::exists(entry->kconfig))
                bridge = targets::read_klipper_config(entry->kconfig).interface == "USB to CAN bridge";
            mcu.place = bridge ? McuPlace::CanBridge : McuPlace::CanInterface;
        } else if (std::smatch match; std::regex_match(m.serial, match, usb_klipper)) {
            mcu.place = McuPlace::UsbKlipper;
            mcu.serial_path = m.serial;
            mcu.usb_mcu = match[1];
            mcu.usb_serial = match[2];
        } else {
            mcu.place = McuPlace::Uart;
            mcu.serial_path = m.serial;
        }
        const bool usb = mcu.place == McuPlace::UsbKlipper || mcu.place == McuPlace::CanBridge;
        if (usb && !usb_bootloader_simulator(bl->protocol))
            throw Error(ErrorKind::BadInput,
                        fmt::format("mcu '{}' is on USB, but its bootloader {} ({}) has no USB simulator", m.name,
                                    mcu.bootloader, bl->protocol),
                        "give it a USB bootloader in the manifest (st_rom_dfu, stm32duino, hid_stm32, rp2040_rom)");
        if (mcu.place == McuPlace::Uart && !byte_stream_simulator(bl->protocol))
            throw Error(ErrorKind::BadInput,
                        fmt::format("mcu '{}' is on a UART ({}), but its bootloader {} ({}) has no simulator on a "
                                    "serial line",
                                    m.name, m.serial, mcu.bootloader, bl->protocol));
        mcus.push_back(std::move(mcu));
    }

    // CAN: one bridge at most; the other nodes sit behind it, or on their interface without one.
    const SimulatedMcu* bridge = nullptr;
    for (const auto& mcu : mcus)
        if (mcu.place == McuPlace::CanBridge) {
            if (bridge)
                throw Error(ErrorKind::BadInput,
                            fmt::format("mcus '{}' and '{}' are both USB-to-CAN bridges in {}: a simulated printer has "
                                        "one bridge",
                                        bridge->name, mcu.name, manifest_path));
            bridge = &mcu;
        }
    for (auto& mcu : mcus) {
        if (mcu.place != McuPlace::CanInterface) continue;
        if (mcu.bootloader_protocol != "katapult")
            throw Error(ErrorKind::BadInput,
                        fmt::format("mcu '{}' is on CAN, but its bootloader is {}: a CAN node is updated through "
                                    "Katapult",
                                    mcu.name, mcu.bootloader),
                        fmt::format("set bootloader = \"katapult\" in [mcu.{}] of {}", mcu.name, manifest_path));
        if (bridge) {
            mcu.place = McuPlace::CanBehindBridge;
            mcu.bridge = bridge->name;
        }
    }
    size_t usb_devices = 0;
    for (auto& mcu : mcus)
        if (mcu.place == McuPlace::UsbKlipper || mcu.place == McuPlace::CanBridge) {
            if (options.usbip_port) mcu.usbip_port = static_cast<uint16_t>(*options.usbip_port + usb_devices);
            ++usb_devices;
        }
    if (usb_devices > 1 && !options.usbip_port) {
        std::string names;
        for (const auto& mcu : mcus)
            if (mcu.place == McuPlace::UsbKlipper || mcu.place == McuPlace::CanBridge)
                names += (names.empty() ? "" : ", ") + mcu.name;
        throw Error(ErrorKind::Usage,
                    fmt::format("{} USB devices ({}): give --usbip PORT (each gets its own USB/IP server: PORT, PORT+1, "
                                "...)",
                                usb_devices, names));
    }
    return mcus;
}

namespace {

// The flash memory the MCU's simulator will have (its flash file attached), made to set the scene.
struct FlashOwner {
    std::unique_ptr<Device> device;
    std::unique_ptr<usb::UsbDeviceModel> usb;
    FlashMemory& flash() { return device ? device->flash() : usb->flash(); }
};

FlashOwner flash_of(const SimulatedMcu& mcu, bool timing) {
    const auto& kb = targets::Knowledge::builtin();
    DeviceOptions options;
    options.bootloader = mcu.bootloader;
    options.timing = timing;
    options.flash_file = mcu.flash_file;
    FlashOwner owner;
    switch (mcu.place) {
        case McuPlace::UsbKlipper:
        case McuPlace::CanBridge:
            owner.usb = usb_bootloader_simulator(mcu.bootloader_protocol)->make(mcu.chip, options);
            break;
        case McuPlace::Uart:
            owner.device = make_device(mcu.bootloader_protocol, mcu.chip, options);
            break;
        case McuPlace::CanBehindBridge:
        case McuPlace::CanInterface: {
            katapult::KatapultConfig config;
            config.canbus_uuid = mcu.uuid;
            owner.device = std::make_unique<katapult::KatapultDevice>(kb.chip(mcu.chip), *kb.find_bootloader(mcu.bootloader),
                                                                      options, config);
            break;
        }
    }
    return owner;
}

}  // namespace

void seed_flash(const SimulatedMcu& mcu, bool timing) {
    fs::create_directories(fs::path(mcu.flash_file).parent_path());
    if (mcu.firmware.empty() || fs::path(mcu.firmware).extension() == ".dict") {
        if (!fs::exists(mcu.flash_file)) flash_of(mcu, timing);  // an erased flash, created at the chip's size
        return;
    }
    // Throws BadInput naming the file when it holds no Klipper build.
    protocol::klipper_mcu::identify_data_from_file(mcu.firmware);
    auto image = image::load_file(mcu.firmware);
    if (image.source_format == image::Format::Binary) image.shift(mcu.application_start);
    auto owner = flash_of(mcu, timing);
    FlashMemory& flash = owner.flash();
    for (const auto& [address, bytes] : image.runs())
        if (!flash.contains(address, bytes.size()))
            throw Error(ErrorKind::BadInput,
                        fmt::format("mcu '{}': {} ({}) does not fit the {}'s flash ({:#010x}-{:#010x})", mcu.name,
                                    mcu.firmware, image.describe_ranges(), mcu.chip, flash.base(), flash.end() - 1));
    for (const auto& [address, bytes] : image.runs()) flash.load(address, bytes);
}

std::string ready_line(const SimulatedMcu& mcu, uint16_t port) {
    switch (mcu.place) {
        case McuPlace::UsbKlipper:
            return fmt::format("ready {} usbip 127.0.0.1:{} {} -> {}", mcu.name, port,
                               fs::path(mcu.serial_path).filename().string(), mcu.bootloader);
        case McuPlace::Uart:
            return fmt::format("ready {} pty {} -> {}", mcu.name, mcu.serial_path, mcu.bootloader);
        case McuPlace::CanBridge:
            return fmt::format("ready {} can-bridge usbip 127.0.0.1:{} uuid {:012x} -> {}", mcu.name, port, mcu.uuid,
                               mcu.bootloader);
        case McuPlace::CanBehindBridge:
            return fmt::format("ready {} can bridge {} uuid {:012x} -> {}", mcu.name, mcu.bridge, mcu.uuid, mcu.bootloader);
        case McuPlace::CanInterface:
            return fmt::format("ready {} can {} uuid {:012x} -> {}", mcu.name, mcu.can_interface, mcu.uuid, mcu.bootloader);
    }
    return {};
}

namespace {

using Log = std::function<void(const std::string&)>;

// What the flash holds now, for a simulator that takes --firmware: the flash file when it holds a
// Klipper build, the given .dict (identify only), or nothing.
std::string firmware_argument(const SimulatedMcu& mcu) {
    if (!mcu.firmware.empty() && fs::path(mcu.firmware).extension() == ".dict") return mcu.firmware;
    try {
        protocol::klipper_mcu::identify_data_from_file(mcu.flash_file);
        return mcu.flash_file;
    } catch (const Error&) {
        return "";  // erased, or not Klipper: the board stays silent
    }
}

// A simulator in a child process (`mcuflash-sim klipper` or `katapult --can`), its output relayed
// line by line with the MCU's name.
struct Child {
    const SimulatedMcu* mcu = nullptr;
    pid_t pid = -1;
    std::thread relay;
    std::atomic<bool> on_can{false};  // it said it is on its CAN interface
    std::atomic<bool> ended{false};
    int status = 0;
};

std::vector<std::string> child_arguments(const SimulatedMcu& mcu, const PrinterSimOptions& options) {
    std::vector<std::string> args{options.self};
    const std::string firmware = firmware_argument(mcu);
    if (mcu.place == McuPlace::Uart) {
        // A UART's bootloader talks on the same wire: its port comes back at the same path.
        args.insert(args.end(), {"klipper", "--chip", mcu.chip, "--pty", mcu.serial_path, "--bootloader-pty",
                                 mcu.serial_path, "--bootloader", mcu.bootloader, "--flash-file", mcu.flash_file});
    } else {
        args.insert(args.end(), {"katapult", "--can", mcu.can_interface, "--uuid", fmt::format("{:012x}", mcu.uuid),
                                 "--klipper", "--chip", mcu.chip, "--bootloader", mcu.bootloader, "--flash-file",
                                 mcu.flash_file});
    }
    if (!firmware.empty()) args.insert(args.end(), {"--firmware", firmware});
    if (!options.timing) args.push_back("--no-timing");
    if (options.verbose) args.push_back("-v");
    return args;
}

void start_child(Child& child, const PrinterSimOptions& options, const Log& log) {
    const auto args = child_arguments(*child.mcu, options);
    std::vector<char*> argv;
    for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
    argv.push_back(nullptr);
    int pipe_fds[2];
    if (::pipe2(pipe_fds, O_CLOEXEC) != 0) throw Error(ErrorKind::Io, "cannot make a pipe for a simulator's output");
    if (options.verbose) {
        std::string line;
        for (const auto& a : args) line += (line.empty() ? "" : " ") + a;
        log(fmt::format("mcu '{}': {}", child.mcu->name, line));
    }
    const pid_t pid = ::fork();
    if (pid < 0) throw Error(ErrorKind::Io, "cannot start a simulator process (fork failed)");
    if (pid == 0) {
        // Only async-signal-safe calls here: this process has threads.
        sigset_t none;
        sigemptyset(&none);
        ::sigprocmask(SIG_SETMASK, &none, nullptr);
        ::dup2(pipe_fds[1], 1);
        ::dup2(pipe_fds[1], 2);
        ::execv(argv[0], argv.data());
        ::_exit(127);
    }
    ::close(pipe_fds[1]);
    child.pid = pid;
    child.relay = std::thread([&child, fd = pipe_fds[0], log] {
        FILE* in = ::fdopen(fd, "r");
        char buffer[4096];
        while (in && std::fgets(buffer, sizeof buffer, in)) {
            std::string line = buffer;
            if (!line.empty() && line.back() == '\n') line.pop_back();
            if (line.find(" on CAN ") != std::string::npos) child.on_can = true;
            if (line.rfind("mcuflash-sim: ", 0) == 0) line.erase(0, 14);  // the log adds its own
            log(fmt::format("[{}] {}", child.mcu->name, line));
        }
        if (in) std::fclose(in);
    });
}

bool child_ready(Child& child) {
    if (child.mcu->place == McuPlace::Uart) {
        std::error_code ec;
        return fs::exists(fs::symlink_status(child.mcu->serial_path, ec));
    }
    return child.on_can;
}

// Collects a child that has ended; true when it has.
bool reap(Child& child) {
    if (child.ended) return true;
    int status = 0;
    if (::waitpid(child.pid, &status, WNOHANG) == child.pid) {
        child.status = status;
        child.ended = true;
    }
    return child.ended;
}

std::string how_it_ended(int status) {
    if (WIFEXITED(status)) return fmt::format("exit {}", WEXITSTATUS(status));
    if (WIFSIGNALED(status)) return fmt::format("signal {}", WTERMSIG(status));
    return "ended";
}

// A USB device served in this process on its own USB/IP server thread.
struct UsbServed {
    const SimulatedMcu* mcu = nullptr;
    std::unique_ptr<KlipperUsbBoard> board;
    std::unique_ptr<usb::UsbipServer> server;
    std::thread thread;
    std::string failure;  // what ended its server early
};

// The board's bootloader simulator settings, and its log lines tagged with the MCU's name.
DeviceOptions board_device_options(const SimulatedMcu& mcu, const PrinterSimOptions& options) {
    DeviceOptions device_options;
    device_options.bootloader = mcu.bootloader;
    device_options.timing = options.timing;
    device_options.flash_file = mcu.flash_file;
    return device_options;
}
Log mcu_logger(const SimulatedMcu& mcu, const Log& log) {
    return [log, name = mcu.name](const std::string& message) { log(fmt::format("[{}] {}", name, message)); };
}

std::unique_ptr<KlipperUsbBoard> usb_board(const SimulatedMcu& mcu, const PrinterSimOptions& options, const Log& log) {
    DeviceOptions device_options = board_device_options(mcu, options);
    const Log mcu_log = mcu_logger(mcu, log);
    if (options.verbose) device_options.trace = mcu_log;
    auto bootloader = usb_bootloader_simulator(mcu.bootloader_protocol)->make(mcu.chip, device_options);
    if (options.verbose) bootloader->set_trace(mcu_log);
    auto running = protocol::klipper_mcu::find_dictionary_in_image(bootloader->flash().contents());
    std::vector<uint8_t> identify_data = running ? *running : std::vector<uint8_t>{};
    if (!mcu.firmware.empty() && fs::path(mcu.firmware).extension() == ".dict")
        identify_data = protocol::klipper_mcu::identify_data_from_file(mcu.firmware);

    if (mcu.place == McuPlace::UsbKlipper) {
        auto klipper = std::make_unique<klipper::KlipperUsbDevice>(mcu.usb_mcu, mcu.usb_serial, std::move(bootloader),
                                                                   reboot_time(options.timing), std::move(identify_data));
        if (options.verbose) klipper->set_trace(mcu_log);
        auto* device = klipper.get();
        return std::make_unique<KlipperUsbBoard>(
            std::move(klipper), [device](std::vector<uint8_t> data, Clock::time_point) { device->restart_klipper(std::move(data)); },
            reboot_time(options.timing), mcu_log);
    }
    return nullptr;
}

std::unique_ptr<KlipperUsbBoard> bridge_board(const SimulatedMcu& bridge_mcu, const std::vector<SimulatedMcu>& mcus,
                                              const PrinterSimOptions& options, const Log& log) {
    DeviceOptions device_options = board_device_options(bridge_mcu, options);
    const Log mcu_log = mcu_logger(bridge_mcu, log);
    gs_usb::GsUsbBridgeOptions bridge_options;
    bridge_options.chip = bridge_mcu.chip;
    bridge_options.timing = options.timing;
    bridge_options.uuid = bridge_mcu.uuid;
    bridge_options.log = mcu_log;
    bridge_options.bootloader = usb_bootloader_simulator(bridge_mcu.bootloader_protocol)->make(bridge_mcu.chip, device_options);
    if (options.verbose) bridge_options.bootloader->set_trace(mcu_log);
    if (auto running = protocol::klipper_mcu::find_dictionary_in_image(bridge_options.bootloader->flash().contents()))
        bridge_options.identify_data = *running;
    if (!bridge_mcu.firmware.empty() && fs::path(bridge_mcu.firmware).extension() == ".dict")
        bridge_options.identify_data = protocol::klipper_mcu::identify_data_from_file(bridge_mcu.firmware);
    for (const auto& mcu : mcus) {
        if (mcu.place != McuPlace::CanBehindBridge) continue;
        gs_usb::BridgeNodeSpec node;
        node.klipper = true;  // Klipper runs; Katapult on its bootloader request
        node.chip = mcu.chip;
        node.uuid = mcu.uuid;
        node.flash_file = mcu.flash_file;
        bridge_options.nodes.push_back(node);
    }
    auto bridge = std::make_unique<gs_usb::GsUsbBridge>(std::move(bridge_options));
    if (options.verbose) bridge->set_trace(mcu_log);
    // A real bridge's UUID is Klipper's hash of its chip id, which is also its USB serial: mcuflash
    // finds the bridge board by it. A printer.cfg UUID of its own breaks that link; say so.
    std::vector<uint8_t> chip_id;
    for (size_t i = 0; i + 1 < bridge->serial().size(); i += 2)
        chip_id.push_back(static_cast<uint8_t>(std::stoul(bridge->serial().substr(i, 2), nullptr, 16)));
    if (const uint64_t own = gs_usb::klipper_canbus_uuid(chip_id); own != bridge->uuid())
        mcu_log(fmt::format("note: printer.cfg's canbus_uuid {:012x} is not the UUID Klipper derives from this bridge's "
                            "chip id (USB serial {}): {:012x}; mcuflash finds a bridge board by its USB serial, so it "
                            "will not know this one as the bridge (use canbus_uuid: {:012x})",
                            bridge->uuid(), bridge->serial(), own, own));
    auto* device = bridge.get();
    return std::make_unique<KlipperUsbBoard>(
        std::move(bridge),
        [device](std::vector<uint8_t> data, Clock::time_point now) { device->restart_klipper(std::move(data), now); },
        reboot_time(options.timing), mcu_log);
}

}  // namespace

int run_printer(const std::vector<SimulatedMcu>& mcus, const PrinterSimOptions& options, const Log& log) {
    // SIGINT and SIGTERM are taken here (sigtimedwait), never by the server threads; children get
    // them unblocked again.
    sigset_t stop_signals;
    sigemptyset(&stop_signals);
    sigaddset(&stop_signals, SIGINT);
    sigaddset(&stop_signals, SIGTERM);
    ::pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);

    for (const auto& mcu : mcus) seed_flash(mcu, options.timing);

    std::mutex print_lock;
    const Log locked_log = [&print_lock, &log](const std::string& line) {
        std::lock_guard lock(print_lock);
        log(line);
    };
    auto say = [&print_lock](const std::string& line) {
        std::lock_guard lock(print_lock);
        std::fputs((line + "\n").c_str(), stdout);
        std::fflush(stdout);
    };

    std::vector<std::unique_ptr<Child>> children;
    std::vector<std::unique_ptr<UsbServed>> served;
    auto stop_everything = [&] {
        for (auto& s : served)
            if (s->server) s->server->request_stop();
        for (auto& s : served)
            if (s->thread.joinable()) s->thread.join();
        for (auto& c : children)
            if (c->pid > 0 && !reap(*c)) ::kill(c->pid, SIGTERM);
        for (auto& c : children) {
            if (c->pid > 0 && !c->ended) {
                ::waitpid(c->pid, &c->status, 0);
                c->ended = true;
            }
            if (c->relay.joinable()) c->relay.join();
        }
    };

    int rc = 0;
    try {
        for (const auto& mcu : mcus) {
            if (mcu.place == McuPlace::Uart || mcu.place == McuPlace::CanInterface) {
                auto child = std::make_unique<Child>();
                child->mcu = &mcu;
                children.push_back(std::move(child));
                start_child(*children.back(), options, locked_log);
            } else if (mcu.place == McuPlace::UsbKlipper || mcu.place == McuPlace::CanBridge) {
                auto s = std::make_unique<UsbServed>();
                s->mcu = &mcu;
                s->board = mcu.place == McuPlace::UsbKlipper ? usb_board(mcu, options, locked_log)
                                                              : bridge_board(mcu, mcus, options, locked_log);
                usb::UsbipServerOptions server_options;
                server_options.port = mcu.usbip_port.value_or(0);
                server_options.stop_on_signals = false;
                const std::string name = mcu.name;
                server_options.log = [locked_log, name](const std::string& m) { locked_log(fmt::format("[{}] {}", name, m)); };
                server_options.log_transfers = options.verbose;
                try {
                    s->server = std::make_unique<usb::UsbipServer>(*s->board, server_options);
                } catch (const Error& e) {
                    throw Error(e.kind(), fmt::format("mcu '{}': {}", mcu.name, e.what()), e.hint());
                }
                served.push_back(std::move(s));
            }
        }
        for (auto& s : served) {
            UsbServed* entry = s.get();
            entry->thread = std::thread([entry] {
                try {
                    entry->server->run();
                } catch (const std::exception& e) {
                    entry->failure = e.what();
                }
            });
        }
        // One line per MCU once it can be reached, in printer.cfg's order.
        for (const auto& mcu : mcus) {
            if (mcu.place == McuPlace::UsbKlipper || mcu.place == McuPlace::CanBridge) {
                for (auto& s : served)
                    if (s->mcu == &mcu) say(ready_line(mcu, s->server->port()));
                continue;
            }
            if (mcu.place == McuPlace::CanBehindBridge) {
                say(ready_line(mcu));
                continue;
            }
            Child* child = nullptr;
            for (auto& c : children)
                if (c->mcu == &mcu) child = c.get();
            const auto give_up = std::chrono::steady_clock::now() + std::chrono::seconds(20);
            while (!child_ready(*child)) {
                if (reap(*child))
                    throw Error(ErrorKind::Io, fmt::format("mcu '{}': its simulator ended before it was ready ({}; its "
                                                           "output is above)",
                                                           mcu.name, how_it_ended(child->status)));
                if (std::chrono::steady_clock::now() > give_up)
                    throw Error(ErrorKind::Timeout, fmt::format("mcu '{}': its simulator was not ready within 20 s", mcu.name));
                std::this_thread::sleep_for(std::chrono::milliseconds(20));
            }
            say(ready_line(mcu));
        }
        say(fmt::format("printer ready: {} MCUs", mcus.size()));

        // Serve until a signal, or until a part of the printer fails.
        const timespec tick{0, 200'000'000};
        for (;;) {
            siginfo_t info{};
            const int signal = ::sigtimedwait(&stop_signals, &info, &tick);
            if (signal == SIGINT || signal == SIGTERM) {
                locked_log(fmt::format("signal {}: stopping the printer", signal));
                break;
            }
            std::string failed;
            for (auto& c : children)
                if (reap(*c)) failed = fmt::format("mcu '{}': its simulator ended ({})", c->mcu->name, how_it_ended(c->status));
            for (auto& s : served)
                if (!s->failure.empty()) failed = fmt::format("mcu '{}': {}", s->mcu->name, s->failure);
            if (!failed.empty()) {
                locked_log("error: " + failed + "; stopping the printer");
                rc = core::exit_code(ErrorKind::Io);
                break;
            }
        }
    } catch (...) {
        stop_everything();
        throw;
    }
    stop_everything();
    for (auto& s : served) {
        const auto& c = s->board->flash().counters();
        locked_log(fmt::format("[{}] stopped; came back as Klipper {} times; flash: {} erases, {} programs ({} bytes)",
                               s->mcu->name, s->board->restarts(), c.erases, c.programs, c.bytes_programmed));
    }
    return rc;
}

}  // namespace mcuflash::sim::printer
