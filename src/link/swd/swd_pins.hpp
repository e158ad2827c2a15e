#pragma once
// The two (or three) wires of SWD as a host drives them by hand: SWCLK, SWDIO and, where it is wired,
// the target's nRESET. A Raspberry Pi's GPIO (link/swd/gpiod_pins.hpp) and the simulated wire end
// (sim/swd/swd_wire.hpp) are both this; link/swd/bitbang_probe.hpp speaks the SWD protocol over it.
//
// Timing is the caller's: BitbangProbe puts SWDIO while SWCLK is low, samples it while SWCLK is low
// (the target drives on the rising edge before), then raises SWCLK (the target samples on that edge).
#include <chrono>
#include <cstdint>
#include <span>
#include <string>

namespace mcuflash::link::swd {

class SwdPins {
public:
    virtual ~SwdPins() = default;

    // "GPIO gpiochip0 (pinctrl-bcm2711): SWCLK 25, SWDIO 24, nRESET 18".
    virtual std::string describe() const = 0;

    virtual void set_swclk(bool high) = 0;
    // The host drives SWDIO at `level` (switching the pin to output if it was input).
    virtual void drive_swdio(bool level) = 0;
    // The host lets go of SWDIO (input) so the target can drive it.
    virtual void release_swdio() = 0;
    virtual bool read_swdio() = 0;

    // nRESET: whether it is wired, and driving it (asserted: low, the chip held in reset).
    virtual bool has_reset_line() const = 0;
    virtual void set_reset_line(bool asserted) = 0;

    // Waits `duration` (a half clock period, or a pause). A simulated wire lets simulated time pass.
    virtual void delay(std::chrono::nanoseconds duration) = 0;

    // Clocks `count` bits out of `bits` (LSB of the first byte first) with SWDIO driven, or in with
    // SWDIO released (`bits` receives them). The default does it bit by bit with the calls above;
    // a back end that can do it cheaper overrides it.
    virtual void clock_out(std::span<const uint8_t> bits, unsigned count, std::chrono::nanoseconds half_period);
    virtual void clock_in(std::span<uint8_t> bits, unsigned count, std::chrono::nanoseconds half_period);

    // Lets go of the target: SWDIO to input, nRESET released; best effort. The pins can be used again.
    virtual void release_all() = 0;
};

inline void SwdPins::clock_out(std::span<const uint8_t> bits, unsigned count, std::chrono::nanoseconds half_period) {
    for (unsigned i = 0; i < count; ++i) {
        set_swclk(false);
        drive_swdio(bits[i / 8] >> (i % 8) & 1);
        if (half_period.count()) delay(half_period);
        set_swclk(true);
        if (half_period.count()) delay(half_period);
    }
}

inline void SwdPins::clock_in(std::span<uint8_t> bits, unsigned count, std::chrono::nanoseconds half_period) {
    release_swdio();
    for (unsigned i = 0; i < count; ++i) {
        set_swclk(false);
        if (half_period.count()) delay(half_period);
        const bool bit = read_swdio();
        auto& byte = bits[i / 8];
        byte = static_cast<uint8_t>(bit ? byte | 1u << (i % 8) : byte & ~(1u << (i % 8)));
        set_swclk(true);
        if (half_period.count()) delay(half_period);
    }
}

}  // namespace mcuflash::link::swd
