#pragma once
// A CAN bus inside the process: the wire between a simulated USB-to-CAN bridge and the simulated
// nodes behind it. Stations put frames on it; it carries one frame at a time (serial, as a real
// bus), and when the bus is free the waiting frame with the lowest id wins arbitration (an 11-bit id
// before a 29-bit one with the same leading bits; equal ids: the one queued first). With timing on a
// frame holds the bus for its bit time at the bitrate (can_bit_timing.hpp: stuff bits counted);
// with timing off it arrives the instant it is sent. A frame reaches every station but its sender
// (each controller acknowledges it) when its last bit has passed.
//
// Discrete events on absolute times, never a clock read: the owner calls advance(until) and learns
// from next_event() when the next frame ends.
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "core/deadline.hpp"
#include "sim/gs_usb/can_bit_timing.hpp"
#include "sim/katapult/can_node.hpp"

namespace mcuflash::sim::gs_usb {

using core::Clock;

// A frame as the bus carries it: 11 or 29-bit ids, data or remote.
struct BusFrame {
    uint32_t id = 0;
    bool extended = false;
    bool remote = false;
    uint8_t length = 0;
    std::array<uint8_t, 8> data{};

    CanWireFrame wire() const { return {id, extended, remote, {data.data(), remote ? size_t{0} : length}}; }
    static BusFrame from(const link::CanFrame& frame);
    // nullopt for what a node's 11-bit filter never takes (29-bit and remote frames).
    std::optional<link::CanFrame> standard() const;
};

struct CanBusStats {
    uint64_t frames = 0;
    uint64_t bits = 0;        // stuff bits included
    uint64_t stuff_bits = 0;
    Clock::duration busy{};   // the time frames held the bus
};

class SimulatedCanBus {
public:
    class Station;
    // A frame this station sent has gone over the bus (its `tag` as given to send_tagged).
    using Transmitted = std::function<void(const BusFrame& frame, uint64_t tag, Clock::time_point end)>;

    SimulatedCanBus(bool timing, uint32_t bitrate);
    SimulatedCanBus(const SimulatedCanBus&) = delete;
    SimulatedCanBus& operator=(const SimulatedCanBus&) = delete;

    // A new station (node or bridge) on the bus; it lives as long as the bus.
    Station& attach(std::string name, Transmitted on_transmitted = {});

    void set_bitrate(uint32_t bitrate) { bitrate_ = bitrate; }
    uint32_t bitrate() const { return bitrate_; }
    bool timing() const { return timing_; }

    // Carries frames whose transmission ends by `until` (starting the next ones as the bus frees).
    void advance(Clock::time_point until);
    // When the frame on the wire ends, or (bus idle, frames waiting) when the next can start.
    std::optional<Clock::time_point> next_event() const;
    // Frames queued or on the wire.
    bool idle() const { return !on_wire_ && waiting_.empty(); }
    const CanBusStats& stats() const { return stats_; }

    class Station : public katapult::CanNodeBus {
    public:
        void send(const link::CanFrame& frame, Clock::time_point now) override;
        std::optional<link::CanFrame> receive(Clock::time_point now) override;
        // Any frame (29-bit, remote), with a tag handed back to on_transmitted.
        void send_tagged(const BusFrame& frame, uint64_t tag, Clock::time_point now);
        // What reached this station by `now`, any kind of frame.
        std::optional<BusFrame> receive_any(Clock::time_point now);
        // When the oldest frame waiting for this station arrived (nullopt: none waits).
        std::optional<Clock::time_point> oldest_arrival() const;
        const std::string& name() const { return name_; }

    private:
        friend class SimulatedCanBus;
        Station(SimulatedCanBus& bus, std::string name, Transmitted on_transmitted)
            : bus_(bus), name_(std::move(name)), on_transmitted_(std::move(on_transmitted)) {}
        struct Arrived {
            BusFrame frame;
            Clock::time_point at;
        };
        SimulatedCanBus& bus_;
        std::string name_;
        Transmitted on_transmitted_;
        std::deque<Arrived> inbox_;
    };

private:
    struct Pending {
        BusFrame frame;
        Station* sender;
        uint64_t tag;
        uint64_t order;               // queue order: ties in arbitration
        Clock::time_point ready;      // when the sender handed it to its controller
        Clock::time_point start{};    // on the wire: its first bit
        Clock::time_point end{};      // on the wire: when its last bit has passed
        CanFrameBits bits{};
    };
    void queue(Pending pending);
    void start_next(Clock::time_point free_at);
    void finish(Pending& frame);
    static uint64_t arbitration_key(const BusFrame& frame);

    bool timing_;
    uint32_t bitrate_;
    std::vector<std::unique_ptr<Station>> stations_;
    std::vector<Pending> waiting_;
    std::optional<Pending> on_wire_;
    Clock::time_point free_at_{};  // when the bus is next idle
    uint64_t order_ = 0;
    CanBusStats stats_;
};

}  // namespace mcuflash::sim::gs_usb
