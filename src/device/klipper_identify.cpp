// Asking a board what Klipper build it runs: on a serial port, or on a CAN bus as klippy connects to
// a node (a node id assigned by UUID, then Klipper's MCU protocol on that id).
#include <fmt/format.h>

#include <filesystem>
#include <optional>
#include <thread>
#include <vector>

#include "core/error.hpp"
#include "core/interrupt.hpp"
#include "device/device.hpp"
#include "discover/device_events.hpp"
#include "discover/serial_ports.hpp"
#include "link/can_socket.hpp"
#include "link/can_stream.hpp"
#include "link/serial_port.hpp"
#include "protocol/katapult/can_admin.hpp"

namespace mcuflash::device {

namespace fs = std::filesystem;
namespace km = protocol::klipper_mcu;
namespace kc = protocol::katapult::can;
using core::Error;
using core::ErrorKind;

namespace {

// The node id mcuflash gives a Klipper CAN node to talk to it: out of the way of the ids klippy hands
// out (4, 5, ...) and of Katapult's flashtool.py (128 + n).
constexpr uint8_t kIdentifyNodeId = 120;

void refuse_held_port(const std::string& device) {
    std::error_code ec;
    const std::string node = fs::canonical(device, ec).string();
    if (ec) return;  // opening it says what is wrong
    const auto holders = discover::port_holders(node);
    if (holders.empty()) return;
    std::string list;
    for (const auto& h : holders) list += (list.empty() ? "" : ", ") + h;
    throw Error(ErrorKind::Usage, fmt::format("{} is held open by {}", device, list),
                "Klipper's host (klippy) owns the port while it runs: stop it first (sudo systemctl stop klipper), "
                "or read the MCU's version in klippy.log");
}

KlipperIdentity ask(link::ByteLink& link, std::chrono::milliseconds piece_timeout) {
    km::Session session(link);
    const auto started = core::Clock::now();
    KlipperIdentity identity;
    identity.identified = session.identify(piece_timeout);
    identity.seconds = std::chrono::duration<double>(core::Clock::now() - started).count();
    identity.retransmissions = session.retransmissions();
    return identity;
}

KlipperIdentity ask_can_node(const std::string& interface, const std::string& uuid_text,
                             std::chrono::milliseconds piece_timeout) {
    const auto uuid = kc::parse_uuid(uuid_text);
    if (!uuid)
        throw Error(ErrorKind::Usage, fmt::format("'{}' is not a CAN UUID (12 hex digits)", uuid_text),
                    "printer.cfg's canbus_uuid, or `mcuflash list --can " + interface + "`");
    auto bus = std::make_unique<link::CanSocket>(interface);
    kc::CanAdmin(*bus).assign_klipper(*uuid, kIdentifyNodeId);
    link::CanNodeStream stream(std::move(bus), kc::node_receive_id(kIdentifyNodeId), kc::node_reply_id(kIdentifyNodeId),
                               fmt::format("CAN node {} on {}", kc::uuid_text(*uuid), interface),
                               fmt::format("can:{}:{}", interface, kc::uuid_text(*uuid)));
    try {
        return ask(stream, piece_timeout);
    } catch (const Error& e) {
        if (e.kind() != ErrorKind::Timeout) throw;
        throw Error(ErrorKind::Timeout, std::string(e.what()),
                    fmt::format("a node in Katapult, or one a running Klipper host holds, does not answer: `mcuflash "
                                "list --can {}` tells which firmware each node runs; stop the klipper service first",
                                interface));
    }
}

}  // namespace

KlipperIdentity identify_klipper(const std::string& device, uint32_t baud, std::chrono::milliseconds piece_timeout) {
    if (device.rfind("can:", 0) == 0) {
        const auto second = device.find(':', 4);
        if (second == std::string::npos)
            throw Error(ErrorKind::Usage, fmt::format("{}: give the node's UUID too: can:IFACE:UUID", device),
                        "`mcuflash list --can IFACE` shows the UUIDs");
        return ask_can_node(device.substr(4, second - 4), device.substr(second + 1), piece_timeout);
    }
    if (device.find(':') != std::string::npos && device.rfind("/", 0) != 0)
        throw Error(ErrorKind::Usage, fmt::format("identify speaks to a serial port or a CAN node, not {}", device),
                    "give /dev/serial/by-id/usb-Klipper_... or can:can0:UUID");
    refuse_held_port(device);
    // No warning sink: a pty's missing modem lines do not matter to a protocol that never resets.
    link::SerialPort port(device, {baud, link::Parity::None});
    return ask(port, piece_timeout);
}

KlipperIdentity identify_when_back(const std::string& device, std::chrono::milliseconds wait, uint32_t baud) {
    const auto started = std::chrono::steady_clock::now();
    const auto give_up = started + wait;
    const bool serial = device.rfind("can:", 0) != 0;
    std::optional<discover::DeviceEvents> events;
    if (serial) events.emplace(std::vector<std::string>{fs::path(device).parent_path().string(), "/dev/serial/by-id", "/dev"});
    auto pause = [&] {
        if (events) events->wait(std::chrono::milliseconds(250));
        else std::this_thread::sleep_for(std::chrono::milliseconds(250));
    };
    std::string last_error = "it did not come back";
    while (std::chrono::steady_clock::now() < give_up) {
        core::throw_if_interrupted();
        std::error_code ec;
        if (serial && !fs::exists(device, ec)) {
            pause();
            continue;
        }
        try {
            // The port may be there before the firmware listens: a short try, again until the wait is over.
            KlipperIdentity back = identify_klipper(device, baud, std::chrono::milliseconds(500));
            back.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
            return back;
        } catch (const Error& e) {
            if (e.kind() == ErrorKind::Usage) throw;
            last_error = e.what();
            pause();
        }
    }
    throw Error(ErrorKind::Timeout,
                fmt::format("the board did not answer as Klipper on {} within {} s of starting ({})", device,
                            std::chrono::duration_cast<std::chrono::seconds>(wait).count(), last_error),
                "the flash was verified; if the board does not show up, check its Klipper build's settings (`mcuflash "
                "guide BOARD`) and ask it later with `mcuflash identify -d " + device + "`");
}

}  // namespace mcuflash::device
