#pragma once
// A device at the end of a serial line: the wire model in both directions, the fault injector between
// the wire and the device, and the discrete-event loop that delivers bytes and lets the device's
// timers run, all on absolute timestamps. Front ends (InProcessLink, PtyServer) only feed host bytes
// in, advance time and take out what has reached the host by then.
#include <cstdint>
#include <deque>
#include <optional>
#include <span>

#include "core/deadline.hpp"
#include "link/byte_link.hpp"
#include "sim/device.hpp"
#include "sim/fault_injector.hpp"
#include "sim/wire_model.hpp"

namespace mcuflash::sim {

class SimulatedLine {
public:
    SimulatedLine(Device& device, FaultInjector faults, bool timing);
    SimulatedLine(const SimulatedLine&) = delete;
    SimulatedLine& operator=(const SimulatedLine&) = delete;

    // What the host's port is set to. When it does not match the device's UART (baud off by more
    // than a UART tolerates, or parity differs), every byte arrives garbled, as on real hardware.
    void set_host_settings(const link::SerialSettings& settings);
    bool settings_match() const { return settings_match_; }

    // The host hands bytes to its port at `now`; they reach the device at wire speed.
    void host_write(std::span<const uint8_t> bytes, Clock::time_point now);
    // Runs every event (byte arrival at the device, device timer) due by `until`, in time order.
    // With stop_at_host_output it also stops before any event later than the first byte that is on
    // its way to the host: a host blocked in a read wakes up then, and must find the device no further.
    void advance(Clock::time_point until, bool stop_at_host_output = false);
    std::optional<Clock::time_point> next_event() const;
    // When the last byte the host has sent so far reaches the device. Anything the host sends later
    // arrives after that, so events up to then may be simulated ahead of the clock.
    Clock::time_point input_scheduled_until() const { return to_device_line_.busy_until(); }
    // When the next byte on its way to the host gets there.
    std::optional<Clock::time_point> next_host_arrival() const;
    // Takes the bytes that have reached the host by `now`.
    size_t host_read(std::span<uint8_t> out, Clock::time_point now);
    size_t discard_host_input(Clock::time_point now);  // returns how many bytes it dropped

    void reset_device(ResetCause cause, Clock::time_point now);

    // The link is dead (a disconnect fault) at `t`.
    bool dead_at(Clock::time_point t) const;
    std::optional<Clock::time_point> dead_since() const { return dead_from_; }
    std::optional<Clock::time_point> back_at() const { return dead_until_; }  // nullopt: dead for ever
    uint64_t disconnects() const { return disconnects_; }

    Device& device() { return device_; }
    const FaultInjector& faults() const { return faults_; }
    const WireModel& wire() const { return wire_; }

private:
    struct ToDevice {
        uint8_t value;
        Clock::time_point arrival;
        FaultVerdict fate;
    };
    struct ToHost {
        uint8_t value;
        Clock::time_point arrival;
    };

    void deliver(const ToDevice& byte);
    void collect_device_output();
    void go_dead(Clock::time_point at, std::optional<Clock::duration> dead_for);
    uint8_t over_the_line(uint8_t value) const;

    Device& device_;
    FaultInjector faults_;
    WireModel wire_;
    LineScheduler to_device_line_;
    LineScheduler to_host_line_;
    std::deque<ToDevice> to_device_;
    std::deque<ToHost> to_host_;
    bool settings_match_ = true;
    std::optional<Clock::time_point> dead_from_, dead_until_;
    uint64_t disconnects_ = 0;
};

}  // namespace mcuflash::sim
