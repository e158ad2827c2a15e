#pragma once
// A debug probe at the level of the ARM debug interface (ADIv5): it connects to a target's SW-DP and
// carries DP and AP register reads and writes to it. Everything above (ADIv5 power-up and sticky
// errors: link/swd/adiv5.hpp; the Cortex-M core: link/swd/cortex_m.hpp; flash drivers: protocol/swd/)
// is built on these calls.
//
// Speed comes from execute(): a queue of transfers is carried in as few USB round trips as the probe
// allows (its packets filled, several in flight), with reads that wait for a value done by the probe
// (no round trip per poll). A transfer that fails stops the queue there; the result says where and
// with which acknowledge, and the caller (adiv5.hpp) turns it into an error with context.
#include <chrono>
#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "link/swd/cmsis_dap_codec.hpp"

namespace mcuflash::link::swd {

using Transfer = dap::TransferRequest;

// DP registers (A[3:2]); CTRL/STAT and the others banked by SELECT.DPBANKSEL are at bank 0 here.
namespace dp {
constexpr uint8_t kDpidr = 0x0, kAbort = 0x0, kCtrlStat = 0x4, kSelect = 0x8, kRdbuff = 0xC, kResend = 0x8;
}

struct TransferResult {
    std::vector<uint32_t> reads;  // one per done plain Read, in order
    size_t completed = 0;         // transfers done; on failure the index of the one that failed
    uint8_t ack = dap::kAckOk;    // of the failing transfer
    bool protocol_error = false;  // SWD parity error on a read
    bool value_mismatch = false;  // a ReadUntil's value never came within the probe's retries
    bool ok() const { return ack == dap::kAckOk && !protocol_error && !value_mismatch; }
};

class DebugProbe {
public:
    virtual ~DebugProbe() = default;

    // "CMSIS-DAP v2 'DAPLink CMSIS-DAP' (0d28:0204, serial 0240...) on usb 1-1.4".
    virtual std::string describe() const = 0;

    // Selects SWD on the probe and the target: line reset, the JTAG-to-SWD sequence, line reset, idle
    // clocks, then reads DPIDR (which the DP requires first). Returns DPIDR. Throws NotFound when no
    // target answers (nothing wired, no power, held in reset), Protocol when the answer has bad parity.
    virtual uint32_t connect() = 0;
    // Releases the SWD pins; best effort.
    virtual void disconnect() = 0;

    // The SWD clock; the probe may round it down.
    virtual void set_clock(uint32_t hz) = 0;
    // How often a WAIT is retried before the transfer fails with WAIT, and a ReadUntil read again.
    virtual void set_retries(uint16_t wait_retries, uint16_t match_retries) = 0;
    // The target's nRESET line (asserted: held in reset).
    virtual void set_reset_line(bool asserted) = 0;

    // Does the transfers in order, stopping at the first that fails. SetMatchMask sets the mask of the
    // ReadUntil transfers after it (the probe keeps it across calls).
    virtual TransferResult execute(std::span<const Transfer> transfers) = 0;
    // `count` reads of one register (an AP's DRW with TAR auto-increment), or a write of each value.
    virtual TransferResult read_block(bool ap, uint8_t address, size_t count) = 0;
    virtual TransferResult write_block(bool ap, uint8_t address, std::span<const uint32_t> values) = 0;
    // Writes the DP's ABORT register, which the probe can do even while transfers are stuck in WAIT.
    virtual void write_abort(uint32_t value) = 0;

    // Waits on the probe's own clock (a simulated probe lets simulated time pass).
    virtual void pause(std::chrono::milliseconds duration) = 0;
    // Whether the probe is still on the bus.
    virtual bool present() = 0;
};

}  // namespace mcuflash::link::swd
