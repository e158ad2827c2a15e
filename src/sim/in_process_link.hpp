#pragma once
// A simulated device as a link::ByteLink inside this process: what the protocol clients talk to in
// the sim test tier and behind `mcuflash ... -d sim:PROTOCOL[:CHIP]`.
//
// Everything runs synchronously inside the calls (no threads): write() puts bytes on the simulated
// wire, read_some() runs the device until its answer has crossed the wire back. Meant for one client
// thread.
//
// Time:
// - timing on: the simulated clock is the real clock. Bytes take their wire time in both directions,
//   flash operations their real duration, and read_some() sleeps until a byte has really arrived.
// - timing off: no wire or flash delays, and waiting is skipped rather than slept: when nothing can
//   arrive before the caller's deadline, read_some() moves the simulated clock forward by the time
//   the caller would have waited and returns 0 at once. Watchdogs and delay faults still act in
//   simulated time, so "1 s of silence" costs nothing. The simulated clock also follows real time
//   (it is the real clock plus all skipped time), so a client that sleeps lets the device's time pass.
//
// Modem lines: DTR or RTS going from deasserted to asserted pulses the device's RESET (the Arduino
// auto-reset), so does opening the link (construction, reopen()), as when a real port is opened.
// With modem_lines off, the link behaves like a pty: set_dtr_rts() does nothing and only reopen() resets.
//
// A disconnect fault makes write()/read_some() throw core::Error(Io) from then on; reopen() throws
// NotFound while the device is gone and works again once it is back.
#include <filesystem>
#include <memory>
#include <optional>
#include <string>

#include "link/byte_link.hpp"
#include "sim/device.hpp"
#include "sim/fault_injector.hpp"
#include "sim/simulated_line.hpp"

namespace mcuflash::sim {

// The simulated clock of an InProcessLink: the real clock plus the time skipped while waiting.
class SimClock {
public:
    explicit SimClock(bool real_time) : real_time_(real_time) {}
    Clock::time_point now() const { return Clock::now() + skipped_; }
    // Returns once now() >= t: by sleeping in real time, else by skipping.
    void wait_until(Clock::time_point t);

private:
    bool real_time_;
    Clock::duration skipped_{};
};

struct LinkBehaviour {
    bool timing = true;
    bool modem_lines = true;
    link::SerialSettings host_settings{};  // the port settings the host starts with
};

class InProcessLink : public link::ByteLink, public link::SerialLine {
public:
    InProcessLink(std::unique_ptr<Device> device, FaultInjector faults, LinkBehaviour behaviour);

    void set_dtr_rts(bool dtr, bool rts) override;
    bool has_modem_lines() const override { return behaviour_.modem_lines; }
    void reopen() override;
    void configure(const link::SerialSettings& settings) override;
    link::SerialSettings settings() const override { return behaviour_.host_settings; }
    std::string describe() const override;
    link::SerialLine* serial_line() override { return this; }
    // In simulated time: with the timing off, the device's clock moves on and nobody sleeps.
    void pause(std::chrono::milliseconds duration) override;

    Device& device() { return *device_; }
    FlashMemory& flash() { return device_->flash(); }
    const FaultInjector& faults() const { return line_.faults(); }
    SimulatedLine& line() { return line_; }
    SimClock& clock() { return clock_; }

protected:
    void do_write(std::span<const uint8_t> bytes) override;
    size_t do_read_some(std::span<uint8_t> buffer, const core::Deadline& deadline) override;
    size_t do_drain_input() override;

private:
    // Throws if the link is (or was, since this handle was opened) disconnected.
    void check_alive(Clock::time_point now);
    void open(Clock::time_point now);

    std::unique_ptr<Device> device_;
    LinkBehaviour behaviour_;
    SimClock clock_;
    SimulatedLine line_;
    bool dtr_ = false, rts_ = false;
    uint64_t disconnects_seen_ = 0;  // disconnects before this handle was opened
};

// What `-d sim:PROTOCOL[:CHIP]` needs.
struct InProcessOptions {
    std::string chip;        // "" = the simulator's default chip
    std::string bootloader;  // "" = the simulator's default personality
    std::string faults;      // fault spec (see fault_injector.hpp); "" = none
    bool timing = true;
    link::SerialSettings settings{};  // both ends start with these; the device listens at this baud
    bool modem_lines = true;
    std::optional<std::filesystem::path> flash_file;
};

// Builds the device through the registry and wraps it. Throws core::Error(Usage) for an unknown
// protocol, chip, bootloader or a bad fault spec.
std::unique_ptr<InProcessLink> open_in_process(const std::string& protocol, const InProcessOptions& options);

}  // namespace mcuflash::sim
