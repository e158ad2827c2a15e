#pragma once
// The target's end of an SWD wire, bit by bit: what a bit-banging host (link::swd::BitbangProbe over
// GPIO) sees when a chip is on the other end. The host's pin changes are decoded as a real SW-DP
// does (ADIv5 chapter B4) into sim::swd::DebugTarget calls:
// - SWDIO is sampled on the rising SWCLK edge; the target changes what it drives on the rising edge
//   too (the host reads it while SWCLK is low). Nobody driving: the target's pull-up reads 1.
// - A 1 while idle starts an 8-bit request. A request with a wrong parity, stop or park bit gets no
//   answer (nothing driven) and the wire ignores everything up to the next line reset (>= 50 ones
//   then a 0), as the spec's lockout does. Bits outside packets (line resets, the JTAG-to-SWD select,
//   idle clocks) go to DebugTarget::swj_sequence.
// - A read: one turnaround, the ACK, 32 data bits and their parity driven by the target, a
//   turnaround back. A write: the ACK, a turnaround, 32 data bits and parity from the host, checked
//   (a wrong one: transfer(..., parity_ok = false), WDATAERR).
// - nRESET drives DebugTarget::set_reset_line.
//
// One thing the bit level forces: on the wire a write's ACK goes out before its data, while
// DebugTarget::transfer() answers and writes in one call. So a write is passed to the target when its
// data has arrived, and the ACK driven before is the one the target will give if nothing stands in
// the way (OK; no answer once the target stopped answering). When the target then answers otherwise,
// the wire behaves as a DP with a posted write: a WAIT keeps the write (and its data) pending and
// retries it at each following packet, which is answered WAIT meanwhile (a DP ABORT write drops it);
// a FAULT or no answer is given to the next packet. Nothing written is ever lost without the host
// being told.
//
// Time: each SWCLK edge takes edge_time of simulated time, and SwdPins::delay() lets its duration pass.
#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "link/swd/bitbang_probe.hpp"
#include "link/swd/swd_pins.hpp"
#include "sim/device.hpp"
#include "sim/swd/debug_target.hpp"

namespace mcuflash::sim::swd {

class SimulatedSwdPins : public link::swd::SwdPins {
public:
    explicit SimulatedSwdPins(std::unique_ptr<DebugTarget> target, bool reset_wired = true);

    std::string describe() const override;
    void set_swclk(bool high) override;
    void drive_swdio(bool level) override;
    void release_swdio() override;
    bool read_swdio() override;
    bool has_reset_line() const override { return reset_wired_; }
    void set_reset_line(bool asserted) override;
    void delay(std::chrono::nanoseconds duration) override;
    void release_all() override;

    DebugTarget& target() { return *target_; }
    Clock::time_point now() const { return now_; }
    void set_edge_time(std::chrono::nanoseconds edge) { edge_time_ = edge; }

    // Fault injection on the wire: the next `count` read data phases go out with a wrong parity bit.
    void corrupt_read_parity(unsigned count = 1) { corrupt_parity_ += count; }

    // What the wire saw, for tests.
    uint64_t packets() const { return packets_; }              // valid requests
    uint64_t bad_requests() const { return bad_requests_; }    // requests not answered (parity, stop, park)
    uint64_t write_parity_errors() const { return write_parity_errors_; }
    uint64_t contentions() const { return contentions_; }      // edges where host and target both drove SWDIO
    uint64_t held_writes() const { return held_writes_; }      // writes the target answered WAIT after the data

private:
    enum class Phase { Idle, Request, Lockout, Ack, ReadData, TurnToHost, WriteTurn, WriteData };
    struct HeldWrite {
        bool ap;
        uint8_t address;
        uint32_t data;
        bool parity_ok;
    };

    void rising_edge();
    bool line_level() const;
    void line_bit(bool bit);  // a bit outside packets: to the target's line-reset / select detection
    void start_packet();      // the request is whole: decide the ACK
    void finish_write();
    void drive(bool level) { target_drives_ = true, target_level_ = level; }

    std::unique_ptr<DebugTarget> target_;
    bool reset_wired_;
    Clock::time_point now_;
    std::chrono::nanoseconds edge_time_{250};

    bool swclk_ = false;
    bool host_drives_ = false, host_level_ = true;
    bool target_drives_ = false, target_level_ = true;

    Phase phase_ = Phase::Idle;
    unsigned index_ = 0;          // bits done in the current phase
    uint8_t request_ = 0;
    uint32_t shift_ = 0;          // data in or out
    bool parity_bit_ = false;
    uint8_t ack_ = 0;             // the 3 bits driven
    unsigned ones_run_ = 0;       // consecutive ones outside packets (line reset: >= 50)
    bool target_silent_ = false;  // it answered nothing: writes get no answer either until a line reset

    std::optional<HeldWrite> held_;
    std::optional<SwdAck> owed_ack_;  // a dropped write's FAULT or silence, for the next packet

    unsigned corrupt_parity_ = 0;
    uint64_t packets_ = 0, bad_requests_ = 0, write_parity_errors_ = 0, contentions_ = 0, held_writes_ = 0;
};

// A bit-banged probe (link::swd::BitbangProbe) on a simulated wire to a simulated chip (a chips.toml
// name, as make_debug_target takes): what `--probe gpio:...` does on a Pi, with no Pi. The probe owns
// the wire, the wire owns the chip; reach them as
// static_cast<SimulatedSwdPins&>(probe->pins()).target().flash().
std::unique_ptr<link::swd::DebugProbe> make_simulated_gpio_probe(const std::string& chip, const DeviceOptions& options);
std::unique_ptr<link::swd::BitbangProbe> make_simulated_gpio_probe(const std::string& chip, const DeviceOptions& options,
                                                                   const SwdFaults& faults);

}  // namespace mcuflash::sim::swd
