#pragma once
// A simulated board on a real CAN interface (SocketCAN: can0, vcan0), for flashtool.py -i and
// mcuflash -d can:...: the Katapult device behind the CAN node front end its firmware has
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
// - as Klipper (--klipper, or once COMPLETE started the application): the admin exchange; Klipper's
//   bootloader request [02, uuid] makes the node go silent for its reboot (about half a second) and
//   come back as Katapult without a node id. With a data dictionary (the build it was started with,
//   or the Klipper build its flash holds after an update) it answers identify, uptime and clock on
//   its node id (sim/klipper/mcu_responder.hpp), as klippy connects to a CAN node.
#include <chrono>
#include <cstdint>
#include <functional>
#include <optional>
#include <memory>
#include <string>
#include <vector>

#include "link/can_socket.hpp"
#include "sim/klipper/mcu_responder.hpp"
#include "sim/device.hpp"
#include "sim/fault_injector.hpp"
#include "sim/simulated_line.hpp"

namespace mcuflash::sim::katapult {

struct CanServerOptions {
    std::string interface;      // can0, vcan0
    uint64_t uuid = 0;          // 48 bits
    bool start_as_klipper = false;
    bool timing = true;         // bytes take their wire time, flash its programming time
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

class CanServer {
public:
    // Opens the interface (core::Error as link::CanSocket throws it).
    CanServer(Device& device, FaultInjector faults, CanServerOptions options);
    ~CanServer();
    CanServer(const CanServer&) = delete;
    CanServer& operator=(const CanServer&) = delete;

    // Serves until SIGINT or SIGTERM.
    void run();
    const CanServerStats& stats() const { return stats_; }

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
    CanServerOptions options_;
    link::CanSocket bus_;
    Firmware firmware_;
    uint32_t assigned_id_ = 0;  // 0: none
    std::optional<Clock::time_point> katapult_at_;  // a reboot ends then
    size_t fault_log_reported_ = 0;
    CanServerStats stats_;
    std::unique_ptr<klipper::McuResponder> klipper_;  // null: Klipper's protocol unanswered
};

}  // namespace mcuflash::sim::katapult
