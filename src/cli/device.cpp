#include "cli/device.hpp"

#include <fmt/format.h>

#include <algorithm>

#include "core/error.hpp"
#include "discover/serial_ports.hpp"
#include "link/libusb_device.hpp"
#include "link/serial_port.hpp"
#include "sim/dfu/simulator.hpp"
#include "sim/in_process.hpp"
#include "sim/usb/in_process_usb.hpp"
#include "targets/knowledge.hpp"

namespace mcuflash::cli {

using core::Error;
using core::ErrorKind;

namespace {

constexpr const char* kSimPrefix = "sim:";
constexpr const char* kUsbPrefix = "usb:";

std::string pick_serial_device(const DeviceOptions& options) {
    if (!options.device.empty()) return options.device;
    auto candidates = discover::serial_candidates();
    if (candidates.size() == 1) return candidates.front().path;
    if (candidates.empty())
        throw Error(ErrorKind::NotFound, "no serial port found and no device given (-d)",
                    "plug the board in, or try a simulated one: -d sim:stk500v1:atmega1284p");
    std::string list;
    for (auto& c : candidates) list += fmt::format("\n  {}{}", c.path, c.path == c.resolved ? "" : " -> " + c.resolved);
    throw Error(ErrorKind::Usage, "several serial ports could be the board; choose one with -d:" + list);
}

// Baud rates to try when none is given: the protocol's default, then each known bootloader's.
std::vector<uint32_t> baud_candidates(const protocol::ProtocolInfo& proto, const DeviceOptions& options) {
    if (options.baud) return {*options.baud};
    std::vector<uint32_t> bauds{proto.serial.baud};
    auto add = [&bauds](uint32_t baud) {
        if (baud && std::find(bauds.begin(), bauds.end(), baud) == bauds.end()) bauds.push_back(baud);
    };
    for (const auto& [name, bl] : targets::Knowledge::builtin().bootloaders())
        if (bl.protocol == proto.name) add(bl.baud);
    for (const auto& [name, bl] : targets::Knowledge::builtin().bootloaders())
        if (bl.protocol == proto.name)
            for (uint32_t baud : bl.other_bauds) add(baud);
    return bauds;
}

}  // namespace

Session connect(const DeviceOptions& options, Reporter& reporter) {
    Session session;
    link::WarningSink warn = [&reporter](const std::string& m) { reporter.warning(m); };
    protocol::ConnectOptions connect_options;
    connect_options.chip = options.chip;
    connect_options.bootloader = options.bootloader;
    connect_options.reset = !options.no_reset;
    connect_options.warn = warn;

    if (options.device.rfind(kSimPrefix, 0) == 0) {
        // sim:PROTOCOL[:CHIP] - a simulated device inside this process.
        std::string rest = options.device.substr(std::char_traits<char>::length(kSimPrefix));
        std::string proto_name = rest.substr(0, rest.find(':'));
        std::string chip = rest.find(':') == std::string::npos ? options.chip : rest.substr(rest.find(':') + 1);
        if (!options.protocol.empty() && options.protocol != proto_name)
            throw Error(ErrorKind::Usage, fmt::format("-p {} does not match the simulated device {}", options.protocol,
                                                      options.device));
        const auto& proto = protocol::find_protocol(proto_name);
        if (proto.make_usb) {
            sim::DeviceOptions device_options;
            device_options.timing = !options.sim_fast;
            device_options.bootloader = options.bootloader;
            session.usb = std::make_unique<sim::usb::InProcessUsb>(sim::dfu::make_dfu_device(chip, device_options),
                                                                   !options.sim_fast,
                                                                   sim::usb::UsbFaults::parse(options.sim_faults));
            session.protocol = proto.name;
            session.description = session.usb->describe();
            session.bootloader = proto.make_usb(*session.usb, connect_options);
            session.info = session.bootloader->connect();
            session.retry_hint = fmt::format("-d {}", options.device);
            return session;
        }
        sim::InProcessOptions sim_options;
        sim_options.chip = chip;
        sim_options.faults = options.sim_faults;
        sim_options.timing = !options.sim_fast;
        sim_options.settings = proto.serial;
        if (options.baud) sim_options.settings.baud = *options.baud;
        session.link = sim::open_in_process(proto_name, sim_options);
        session.protocol = proto.name;
        session.description = fmt::format("simulated {} device ({})", proto.name, session.link->describe());
        session.bootloader = proto.make(*session.link, connect_options);
        session.info = session.bootloader->connect();
        session.retry_hint = fmt::format("-d {}", options.device);
        return session;
    }

    if (options.device.rfind(kUsbPrefix, 0) == 0 || (options.device.empty() && options.protocol == "dfu")) {
        // usb:VID:PID[:SERIAL] or usb:BUS-PORT; or, for -p dfu without -d, the one known DFU device.
        const auto& proto = protocol::find_protocol(options.protocol.empty() ? "dfu" : options.protocol);
        if (!proto.make_usb)
            throw Error(ErrorKind::Usage, fmt::format("{} is not a USB protocol; USB devices speak: dfu", proto.name));
        link::UsbMatch match;
        if (!options.device.empty()) {
            match = link::UsbMatch::parse(options.device.substr(std::char_traits<char>::length(kUsbPrefix)));
        } else {
            std::vector<link::UsbIdentity> found;
            for (const auto& id : link::LibusbDevice::enumerate())
                if (const auto* bl = targets::Knowledge::builtin().bootloader_by_usb_id(id.vendor, id.product);
                    bl && bl->protocol == proto.name)
                    found.push_back(id);
            if (found.empty())
                throw Error(ErrorKind::NotFound, "no USB device in DFU mode found",
                            "put the board in DFU mode (BOOT0 high and reset, or its bootloader button), then run "
                            "`mcuflash list`; if it is listed but cannot be opened, see `mcuflash udev-rules`");
            if (found.size() > 1) {
                std::string list;
                for (const auto& id : found) list += fmt::format("\n  -d usb:{}", id.port_path);
                throw Error(ErrorKind::Usage, "several DFU devices are connected; choose one with -d:" + list);
            }
            match.port_path = found.front().port_path;
        }
        session.usb = link::LibusbDevice::open(match);
        session.protocol = proto.name;
        session.description = session.usb->describe();
        session.bootloader = proto.make_usb(*session.usb, connect_options);
        session.info = session.bootloader->connect();
        session.retry_hint = fmt::format("-d usb:{}", session.usb->identity().port_path);
        return session;
    }

    std::string path = pick_serial_device(options);
    const auto& proto = protocol::find_protocol(options.protocol.empty() ? "stk500v1" : options.protocol);
    if (!proto.make)
        throw Error(ErrorKind::Usage, fmt::format("{} is a USB protocol: give the device as usb:VID:PID (or "
                                                  "sim:{}:CHIP), not a serial port",
                                                  proto.name, proto.name));
    if (proto.serial.parity != link::Parity::None && discover::is_raspberry_pi_mini_uart(path))
        throw Error(ErrorKind::Usage,
                    fmt::format("{} is the Raspberry Pi's mini UART, which has no parity; the {} protocol needs 8E1",
                                path, proto.name),
                    "switch the GPIO pins to the full PL011 UART: add dtoverlay=disable-bt (or miniuart-bt) to "
                    "/boot/config.txt (/boot/firmware/config.txt), run sudo systemctl disable hciuart, reboot, "
                    "then use /dev/ttyAMA0");
    auto bauds = baud_candidates(proto, options);
    if (bauds.size() > 1) connect_options.sync_attempts = 3;
    link::SerialSettings settings = proto.serial;
    std::optional<Error> last_failure;
    for (uint32_t baud : bauds) {
        settings.baud = baud;
        if (!session.link) session.link = std::make_unique<link::SerialPort>(path, settings, warn);
        else session.link->configure(settings);
        session.bootloader = proto.make(*session.link, connect_options);
        try {
            session.info = session.bootloader->connect();
        } catch (const Error& e) {
            if (e.kind() != ErrorKind::NotFound) throw;
            last_failure = e;
            continue;
        }
        session.protocol = proto.name;
        session.description = fmt::format("{} at {} baud", path, baud);
        session.retry_hint = fmt::format("-d {} -p {} --baud {}", path, proto.name, baud);
        return session;
    }
    std::string tried;
    for (auto b : bauds) tried += (tried.empty() ? "" : ", ") + std::to_string(b);
    std::string hint = last_failure ? last_failure->hint() : std::string{};
    if (options.protocol.empty())
        hint += std::string(hint.empty() ? "" : "\n") +
                "no -p was given, so only STK500v1 (optiboot, ATmegaBOOT) was tried: an Arduino Mega 2560 with its "
                "stock bootloader needs -p stk500v2, an STM32 in its ROM bootloader -p stm32-uart, a SAM board "
                "-p samba";
    throw Error(ErrorKind::NotFound,
                fmt::format("no {} bootloader answers on {} (tried {} baud)", proto.name, path, tried), hint);
}

ProgrammerSession connect_programmer(const DeviceOptions& options, const targets::Chip& chip, Reporter& reporter) {
    static constexpr const char* kProgrammerType = "stk500v2";
    static constexpr const char* kSimulatedProgrammer = "stk500v2-isp";
    static constexpr uint32_t kProgrammerBaud = 115200;
    if (!options.protocol.empty() && options.protocol != kProgrammerType)
        throw Error(ErrorKind::Usage, fmt::format("unknown programmer type '{}' (known: {})", options.protocol,
                                                  kProgrammerType));
    link::WarningSink warn = [&reporter](const std::string& m) { reporter.warning(m); };
    ProgrammerSession session;
    link::SerialSettings settings{options.baud.value_or(kProgrammerBaud), link::Parity::None};
    std::string where;
    if (options.device.rfind(kSimPrefix, 0) == 0) {
        // sim:stk500v2-isp[:CHIP] - a simulated programmer with a target chip behind it.
        std::string rest = options.device.substr(std::char_traits<char>::length(kSimPrefix));
        std::string sim_name = rest.substr(0, rest.find(':'));
        if (sim_name != kSimulatedProgrammer)
            throw Error(ErrorKind::Usage, fmt::format("{} is not a programmer; the simulated one is sim:{}[:CHIP]",
                                                      options.device, kSimulatedProgrammer));
        sim::InProcessOptions sim_options;
        sim_options.chip = rest.find(':') == std::string::npos ? chip.name : rest.substr(rest.find(':') + 1);
        sim_options.faults = options.sim_faults;
        sim_options.timing = !options.sim_fast;
        sim_options.settings = settings;
        session.link = sim::open_in_process(sim_name, sim_options);
        where = session.link->describe();
    } else {
        if (options.device.empty())
            throw Error(ErrorKind::Usage, "give the programmer's serial port with -d",
                        "an ISP programmer is not found automatically: the only serial port may be the board itself");
        session.link = std::make_unique<link::SerialPort>(options.device, settings, warn);
        where = fmt::format("{} at {} baud", options.device, settings.baud);
    }
    session.programmer = std::make_unique<protocol::stk500v2::IspProgrammer>(*session.link, chip, warn);
    std::string name = session.programmer->sign_on();
    session.programmer->enter_programming();
    session.description = fmt::format("{} on {}", name, where);
    session.retry_hint = fmt::format("-d {}{} --chip {}", options.device,
                                     options.baud ? fmt::format(" --baud {}", *options.baud) : "", chip.name);
    return session;
}

}  // namespace mcuflash::cli
