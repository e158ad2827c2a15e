#pragma once
// The command processor of a CMSIS-DAP debug probe (CMSIS-DAP specification v2.1, "Commands"),
// SWD only, over a simulated chip (sim::swd::DebugTarget) one SWD packet at a time.
//
// What it does, from the specification (DAPLink's and free-dap's command handling read for facts):
// - DAP_Info (vendor, product, serial, protocol version "2.1.0", target device vendor/name, product
//   firmware version, capabilities = SWD only, packet count, packet size), DAP_HostStatus,
//   DAP_Connect (default and SWD connect as SWD; JTAG is refused: port 0 in the answer),
//   DAP_Disconnect, DAP_TransferConfigure, DAP_Transfer, DAP_TransferBlock, DAP_WriteABORT,
//   DAP_Delay, DAP_ResetTarget (an nRESET pulse), DAP_SWJ_Pins (nRESET, bit 7, drives the chip's
//   reset line), DAP_SWJ_Clock, DAP_SWJ_Sequence, DAP_SWD_Configure, DAP_SWD_Sequence and
//   DAP_ExecuteCommands. Anything else (JTAG, SWO, UART, DAP_QueueCommands, vendor commands) is
//   answered with the single byte 0xFF (ID_DAP_Invalid).
// - DAP_Transfer: each packet is retried while the target answers WAIT, up to the configured WAIT
//   retry count; a read with value match is repeated up to the match retry count; the answer is
//   [0x05, transfers done, last acknowledge (bit 3: protocol error, bit 4: value mismatch), data].
//   Processing stops at the first acknowledge that is not OK.
// - Posted reads: on SW-DP an AP read returns the result of the previous AP read. The probe hides
//   this as the firmware does: the first AP read of a run only posts it, each following AP read
//   of the run returns the one before, and the run ends with a DP RDBUFF read that collects the
//   last; the host sees each read's own value. A command that ends with a write ends with a DP
//   RDBUFF read too, so that a failed write is reported in this command's acknowledge.
// - DAP_TransferAbort has no answer (spec); between whole commands there is nothing to abort.
//
// Time: each packet is 8 request bits + turnaround + 3 ack bits (+ turnaround + 32 data bits +
// parity), then the configured idle cycles, at the DAP_SWJ_Clock rate (default 1 MHz, at most
// 10 MHz: faster than a real probe's bit-banged SWD would be unrealistic). Sequences take their bit
// count. The processor keeps its own cursor of SWD time: with timing off it stays at `now`.
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "sim/device.hpp"
#include "sim/swd/debug_target.hpp"

namespace mcuflash::sim::cmsis_dap {

using core::Clock;

// What DAP_Info reports (strings without their terminating NUL; the answer carries one).
struct ProbeIdentity {
    std::string vendor, product, serial;
    std::string protocol_version = "2.1.0";
    std::string firmware_version = "1.0.0";
    std::string target_vendor, target_name;
    uint8_t packet_count = 4;
    uint16_t packet_size = 64;
};

struct DapAnswer {
    std::vector<uint8_t> response;  // empty with has_response false (DAP_TransferAbort)
    bool has_response = true;
    Clock::time_point done_at{};  // when the probe has finished the command (SWD time included)
};

class DapProcessor {
public:
    DapProcessor(swd::DebugTarget& target, ProbeIdentity identity, bool timing);

    // One command as it arrives in a packet (trailing padding is ignored). `now`: its arrival.
    DapAnswer execute(std::span<const uint8_t> command, Clock::time_point now);

    // Lets time pass for the target (never before the SWD work already done).
    void tick(Clock::time_point now);

    // Counters and state for tests and the log.
    uint32_t swd_clock_hz() const { return clock_hz_; }
    bool connected() const { return connected_; }
    uint64_t packets() const { return packets_; }
    uint64_t wait_acks() const { return wait_acks_; }
    const ProbeIdentity& identity() const { return identity_; }
    void set_trace(TraceSink sink) { trace_ = std::move(sink); }

private:
    class Reader;
    // One command at `reader`, its answer appended to `out`; false: unknown command (0xFF written).
    bool run_one(Reader& reader, std::vector<uint8_t>& out);
    void info(Reader& in, std::vector<uint8_t>& out);
    void transfer(Reader& in, std::vector<uint8_t>& out);
    void transfer_block(Reader& in, std::vector<uint8_t>& out);
    void swj_pins(Reader& in, std::vector<uint8_t>& out);
    void swj_sequence(Reader& in, std::vector<uint8_t>& out);
    void swd_sequence(Reader& in, std::vector<uint8_t>& out);

    // One SWD packet, WAIT retried. Moves the SWD time cursor.
    swd::SwdAck packet(bool ap, bool read, uint8_t address, uint32_t& data);
    void spend_bits(uint64_t bits);
    void spend(Clock::duration d);
    void trace(const std::string& message) const {
        if (trace_) trace_(message);
    }

    swd::DebugTarget& target_;
    ProbeIdentity identity_;
    bool timing_;
    Clock::time_point cursor_{};  // SWD time: where the probe is in its work
    Clock::time_point epoch_{};   // for timestamps (1 MHz)
    bool epoch_set_ = false;

    bool connected_ = false;
    uint32_t clock_hz_ = 1'000'000;
    uint8_t idle_cycles_ = 0;
    uint16_t wait_retry_ = 100;
    uint16_t match_retry_ = 0;
    uint32_t match_mask_ = 0xFFFFFFFF;
    uint8_t turnaround_ = 1;
    bool data_phase_ = false;
    uint8_t pins_ = 0xFF;  // the SWJ output pins as last set (nRESET released)

    uint64_t packets_ = 0, wait_acks_ = 0;
    TraceSink trace_;
};

}  // namespace mcuflash::sim::cmsis_dap
