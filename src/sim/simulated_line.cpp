#include "sim/simulated_line.hpp"

#include <cmath>
#include <stdexcept>

namespace mcuflash::sim {

namespace {
// Both ends' clocks together may be off by about this much before bytes get garbled.
constexpr double kBaudTolerance = 0.03;
}  // namespace

SimulatedLine::SimulatedLine(Device& device, FaultInjector faults, bool timing)
    : device_(device),
      faults_(std::move(faults)),
      wire_(WireModel::for_line(device.line_settings(), timing)),
      to_device_line_(wire_),
      to_host_line_(wire_) {}

void SimulatedLine::set_host_settings(const link::SerialSettings& settings) {
    auto device = device_.line_settings();
    double ratio = device.baud ? static_cast<double>(settings.baud) / device.baud : 0.0;
    settings_match_ = std::abs(ratio - 1.0) <= kBaudTolerance && settings.parity == device.parity;
}

uint8_t SimulatedLine::over_the_line(uint8_t value) const {
    if (settings_match_) return value;
    // Sampled at the wrong rate the bits land in the wrong places: a fixed scramble stands in for that.
    return static_cast<uint8_t>(((value << 3) | (value >> 5)) ^ 0xA5);
}

bool SimulatedLine::dead_at(Clock::time_point t) const {
    return dead_from_ && t >= *dead_from_ && (!dead_until_ || t < *dead_until_);
}

void SimulatedLine::go_dead(Clock::time_point at, std::optional<Clock::duration> dead_for) {
    dead_from_ = at;
    dead_until_ = dead_for ? std::optional(at + *dead_for) : std::nullopt;
    ++disconnects_;
    // Whatever was still on the wire is lost with the link.
    to_device_.clear();
    while (!to_host_.empty() && to_host_.back().arrival > at) to_host_.pop_back();
}

void SimulatedLine::host_write(std::span<const uint8_t> bytes, Clock::time_point now) {
    for (uint8_t b : bytes) {
        if (dead_at(now)) return;
        FaultVerdict fate = faults_.next(Direction::Rx, b);
        if (fate.stall > Clock::duration::zero()) to_device_line_.stall(now, fate.stall);
        Clock::time_point arrival = to_device_line_.schedule(now);
        to_device_.push_back({over_the_line(fate.value), arrival, fate});
    }
}

std::optional<Clock::time_point> SimulatedLine::next_event() const {
    std::optional<Clock::time_point> next = device_.next_deadline();
    auto consider = [&next](Clock::time_point t) {
        if (!next || t < *next) next = t;
    };
    if (!to_device_.empty()) consider(to_device_.front().arrival);
    if (!to_host_.empty()) consider(to_host_.front().arrival);
    return next;
}

std::optional<Clock::time_point> SimulatedLine::next_host_arrival() const {
    if (to_host_.empty()) return std::nullopt;
    return to_host_.front().arrival;
}

void SimulatedLine::advance(Clock::time_point until, bool stop_at_host_output) {
    for (;;) {
        std::optional<Clock::time_point> byte_at, timer_at = device_.next_deadline();
        if (!to_device_.empty()) byte_at = to_device_.front().arrival;
        std::optional<Clock::time_point> next = byte_at;
        if (timer_at && (!next || *timer_at <= *next)) next = timer_at;
        if (!next || *next > until) return;
        if (stop_at_host_output && !to_host_.empty() && to_host_.front().arrival < *next) return;

        if (next == timer_at) {
            device_.tick(*timer_at);
            // A device must move its deadline on when ticked at it, or this loop would spin.
            if (auto again = device_.next_deadline(); again && *again <= *timer_at)
                throw std::logic_error("simulated device did not advance past its own deadline");
        } else {
            ToDevice byte = to_device_.front();
            to_device_.pop_front();
            deliver(byte);
        }
        collect_device_output();
    }
}

void SimulatedLine::deliver(const ToDevice& byte) {
    device_.tick(byte.arrival);
    if (dead_at(byte.arrival)) return;
    if (byte.fate.disconnect) return go_dead(byte.arrival, byte.fate.dead_for);
    if (byte.fate.reset) return device_.reset(*byte.fate.reset, byte.arrival);
    if (byte.fate.drop) return;
    device_.receive(byte.value, byte.arrival);
}

void SimulatedLine::collect_device_output() {
    for (const SentByte& sent : device_.take_output()) {
        if (dead_at(sent.at)) continue;
        FaultVerdict fate = faults_.next(Direction::Tx, sent.value);
        if (fate.stall > Clock::duration::zero()) to_host_line_.stall(sent.at, fate.stall);
        Clock::time_point arrival = to_host_line_.schedule(sent.at);
        if (fate.disconnect) return go_dead(sent.at, fate.dead_for);
        // A reset loses this byte and everything queued behind it in the UART.
        if (fate.reset) return device_.reset(*fate.reset, sent.at);
        if (fate.drop) continue;
        to_host_.push_back({over_the_line(fate.value), arrival});
    }
}

size_t SimulatedLine::host_read(std::span<uint8_t> out, Clock::time_point now) {
    size_t n = 0;
    while (n < out.size() && !to_host_.empty() && to_host_.front().arrival <= now) {
        out[n++] = to_host_.front().value;
        to_host_.pop_front();
    }
    return n;
}

size_t SimulatedLine::discard_host_input(Clock::time_point now) {
    size_t dropped = 0;
    for (; !to_host_.empty() && to_host_.front().arrival <= now; ++dropped) to_host_.pop_front();
    return dropped;
}

void SimulatedLine::reset_device(ResetCause cause, Clock::time_point now) {
    advance(now);
    device_.reset(cause, now);
    collect_device_output();
}

}  // namespace mcuflash::sim
