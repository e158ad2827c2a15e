#pragma once
// Faults between the wire and the device, reproducible from a seed.
//
// Spec grammar (the text behind --faults and InProcessOptions::faults):
//
//   spec     := item ("," item)*
//   item     := "seed=" UINT | rule
//   rule     := [direction ":"] action "@" trigger (":" param)*
//   direction:= "rx"            host -> device (the default)
//             | "tx"            device -> host
//   action   := "drop"          the byte is lost (it still takes its time on the wire)
//             | "corrupt"       bits of the byte are flipped (param mask=N, else a random non-zero mask)
//             | "delay"         the line stalls for ms=N (required) before this byte; later bytes queue
//                               behind it, as on a real serial line
//             | "disconnect"    the link goes dead from this byte on (a USB adapter unplugged); with
//                               ms=N it comes back after N ms, else never
//             | "reset"         the device resets instead of receiving (rx) or sending (tx) this byte;
//                               cause=pin (default: RESET pulsed, like DTR) or cause=power (power cycle:
//                               optiboot then runs the application, ATmegaBOOT its bootloader)
//   trigger  := "rate=" P       each byte independently with probability P (0 < P <= 1)
//             | "byte=" N       the byte at 0-based offset N in that direction, counted over the whole
//                               life of the simulator (all connections)
//   param    := "ms=" UINT | "mask=" UINT | "cause=" ("pin"|"power")    (UINT: decimal or 0x hex)
//
// Example: seed=7,rx:drop@rate=0.001,tx:corrupt@byte=1500,rx:delay@byte=300:ms=2000,
//          rx:reset@byte=9000,disconnect@byte=20000
//
// Randomness: one std::mt19937 per direction, seeded from (seed, direction), drawing the same numbers
// for the same byte history, so a failing case replays with the same seed. The default seed is 1.
#include <cstdint>
#include <optional>
#include <random>
#include <string>
#include <string_view>
#include <vector>

#include "core/deadline.hpp"
#include "sim/device.hpp"

namespace mcuflash::sim {

enum class Direction { Rx, Tx };  // Rx: host -> device; Tx: device -> host
const char* direction_name(Direction direction);

enum class FaultAction { Drop, Corrupt, Delay, Disconnect, Reset };

struct FaultRule {
    Direction direction = Direction::Rx;
    FaultAction action = FaultAction::Drop;
    std::optional<double> rate;        // trigger: probability per byte
    std::optional<uint64_t> at_byte;   // trigger: exact offset
    uint32_t ms = 0;                   // delay: stall length; disconnect: dead time (0 = for ever)
    std::optional<uint8_t> mask;       // corrupt: fixed XOR mask
    ResetCause cause = ResetCause::Pin;
};

struct FaultSpec {
    uint32_t seed = 1;
    std::vector<FaultRule> rules;

    // Throws core::Error(Usage) naming the item and what is wrong with it.
    static FaultSpec parse(std::string_view text);
    std::string to_string() const;  // canonical form, parseable again
    bool empty() const { return rules.empty(); }
};

// Multi-line description of the grammar for --help.
const char* fault_spec_help();

// What happens to one byte.
struct FaultVerdict {
    uint8_t value = 0;                       // possibly corrupted
    bool drop = false;
    Clock::duration stall{};                 // the line pauses this long before the byte
    std::optional<ResetCause> reset;         // the device resets instead of handling the byte
    bool disconnect = false;
    std::optional<Clock::duration> dead_for; // with disconnect: how long (nullopt = for ever)
};

class FaultInjector {
public:
    explicit FaultInjector(FaultSpec spec = {});

    // Decides the fate of the next byte in `direction` and counts it.
    FaultVerdict next(Direction direction, uint8_t value);

    uint64_t bytes_seen(Direction direction) const { return state(direction).offset; }
    const FaultSpec& spec() const { return spec_; }
    // One line per fault applied ("rx byte 300: delay 2000 ms"), in order.
    const std::vector<std::string>& log() const { return log_; }

private:
    struct DirectionState {
        std::mt19937 random;
        uint64_t offset = 0;
    };
    DirectionState& state(Direction d) { return d == Direction::Rx ? rx_ : tx_; }
    const DirectionState& state(Direction d) const { return d == Direction::Rx ? rx_ : tx_; }

    FaultSpec spec_;
    DirectionState rx_, tx_;
    std::vector<std::string> log_;
};

}  // namespace mcuflash::sim
