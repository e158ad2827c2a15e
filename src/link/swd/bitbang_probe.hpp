#pragma once
// SWD bit-banged on plain pins (a Raspberry Pi's GPIO: what OpenOCD's linuxgpiod and bcm2835gpio
// drivers do), from the wire protocol of ARM's ADIv5 specification (IHI 0031, chapter B4):
//
//   request  8 bits, host drives: start 1, APnDP, RnW, A[2:3], parity (of those four), stop 0, park 1
//   turnaround 1 clock, nobody drives
//   ACK      3 bits, target drives, LSB first: OK 0b001, WAIT 0b010, FAULT 0b100; 0b111 = nobody there
//   read:    32 data bits + parity, target drives, then a turnaround back to the host
//   write:   a turnaround to the host, then 32 data bits + parity, host drives
//   WAIT/FAULT: a turnaround back to the host, no data phase
//
// SWDIO is put while SWCLK is low and sampled while it is low (the target drives on the rising edge
// before); the rising edge is when the target samples. Every packet is followed by idle (low) clocks.
//
// What execute() returns is what CmsisDapProbe returns: on an SW-DP an AP read returns the result of
// the AP read before it (posted reads), and the probe hides that as CMSIS-DAP firmware does: a run of
// AP reads is pipelined and collected at its end with a DP RDBUFF read, so each read gets its own
// value. A queue that ends with a write ends with an RDBUFF read too, so that the write's outcome (a
// FAULT the target can only report on the next packet) belongs to this queue. WAIT is retried up to
// the retry count; FAULT stops the queue (the ADIv5 layer clears the sticky errors); no answer stops
// it with kAckNone; a read whose data parity is wrong stops it with protocol_error.
#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>

#include "link/swd/debug_probe.hpp"
#include "link/swd/swd_pins.hpp"

namespace mcuflash::link::swd {

// The 8-bit request of one packet as it goes on the wire (bit 0 first): 0xA5 for a DPIDR read.
uint8_t swd_request(bool ap, bool read, uint8_t address);
// Even parity of a 32-bit word: the bit that makes the count of ones even.
bool swd_parity(uint32_t value);

class BitbangProbe : public DebugProbe {
public:
    explicit BitbangProbe(std::unique_ptr<SwdPins> pins);
    ~BitbangProbe() override;

    std::string describe() const override;
    uint32_t connect() override;
    void disconnect() override;
    // A half period of 1/(2 hz) between edges; 0 Hz: no delay at all (as fast as the pins go).
    void set_clock(uint32_t hz) override;
    void set_retries(uint16_t wait_retries, uint16_t match_retries) override;
    // Throws Unsupported when the spec named no nRESET pin.
    void set_reset_line(bool asserted) override;
    TransferResult execute(std::span<const Transfer> transfers) override;
    TransferResult read_block(bool ap, uint8_t address, size_t count) override;
    TransferResult write_block(bool ap, uint8_t address, std::span<const uint32_t> values) override;
    void write_abort(uint32_t value) override;
    void pause(std::chrono::milliseconds duration) override;
    bool present() override { return true; }

    SwdPins& pins() { return *pins_; }
    std::chrono::nanoseconds half_period() const { return half_period_; }
    // Counters for tests and the speed report: packets sent (each WAIT retry counts), WAITs seen.
    uint64_t packets() const { return packets_; }
    uint64_t wait_acks() const { return wait_acks_; }

    // One packet on the wire, no retries: the ACK (kAckOk, kAckWait, kAckFault, or what the line
    // showed otherwise: kAckNone when nothing drove it). A read fills `data`; `parity_error` tells a
    // read whose parity bit disagreed with its data.
    uint8_t packet(bool ap, bool read, uint8_t address, uint32_t& data, bool& parity_error);
    // Line reset (56 ones), the JTAG-to-SWD select 0xE79E, line reset, 8 idle clocks.
    void select_swd();
    // `count` idle clocks (SWDIO low).
    void idle(unsigned count);

private:
    // A packet with WAIT retried up to wait_retries_.
    uint8_t packet_retried(bool ap, bool read, uint8_t address, uint32_t& data, bool& parity_error);
    void turnaround_to_host();

    std::unique_ptr<SwdPins> pins_;
    std::chrono::nanoseconds half_period_{125};  // 4 MHz until set_clock says otherwise
    uint16_t wait_retries_ = 0xFFFF, match_retries_ = 0xFFFF;
    uint32_t match_mask_ = 0xFFFFFFFF;
    uint64_t packets_ = 0, wait_acks_ = 0;
    bool connected_ = false;
};

}  // namespace mcuflash::link::swd
