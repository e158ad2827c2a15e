#include "sim/in_process_link.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <thread>

#include "core/error.hpp"
#include "sim/registry.hpp"

namespace mcuflash::sim {

using core::Error;
using core::ErrorKind;

void SimClock::wait_until(Clock::time_point t) {
    if (real_time_) {
        std::this_thread::sleep_until(t - skipped_);
        return;
    }
    Clock::time_point now = this->now();
    if (t > now) skipped_ += t - now;
}

InProcessLink::InProcessLink(std::unique_ptr<Device> device, FaultInjector faults, LinkBehaviour behaviour)
    : device_(std::move(device)),
      behaviour_(behaviour),
      clock_(behaviour.timing),
      line_(*device_, std::move(faults), behaviour.timing) {
    line_.set_host_settings(behaviour_.host_settings);
    open(clock_.now());
}

std::string InProcessLink::describe() const { return fmt::format("sim:{}", device_->describe()); }

void InProcessLink::open(Clock::time_point now) {
    disconnects_seen_ = line_.disconnects();
    line_.discard_host_input(now);  // a freshly opened port has an empty input buffer
    // Opening a port raises DTR and RTS: the reset pulse of an Arduino-style board.
    dtr_ = rts_ = true;
    line_.reset_device(ResetCause::Pin, now);
}

void InProcessLink::check_alive(Clock::time_point now) {
    line_.advance(now);
    if (line_.disconnects() != disconnects_seen_)
        throw Error(ErrorKind::Io, fmt::format("{}: the device disconnected (simulated)", describe()),
                    "reopen the port once the device is back");
}

void InProcessLink::do_write(std::span<const uint8_t> bytes) {
    Clock::time_point now = clock_.now();
    check_alive(now);
    line_.host_write(bytes, now);
}

size_t InProcessLink::do_read_some(std::span<uint8_t> buffer, const core::Deadline& deadline) {
    if (buffer.empty()) return 0;
    const Clock::time_point give_up = clock_.now() + deadline.remaining();
    for (;;) {
        Clock::time_point now = clock_.now();
        check_alive(now);
        if (size_t n = line_.host_read(buffer, now)) return n;
        // Nothing else can happen while the caller waits, so the device may run ahead to the moment
        // its next byte reaches the host (or the caller gives up), and the wait is one sleep or skip.
        line_.advance(give_up, true);
        if (line_.disconnects() != disconnects_seen_) {
            clock_.wait_until(std::min(give_up, *line_.dead_since()));
            check_alive(clock_.now());
        }
        std::optional<Clock::time_point> arrival = line_.next_host_arrival();
        if (!arrival || *arrival > give_up) {
            clock_.wait_until(give_up);
            line_.advance(give_up);
            return line_.host_read(buffer, give_up);
        }
        clock_.wait_until(*arrival);
    }
}

size_t InProcessLink::do_drain_input() {
    Clock::time_point now = clock_.now();
    line_.advance(now);
    return line_.discard_host_input(now);
}

void InProcessLink::pause(std::chrono::milliseconds duration) {
    clock_.wait_until(clock_.now() + duration);
    line_.advance(clock_.now());
}

void InProcessLink::set_dtr_rts(bool dtr, bool rts) {
    if (!behaviour_.modem_lines) return;
    Clock::time_point now = clock_.now();
    bool pulse = (dtr && !dtr_) || (rts && !rts_);
    dtr_ = dtr;
    rts_ = rts;
    if (pulse) line_.reset_device(ResetCause::Pin, now);
}

void InProcessLink::reopen() {
    Clock::time_point now = clock_.now();
    line_.advance(now);
    if (line_.dead_at(now))
        throw Error(ErrorKind::NotFound, fmt::format("{}: the device is gone (simulated disconnect)", describe()));
    open(now);
}

void InProcessLink::configure(const link::SerialSettings& settings) {
    line_.advance(clock_.now());
    behaviour_.host_settings = settings;
    line_.set_host_settings(settings);
}

std::unique_ptr<InProcessLink> open_in_process(const std::string& protocol, const InProcessOptions& options) {
    FaultSpec faults = FaultSpec::parse(options.faults);
    DeviceOptions device_options;
    device_options.bootloader = options.bootloader;
    device_options.baud = options.settings.baud;
    device_options.timing = options.timing;
    device_options.flash_file = options.flash_file;
    auto device = make_device(protocol, options.chip, device_options);
    return std::make_unique<InProcessLink>(std::move(device), FaultInjector(std::move(faults)),
                                           LinkBehaviour{options.timing, options.modem_lines, options.settings});
}

}  // namespace mcuflash::sim
