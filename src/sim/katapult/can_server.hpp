#pragma once
// A simulated board on a real CAN interface (SocketCAN: can0, vcan0), for flashtool.py -i and
// mcuflash -d can:...: one CanNode (can_node.hpp: the Katapult device behind Katapult's and
// Klipper's CAN front end) on a raw socket, served until SIGINT or SIGTERM.
#include <chrono>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "link/can_socket.hpp"
#include "sim/katapult/can_node.hpp"

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

// A CanNodeBus on a SocketCAN raw socket: frames go out at once, arrive as the kernel delivers them.
class SocketNodeBus : public CanNodeBus {
public:
    // Opens the interface (core::Error as link::CanSocket throws it).
    explicit SocketNodeBus(const std::string& interface);
    void send(const link::CanFrame& frame, Clock::time_point now) override;
    std::optional<link::CanFrame> receive(Clock::time_point now) override;
    // Blocks until a frame has arrived or `deadline` passes.
    void wait(const core::Deadline& deadline);

private:
    link::CanSocket socket_;
    std::optional<link::CanFrame> waiting_;  // taken by wait(), not yet by receive()
};

class CanServer {
public:
    CanServer(Device& device, FaultInjector faults, CanServerOptions options);
    ~CanServer();
    CanServer(const CanServer&) = delete;
    CanServer& operator=(const CanServer&) = delete;

    // Serves until SIGINT or SIGTERM.
    void run();
    const CanServerStats& stats() const { return node_.stats(); }

private:
    CanServerOptions options_;
    SocketNodeBus bus_;
    CanNode node_;
};

}  // namespace mcuflash::sim::katapult
