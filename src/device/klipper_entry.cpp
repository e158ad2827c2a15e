// A running Klipper named with -d: ask it to reboot into its bootloader, then find the bootloader the
// board came back as (a USB id mcuflash knows, a usb-katapult_... port, or a new serial port to probe).
#include <fmt/format.h>

#include <filesystem>
#include <map>

#include "core/error.hpp"
#include "core/interrupt.hpp"
#include "device/device.hpp"
#include "discover/device_events.hpp"
#include "discover/serial_ports.hpp"
#include "entry/klipper_request.hpp"
#include "link/can_socket.hpp"
#include "link/libusb_device.hpp"
#include "protocol/katapult/can_admin.hpp"

namespace mcuflash::device {

namespace fs = std::filesystem;
using core::Error;
using core::ErrorKind;

namespace {

// The devices present now: every discoverable one, and every port in the folder the Klipper port is
// in (a simulated board's ports live outside /dev). Keyed by what -d takes and what they are: a board
// that comes back as its bootloader is often at the same USB port (usb:1-1) with another id.
std::map<std::string, Candidate> present_devices(const std::string& folder, const targets::Knowledge& knowledge) {
    std::map<std::string, Candidate> present;
    for (auto& c : discover_all(knowledge, {})) {
        auto fact = [&c](const char* name) { return c.facts.count(name) ? c.facts.at(name) : std::string(); };
        present.emplace(c.device + "\n" + fact("vid") + ":" + fact("pid"), c);
    }
    std::error_code ec;
    for (const auto& entry : fs::directory_iterator(folder, ec)) {
        const std::string path = entry.path().string();
        if (!discover::is_settled_port_name(path) || !fs::is_character_file(entry.path(), ec)) continue;
        bool listed = false;
        for (const auto& [key, c] : present) listed = listed || c.device == path;
        if (listed) continue;
        Candidate c{path, "", link::LinkKind::ByteStream, "", {}};
        if (discover::identify_port(path).kind == discover::PortIdentity::Kind::Katapult) c.protocol = "katapult";
        present.emplace(path + "\n:", c);
    }
    return present;
}

// The best of the devices that appeared: one whose protocol is known (a USB bootloader, a Katapult
// port) before a serial port that must be probed; a by-id name before a bare /dev/ttyACMn.
const Candidate* best_newcomer(const std::vector<Candidate>& newcomers) {
    const Candidate* best = nullptr;
    auto rank = [](const Candidate& c) {
        if (discover::identify_port(c.device).kind == discover::PortIdentity::Kind::Klipper) return 0;  // Klipper again
        if (!c.protocol.empty()) return 3;
        return c.device.find("/by-id/") != std::string::npos || c.device.find("/usb-") != std::string::npos ? 2 : 1;
    };
    for (const auto& c : newcomers)
        if (rank(c) > 0 && (!best || rank(c) > rank(*best))) best = &c;
    return best;
}

std::string family_hint(const std::string& mcu) {
    if (mcu.rfind("samd", 0) == 0 || mcu.rfind("same5", 0) == 0 || mcu.rfind("samc", 0) == 0)
        return "double-tap the board's reset button: its bootloader starts and stays (the LED pulses); then run "
               "`mcuflash list` and flash the port or drive it shows";
    if (mcu.rfind("stm32", 0) == 0)
        return "a Klipper built with no bootloader offset has none to reboot into: hold BOOT0 (or set its jumper) "
               "and press reset to start the STM32's ROM bootloader, then run `mcuflash list`";
    if (mcu.rfind("rp2040", 0) == 0)
        return "hold BOOTSEL while plugging the board in: it appears as a drive named RPI-RP2";
    return "start the bootloader by hand as `mcuflash guide BOARD` says, then run `mcuflash list`";
}

// After a board was asked to reboot: waits until a bootloader mcuflash knows appears (a device not in
// `before`, or `same_path` again once `gone` said the board had left) and returns it. Else says
// whether the board left, and whether it came back as it was (nothing new, `gone` false again).
struct Watched {
    std::optional<Address> found;
    bool left = false, back_as_before = false;
};
Watched watch_for_bootloader(const std::map<std::string, Candidate>& before, const std::string& folder,
                             discover::DeviceEvents& events, const std::function<bool()>& gone,
                             const std::string& same_path, std::chrono::milliseconds wait,
                             const targets::Knowledge& knowledge, const link::WarningSink& warn) {
    std::error_code ec;
    Watched watched;
    const auto asked = std::chrono::steady_clock::now();
    const auto give_up = asked + wait;
    for (;;) {
        core::throw_if_interrupted();
        const auto now = std::chrono::steady_clock::now();
        if (now >= give_up) return watched;
        auto slice = std::chrono::ceil<std::chrono::milliseconds>(give_up - now);
        // Without any event source (no inotify, no udev), look again every quarter second.
        if (!events.watching()) slice = std::min<std::chrono::milliseconds>(slice, std::chrono::milliseconds(250));
        events.wait(slice);
        if (gone()) watched.left = true;
        std::vector<Candidate> newcomers;
        for (auto& [key, c] : present_devices(folder, knowledge))
            if (!before.count(key) || (watched.left && !same_path.empty() && c.device == same_path)) newcomers.push_back(c);
        const Candidate* found = best_newcomer(newcomers);
        if (!found && watched.left && !gone()) {
            watched.back_as_before = true;  // nothing else is coming: the board runs its application again
            return watched;
        }
        if (!found) continue;
        Candidate chosen = *found;
        if (chosen.protocol.empty() && chosen.device.find("/usb-") == std::string::npos) {
            // A bare /dev/ttyACMn: its by-id name follows in a moment; take that if it comes.
            events.wait(std::chrono::milliseconds(300));
            for (auto& [key, c] : present_devices(folder, knowledge))
                if (!before.count(key) && c.device.find("/usb-") != std::string::npos &&
                    fs::canonical(c.device, ec) == fs::canonical(chosen.device, ec))
                    chosen = c;
        }
        if (warn)
            warn(fmt::format("the board came back after {:.1f} s as {}{}",
                             std::chrono::duration<double>(std::chrono::steady_clock::now() - asked).count(),
                             chosen.device, chosen.detail.empty() ? "" : " (" + chosen.detail + ")"));
        watched.found = parse_address(chosen.device);
        return watched;
    }
}

}  // namespace

Address enter_bootloader_from_klipper(const Address& port, const std::string& mcu, const targets::Knowledge& knowledge,
                                      const link::WarningSink& warn, std::chrono::milliseconds wait) {
    std::error_code ec;
    const std::string node = fs::canonical(port.rest, ec).string();
    if (ec) throw Error(ErrorKind::NotFound, fmt::format("{} does not exist (is the board plugged in?)", port.rest));
    const auto holders = discover::port_holders(node);
    if (!holders.empty()) {
        std::string list;
        for (const auto& h : holders) list += (list.empty() ? "" : ", ") + h;
        throw Error(ErrorKind::Usage,
                    fmt::format("{} is Klipper running on the {}, and {} holds it open", port.text, mcu, list),
                    "stop the Klipper service first (sudo systemctl stop klipper), or it reconnects while the board "
                    "reboots; start it again after flashing");
    }
    const std::string folder = fs::path(port.rest).parent_path().string();
    const auto before = present_devices(folder, knowledge);
    discover::DeviceEvents events({folder, "/dev/serial/by-id", "/dev"});

    if (warn)
        warn(fmt::format("{} is Klipper running on the {}: asking it to reboot into its bootloader (the 1200-baud "
                         "request) and waiting up to {} s for the bootloader",
                         port.text, mcu, std::chrono::duration_cast<std::chrono::seconds>(wait).count()));
    entry::request_bootloader_by_1200_baud(port.rest, {});  // a pty's missing DTR is no news here

    const auto watched = watch_for_bootloader(before, folder, events, [&] { return !fs::exists(port.rest, ec); },
                                              port.rest, wait, knowledge, warn);
    if (watched.found) return *watched.found;
    const bool left = watched.left, came_back_as_klipper = watched.back_as_before;
    const auto waited = std::chrono::duration_cast<std::chrono::seconds>(wait).count();
    if (!left)
        throw Error(ErrorKind::NotFound,
                    fmt::format("Klipper on {} did not reboot within {} s of the 1200-baud request", port.text, waited),
                    "Klipper answers it only when built with a bootloader to return to (or for the ROM DFU on "
                    "STM32F0/F4); " + family_hint(mcu));
    if (came_back_as_klipper)
        throw Error(ErrorKind::NotFound,
                    fmt::format("the {} rebooted into Klipper again, not into a bootloader", mcu),
                    family_hint(mcu));
    throw Error(ErrorKind::NotFound,
                fmt::format("the {} left Klipper, but no bootloader mcuflash knows appeared within {} s", mcu, waited),
                "if its bootloader shows as a USB drive (UF2), copy the .uf2 file there, or `mcuflash flash "
                "klipper.uf2 -d dir:MOUNTPOINT`; otherwise " + family_hint(mcu));
}

std::optional<link::UsbIdentity> local_can_bridge(uint64_t uuid) {
    try {
        for (const auto& id : link::LibusbDevice::enumerate())
            if (id.vendor == kCanBridgeVendor && id.product == kCanBridgeProduct)
                if (protocol::katapult::can::klipper_uuid_from_usb_serial(id.serial) == uuid) return id;
    } catch (const Error&) {
        // no USB access here: no bridge is known
    }
    return std::nullopt;
}

Address enter_bootloader_from_bridge(const Address& address, const std::string& interface, uint64_t uuid,
                                     const link::UsbIdentity& bridge, const targets::Knowledge& knowledge,
                                     const link::WarningSink& warn, std::chrono::milliseconds wait) {
    const std::string folder = "/dev/serial/by-id";
    const auto before = present_devices(folder, knowledge);
    discover::DeviceEvents events({folder, "/dev"});
    if (warn)
        warn(fmt::format("{} is the USB-to-CAN bridge board itself (USB {:04x}:{:04x} at {}, serial {}): asking its "
                         "Klipper to reboot into its bootloader and waiting up to {} s for it. {} and every node behind "
                         "it leave the bus until the bridge runs Klipper again: flash those nodes first",
                         address.text, bridge.vendor, bridge.product, bridge.port_path, bridge.serial,
                         std::chrono::duration_cast<std::chrono::seconds>(wait).count(), interface));
    {
        link::CanSocket bus(interface);
        protocol::katapult::can::CanAdmin(bus).request_bootloader(uuid);
    }
    const link::UsbMatch same_bridge{bridge.vendor, bridge.product, "", bridge.port_path};
    const auto gone = [&] { return !present_usb_device(same_bridge); };
    const auto watched = watch_for_bootloader(before, folder, events, gone, "", wait, knowledge, warn);
    if (watched.found) return *watched.found;
    const auto waited = std::chrono::duration_cast<std::chrono::seconds>(wait).count();
    if (!watched.left)
        throw Error(ErrorKind::NotFound,
                    fmt::format("the bridge board did not reboot within {} s of the bootloader request", waited),
                    "its Klipper reboots on it only when built with a bootloader to return to (Katapult, or the "
                    "ROM DFU on STM32F0/F4); else start its bootloader by hand and flash it over USB");
    throw Error(ErrorKind::NotFound,
                watched.back_as_before
                    ? std::string("the bridge board rebooted into Klipper again, not into a bootloader")
                    : fmt::format("the bridge board left the bus, but no bootloader mcuflash knows appeared within {} s",
                                  waited),
                "start its bootloader by hand (`mcuflash guide BOARD`), then `mcuflash list` shows it");
}

}  // namespace mcuflash::device
