#pragma once
#include <chrono>

namespace mcuflash::core {

using Clock = std::chrono::steady_clock;
using Millis = std::chrono::milliseconds;

// A point in time by which an operation must be done.
class Deadline {
public:
    explicit Deadline(Clock::duration budget) : at_(Clock::now() + budget) {}
    static Deadline after_ms(long ms) { return Deadline(Millis(ms)); }
    bool expired() const { return Clock::now() >= at_; }
    Clock::duration remaining() const {
        auto left = at_ - Clock::now();
        return left > Clock::duration::zero() ? left : Clock::duration::zero();
    }
    long remaining_ms() const {
        return static_cast<long>(std::chrono::duration_cast<Millis>(remaining()).count());
    }

private:
    Clock::time_point at_;
};

}  // namespace mcuflash::core

#include <stdexcept>
#include <string>

namespace mcuflash::core {

// Thrown by a link once the time limit of the whole operation has passed. Deliberately not a
// core::Error: no retry loop in a protocol catches it, so it ends the operation wherever it is.
class TimeLimitExceeded : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

}  // namespace mcuflash::core
