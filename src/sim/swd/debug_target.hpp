#pragma once
// A simulated chip as a debug probe sees it through SWD: the ARM ADIv5 SW-DP, its access ports (an
// AHB MEM-AP onto the chip's bus), the Cortex-M debug registers and the chip's own flash controller.
// The probe simulators (sim/cmsis_dap: CMSIS-DAP over USB; a bit-level SWD wire for GPIO backends)
// drive it one SWD transaction at a time, as the wire does.
#include <cstdint>
#include <memory>
#include <optional>
#include <set>
#include <span>
#include <string>
#include <vector>

#include "core/deadline.hpp"
#include "sim/device.hpp"
#include "sim/flash_memory.hpp"

namespace mcuflash::sim::swd {

using core::Clock;

// The target's 3-bit acknowledge (ADIv5 B4.2.2). NoResponse: the line stayed high (no target, the
// DP is not selected after a line reset, or the chip is held in a power-down / reset state).
enum class SwdAck : uint8_t { Ok = 0b001, Wait = 0b010, Fault = 0b100, NoResponse = 0b111 };

class DebugTarget {
public:
    virtual ~DebugTarget() = default;

    // Bits the probe clocks out on SWDIO outside packets (CMSIS-DAP DAP_SWJ_Sequence; `bits` LSB
    // first, `count` of them): a line reset (>= 50 ones), the JTAG-to-SWD select (0xE79E), the
    // dormant wake-up. The DP leaves its reset state only after a line reset followed by >= 2 idle
    // (zero) bits; the first packet after that must read DPIDR.
    virtual void swj_sequence(std::span<const uint8_t> bits, unsigned count, Clock::time_point now) = 0;

    // One SWD packet. `ap` is APnDP, `address` A[3:2] as 0x0/0x4/0x8/0xC. A read fills `data`; a
    // write takes it. `parity_ok` false models a write whose data parity was wrong (WDATAERR).
    virtual SwdAck transfer(bool ap, bool read, uint8_t address, uint32_t& data, Clock::time_point now,
                            bool parity_ok = true) = 0;

    // The nRESET (SRST) line: while asserted the chip is held in reset (the DP still answers).
    virtual void set_reset_line(bool asserted, Clock::time_point now) = 0;

    // Lets time pass (flash operations finish).
    virtual void tick(Clock::time_point now) { (void)now; }

    virtual FlashMemory& flash() = 0;
    virtual std::string describe() const = 0;  // "STM32F103xB over SWD, 128 KiB flash, ..."
};

// Faults a test injects at chosen transactions (transfer() calls, counted from 0; swj_sequence() does
// not count). "wait@N:K": transactions N..N+K-1 answer WAIT and do nothing (K defaults to 1);
// "fault@N": transaction N answers FAULT and sets STICKYERR; "reset@N": the chip resets just before
// transaction N, as a brown-out would (the DP keeps its state, the core and the peripherals reset);
// "noresponse@N": the target is gone from transaction N on. Items are comma-separated:
// "wait@3:5,fault@10". parse() throws core::Error(Usage) on anything else.
struct SwdFaults {
    std::vector<std::pair<uint64_t, uint64_t>> waits;  // (first transaction, count)
    std::set<uint64_t> fault_at, reset_at;
    std::optional<uint64_t> noresponse_at;
    static SwdFaults parse(const std::string& text);
    bool empty() const { return waits.empty() && fault_at.empty() && reset_at.empty() && !noresponse_at; }
};

// The chips a debug target can be (chips.toml names). DeviceOptions: bootloader (the bootloader the
// flash holds at start: "" = the board's usual one, "none" = erased flash), timing, flash_file, trace.
// Throws core::Error(Usage) naming the chips it can simulate.
std::unique_ptr<DebugTarget> make_debug_target(const std::string& chip, const DeviceOptions& options);
std::unique_ptr<DebugTarget> make_debug_target(const std::string& chip, const DeviceOptions& options,
                                               const SwdFaults& faults);
const std::vector<std::string>& debug_target_chips();

}  // namespace mcuflash::sim::swd
