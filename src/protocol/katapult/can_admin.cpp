#include "protocol/katapult/can_admin.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cctype>

#include "core/deadline.hpp"
#include "core/error.hpp"
#include "core/interrupt.hpp"

namespace mcuflash::protocol::katapult::can {

std::string uuid_text(uint64_t uuid) { return fmt::format("{:012x}", uuid & 0xFFFFFFFFFFFFull); }

std::optional<uint64_t> parse_uuid(std::string_view text) {
    if (text.size() != 2 * kUuidBytes) return std::nullopt;
    uint64_t uuid = 0;
    for (char c : text) {
        if (!std::isxdigit(static_cast<unsigned char>(c))) return std::nullopt;
        const int digit = std::isdigit(static_cast<unsigned char>(c)) ? c - '0' : std::tolower(c) - 'a' + 10;
        uuid = uuid << 4 | static_cast<uint64_t>(digit);
    }
    return uuid;
}

uint64_t klipper_uuid_from_chip_id(std::span<const uint8_t> chip_id) {
    // fasthash64 (Zilong Tan): 8-byte little-endian words, then the rest, each mixed in.
    constexpr uint64_t kMultiplier = 0x880355f21e6d1965ull, kSeed = 0xA16231A7;
    const auto mix = [](uint64_t h) {
        h ^= h >> 23;
        h *= 0x2127599bf4325c37ull;
        return h ^ (h >> 47);
    };
    uint64_t hash = kSeed ^ (chip_id.size() * kMultiplier);
    for (size_t at = 0; at < chip_id.size(); at += 8) {
        uint64_t word = 0;
        for (size_t b = 0; b < 8 && at + b < chip_id.size(); ++b) word |= uint64_t{chip_id[at + b]} << (8 * b);
        hash = (hash ^ mix(word)) * kMultiplier;
    }
    hash = mix(hash);
    uint64_t uuid = 0;  // its first six bytes in memory order, as the UUID is sent and printed
    for (size_t i = 0; i < kUuidBytes; ++i) uuid = uuid << 8 | ((hash >> (8 * i)) & 0xFF);
    return uuid;
}

std::optional<uint64_t> klipper_uuid_from_usb_serial(std::string_view serial) {
    if (serial.empty() || serial.size() % 2) return std::nullopt;
    std::vector<uint8_t> id;
    for (size_t i = 0; i < serial.size(); i += 2) {
        auto digit = [](char c) -> int {
            if (std::isdigit(static_cast<unsigned char>(c))) return c - '0';
            if (std::isxdigit(static_cast<unsigned char>(c))) return std::tolower(c) - 'a' + 10;
            return -1;
        };
        const int high = digit(serial[i]), low = digit(serial[i + 1]);
        if (high < 0 || low < 0) return std::nullopt;
        id.push_back(static_cast<uint8_t>(high << 4 | low));
    }
    return klipper_uuid_from_chip_id(id);
}

const char* app_name(NodeApp app) {
    switch (app) {
        case NodeApp::Klipper: return "Klipper";
        case NodeApp::Katapult: return "Katapult";
        case NodeApp::Unknown: break;
    }
    return "unknown firmware";
}

NodeApp NodeAnswer::app() const {
    if (app_byte == admin::kKlipperSetNodeId) return NodeApp::Klipper;
    if (app_byte == admin::kSetNodeId) return NodeApp::Katapult;
    return NodeApp::Unknown;
}

namespace {

// The command byte, then the UUID's six bytes, most significant first (as the node stores them).
Bytes with_uuid(uint8_t command, uint64_t uuid) {
    Bytes out{command};
    for (int shift = 8 * (kUuidBytes - 1); shift >= 0; shift -= 8) out.push_back(static_cast<uint8_t>(uuid >> shift));
    return out;
}

}  // namespace

Bytes query_message() { return {admin::kQueryUnassigned}; }
Bytes clear_node_ids_message() { return {admin::kClearNodeIds}; }

Bytes assign_message(uint64_t uuid, uint8_t node_id) {
    Bytes out = with_uuid(admin::kSetNodeId, uuid);
    out.push_back(node_id);
    return out;
}

Bytes bootloader_request_message(uint64_t uuid) { return with_uuid(admin::kRequestBootloader, uuid); }

Bytes klipper_assign_message(uint64_t uuid, uint8_t node_id) {
    Bytes out = with_uuid(admin::kKlipperSetNodeId, uuid);
    out.push_back(node_id);
    return out;
}

std::optional<NodeAnswer> parse_query_answer(std::span<const uint8_t> payload) {
    if (payload.size() < 1 + kUuidBytes || payload[0] != admin::kNeedNodeId) return std::nullopt;
    NodeAnswer answer;
    for (size_t i = 1; i <= kUuidBytes; ++i) answer.uuid = answer.uuid << 8 | payload[i];
    answer.app_byte = payload.size() > 1 + kUuidBytes ? payload[1 + kUuidBytes] : 0;
    return answer;
}

void CanAdmin::send(const Bytes& message) { bus_.send(link::CanFrame::with(kAdminId, message)); }

std::vector<NodeAnswer> CanAdmin::query(std::chrono::milliseconds listen) {
    core::throw_if_interrupted();  // Ctrl-C while nodes are looked for: nothing is half done
    bus_.take_only({kAdminReplyId});
    // Answers to an earlier query are no answers to this one.
    const auto now = core::Deadline::after_ms(0);
    while (bus_.receive(now)) {
    }
    send(query_message());
    std::vector<NodeAnswer> answers;
    const core::Deadline deadline(listen);
    while (auto frame = bus_.receive(deadline)) {
        if (frame->id != kAdminReplyId) continue;
        auto answer = parse_query_answer(frame->payload());
        if (!answer) continue;
        auto same = std::find_if(answers.begin(), answers.end(), [&](const NodeAnswer& a) { return a.uuid == answer->uuid; });
        if (same == answers.end()) answers.push_back(*answer);
        else *same = *answer;  // the latest word counts (a node that just rebooted)
    }
    return answers;
}

void CanAdmin::clear_node_ids() { send(clear_node_ids_message()); }

void CanAdmin::assign(uint64_t uuid, uint8_t node_id) { send(assign_message(uuid, node_id)); }

void CanAdmin::assign_klipper(uint64_t uuid, uint8_t node_id) { send(klipper_assign_message(uuid, node_id)); }

void CanAdmin::request_bootloader(uint64_t uuid) { send(bootloader_request_message(uuid)); }

std::optional<NodeAnswer> CanAdmin::wait_for_katapult(uint64_t uuid, std::chrono::milliseconds limit,
                                                      std::vector<NodeAnswer>* last_seen) {
    using std::chrono::milliseconds;
    const core::Deadline deadline(limit);
    for (;;) {
        // A node answers at once: half a second a query is a rate a rebooting node is not flooded at.
        const milliseconds listen = std::clamp(milliseconds(deadline.remaining_ms()), milliseconds(100), milliseconds(500));
        auto answers = query(listen);
        for (const auto& a : answers)
            if (a.uuid == uuid && a.app() == NodeApp::Katapult) return a;
        if (last_seen) *last_seen = answers;
        if (deadline.expired()) return std::nullopt;
    }
}

using core::Error;
using core::ErrorKind;

std::vector<NodeAnswer> list_nodes(link::CanBus& bus, std::chrono::milliseconds listen) {
    CanAdmin admin(bus);
    admin.clear_node_ids();
    return admin.query(listen);
}

namespace {

std::string nobody_answers_hint(const std::string& interface) {
    return fmt::format(
        "usual causes: the interface is at another bitrate than the nodes (`ip -details link show {0}` shows it; "
        "sudo ip link set {0} down, then sudo ip link set {0} up type can bitrate 1000000); a missing 120 ohm "
        "termination at either end of the bus; CAN-H and CAN-L swapped; a node that runs Klipper and was already "
        "given its id by a running Klipper host does not answer: stop it first (sudo systemctl stop klipper); a "
        "node behind a USB-to-CAN bridge board vanishes while the bridge reboots",
        interface);
}

std::string listing(const std::string& interface, const std::vector<NodeAnswer>& answers) {
    std::string out;
    for (const auto& a : answers)
        out += fmt::format("\n  -d can:{}:{}  ({})", interface, uuid_text(a.uuid), app_name(a.app()));
    return out;
}

// The bus is gone while a node rebooted: the node was the USB-to-CAN bridge itself.
[[noreturn]] void bridge_went_away(const std::string& interface, uint64_t uuid, const Error& cause) {
    throw Error(ErrorKind::NotFound,
                fmt::format("{} went away while the node {} rebooted: it is probably the USB-to-CAN bridge board "
                            "itself ({})",
                            interface, uuid_text(uuid), cause.what()),
                "mcuflash does not yet flash a bridge board over CAN: its Katapult now shows up as a USB serial port; "
                "flash it with -d /dev/serial/by-id/usb-katapult_... (mcuflash list)");
}

}  // namespace

std::unique_ptr<link::CanNodeStream> open_node(std::unique_ptr<link::CanBus> bus, const OpenNodeOptions& options) {
    const std::string interface = bus->interface_name();
    CanAdmin admin(*bus);
    const auto answers = list_nodes(*bus, options.listen);

    std::optional<NodeAnswer> chosen;
    if (options.uuid) {
        for (const auto& a : answers)
            if (a.uuid == *options.uuid) chosen = a;
    } else if (answers.size() == 1) {
        chosen = answers.front();
    } else if (answers.size() > 1) {
        throw Error(ErrorKind::Usage,
                    fmt::format("{} nodes answer on {}; say which one to flash:{}", answers.size(), interface,
                                listing(interface, answers)),
                    "the UUID is the canbus_uuid in your printer.cfg");
    } else {
        throw Error(ErrorKind::NotFound, fmt::format("no node answers on {}", interface), nobody_answers_hint(interface));
    }
    const uint64_t uuid = chosen ? chosen->uuid : *options.uuid;
    const std::string name = uuid_text(uuid);

    if (chosen && chosen->app() == NodeApp::Unknown)
        throw Error(ErrorKind::Unsupported,
                    fmt::format("the node {} on {} runs firmware that is neither Klipper nor Katapult (it answers "
                                "with application code {:#04x})",
                                name, interface, chosen->app_byte));
    const bool runs_klipper = chosen && chosen->app() == NodeApp::Klipper;
    if (!chosen || runs_klipper) {
        if (!options.may_reboot) {
            if (runs_klipper)
                throw Error(ErrorKind::Usage, fmt::format("the node {} on {} runs Klipper, not Katapult", name, interface),
                            "without --no-reset, mcuflash asks Klipper to reboot into Katapult");
            throw Error(ErrorKind::NotFound, fmt::format("no node with UUID {} answers on {}{}", name, interface,
                                                         answers.empty() ? std::string(" (no node answers at all)")
                                                                         : ". These answer:" + listing(interface, answers)),
                        nobody_answers_hint(interface));
        }
        // A node given its id by a running Klipper host answers no query, yet takes the request, as
        // flashtool.py relies on; any other node ignores a request with another UUID.
        if (options.warn)
            options.warn(runs_klipper ? fmt::format("the node {} runs Klipper: asking it to reboot into Katapult", name)
                                      : fmt::format("no node {} answers on {}: asking Klipper there (if it runs, with "
                                                    "its id from a Klipper host) to reboot into Katapult",
                                                    name, interface));
        std::vector<NodeAnswer> last_seen = answers;
        std::optional<NodeAnswer> back;
        try {
            admin.request_bootloader(uuid);
            back = admin.wait_for_katapult(uuid, options.reboot_wait, &last_seen);
        } catch (const Error& e) {
            if (e.kind() == ErrorKind::NotFound) bridge_went_away(interface, uuid, e);
            throw;
        }
        if (!back) {
            const auto seconds = std::chrono::duration_cast<std::chrono::seconds>(options.reboot_wait).count();
            if (runs_klipper)
                throw Error(ErrorKind::Timeout,
                            fmt::format("the node {} on {} ran Klipper and was asked to reboot into Katapult, but no "
                                        "Katapult answered as {} within {} s",
                                        name, interface, name, seconds),
                            "is Katapult installed on it, built for CAN at this bus's bitrate? Klipper must have been "
                            "built with its bootloader offset; else enter Katapult by double-pressing the board's "
                            "reset button");
            throw Error(ErrorKind::NotFound,
                        fmt::format("no node with UUID {} answers on {} (nor came up as Katapult within {} s){}", name,
                                    interface, seconds,
                                    last_seen.empty() ? std::string("; no node answers at all")
                                                      : ". These answer:" + listing(interface, last_seen)),
                        fmt::format("check the UUID (canbus_uuid in printer.cfg); {}", nobody_answers_hint(interface)));
        }
    }

    admin.assign(uuid, kFirstNodeId);
    auto stream = std::make_unique<link::CanNodeStream>(std::move(bus), node_receive_id(kFirstNodeId),
                                                        node_reply_id(kFirstNodeId),
                                                        fmt::format("Katapult node {} on {}", name, interface),
                                                        fmt::format("can:{}:{}", interface, name));
    // Katapult takes the assignment in its admin task, after the interrupt that queued it: frames to the
    // new id that arrive before then are dropped. A pause of the link (Ctrl-C ends it).
    stream->pause(std::chrono::milliseconds(100));
    return stream;
}

}  // namespace mcuflash::protocol::katapult::can
