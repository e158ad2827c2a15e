#pragma once
// The CAN admin exchange Katapult (and Klipper) nodes answer on a CAN bus, before any Katapult frame:
// 11-bit ids, the host on 0x3F0, nodes answering on 0x3F1.
//
//   query unassigned   [00]                       every node without a node id answers
//                      -> [20, uuid x6, app]       app 0x11 = Katapult, 0x01 = Klipper
//   clear node ids     [12]                       Katapult nodes forget theirs
//   assign (Katapult)  [11, uuid x6, node id]     that node takes frames on 0x100 + 2*id and sends
//                                                 on 0x100 + 2*id + 1 (flashtool.py assigns 128 + n)
//   bootloader request [02, uuid x6]              Klipper on that node reboots into Katapult
//   assign (Klipper)   [01, uuid x6, node id]     a node running Klipper takes that id (klippy
//                                                 assigns 4 + n); its MCU protocol then runs there
//
// Facts: Katapult's src/generic/canserial.c, Klipper's src/generic/canserial.c, flashtool.py.
#include <chrono>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "link/byte_link.hpp"
#include "link/can_socket.hpp"
#include "link/can_stream.hpp"
#include "protocol/katapult/codec.hpp"

namespace mcuflash::protocol::katapult::can {

constexpr uint32_t kAdminId = 0x3F0;
constexpr uint32_t kAdminReplyId = 0x3F1;

namespace admin {
constexpr uint8_t kQueryUnassigned = 0x00;
constexpr uint8_t kKlipperSetNodeId = 0x01;  // also the app byte of a node running Klipper
constexpr uint8_t kRequestBootloader = 0x02;
constexpr uint8_t kSetNodeId = 0x11;  // also the app byte of a node running Katapult
constexpr uint8_t kClearNodeIds = 0x12;
constexpr uint8_t kNeedNodeId = 0x20;  // the query's answer
}  // namespace admin

constexpr uint8_t kFirstNodeId = 128;  // flashtool.py's CANBUS_NODEID_OFFSET
constexpr size_t kUuidBytes = 6;

// The ids a node with `node_id` takes frames on and answers on.
constexpr uint32_t node_receive_id(uint8_t node_id) { return 0x100 + 2u * node_id; }
constexpr uint32_t node_reply_id(uint8_t node_id) { return node_receive_id(node_id) + 1; }

// A UUID as flashtool.py and Klipper print it: 12 lowercase hex digits, the first byte sent first.
std::string uuid_text(uint64_t uuid);
// 12 hex digits (either case) -> the UUID; nullopt for anything else.
std::optional<uint64_t> parse_uuid(std::string_view text);

// The CAN UUID Klipper gives itself from its chip's unique id (canserial.c: the first six bytes, in
// memory order, of fasthash64(id, seed 0xA16231A7)). A USB-to-CAN bridge's USB serial number is that
// id in hex, so the bridge is known from it.
uint64_t klipper_uuid_from_chip_id(std::span<const uint8_t> chip_id);
// The same from the USB serial number (hex digits); nullopt when it is not hex.
std::optional<uint64_t> klipper_uuid_from_usb_serial(std::string_view serial);

enum class NodeApp { Klipper, Katapult, Unknown };
const char* app_name(NodeApp app);  // "Klipper", "Katapult", "unknown firmware"

// One answer to the query.
struct NodeAnswer {
    uint64_t uuid = 0;
    uint8_t app_byte = 0;
    NodeApp app() const;
};

// The admin messages the host sends.
Bytes query_message();
Bytes clear_node_ids_message();
Bytes assign_message(uint64_t uuid, uint8_t node_id);
Bytes bootloader_request_message(uint64_t uuid);
Bytes klipper_assign_message(uint64_t uuid, uint8_t node_id);
// A query answer; nullopt when the frame is none (shorter than 7 bytes or not 0x20 first). An answer
// of 7 bytes (no app byte) is taken with app byte 0: unknown.
std::optional<NodeAnswer> parse_query_answer(std::span<const uint8_t> payload);

// The admin exchange on a bus.
class CanAdmin {
public:
    explicit CanAdmin(link::CanBus& bus) : bus_(bus) {}

    // Asks every unassigned node and collects the answers for `listen` (flashtool.py listens 2 s),
    // each UUID once, in the order they came.
    std::vector<NodeAnswer> query(std::chrono::milliseconds listen = std::chrono::seconds(2));
    void clear_node_ids();
    void assign(uint64_t uuid, uint8_t node_id);
    void assign_klipper(uint64_t uuid, uint8_t node_id);
    // Asks Klipper on the node with `uuid` to reboot into Katapult (Klipper ignores another UUID).
    void request_bootloader(uint64_t uuid);
    // Queries every half second until `uuid` answers as Katapult or `limit` passes; returns that answer,
    // or nullopt with the answers last seen in `last_seen`.
    std::optional<NodeAnswer> wait_for_katapult(uint64_t uuid, std::chrono::milliseconds limit,
                                                std::vector<NodeAnswer>* last_seen = nullptr);

private:
    void send(const Bytes& message);
    link::CanBus& bus_;
};

// Every node that answers on the bus: Katapult nodes' ids are cleared first (as flashtool.py does), so
// one left assigned by an earlier session answers again.
std::vector<NodeAnswer> list_nodes(link::CanBus& bus, std::chrono::milliseconds listen = std::chrono::seconds(2));

struct OpenNodeOptions {
    std::optional<uint64_t> uuid;  // nullopt: the one node that answers
    bool may_reboot = true;        // a node running Klipper is asked to reboot into Katapult
    std::chrono::milliseconds listen = std::chrono::seconds(2);
    std::chrono::milliseconds reboot_wait = std::chrono::seconds(5);
    link::WarningSink warn;
};

// The Katapult node `options.uuid` names on the bus (or the only one there), as a byte stream for
// katapult::Client: found by the query; a node running Klipper asked to reboot into Katapult (and
// waited for); assigned node id 128. Throws core::Error: NotFound (nobody answers, or not that UUID:
// the message lists the UUIDs that did), Usage (several nodes and no UUID; --no-reset and Klipper),
// Timeout (Klipper did not come back as Katapult), Unsupported (the node runs other firmware).
std::unique_ptr<link::CanNodeStream> open_node(std::unique_ptr<link::CanBus> bus, const OpenNodeOptions& options);

}  // namespace mcuflash::protocol::katapult::can
