#include "sim/gs_usb/gs_usb_bridge.hpp"

#include <fmt/format.h>

#include <algorithm>

#include "core/error.hpp"
#include "protocol/klipper_mcu/codec.hpp"
#include "sim/katapult/katapult_device.hpp"
#include "targets/knowledge.hpp"

namespace mcuflash::sim::gs_usb {

using namespace katapult::can_admin;

namespace {

void put32(std::vector<uint8_t>& out, uint32_t value) {
    for (int i = 0; i < 4; ++i) out.push_back(static_cast<uint8_t>(value >> (8 * i)));
}
uint32_t get32(std::span<const uint8_t> in, size_t at) {
    return uint32_t{in[at]} | uint32_t{in[at + 1]} << 8 | uint32_t{in[at + 2]} << 16 | uint32_t{in[at + 3]} << 24;
}

uint64_t fnv1a(const std::string& text) {
    uint64_t hash = 1469598103934665603ull;
    for (unsigned char c : text) hash = (hash ^ c) * 1099511628211ull;
    return hash;
}

uint64_t parse_uuid(const std::string& text, const std::string& what) {
    if (text.size() != 12 || text.find_first_not_of("0123456789abcdefABCDEF") != std::string::npos)
        throw core::Error(core::ErrorKind::Usage, fmt::format("{}: the UUID '{}' is not 12 hex digits", what, text));
    return std::stoull(text, nullptr, 16);
}

}  // namespace

// ---- gs_host_frame ----

std::vector<uint8_t> GsHostFrame::encode() const {
    std::vector<uint8_t> out;
    put32(out, echo_id);
    put32(out, can_id);
    out.insert(out.end(), {dlc, channel, flags, 0});
    out.insert(out.end(), data.begin(), data.end());
    return out;
}

std::optional<GsHostFrame> GsHostFrame::decode(std::span<const uint8_t> bytes) {
    if (bytes.size() < kHostFrameBytes) return std::nullopt;
    GsHostFrame frame;
    frame.echo_id = get32(bytes, 0);
    frame.can_id = get32(bytes, 4);
    frame.dlc = bytes[8];
    frame.channel = bytes[9];
    frame.flags = bytes[10];
    std::copy(bytes.begin() + 12, bytes.begin() + 20, frame.data.begin());
    return frame;
}

BusFrame GsHostFrame::bus_frame() const {
    BusFrame frame;
    frame.extended = can_id & kCanEffFlag;
    frame.remote = can_id & kCanRtrFlag;
    frame.id = frame.extended ? can_id & 0x1FFFFFFF : can_id & 0x7FF;
    frame.length = std::min<uint8_t>(dlc, 8);
    frame.data = data;
    return frame;
}

GsHostFrame GsHostFrame::from(const BusFrame& frame, uint32_t echo_id) {
    GsHostFrame host;
    host.echo_id = echo_id;
    host.can_id = frame.id | (frame.extended ? kCanEffFlag : 0) | (frame.remote ? kCanRtrFlag : 0);
    host.dlc = frame.length;
    host.data = frame.data;
    return host;
}

// ---- Klipper's UUID ----

uint64_t fasthash64(std::span<const uint8_t> bytes, uint64_t seed) {
    constexpr uint64_t m = 0x880355f21e6d1965ull;
    auto mix = [](uint64_t h) {
        h ^= h >> 23;
        h *= 0x2127599bf4325c37ull;
        h ^= h >> 47;
        return h;
    };
    uint64_t h = seed ^ (bytes.size() * m);
    size_t i = 0;
    for (; i + 8 <= bytes.size(); i += 8) {
        uint64_t v = 0;
        for (int b = 0; b < 8; ++b) v |= uint64_t{bytes[i + b]} << (8 * b);
        h ^= mix(v);
        h *= m;
    }
    if (i < bytes.size()) {
        uint64_t v = 0;
        for (size_t b = 0; i + b < bytes.size(); ++b) v |= uint64_t{bytes[i + b]} << (8 * b);
        h ^= mix(v);
        h *= m;
    }
    return mix(h);
}

uint64_t klipper_canbus_uuid(std::span<const uint8_t> chip_id) {
    const uint64_t hash = fasthash64(chip_id, 0xA16231A7);
    uint64_t uuid = 0;
    for (int i = 0; i < 6; ++i) uuid = uuid << 8 | ((hash >> (8 * i)) & 0xFF);  // memory order, printed as read
    return uuid;
}

// ---- --node ----

BridgeNodeSpec BridgeNodeSpec::parse(const std::string& text) {
    const std::string usage = fmt::format(
        "--node {}: give katapult:CHIP[:UUID[:FLASH_FILE]] or klipper:CHIP[:UUID[:FLASH_FILE]] "
        "(e.g. katapult:stm32f103xe:0a1b2c3d4e5f:node.bin)", text);
    std::vector<std::string> parts;
    size_t start = 0;
    for (int field = 0; field < 3; ++field) {
        const size_t colon = text.find(':', start);
        if (colon == std::string::npos) break;
        parts.push_back(text.substr(start, colon - start));
        start = colon + 1;
    }
    parts.push_back(text.substr(start));  // the flash file may hold colons
    if (parts.size() < 2) throw core::Error(core::ErrorKind::Usage, usage);
    BridgeNodeSpec spec;
    if (parts[0] == "klipper") spec.klipper = true;
    else if (parts[0] != "katapult") throw core::Error(core::ErrorKind::Usage, usage + ": what it runs is katapult or klipper");
    spec.chip = targets::Knowledge::builtin().chip(parts[1]).name;
    if (parts.size() > 2 && !parts[2].empty()) spec.uuid = parse_uuid(parts[2], "--node " + text);
    if (parts.size() > 3) spec.flash_file = parts[3];
    return spec;
}

// ---- the bridge ----

struct GsUsbBridge::Node {
    std::unique_ptr<katapult::KatapultDevice> device;
    std::unique_ptr<katapult::CanNode> node;
    std::string name;
};

GsUsbBridge::GsUsbBridge(GsUsbBridgeOptions options)
    : options_(std::move(options)),
      flash_(FlashLayout::of_chip(targets::Knowledge::builtin().chip(options_.chip), 4)),
      bus_(options_.timing, options_.default_bitrate) {
    if (options_.chip_id.empty()) {
        // A chip id of its own, the same every run (an STM32's is 12 bytes).
        const uint64_t a = fnv1a(options_.chip + "/bridge"), b = fnv1a(options_.chip + "/bridge/2");
        for (int i = 0; i < 8; ++i) options_.chip_id.push_back(static_cast<uint8_t>(a >> (8 * i)));
        for (int i = 0; i < 4; ++i) options_.chip_id.push_back(static_cast<uint8_t>(b >> (8 * i)));
    }
    for (uint8_t byte : options_.chip_id) serial_ += fmt::format("{:02X}", byte);  // usb_fill_serial: upper case
    uuid_ = options_.uuid ? *options_.uuid & 0xFFFFFFFFFFFFull : klipper_canbus_uuid(options_.chip_id);
    if (!options_.identify_data.empty()) klipper_ = std::make_unique<klipper::McuResponder>(options_.identify_data);
    host_station_ = &bus_.attach("bridge", [this](const BusFrame& frame, uint64_t echo_id, Clock::time_point end) {
        on_bus_transmitted(frame, echo_id, end);
    });

    const auto& kb = targets::Knowledge::builtin();
    const auto* katapult = kb.find_bootloader("katapult");
    if (!katapult) throw core::Error(core::ErrorKind::Unsupported, "data/bootloaders.toml has no katapult row");
    for (size_t i = 0; i < options_.nodes.size(); ++i) {
        const BridgeNodeSpec& spec = options_.nodes[i];
        auto entry = std::make_unique<Node>();
        const auto& chip = kb.chip(spec.chip);
        const uint64_t uuid = spec.uuid.value_or(fnv1a(fmt::format("{}#{}", chip.name, i)) & 0xFFFFFFFFFFFFull);
        for (const auto& other : nodes_)
            if (other->node->uuid() == uuid)
                throw core::Error(core::ErrorKind::Usage, fmt::format("--node: two nodes with the UUID {:012x}", uuid));
        if (uuid == uuid_)
            throw core::Error(core::ErrorKind::Usage, fmt::format("--node: {:012x} is the bridge's own UUID", uuid));
        DeviceOptions device_options;
        device_options.timing = options_.timing;
        if (!spec.flash_file.empty()) device_options.flash_file = spec.flash_file;
        katapult::KatapultConfig config;
        config.canbus_uuid = uuid;
        entry->device = std::make_unique<katapult::KatapultDevice>(chip, *katapult, device_options, config);
        entry->name = fmt::format("node {:012x} ({})", uuid, chip.name);
        katapult::CanNodeOptions node_options;
        node_options.uuid = uuid;
        node_options.start_as_klipper = spec.klipper;
        node_options.line_timing = false;  // the bus's bit times are the wire
        node_options.reboot_time = std::chrono::milliseconds(options_.timing ? 500 : 50);
        if (spec.klipper)  // a Klipper build in its flash answers identify as that build
            if (auto found = protocol::klipper_mcu::find_dictionary_in_image(entry->device->flash().contents()))
                node_options.identify_data = *found;
        const std::string name = entry->name;
        node_options.log = [this, name](const std::string& message) { log(name + ": " + message); };
        auto& station = bus_.attach(entry->name);
        entry->node = std::make_unique<katapult::CanNode>(*entry->device, FaultInjector(FaultSpec{}), node_options, station);
        nodes_.push_back(std::move(entry));
    }
}

GsUsbBridge::~GsUsbBridge() = default;

katapult::CanNode& GsUsbBridge::node(size_t i) { return *nodes_.at(i)->node; }
FlashMemory& GsUsbBridge::node_flash(size_t i) { return nodes_.at(i)->device->flash(); }

void GsUsbBridge::log(const std::string& message) const {
    if (options_.log) options_.log(message);
    trace(message);
}

std::string GsUsbBridge::describe() const {
    return fmt::format("Klipper USB-to-CAN bridge (gs_usb) on an {}, uuid {:012x}, {} node{} behind it", options_.chip,
                       uuid_, nodes_.size(), nodes_.size() == 1 ? "" : "s");
}

std::vector<uint8_t> GsUsbBridge::device_descriptor() const {
    // usb_canbus.c: 1d50:606f, EP0 16 bytes, strings 1-3.
    return usb::device_descriptor_bytes(0x1D50, 0x606F, 0x0100, 1, 2, 3, 16);
}

std::vector<uint8_t> GsUsbBridge::configuration_descriptor() const {
    std::vector<uint8_t> out{9, 2, 32, 0, 1, 1, 0, 0xC0, 50,
                             9, 4, 0, 0, 2, 0xFF, 0xFF, 0xFF, 0,
                             7, 5, kBulkOut, 0x02, 64, 0, 0,
                             7, 5, kBulkIn, 0x02, 64, 0, 0};
    return out;
}

std::string GsUsbBridge::string_descriptor(uint8_t index) const {
    switch (index) {
        case 1: return "Klipper";
        case 2: return options_.chip;
        case 3: return serial_;
        default: return "";
    }
}

usb::ControlResult GsUsbBridge::class_request(const link::UsbSetup& setup, std::span<const uint8_t> data_out,
                                              Clock::time_point now) {
    advance(now);
    const uint8_t type = (setup.request_type >> 5) & 0x03;
    if (type != 2) return usb::ControlResult::stalled();  // vendor requests only
    switch (setup.request) {
        case breq::kHostFormat:
            if (setup.is_in()) break;
            return usb::ControlResult::ok();  // like candleLight: little-endian whatever the host says
        case breq::kDeviceConfig: {
            if (!setup.is_in()) break;
            std::vector<uint8_t> config{0, 0, 0, 0};  // reserved x3, icount 0: one channel
            put32(config, 2);                         // sw_version
            put32(config, 1);                         // hw_version
            return usb::ControlResult::ok(config);
        }
        case breq::kBtConst: {
            if (!setup.is_in()) break;
            std::vector<uint8_t> bt;
            for (uint32_t value : {0u, kFclkCan, 1u, 16u, 1u, 8u, 4u, 1u, 1024u, 1u}) put32(bt, value);
            return usb::ControlResult::ok(bt);
        }
        case breq::kBitTiming: {
            if (setup.is_in() || data_out.size() < 20) break;
            const uint32_t bitrate = bitrate_from_timing(kFclkCan, get32(data_out, 16), get32(data_out, 0),
                                                         get32(data_out, 4), get32(data_out, 8));
            if (bitrate == 0) break;
            bus_.set_bitrate(bitrate);
            log(fmt::format("bit timing: prop {} phase1 {} phase2 {} sjw {} brp {}: {} bit/s", get32(data_out, 0),
                            get32(data_out, 4), get32(data_out, 8), get32(data_out, 12), get32(data_out, 16), bitrate));
            return usb::ControlResult::ok();
        }
        case breq::kMode: {
            if (setup.is_in() || data_out.size() < 8) break;
            started_ = get32(data_out, 0) == 1;
            log(fmt::format("mode: {} (flags {:#x})", started_ ? "start" : "reset", get32(data_out, 4)));
            return usb::ControlResult::ok();
        }
        default:
            break;
    }
    return usb::ControlResult::stalled();  // BERR, TIMESTAMP, IDENTIFY, ...: Klipper's bridge stalls them
}

void GsUsbBridge::to_host(const GsHostFrame& frame) {
    to_host_.push_back(frame.encode());
    ++frames_to_host_;
}

bool GsUsbBridge::bulk_out(uint8_t address, std::span<const uint8_t> data, Clock::time_point now) {
    if (address != kBulkOut || !attached_) return false;
    advance(now);
    auto frame = GsHostFrame::decode(data);
    if (!frame) {
        log(fmt::format("a {}-byte bulk OUT transfer is no gs_host_frame: ignored", data.size()));
        return true;
    }
    ++host_frames_;
    const BusFrame bus_frame = frame->bus_frame();
    if (!bus_frame.extended && assigned_id_ && bus_frame.id == assigned_id_) {
        // The bridge's own node id: handled locally, never on the bus (usb_canbus.c HS_TX_LOCAL).
        to_host(*frame);
        ++echoes_;
        local_frame(bus_frame, now);
    } else {
        host_station_->send_tagged(bus_frame, frame->echo_id, now);
    }
    advance(now);
    return true;
}

void GsUsbBridge::on_bus_transmitted(const BusFrame& frame, uint64_t echo_id, Clock::time_point end) {
    to_host(GsHostFrame::from(frame, static_cast<uint32_t>(echo_id)));
    ++echoes_;
    if (!frame.extended && frame.id == kAdminId) local_frame(frame, end);  // admin: local as well as on the bus
}

void GsUsbBridge::local_frame(const BusFrame& frame, Clock::time_point now) {
    if (assigned_id_ && !frame.extended && frame.id == assigned_id_) return answer_as_klipper(frame, now);
    if (frame.id != kAdminId || frame.length == 0) return;
    auto names_bridge = [&] {
        if (frame.length < 7) return false;
        uint64_t uuid = 0;
        for (int i = 1; i <= 6; ++i) uuid = uuid << 8 | frame.data[i];
        return uuid == uuid_;
    };
    const uint8_t command = frame.data[0];
    if (command == kQueryUnassigned && !assigned_id_) {
        // Klipper's canserial answers through canbus_send(): to the host only.
        BusFrame answer;
        answer.id = kAdminReplyId;
        answer.length = 8;
        answer.data[0] = kNeedNodeId;
        for (int i = 0; i < 6; ++i) answer.data[1 + i] = static_cast<uint8_t>(uuid_ >> (40 - 8 * i));
        answer.data[7] = kSetKlipperNodeId;
        to_host(GsHostFrame::from(answer, kEchoIdReceived));
    } else if (command == kSetKlipperNodeId && frame.length >= 8) {
        const uint32_t id = node_id_to_can_id(frame.data[7]);
        if (names_bridge()) {
            assigned_id_ = id;
            log(fmt::format("the bridge's own node id {}: {:#x}", frame.data[7], id));
        } else if (id == assigned_id_) {
            assigned_id_ = 0;
        }
    } else if (command == kRequestBootloader && names_bridge()) {
        log("bootloader request to the bridge itself: it reboots and leaves the USB bus (can0 vanishes, and the nodes "
            "behind it with it)");
        attached_ = false;
        left_at_ = now;
    }
}

void GsUsbBridge::answer_as_klipper(const BusFrame& frame, Clock::time_point now) {
    if (!klipper_) return;
    klipper_->set_canbus_node(uuid_, static_cast<uint8_t>((assigned_id_ - 0x100) / 2));
    const auto answer = klipper_->receive({frame.data.data(), frame.length}, now);
    // The bridge's own answers go to the host only (usb_canbus.c: canbus_send from the local node).
    for (const auto& out : link::split_into_frames(assigned_id_ + 1, answer))
        to_host(GsHostFrame::from(BusFrame::from(out), kEchoIdReceived));
}

void GsUsbBridge::restart_klipper(std::vector<uint8_t> identify_data, Clock::time_point now) {
    advance(now);
    attached_ = true;
    left_at_.reset();
    rebooted_ = false;
    assigned_id_ = 0;
    started_ = false;
    to_host_.clear();
    klipper_ = identify_data.empty() ? nullptr : std::make_unique<klipper::McuResponder>(std::move(identify_data));
    log(klipper_ ? "the bridge runs Klipper " + klipper_->dictionary().version + " again"
                 : "the bridge's application starts (no Klipper build in its flash: identify unanswered)");
}

usb::EndpointIn GsUsbBridge::bulk_in(uint8_t address, size_t max_length, Clock::time_point now) {
    if (address != kBulkIn) return usb::EndpointIn::stalled();
    advance(now);
    if (to_host_.empty() || max_length < kHostFrameBytes) return usb::EndpointIn::nak();
    auto data = std::move(to_host_.front());
    to_host_.pop_front();
    return usb::EndpointIn::ok(std::move(data));
}

void GsUsbBridge::bus_reset(Clock::time_point now) {
    advance(now);
    configuration_ = 0;
    to_host_.clear();  // what the host never took is lost with the USB connection
    started_ = false;
}

void GsUsbBridge::tick(Clock::time_point now) {
    advance(now);
    const auto reboot_time = options_.timing ? std::chrono::milliseconds(500) : std::chrono::milliseconds(50);
    if (left_at_ && !rebooted_ && options_.bootloader && now >= *left_at_ + reboot_time) {
        rebooted_ = true;
        options_.bootloader->bus_reset(now);
    }
}

std::optional<Clock::time_point> GsUsbBridge::next_event() const {
    std::optional<Clock::time_point> next = bus_.next_event();
    auto consider = [&next](std::optional<Clock::time_point> t) {
        if (t && (!next || *t < *next)) next = t;
    };
    for (const auto& node : nodes_) consider(node->node->next_event());
    return next;
}

void GsUsbBridge::advance(Clock::time_point now) {
    // Events in time order: a frame's end delivers it; the nodes then run at that instant.
    for (int guard = 0; guard < 100000; ++guard) {
        std::optional<Clock::time_point> at = next_event();
        if (!at || *at > now) break;
        bus_.advance(*at);
        for (auto& node : nodes_) node->node->step(*at);
        while (auto frame = host_station_->receive_any(*at)) {
            // usb_canbus.c canbus_process_data: ids of the bridge's own node stay off the host.
            if (assigned_id_ && !frame->extended && (frame->id & ~1u) == assigned_id_) continue;
            if (attached_) to_host(GsHostFrame::from(*frame, kEchoIdReceived));
        }
    }
    for (auto& node : nodes_) node->node->step(now);
    bus_.advance(now);
    while (auto frame = host_station_->receive_any(now)) {
        if (assigned_id_ && !frame->extended && (frame->id & ~1u) == assigned_id_) continue;
        if (attached_) to_host(GsHostFrame::from(*frame, kEchoIdReceived));
    }
}

std::vector<std::string> GsUsbBridge::summary() const {
    std::vector<std::string> lines;
    const auto& s = bus_.stats();
    lines.push_back(fmt::format("bus: {} frames, {} bits ({} stuff bits), busy {:.3f} s at {} bit/s; {} frames from the "
                                "host, {} echoed, {} to the host",
                                s.frames, s.bits, s.stuff_bits, std::chrono::duration<double>(s.busy).count(),
                                bus_.bitrate(), host_frames_, echoes_, frames_to_host_));
    for (const auto& node : nodes_) {
        const auto& c = node->device->flash().counters();
        lines.push_back(fmt::format("{}: {}; flash: {} erases, {} programs ({} bytes){}", node->name, node->node->summary(),
                                    c.erases, c.programs, c.bytes_programmed,
                                    c.violations ? fmt::format(", {} refused (protected)", c.violations) : ""));
    }
    return lines;
}

}  // namespace mcuflash::sim::gs_usb
