#pragma once
// A simulated board on a CAN bus: the Katapult device behind the CAN node front end its firmware has
// (Katapult's src/generic/canserial.c, Klipper's for the running-Klipper side), written here from
// those facts rather than shared with the client:
//
// - admin frames on 0x3F0: the query [00] is answered on 0x3F1 with [20, uuid x6, app] while the
//   node has no node id (app 0x11 Katapult, 0x01 Klipper); [11, uuid, n] (Katapult) or [01, uuid, n]
//   (Klipper) assigns it 0x100 + 2n, another node's assignment of the same id clears it (a
//   conflict); [12] clears Katapult's;
// - as Katapult with a node id: frames on that id are the byte stream into the device (through the
//   wire model and fault injector of a serial line), the device's bytes go out as frames of up to 8
//   bytes on the id above it;
// - as Klipper (start_as_klipper, or once COMPLETE started the application): the admin exchange;
//   Klipper's bootloader request [02, uuid] makes the node go silent for its reboot (about half a
//   second) and come back as Katapult without a node id. With a data dictionary (the build it was
//   started with, or the Klipper build its flash holds after an update) it answers identify, uptime
//   and clock on its node id (sim/klipper/mcu_responder.hpp), as klippy connects to a CAN node.
//
// The node talks to a CanNodeBus: a real SocketCAN interface (can_server.hpp) or the simulated bus
// behind a USB-to-CAN bridge (sim/gs_usb/simulated_can_bus.hpp). It never reads a clock: its owner
// calls step() with the time, at least at next_event().
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "link/can_socket.hpp"
#include "sim/device.hpp"
#include "sim/fault_injector.hpp"
#include "sim/klipper/mcu_responder.hpp"
#include "sim/simulated_line.hpp"

namespace mcuflash::sim::katapult {

// What a node needs of the bus it sits on.
class CanNodeBus {
public:
    virtual ~CanNodeBus() = default;
    // Puts a frame on the bus at `now` (it reaches the others when the bus has carried it).
    virtual void send(const link::CanFrame& frame, Clock::time_point now) = 0;
    // The next frame that has reached this node by `now`, oldest first; nullopt when there is none.
    virtual std::optional<link::CanFrame> receive(Clock::time_point now) = 0;
};

struct CanNodeOptions {
    uint64_t uuid = 0;  // 48 bits
    bool start_as_klipper = false;
    // Bytes take the device's UART wire time between the CAN frames and the device. Off when the bus
    // itself is timed (the bridge's bus): then CAN bit times stand for the wire.
    bool line_timing = true;
    std::chrono::milliseconds reboot_time{500};  // Klipper -> Katapult: silent this long
    std::vector<uint8_t> identify_data;  // the running Klipper's compressed data dictionary (empty: none)
    std::function<void(const std::string&)> log;
};

struct CanServerStats {
    uint64_t queries_answered = 0;
    uint64_t assignments = 0;
    uint64_t reboots = 0;            // into Katapult on Klipper's request
    uint64_t frames_in = 0, frames_out = 0;  // on the node's ids
};

class CanNode {
public:
    CanNode(Device& device, FaultInjector faults, CanNodeOptions options, CanNodeBus& bus);
    CanNode(const CanNode&) = delete;
    CanNode& operator=(const CanNode&) = delete;

    // Takes the frames that reached the node by `now`, runs the device up to `now`, sends what it
    // answered.
    void step(Clock::time_point now);
    // When the node next has something to do without a frame arriving (a device timer, the end of a
    // reboot); nullopt: only a frame wakes it.
    std::optional<Clock::time_point> next_event() const;

    uint64_t uuid() const { return options_.uuid; }
    bool runs_klipper() const { return firmware_ == Firmware::Klipper; }
    const CanServerStats& stats() const { return stats_; }
    Device& device() { return device_; }
    // The closing log line.
    std::string summary() const;

private:
    enum class Firmware { Katapult, Klipper, Rebooting };

    void handle(const link::CanFrame& frame, Clock::time_point now);
    void handle_admin(const link::CanFrame& frame, Clock::time_point now);
    bool names_us(const link::CanFrame& frame) const;  // bytes 1..6 are our UUID
    void send_output(Clock::time_point now);
    void follow_device(Clock::time_point now);
    void log(const std::string& message) const;

    Device& device_;
    SimulatedLine line_;
    CanNodeOptions options_;
    CanNodeBus& bus_;
    Firmware firmware_;
    uint32_t assigned_id_ = 0;  // 0: none
    std::optional<Clock::time_point> katapult_at_;  // a reboot ends then
    size_t fault_log_reported_ = 0;
    CanServerStats stats_;
    std::unique_ptr<klipper::McuResponder> klipper_;  // null: Klipper's protocol unanswered
};

// Klipper's admin bytes, for the bridge's own node (sim/gs_usb): both canserial.c define them.
namespace can_admin {
constexpr uint32_t kAdminId = 0x3F0, kAdminReplyId = 0x3F1;
constexpr uint8_t kQueryUnassigned = 0x00, kSetKlipperNodeId = 0x01, kRequestBootloader = 0x02,
                  kSetKatapultNodeId = 0x11, kClearKatapultNodeId = 0x12, kNeedNodeId = 0x20;
constexpr uint32_t node_id_to_can_id(uint8_t node_id) { return 0x100 + 2u * node_id; }
}  // namespace can_admin

}  // namespace mcuflash::sim::katapult
