// Every transport a device string can name: one entry each. A new transport (can:, dir:, swd:) is
// one entry here and its link in link/.
#include <fmt/format.h>

#include "core/error.hpp"
#include "device/device.hpp"
#include "discover/serial_ports.hpp"
#include "link/can_socket.hpp"
#include "link/can_stream.hpp"
#include "link/hidapi_device.hpp"
#include "link/libusb_device.hpp"
#include "link/usb_hid_device.hpp"
#include "link/serial_port.hpp"
#include "protocol/katapult/can_admin.hpp"
#include "sim/open.hpp"

namespace mcuflash::device {

using core::Error;
using core::ErrorKind;

namespace {

Transport serial_transport() {
    Transport t;
    t.scheme = "serial";
    t.syntax = "a serial port (/dev/ttyUSB0, /dev/serial/by-id/...; a running Klipper's usb-Klipper_... port is asked to reboot into its bootloader)";
    t.kind = link::LinkKind::ByteStream;
    t.tries_bauds = true;
    t.open = [](const Address& address, const OpenContext& context) -> std::unique_ptr<link::Link> {
        if (context.settings.parity != link::Parity::None && discover::is_raspberry_pi_mini_uart(address.rest))
            throw Error(ErrorKind::Usage,
                        fmt::format("{} is the Raspberry Pi's mini UART, which has no parity; the {} protocol needs "
                                    "8E1",
                                    address.rest, context.protocol ? context.protocol->name : "chosen"),
                        "switch the GPIO pins to the full PL011 UART: add dtoverlay=disable-bt (or miniuart-bt) to "
                        "/boot/config.txt (/boot/firmware/config.txt), run sudo systemctl disable hciuart, reboot, "
                        "then use /dev/ttyAMA0");
        return std::make_unique<link::SerialPort>(address.rest, context.settings, context.warn);
    };
    // A port named usb-katapult_... (or usb-CanBoot_...) is Katapult: no probing needed.
    t.protocol_for = [](const Address& address, const targets::Knowledge&) {
        return discover::identify_port(address.rest).kind == discover::PortIdentity::Kind::Katapult ? std::string("katapult")
                                                                                                  : std::string();
    };
    t.discover = [](const targets::Knowledge&, const link::WarningSink&) {
        std::vector<Candidate> out;
        for (const auto& c : discover::serial_candidates()) {
            Candidate candidate{c.path, c.path == c.resolved ? "" : "-> " + c.resolved, link::LinkKind::ByteStream, "",
                                {{"path", c.path}, {"resolved", c.resolved}}};
            // What it is, from its name, and who holds it: never opened here.
            const auto id = discover::identify_port(c.path);
            if (id.kind == discover::PortIdentity::Kind::Klipper) {
                candidate.detail += fmt::format("  running Klipper on a {} (flashing it asks Klipper to reboot into "
                                                "its bootloader)",
                                                id.mcu);
                candidate.facts["runs"] = "klipper";
                candidate.facts["mcu"] = id.mcu;
            } else if (id.kind == discover::PortIdentity::Kind::Katapult) {
                candidate.detail += fmt::format("  Katapult bootloader on a {}", id.mcu);
                candidate.facts["runs"] = "katapult";
                candidate.facts["mcu"] = id.mcu;
            }
            auto holders = discover::port_holders(c.resolved);
            if (!holders.empty()) {
                std::string list;
                for (const auto& h : holders) list += (list.empty() ? "" : ", ") + h;
                candidate.detail += fmt::format("  (in use by {})", list);
                candidate.facts["in_use_by"] = list;
            }
            out.push_back(std::move(candidate));
        }
        return out;
    };
    return t;
}

// A USB bootloader that mcuflash speaks through its serial port (Katapult's USB-CDC), not over libusb.
bool reached_as_serial_port(const targets::Bootloader& bootloader) {
    const auto* p = protocol::spoken_protocol(bootloader.protocol);
    return p && p->runs_on == link::LinkKind::ByteStream;
}

// A HID bootloader: through the kernel's HID driver and its hidraw node where it has one; else (no
// HID driver bound, no hidraw) through libusb, driven as that driver would drive it.
std::unique_ptr<link::Link> open_hid(const link::UsbMatch& match) {
    try {
        return link::HidapiDevice::open(match);
    } catch (const Error& e) {
        if (e.kind() != ErrorKind::NotFound) throw;
    }
    return std::make_unique<link::UsbHidDevice>(link::LibusbDevice::open(match));
}

Transport usb_transport() {
    Transport t;
    t.scheme = "usb";
    t.prefix = "usb:";
    t.syntax = "usb:VID:PID[:SERIAL] or usb:BUS-PORT (a USB bootloader: DFU, PICOBOOT, HalfKay, the STM32 HID bootloader)";
    t.kind = link::LinkKind::Usb;
    t.open = [](const Address& address, const OpenContext& context) -> std::unique_ptr<link::Link> {
        const auto match = link::UsbMatch::parse(address.rest);
        try {
            if (context.protocol && context.protocol->runs_on == link::LinkKind::Hid) return open_hid(match);
            return link::LibusbDevice::open(match);
        } catch (Error& e) {
            if (e.kind() == ErrorKind::NotFound && context.protocol && !context.protocol->not_found_hint.empty())
                e.with_hint(context.protocol->not_found_hint);
            throw;
        }
    };
    t.protocol_for = [](const Address& address, const targets::Knowledge& knowledge) {
        auto match = link::UsbMatch::parse(address.rest);
        std::optional<std::pair<uint16_t, uint16_t>> id;
        if (match.vendor && match.product) id = {*match.vendor, *match.product};
        else if (auto present = present_usb_device(match)) id = {present->vendor, present->product};
        const auto* bootloader = id ? knowledge.bootloader_by_usb_id(id->first, id->second) : nullptr;
        return bootloader && !reached_as_serial_port(*bootloader) ? bootloader->protocol : std::string();
    };
    t.discover = [](const targets::Knowledge& knowledge, const link::WarningSink& warn) {
        std::vector<Candidate> out;
        std::vector<link::UsbIdentity> devices;
        try {
            devices = link::LibusbDevice::enumerate();
        } catch (const Error& e) {
            if (warn) warn(fmt::format("cannot list USB devices: {}", e.what()));
        }
        for (const auto& id : devices) {
            const auto* bootloader = knowledge.bootloader_by_usb_id(id.vendor, id.product);
            std::string detail = fmt::format("usb:{:04x}:{:04x}{}", id.vendor, id.product,
                                             id.serial.empty() ? "" : " serial " + id.serial);
            const bool serial = bootloader && reached_as_serial_port(*bootloader);
            if (serial) detail += fmt::format(": {} (a serial port: -d its /dev/serial/by-id name)", bootloader->description);
            else if (bootloader) detail += fmt::format(": {} (-p {})", bootloader->description, bootloader->protocol);
            out.push_back({"usb:" + id.port_path, detail, link::LinkKind::Usb, bootloader && !serial ? bootloader->protocol : "",
                           {{"vid", fmt::format("{:04x}", id.vendor)},
                            {"pid", fmt::format("{:04x}", id.product)},
                            {"port", id.port_path},
                            {"serial", id.serial},
                            {"bootloader", bootloader ? bootloader->name : ""}}});
        }
        return out;
    };
    t.stable_name = [](const Address& address, link::Link& opened) {
        std::string port;
        if (opened.kind() == link::LinkKind::Hid) port = static_cast<link::HidDevice&>(opened).identity().port_path;
        else port = link::link_as<link::UsbDevice>(opened, "usb").identity().port_path;
        return port.empty() ? address.text : "usb:" + port;
    };
    return t;
}

// sim:NAME[:CHIP]: NAME is a protocol's simulator, or a programmer's.
std::pair<std::string, std::string> sim_name_and_chip(const Address& address) {
    auto colon = address.rest.find(':');
    if (colon == std::string::npos) return {address.rest, ""};
    return {address.rest.substr(0, colon), address.rest.substr(colon + 1)};
}

Transport sim_transport() {
    Transport t;
    t.scheme = "sim";
    t.prefix = "sim:";
    t.syntax = "sim:PROTOCOL[:CHIP] (a simulated device inside mcuflash)";
    t.open = [](const Address& address, const OpenContext& context) {
        auto [name, chip] = sim_name_and_chip(address);
        sim::SimulatedOptions options;
        options.chip = chip.empty() ? context.options.chip : chip;
        options.bootloader = context.options.bootloader;
        options.faults = context.options.sim_faults;
        options.timing = !context.options.sim_fast;
        options.settings = context.settings;
        return sim::open_simulated(name, options);
    };
    t.protocol_for = [](const Address& address, const targets::Knowledge&) { return sim_name_and_chip(address).first; };
    t.describe_opened = [](link::Link& opened, const protocol::ProtocolInfo* protocol) {
        return fmt::format("simulated {} device ({})", protocol->name, opened.describe());
    };
    t.simulated = true;
    return t;
}

// can:IFACE[:UUID]: the interface and, when given, the node's UUID.
std::pair<std::string, std::optional<uint64_t>> can_interface_and_uuid(const Address& address) {
    const auto colon = address.rest.find(':');
    const std::string interface = address.rest.substr(0, colon);
    if (interface.empty())
        throw Error(ErrorKind::Usage, fmt::format("'{}' names no CAN interface", address.text),
                    "give it as can:can0 or can:can0:UUID (mcuflash list --can can0 shows the UUIDs)");
    if (colon == std::string::npos) return {interface, std::nullopt};
    const std::string text = address.rest.substr(colon + 1);
    auto uuid = protocol::katapult::can::parse_uuid(text);
    if (!uuid)
        throw Error(ErrorKind::Usage, fmt::format("'{}' in {} is no CAN UUID: a UUID is 12 hex digits", text, address.text),
                    fmt::format("it is the canbus_uuid in printer.cfg; `mcuflash list --can {}` shows the nodes", interface));
    return {interface, uuid};
}

// A Katapult node on a CAN bus (SocketCAN). Not discovered unasked: querying a bus makes Katapult nodes
// forget their node ids; `mcuflash list --can IFACE` does it when asked.
Transport can_transport() {
    Transport t;
    t.scheme = "can";
    t.prefix = "can:";
    t.syntax = "can:IFACE[:UUID] (a Katapult node on a CAN bus: can:can0:0a1b2c3d4e5f)";
    t.kind = link::LinkKind::ByteStream;
    t.open = [](const Address& address, const OpenContext& context) -> std::unique_ptr<link::Link> {
        auto [interface, uuid] = can_interface_and_uuid(address);
        protocol::katapult::can::OpenNodeOptions options;
        options.uuid = uuid;
        options.may_reboot = !context.options.no_reset;
        options.warn = context.warn;
        return protocol::katapult::can::open_node(std::make_unique<link::CanSocket>(interface), options);
    };
    t.protocol_for = [](const Address&, const targets::Knowledge&) { return std::string("katapult"); };
    t.stable_name = [](const Address&, link::Link& opened) {
        return static_cast<link::CanNodeStream&>(link::link_as<link::ByteLink>(opened, "katapult")).address();
    };
    return t;
}

}  // namespace

std::optional<link::UsbIdentity> present_usb_device(const link::UsbMatch& match) {
    try {
        for (const auto& id : link::LibusbDevice::enumerate())
            if (match.matches(id)) return id;
    } catch (const Error&) {
        // no USB access here: nothing is known
    }
    return std::nullopt;
}

std::vector<Candidate> can_nodes(const std::string& interface) {
    namespace can = protocol::katapult::can;
    link::CanSocket bus(interface);
    std::vector<Candidate> out;
    for (const auto& node : can::list_nodes(bus)) {
        const std::string uuid = can::uuid_text(node.uuid);
        const std::string runs = node.app() == can::NodeApp::Klipper    ? "klipper"
                                 : node.app() == can::NodeApp::Katapult ? "katapult"
                                                                        : "unknown";
        std::string detail = can::app_name(node.app());
        if (node.app() == can::NodeApp::Klipper) detail += " (flashing it asks Klipper to reboot into Katapult)";
        out.push_back({fmt::format("can:{}:{}", interface, uuid), detail, link::LinkKind::ByteStream, "katapult",
                       {{"interface", interface}, {"uuid", uuid}, {"runs", runs},
                        {"app_code", fmt::format("0x{:02x}", node.app_byte)}}});
    }
    return out;
}

const std::vector<Transport>& transports() {
    static const std::vector<Transport> all = [] {
        std::vector<Transport> t = {usb_transport(), sim_transport(), can_transport()};
        for (auto& card : storage_transports()) t.push_back(std::move(card));  // img:, dir:, /dev/sdX (storage_transports.cpp)
        t.push_back(serial_transport());
        return t;
    }();
    return all;
}

}  // namespace mcuflash::device
