#pragma once
// Turning `-d DEVICE` (and `-p`, `--chip`, ...) into an opened link and a connected bootloader or
// programmer. A device string is parsed once into an address with a scheme; each scheme is a
// transport registered in transports.cpp (how it opens, which protocol a device there speaks when
// none is named, how its devices are discovered). Protocols and programmers come from their own
// registries (protocol/registry.cpp), simulated devices from the simulator registries.
#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "link/libusb_device.hpp"
#include "link/link.hpp"
#include "protocol/bootloader.hpp"
#include "protocol/klipper_mcu/session.hpp"
#include "protocol/programmer.hpp"
#include "storage/card_rules.hpp"
#include "targets/knowledge.hpp"

namespace mcuflash::device {

struct DeviceOptions {
    std::string device;    // "" = discover the one candidate
    std::string protocol;  // "" = the device's (USB id, simulator) or the serial default
    std::string chip;
    std::string bootloader;
    std::string board;     // a data/boards.toml ID: what a card or drive (img:, dir:, /dev/sdX) gets is the board's
    std::optional<uint32_t> baud;
    bool no_reset = false;
    std::string sim_faults;  // only for sim: devices
    bool sim_fast = false;   // sim: devices without wire and flash timing
    link::TraceSink trace;   // every byte or packet, from the moment the link opens
};

// A device string, parsed: the transport's scheme and the rest ("usb:0483:df11" -> usb, "0483:df11").
struct Address {
    std::string scheme;
    std::string rest;
    std::string text;
};

// A device present now, for `list` and for a missing -d.
struct Candidate {
    std::string device;       // what -d takes
    std::string detail;       // "-> /dev/ttyACM0", "STM32 ROM DFU (-p dfu)"
    link::LinkKind kind = link::LinkKind::ByteStream;
    std::string protocol;     // what it is known to speak ("" = unknown: a serial port)
    std::map<std::string, std::string> facts;  // for `list --json`: path, vid, pid, port, serial, bootloader
};

struct OpenContext {
    const DeviceOptions& options;
    const protocol::ProtocolInfo* protocol = nullptr;  // nullptr: a programmer is opened
    link::SerialSettings settings;                     // byte streams: open with these
    link::WarningSink warn;
};

struct Transport {
    std::string scheme;       // "serial", "usb", "sim"
    std::string prefix;       // what device strings of this transport start with ("" for a path)
    std::string syntax;       // for --help: "usb:VID:PID[:SERIAL] or usb:BUS-PORT"
    std::optional<link::LinkKind> kind;  // nullopt: any (simulators)
    bool simulated = false;   // --sim-faults and --sim-fast apply
    bool tries_bauds = false; // with no --baud, the protocol's usual rates are tried in turn
    std::function<std::unique_ptr<link::Link>(const Address&, const OpenContext&)> open;
    // The protocol a device at this address speaks when -p is not given ("" = none known).
    std::function<std::string(const Address&, const targets::Knowledge&)> protocol_for;
    // The devices present now (empty function: not discoverable).
    std::function<std::vector<Candidate>(const targets::Knowledge&, const link::WarningSink&)> discover;
    // How to name the opened device again in a retry hint (default: as given).
    std::function<std::string(const Address&, link::Link&)> stable_name;
    // How to describe it in messages (default: the link's own words, and the baud where it tries them).
    std::function<std::string(link::Link&, const protocol::ProtocolInfo*)> describe_opened;

    // Whether a device of this transport can be a link of `kind` (a USB device is a HID device too).
    bool carries(link::LinkKind wanted) const {
        return !kind || *kind == wanted || (*kind == link::LinkKind::Usb && wanted == link::LinkKind::Hid);
    }
};

const std::vector<Transport>& transports();
// Cards and drives: img:, dir:, block devices (storage_transports.cpp).
std::vector<Transport> storage_transports();
// The card of `options.device` (img:, dir:, /dev/sdX), after the board was powered with it: did its
// bootloader take the file? The board (options.board; else options.chip and options.bootloader, or the
// chip's one SD-card bootloader) gives the file rules. For `mcuflash verify-sd`.
storage::CardVerdict check_card(const DeviceOptions& options, const targets::Knowledge& knowledge);
Address parse_address(const std::string& text);
const Transport& transport_for(const Address& address);
// "a serial port (/dev/ttyUSB0, ...), usb:VID:PID[:SERIAL] or usb:BUS-PORT, sim:PROTOCOL[:CHIP]"
std::string device_syntax();
// Every discoverable device present now.
std::vector<Candidate> discover_all(const targets::Knowledge& knowledge, const link::WarningSink& warn);
// The nodes that answer on the CAN bus on `interface` (can0), each as `can:IFACE:UUID` with what it
// runs (facts: interface, uuid, runs: klipper, katapult or unknown). Only when asked (`list --can`):
// the query makes Katapult nodes forget their node ids.
std::vector<Candidate> can_nodes(const std::string& interface);

struct Session {
    std::unique_ptr<link::Link> link;
    std::unique_ptr<protocol::Bootloader> bootloader;
    protocol::DeviceInfo info;
    const protocol::ProtocolInfo* protocol = nullptr;
    std::string description;  // "/dev/ttyUSB0 at 115200 baud"
    std::string retry_hint;   // device options as they would be typed again
    // Where the board answers as Klipper once its application runs: the running Klipper's port -d
    // named (asked into this bootloader), or the CAN node -d named.
    std::optional<Address> klipper_port;
};

// What the caller will ask of the bootloader: with no -p, only protocols that offer it are chosen.
enum class Needs { Bootloader, Protection };

// Opens the device and connects to its bootloader (reset, sync, identify).
Session connect(const DeviceOptions& options, const targets::Knowledge& knowledge, const link::WarningSink& warn,
                Needs needs = Needs::Bootloader);

// `port` is a running Klipper's USB serial port (usb-Klipper_<mcu>_...): asks it to reboot into its
// bootloader and waits up to `wait` for the board to come back as one; returns where it came back.
// Refuses while another program (Klipper's host) holds the port.
Address enter_bootloader_from_klipper(const Address& port, const std::string& mcu, const targets::Knowledge& knowledge,
                                      const link::WarningSink& warn, std::chrono::milliseconds wait);

// The first USB device present that `match` names (nullopt also when USB cannot be listed here).
std::optional<link::UsbIdentity> present_usb_device(const link::UsbMatch& match);

// Klipper's USB-to-CAN bridge (gs_usb 1d50:606f): its USB serial number is its chip id, from which
// Klipper derives its CAN UUID. The bridge present here whose UUID is `uuid`, if any.
constexpr uint16_t kCanBridgeVendor = 0x1D50, kCanBridgeProduct = 0x606F;
std::optional<link::UsbIdentity> local_can_bridge(uint64_t uuid);
// `can:IFACE:UUID` names that bridge: asks its Klipper over CAN to reboot into its bootloader, waits
// for the bootloader to appear on USB (or as a serial port), and returns its address. The interface
// and every node behind the bridge leave the bus meanwhile.
Address enter_bootloader_from_bridge(const Address& address, const std::string& interface, uint64_t uuid,
                                     const link::UsbIdentity& bridge, const targets::Knowledge& knowledge,
                                     const link::WarningSink& warn, std::chrono::milliseconds wait);

// What runs on a board running Klipper (or Kalico): Klipper's identify exchange, as its host connects.
struct KlipperIdentity {
    protocol::klipper_mcu::Identified identified;
    double seconds = 0;  // the identify exchange (identify_when_back: from the call until it answered)
    uint64_t retransmissions = 0;
};

// `device`: a serial port (at `baud`, which only a UART needs) or can:IFACE:UUID (the node is given a
// node id by its UUID first, as klippy does). Refuses a port another program holds (Usage, naming
// it); Timeout when nothing answers like Klipper, with the usual causes.
KlipperIdentity identify_klipper(const std::string& device, uint32_t baud = 250000,
                                 std::chrono::milliseconds piece_timeout = std::chrono::seconds(3));
// After a flash of a board that ran Klipper (or a Klipper build flashed into a CAN node): waits up
// to `wait` for `device` to come back and answer identify (at `baud` on a UART). Throws Timeout when
// it does not.
KlipperIdentity identify_when_back(const std::string& device, std::chrono::milliseconds wait, uint32_t baud = 250000);

struct ProgrammerSession {
    std::unique_ptr<link::Link> link;
    std::unique_ptr<protocol::AvrProgrammer> programmer;
    std::string description;  // "AVRISP_2 on /dev/ttyUSB0 at 115200 baud"
    std::string retry_hint;
};

// Opens a programmer (options.protocol names its type, "" = the first registered), signs on and
// puts the target `chip` in programming mode.
ProgrammerSession connect_programmer(const DeviceOptions& options, const targets::Chip& chip,
                                     const targets::Knowledge& knowledge, const link::WarningSink& warn);

}  // namespace mcuflash::device
