#include "sim/gs_usb/simulated_can_bus.hpp"

#include <algorithm>
#include <stdexcept>

namespace mcuflash::sim::gs_usb {

BusFrame BusFrame::from(const link::CanFrame& frame) {
    BusFrame bus_frame;
    bus_frame.id = frame.id;
    bus_frame.length = frame.length;
    bus_frame.data = frame.data;
    return bus_frame;
}

std::optional<link::CanFrame> BusFrame::standard() const {
    if (extended || remote || id > link::kMaxStandardCanId) return std::nullopt;
    return link::CanFrame::with(id, std::span<const uint8_t>(data.data(), std::min<size_t>(length, 8)));
}

SimulatedCanBus::SimulatedCanBus(bool timing, uint32_t bitrate) : timing_(timing), bitrate_(bitrate) {}

SimulatedCanBus::Station& SimulatedCanBus::attach(std::string name, Transmitted on_transmitted) {
    stations_.push_back(std::unique_ptr<Station>(new Station(*this, std::move(name), std::move(on_transmitted))));
    return *stations_.back();
}

uint64_t SimulatedCanBus::arbitration_key(const BusFrame& frame) {
    // The base id decides first; at equal base ids a standard frame's dominant IDE (and RTR) win.
    const uint64_t base = frame.extended ? frame.id >> 18 : frame.id;
    const uint64_t rest = frame.extended ? (1ull << 19) | (uint64_t{frame.id & 0x3FFFF} << 1) | frame.remote
                                         : uint64_t{frame.remote} << 18;
    return base << 20 | rest;
}

void SimulatedCanBus::queue(Pending pending) {
    pending.order = order_++;
    const Clock::time_point ready = pending.ready;
    waiting_.push_back(std::move(pending));
    if (on_wire_ && on_wire_->start >= ready) {
        // It was queued by the time the frame on the wire starts: it takes part in that arbitration.
        const Clock::time_point start = on_wire_->start;
        waiting_.push_back(std::move(*on_wire_));
        on_wire_.reset();
        start_next(start);
    } else if (!on_wire_) {
        start_next(std::max(free_at_, ready));
    }
}

void SimulatedCanBus::start_next(Clock::time_point free_at) {
    // Among the frames ready when the bus frees, the lowest id wins; if none is ready yet, the next
    // one to become ready starts then.
    if (waiting_.empty()) return;
    Clock::time_point start = free_at;
    auto earliest = std::min_element(waiting_.begin(), waiting_.end(),
                                     [](const Pending& a, const Pending& b) { return a.ready < b.ready; });
    start = std::max(start, earliest->ready);
    auto winner = waiting_.end();
    for (auto it = waiting_.begin(); it != waiting_.end(); ++it) {
        if (it->ready > start) continue;
        if (winner == waiting_.end() || arbitration_key(it->frame) < arbitration_key(winner->frame) ||
            (arbitration_key(it->frame) == arbitration_key(winner->frame) && it->order < winner->order))
            winner = it;
    }
    Pending frame = std::move(*winner);
    waiting_.erase(winner);
    frame.bits = can_frame_bits(frame.frame.wire());
    const auto duration = timing_ ? Clock::duration(std::chrono::nanoseconds(uint64_t{frame.bits.total()} * 1'000'000'000ull / bitrate_))
                                  : Clock::duration::zero();
    frame.start = start;
    frame.end = start + duration;
    free_at_ = frame.end;
    on_wire_ = std::move(frame);
}

void SimulatedCanBus::finish(Pending& frame) {
    ++stats_.frames;
    stats_.bits += frame.bits.total();
    stats_.stuff_bits += frame.bits.stuff;
    stats_.busy += frame.end - frame.start;
    for (auto& station : stations_)
        if (station.get() != frame.sender) station->inbox_.push_back({frame.frame, frame.end});
    if (frame.sender->on_transmitted_) frame.sender->on_transmitted_(frame.frame, frame.tag, frame.end);
}

void SimulatedCanBus::advance(Clock::time_point until) {
    while (on_wire_ && on_wire_->end <= until) {
        Pending done = std::move(*on_wire_);
        on_wire_.reset();
        finish(done);
        start_next(done.end);
    }
}

std::optional<Clock::time_point> SimulatedCanBus::next_event() const {
    if (on_wire_) return on_wire_->end;
    return std::nullopt;
}

void SimulatedCanBus::Station::send(const link::CanFrame& frame, Clock::time_point now) {
    send_tagged(BusFrame::from(frame), 0, now);
}

void SimulatedCanBus::Station::send_tagged(const BusFrame& frame, uint64_t tag, Clock::time_point now) {
    if (frame.length > 8) throw std::invalid_argument("a classic CAN frame carries at most 8 bytes");
    if (bus_.timing_ && bus_.bitrate_ == 0) throw std::logic_error("the simulated CAN bus has no bitrate");
    bus_.queue({frame, this, tag, 0, now});
}

std::optional<BusFrame> SimulatedCanBus::Station::receive_any(Clock::time_point now) {
    if (inbox_.empty() || inbox_.front().at > now) return std::nullopt;
    BusFrame frame = inbox_.front().frame;
    inbox_.pop_front();
    return frame;
}

std::optional<link::CanFrame> SimulatedCanBus::Station::receive(Clock::time_point now) {
    // A node's controller takes 11-bit data frames only (Katapult and Klipper filter on their ids).
    while (auto frame = receive_any(now))
        if (auto standard = frame->standard()) return standard;
    return std::nullopt;
}

std::optional<Clock::time_point> SimulatedCanBus::Station::oldest_arrival() const {
    if (inbox_.empty()) return std::nullopt;
    return inbox_.front().at;
}

}  // namespace mcuflash::sim::gs_usb
