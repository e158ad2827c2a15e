#pragma once
// A simulated device: a bootloader's state machine fed one byte at a time, with its own notion of
// time (watchdogs, busy periods while flash is erased or programmed). Front ends (InProcessLink,
// PtyServer) put a wire model and a fault injector between it and the host.
//
// Time is passed in, never read from a clock, so the same device runs in real time (on a pty),
// in skipped time (fast in-process tests) or at hand-picked instants (unit tests).
#include <cstdint>
#include <filesystem>
#include <functional>
#include <optional>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "core/deadline.hpp"
#include "link/byte_link.hpp"
#include "sim/flash_memory.hpp"

namespace mcuflash::sim {

using core::Clock;

enum class ResetCause {
    Pin,      // the RESET pin was pulsed: what DTR auto-reset does on an Arduino-style board
    PowerOn,  // power was cycled
};
const char* reset_cause_name(ResetCause cause);

// A byte the device put on its transmitter, and when.
struct SentByte {
    uint8_t value = 0;
    Clock::time_point at{};
};

using TraceSink = std::function<void(const std::string&)>;

class Device {
public:
    virtual ~Device() = default;

    // A byte has completely arrived at the device's receiver at `now`.
    virtual void receive(uint8_t byte, Clock::time_point now) = 0;
    // Lets time pass up to `now`: watchdogs fire, busy periods end (and delayed answers go out).
    virtual void tick(Clock::time_point now) = 0;
    // The next instant at which tick() has something to do; nullopt when nothing is pending.
    virtual std::optional<Clock::time_point> next_deadline() const = 0;
    virtual void reset(ResetCause cause, Clock::time_point now) = 0;
    // What DTR auto-reset does: pulse RESET, which starts the bootloader.
    void hardware_reset(Clock::time_point now) { reset(ResetCause::Pin, now); }
    // True while the bootloader runs (false: the application runs, or the chip is held dead).
    virtual bool in_bootloader() const = 0;

    virtual std::string describe() const = 0;              // "optiboot 8.0 on atmega1284p"
    virtual link::SerialSettings line_settings() const = 0;  // what the device's UART is set to
    virtual FlashMemory& flash() = 0;

    // Bytes sent since the last call, oldest first.
    std::vector<SentByte> take_output() { return std::exchange(output_, {}); }
    bool has_output() const { return !output_.empty(); }

    // Notable events in words ("watchdog reset: application runs"), for logs and debugging.
    void set_trace(TraceSink sink) { trace_ = std::move(sink); }

protected:
    void send(uint8_t value, Clock::time_point now) { output_.push_back({value, now}); }
    void send(std::span<const uint8_t> values, Clock::time_point now) {
        for (uint8_t v : values) send(v, now);
    }
    void discard_output() { output_.clear(); }
    void trace(const std::string& message) const {
        if (trace_) trace_(message);
    }

private:
    std::vector<SentByte> output_;
    TraceSink trace_;
};

// What every simulator accepts besides the chip.
struct DeviceOptions {
    std::string bootloader;  // personality; "" = the simulator's default
    uint32_t baud = 0;       // 0 = the bootloader's usual rate (data/bootloaders.toml)
    bool timing = true;      // flash operations keep the device busy for their real duration
    std::optional<std::filesystem::path> flash_file;  // raw image of the whole flash, kept current
    TraceSink trace;
};

}  // namespace mcuflash::sim
