#pragma once
// How long bytes take on a serial line: each byte is a start bit, 8 data bits, an optional parity bit
// and a stop bit, so 10 bit times for 8N1 and 11 for 8E1. With timing off, bytes take no time.
#include <algorithm>
#include <cstdint>

#include "core/deadline.hpp"
#include "link/byte_link.hpp"

namespace mcuflash::sim {

using core::Clock;

struct WireModel {
    uint32_t baud = 115200;
    uint32_t bits_per_byte = 10;
    bool timing = true;

    static constexpr uint32_t bits_for(link::Parity parity) { return parity == link::Parity::None ? 10 : 11; }
    static WireModel for_line(const link::SerialSettings& settings, bool timing) {
        return WireModel{settings.baud, bits_for(settings.parity), timing};
    }

    // Time for `bytes` back-to-back bytes, computed from the total so that long runs do not
    // accumulate per-byte rounding.
    Clock::duration time_for(uint64_t bytes) const {
        if (!timing || baud == 0) return Clock::duration::zero();
        using namespace std::chrono;
        auto ns = (bytes * bits_per_byte * uint64_t{1'000'000'000} + baud / 2) / baud;
        return duration_cast<Clock::duration>(nanoseconds(ns));
    }
    Clock::duration byte_time() const { return time_for(1); }
};

// One direction of a serial line: bytes go out back to back at the wire rate, each no earlier than
// it was handed over. Times are absolute and derived from the start of the current burst, so a long
// transfer paced by this never drifts.
class LineScheduler {
public:
    explicit LineScheduler(const WireModel& wire) : wire_(&wire) {}

    // When a byte handed over at `ready` has completely arrived at the other end.
    Clock::time_point schedule(Clock::time_point ready) {
        if (ready >= busy_until()) {  // the line was idle: a new burst starts
            burst_start_ = ready;
            burst_bytes_ = 0;
        }
        ++burst_bytes_;
        return busy_until();
    }
    // The line holds still for `pause` before the next byte (a stalled sender).
    void stall(Clock::time_point now, Clock::duration pause) {
        burst_start_ = std::max(now, busy_until()) + pause;
        burst_bytes_ = 0;
    }
    Clock::time_point busy_until() const { return burst_start_ + wire_->time_for(burst_bytes_); }

private:
    const WireModel* wire_;
    Clock::time_point burst_start_{};
    uint64_t burst_bytes_ = 0;
};

}  // namespace mcuflash::sim
