#include <fmt/format.h>

#include <algorithm>

#include "core/error.hpp"
#include "discover/serial_ports.hpp"
#include "device/device.hpp"
#include "protocol/katapult/can_admin.hpp"

namespace mcuflash::device {

using core::Error;
using core::ErrorKind;

Address parse_address(const std::string& text) {
    const Transport* fallback = nullptr;
    for (const auto& t : transports()) {
        if (t.prefix.empty()) {
            fallback = &t;
            continue;
        }
        if (text.rfind(t.prefix, 0) == 0) return {t.scheme, text.substr(t.prefix.size()), text};
    }
    if (!fallback) throw Error(ErrorKind::Usage, fmt::format("'{}' names no known kind of device", text));
    return {fallback->scheme, text, text};
}

const Transport& transport_for(const Address& address) {
    for (const auto& t : transports())
        if (t.scheme == address.scheme) return t;
    throw std::logic_error("no transport for scheme " + address.scheme);
}

std::string device_syntax() {
    std::string out;
    for (const auto& t : transports()) out += (out.empty() ? "" : "; ") + t.syntax;
    return out;
}

std::vector<Candidate> discover_all(const targets::Knowledge& knowledge, const link::WarningSink& warn) {
    std::vector<Candidate> out;
    for (const auto& t : transports())
        if (t.discover) {
            auto found = t.discover(knowledge, warn);
            out.insert(out.end(), found.begin(), found.end());
        }
    return out;
}

namespace {

bool offers(const protocol::ProtocolInfo& p, Needs needs) { return needs == Needs::Bootloader || p.offers_protection; }

// A candidate that could be the device: a port whose protocol is unknown, or a device known to
// speak an acceptable protocol.
bool could_be(const Candidate& c, const protocol::ProtocolInfo* wanted, Needs needs) {
    if (c.protocol.empty()) return c.kind == link::LinkKind::ByteStream && (!wanted || wanted->runs_on == c.kind);
    if (wanted) return c.protocol == wanted->name;
    for (const auto& p : protocol::protocols())
        if (p.name == c.protocol) return offers(p, needs);
    return false;
}

Address discover_one(const DeviceOptions& options, const targets::Knowledge& knowledge, const link::WarningSink& warn,
                     Needs needs) {
    const protocol::ProtocolInfo* wanted = options.protocol.empty() ? nullptr : &protocol::find_protocol(options.protocol);
    std::vector<Candidate> found;
    for (const auto& c : discover_all(knowledge, warn))
        if (could_be(c, wanted, needs)) found.push_back(c);
    if (found.size() == 1) return parse_address(found.front().device);
    if (found.empty())
        throw Error(ErrorKind::NotFound,
                    wanted ? fmt::format("no device that could speak {} was found, and none was given (-d)", wanted->name)
                           : "no serial port or USB bootloader found, and no device given (-d)",
                    "plug the board in (or put it in its bootloader), run `mcuflash list`, or try a simulated one: "
                    "-d sim:stk500v1:atmega1284p");
    std::string list;
    for (const auto& c : found) list += fmt::format("\n  -d {}{}", c.device, c.detail.empty() ? "" : "  " + c.detail);
    throw Error(ErrorKind::Usage,
                (wanted ? fmt::format("several devices that could speak {} are connected", wanted->name)
                        : std::string("several devices could be the board")) +
                    "; choose one with -d:" + list);
}

const protocol::ProtocolInfo& choose_protocol(const Address& address, const Transport& transport,
                                              const DeviceOptions& options, const targets::Knowledge& knowledge,
                                              Needs needs) {
    const std::string known = transport.protocol_for ? transport.protocol_for(address, knowledge) : std::string();
    if (!options.protocol.empty()) {
        const auto& p = protocol::find_protocol(options.protocol);
        if (transport.simulated && !known.empty() && known != p.name)
            throw Error(ErrorKind::Usage,
                        fmt::format("-p {} does not match the simulated device {}", options.protocol, address.text));
        if (!offers(p, needs))
            throw Error(ErrorKind::Usage, fmt::format("the {} protocol has no protection to remove", p.name));
        return p;
    }
    if (!known.empty()) {
        const auto& p = protocol::find_protocol(known);
        if (!offers(p, needs))
            throw Error(ErrorKind::Usage, fmt::format("{} speaks {}, which has no protection to remove", address.text,
                                                      p.name));
        return p;
    }
    // A serial port says nothing about itself: the protocol that is the default there, or the only one
    // that offers what is needed.
    std::vector<const protocol::ProtocolInfo*> possible;
    for (const auto& p : protocol::protocols())
        if (transport.carries(p.runs_on) && offers(p, needs)) possible.push_back(&p);
    if (possible.size() == 1) return *possible.front();
    for (const auto* p : possible)
        if (p->default_on_serial) return *p;
    throw Error(ErrorKind::Usage, fmt::format("say which protocol {} speaks with -p ({})", address.text,
                                              protocol::protocol_names()));
}

// Baud rates to try when none is given: the protocol's default, then each known bootloader's.
std::vector<uint32_t> baud_candidates(const protocol::ProtocolInfo& proto, const Transport& transport,
                                      const DeviceOptions& options, const targets::Knowledge& knowledge) {
    if (options.baud) return {*options.baud};
    std::vector<uint32_t> bauds{proto.serial.baud};
    if (!transport.tries_bauds) return bauds;
    auto add = [&bauds](uint32_t baud) {
        if (baud && std::find(bauds.begin(), bauds.end(), baud) == bauds.end()) bauds.push_back(baud);
    };
    for (const auto& [name, bl] : knowledge.bootloaders())
        if (bl.protocol == proto.name) add(bl.baud);
    for (const auto& [name, bl] : knowledge.bootloaders())
        if (bl.protocol == proto.name)
            for (uint32_t baud : bl.other_bauds) add(baud);
    return bauds;
}

void check_sim_options(const DeviceOptions& options, const Transport& transport) {
    if (transport.simulated) return;
    if (!options.sim_faults.empty())
        throw Error(ErrorKind::Usage, "--sim-faults applies to simulated devices (-d sim:...) only");
    if (options.sim_fast) throw Error(ErrorKind::Usage, "--sim-fast applies to simulated devices (-d sim:...) only");
}

std::string describe(const Transport& transport, link::Link& opened, const protocol::ProtocolInfo* protocol) {
    if (transport.describe_opened && protocol) return transport.describe_opened(opened, protocol);
    if (transport.tries_bauds && opened.kind() == link::LinkKind::ByteStream)
        return fmt::format("{} at {} baud", opened.describe(),
                           link::link_as<link::ByteLink>(opened, "serial").settings().baud);
    return opened.describe();
}

std::unique_ptr<link::Link> open_link(const Address& address, const Transport& transport, const OpenContext& context) {
    auto opened = transport.open(address, context);
    if (context.options.trace) opened->set_trace(context.options.trace);
    return opened;
}

// How long a board asked to reboot into its bootloader may take to come back (DFU and Katapult take
// one or two seconds to enumerate).
constexpr auto kBootloaderReappearTime = std::chrono::seconds(10);

const char* kNothingAnswersHint =
    "put the board in its bootloader: Arduino-style boards reset into it by themselves; an STM32 needs BOOT0 high "
    "and a reset; SAMD boards a double-tap of reset; then run again. Or name the protocol with -p";

// Auto-detection on a serial port when no -p is given: every protocol with a probe order, first at its
// usual rate, then at the other rates its bootloaders use (--baud: only that one; --chip: only the
// protocols with a bootloader for it). The order keeps each probe harmless to a device of another kind:
//   1. the STM32 ROM (0x7F at 8E1): it takes the first byte it sees to measure the baud rate, so any
//      other byte first would leave it at a wrong rate until reset; 0x7F is nothing to the others
//      (optiboot and ATmegaBOOT drop it and their watchdog restarts them, stk500boot_v2 ignores all
//      but 0x1B, the SAM-BA monitor takes it for a command letter it never runs without '#');
//   2. STK500v1 GET_SYNC and 3. STK500v2 SIGN_ON, each after the DTR reset that starts an Arduino's
//      bootloader;
//   4. SAM-BA N# and V#, without the 1200-baud touch, which would reboot a running application.
// A port that echoes what it is sent matches none of them.
Session auto_detect(const Address& address, const Transport& transport, const DeviceOptions& options,
                    const targets::Knowledge& knowledge, const link::WarningSink& warn,
                    protocol::ConnectOptions connect_options) {
    std::vector<const protocol::ProtocolInfo*> order;
    for (const auto& p : protocol::protocols())
        if (p.probe_order > 0 && p.runs_on == link::LinkKind::ByteStream &&
            (connect_options.chip.empty() || !knowledge.bootloaders_for(p.name, connect_options.chip).empty()))
            order.push_back(&p);
    std::sort(order.begin(), order.end(), [](auto* a, auto* b) { return a->probe_order < b->probe_order; });
    std::vector<std::pair<const protocol::ProtocolInfo*, uint32_t>> attempts;
    for (int round = 0; round < 2; ++round)
        for (const auto* p : order) {
            const auto bauds = baud_candidates(*p, transport, options, knowledge);
            if (round == 0) attempts.emplace_back(p, bauds.front());
            else
                for (size_t i = 1; i < bauds.size(); ++i) attempts.emplace_back(p, bauds[i]);
        }
    connect_options.sync_attempts = 1;
    connect_options.ask_application = false;
    Session session;
    std::string tried;
    for (const auto& [proto, baud] : attempts) {
        link::SerialSettings settings = proto->serial;
        settings.baud = baud;
        if (!session.link) session.link = open_link(address, transport, OpenContext{options, proto, settings, warn});
        else if (auto* line = link::link_as<link::ByteLink>(*session.link, proto->name).serial_line())
            line->configure(settings);
        tried += fmt::format("{}{} at {}{}", tried.empty() ? "" : ", ", proto->name, baud,
                             settings.parity == link::Parity::Even ? " 8E1" : "");
        session.bootloader = proto->make(*session.link, connect_options);
        try {
            session.info = session.bootloader->connect();
        } catch (const Error& e) {
            if (e.kind() != ErrorKind::NotFound) throw;
            continue;
        }
        session.protocol = proto;
        session.description = describe(transport, *session.link, proto);
        session.retry_hint = fmt::format("-d {} -p {} --baud {}", address.text, proto->name, baud);
        if (warn) warn(fmt::format("found {} ({}) on {} at {} baud: next time, -p {} --baud {} skips the search",
                                   session.info.bootloader_text, proto->name, address.text, baud, proto->name, baud));
        return session;
    }
    throw Error(ErrorKind::NotFound,
                fmt::format("nothing on {} answers as a bootloader mcuflash knows (tried {})", address.text, tried),
                kNothingAnswersHint);
}

// The device to open: -d as given, or the one candidate present; a running Klipper's port is asked to
// reboot into its bootloader, and the bootloader's address comes back.
Address device_address(const DeviceOptions& options, const targets::Knowledge& knowledge, const link::WarningSink& warn,
                       Needs needs, std::optional<Address>* klipper_port) {
    Address address = options.device.empty() ? discover_one(options, knowledge, warn, needs)
                                             : parse_address(options.device);
    if (address.scheme == "can" && !options.no_reset) {
        // can:IFACE:UUID of the USB-to-CAN bridge board itself: it cannot be flashed over its own CAN
        // bus, so it is asked to reboot into its bootloader, which is flashed over USB instead.
        const auto colon = address.rest.find(':');
        const auto uuid = colon == std::string::npos ? std::nullopt
                                                     : protocol::katapult::can::parse_uuid(address.rest.substr(colon + 1));
        if (uuid)
            if (auto bridge = local_can_bridge(*uuid))
                return enter_bootloader_from_bridge(address, address.rest.substr(0, colon), *uuid, *bridge, knowledge,
                                                    warn, kBootloaderReappearTime);
        return address;
    }
    if (address.scheme != "serial") return address;
    const auto port = discover::identify_port(address.rest);
    if (port.kind != discover::PortIdentity::Kind::Klipper) return address;
    if (options.no_reset)
        throw Error(ErrorKind::Usage, fmt::format("{} is Klipper running on the {}, not a bootloader", address.text, port.mcu),
                    "without --no-reset, mcuflash asks Klipper to reboot into its bootloader");
    if (klipper_port) *klipper_port = address;
    return enter_bootloader_from_klipper(address, port.mcu, knowledge, warn, kBootloaderReappearTime);
}

protocol::ConnectOptions connect_options_for(const DeviceOptions& options, const targets::Knowledge& knowledge,
                                             const link::WarningSink& warn) {
    protocol::ConnectOptions connect_options;
    connect_options.knowledge = &knowledge;
    // "ATmega2560", "stm32f446xx": the knowledge base's own name from here on.
    connect_options.chip = options.chip.empty() ? std::string() : knowledge.chip(options.chip).name;
    connect_options.bootloader = options.bootloader;
    connect_options.board = options.board;
    connect_options.reset = !options.no_reset;
    connect_options.warn = warn;
    return connect_options;
}

// Opens `address` and connects `proto` there; on a serial port, at each baud rate to try in turn.
Session connect_protocol(const Address& address, const Transport& transport, const protocol::ProtocolInfo& proto,
                         const DeviceOptions& options, const targets::Knowledge& knowledge, const link::WarningSink& warn,
                         protocol::ConnectOptions connect_options) {
    const std::string known = transport.protocol_for ? transport.protocol_for(address, knowledge) : std::string();
    Session session;
    session.protocol = &proto;
    OpenContext context{options, &proto, proto.serial, warn};
    auto finish = [&](const std::string& baud_option) {
        session.info = session.bootloader->connect();
        session.description = describe(transport, *session.link, &proto);
        std::string name = transport.stable_name ? transport.stable_name(address, *session.link) : address.text;
        session.retry_hint = fmt::format("-d {}{}{}", name, known == proto.name ? "" : " -p " + proto.name, baud_option);
        return std::move(session);
    };

    if (proto.runs_on != link::LinkKind::ByteStream) {
        session.link = open_link(address, transport, context);
        session.bootloader = proto.make(*session.link, connect_options);
        return finish("");
    }
    const auto bauds = baud_candidates(proto, transport, options, knowledge);
    if (bauds.size() > 1) connect_options.sync_attempts = 3;
    std::optional<Error> last_failure;
    for (uint32_t baud : bauds) {
        context.settings.baud = baud;
        if (!session.link) session.link = open_link(address, transport, context);
        else if (auto* line = link::link_as<link::ByteLink>(*session.link, proto.name).serial_line())
            line->configure(context.settings);
        session.bootloader = proto.make(*session.link, connect_options);
        try {
            return finish(transport.tries_bauds ? fmt::format(" --baud {}", baud) : "");
        } catch (const Error& e) {
            if (e.kind() != ErrorKind::NotFound) throw;
            last_failure = e;
        }
    }
    std::string tried;
    for (auto b : bauds) tried += (tried.empty() ? "" : ", ") + std::to_string(b);
    std::string hint = last_failure ? last_failure->hint() : std::string{};
    throw Error(ErrorKind::NotFound,
                fmt::format("no {} bootloader answers on {} (tried {} baud)", proto.name, address.text, tried), hint);
}

// The bootloader at `address` (already entered, where it had to be).
Session connect_at(const Address& address, const DeviceOptions& options, const targets::Knowledge& knowledge,
                   const link::WarningSink& warn, Needs needs) {
    const Transport& transport = transport_for(address);
    check_sim_options(options, transport);
    const std::string known = transport.protocol_for ? transport.protocol_for(address, knowledge) : std::string();
    const auto connect_options = connect_options_for(options, knowledge, warn);
    if (options.protocol.empty() && known.empty() && transport.tries_bauds && needs == Needs::Bootloader)
        return auto_detect(address, transport, options, knowledge, warn, connect_options);
    const auto& proto = choose_protocol(address, transport, options, knowledge, needs);
    if (!transport.carries(proto.runs_on))
        throw Error(ErrorKind::Usage,
                    fmt::format("{} is a {}, but the {} protocol runs on a {}", address.text,
                                link::link_kind_name(*transport.kind), proto.name, link::link_kind_name(proto.runs_on)),
                    proto.runs_on == link::LinkKind::Usb || proto.runs_on == link::LinkKind::Hid
                        ? "give the device as usb:VID:PID (see `mcuflash list`)"
                                                         : "give the device as a serial port");
    return connect_protocol(address, transport, proto, options, knowledge, warn, connect_options);
}

}  // namespace

Session connect(const DeviceOptions& options, const targets::Knowledge& knowledge, const link::WarningSink& warn,
                Needs needs) {
    // What the options alone make wrong is refused before anything reaches the device: finding it
    // may reboot a running Klipper into its bootloader.
    if (!options.protocol.empty()) protocol::find_protocol(options.protocol);
    if (options.device.empty() && (!options.sim_faults.empty() || options.sim_fast))
        throw Error(ErrorKind::Usage, "--sim-faults and --sim-fast apply to simulated devices (-d sim:...) only");
    if (!options.device.empty()) check_sim_options(options, transport_for(parse_address(options.device)));
    std::optional<Address> klipper_port;
    const Address address = device_address(options, knowledge, warn, needs, &klipper_port);
    // A board that was running Klipper named its chip (its USB product string); the bootloader it
    // rebooted into may not say (the HID bootloader, HalfKay), so that name goes on as --chip would.
    DeviceOptions effective = options;
    if (klipper_port && effective.chip.empty())
        if (const auto* chip = knowledge.find_chip(discover::identify_port(klipper_port->rest).mcu))
            effective.chip = chip->name;
    Session session = connect_at(address, effective, knowledge, warn, needs);
    // A CAN node named by its UUID answers as Klipper on the same address once its application runs.
    if (!klipper_port && address.scheme == "can" && std::count(address.rest.begin(), address.rest.end(), ':') == 1)
        klipper_port = address;
    session.klipper_port = klipper_port;
    return session;
}

ProgrammerSession connect_programmer(const DeviceOptions& options, const targets::Chip& chip,
                                     const targets::Knowledge& knowledge, const link::WarningSink& warn) {
    const auto& type = options.protocol.empty() ? protocol::programmers().front()
                                                : protocol::find_programmer(options.protocol);
    if (options.device.empty())
        throw Error(ErrorKind::Usage, "give the programmer's serial port with -d",
                    "an ISP programmer is not found automatically: the only serial port may be the board itself");
    const Address address = parse_address(options.device);
    const Transport& transport = transport_for(address);
    check_sim_options(options, transport);
    if (transport.simulated && transport.protocol_for(address, knowledge) != type.simulator)
        throw Error(ErrorKind::Usage, fmt::format("{} is not a programmer; the simulated one is sim:{}[:CHIP]",
                                                  options.device, type.simulator));
    if (transport.kind && *transport.kind != type.runs_on)
        throw Error(ErrorKind::Usage, fmt::format("a {} programmer is on a {}, not a {}", type.name,
                                                  link::link_kind_name(type.runs_on),
                                                  link::link_kind_name(*transport.kind)));
    DeviceOptions for_target = options;
    for_target.chip = chip.name;  // a simulated programmer simulates this chip unless the address names one
    link::SerialSettings settings = type.serial;
    if (options.baud) settings.baud = *options.baud;
    ProgrammerSession session;
    session.link = open_link(address, transport, OpenContext{for_target, nullptr, settings, warn});
    session.programmer = type.make(*session.link, chip, knowledge, warn);
    std::string name = session.programmer->sign_on();
    session.programmer->enter_programming();
    session.description = fmt::format("{} on {}", name, describe(transport, *session.link, nullptr));
    session.retry_hint = fmt::format("-d {}{} --chip {}", options.device,
                                     options.baud ? fmt::format(" --baud {}", *options.baud) : "", chip.name);
    return session;
}

}  // namespace mcuflash::device
