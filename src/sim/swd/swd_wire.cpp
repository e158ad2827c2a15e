#include "sim/swd/swd_wire.hpp"

#include <fmt/format.h>

#include <utility>

namespace mcuflash::sim::swd {

namespace {

constexpr unsigned kLineResetOnes = 50;

}  // namespace

SimulatedSwdPins::SimulatedSwdPins(std::unique_ptr<DebugTarget> target, bool reset_wired)
    : target_(std::move(target)), reset_wired_(reset_wired), now_(Clock::time_point(std::chrono::seconds(1))) {}

std::string SimulatedSwdPins::describe() const { return "a simulated SWD wire to the " + target_->describe(); }

void SimulatedSwdPins::set_swclk(bool high) {
    if (high == swclk_) return;
    swclk_ = high;
    now_ += edge_time_;
    if (high) rising_edge();
}

void SimulatedSwdPins::drive_swdio(bool level) {
    host_drives_ = true;
    host_level_ = level;
}

void SimulatedSwdPins::release_swdio() { host_drives_ = false; }

bool SimulatedSwdPins::line_level() const {
    if (target_drives_) return target_level_;
    if (host_drives_) return host_level_;
    return true;  // the target's pull-up
}

bool SimulatedSwdPins::read_swdio() { return line_level(); }

void SimulatedSwdPins::set_reset_line(bool asserted) {
    if (reset_wired_) target_->set_reset_line(asserted, now_);
}

void SimulatedSwdPins::delay(std::chrono::nanoseconds duration) {
    now_ += duration;
    target_->tick(now_);
}

void SimulatedSwdPins::release_all() { host_drives_ = false; }

void SimulatedSwdPins::line_bit(bool bit) {
    if (bit) {
        ++ones_run_;
    } else {
        if (ones_run_ >= kLineResetOnes) {
            // A line reset: the SW-DP starts over, whatever was pending is gone.
            held_.reset();
            owed_ack_.reset();
            if (phase_ == Phase::Lockout) phase_ = Phase::Idle;
        }
        ones_run_ = 0;
    }
    const uint8_t byte = bit ? 1 : 0;
    target_->swj_sequence(std::span(&byte, 1), 1, now_);
}

void SimulatedSwdPins::rising_edge() {
    if (host_drives_ && target_drives_) ++contentions_;
    const bool bit = line_level();
    switch (phase_) {
        case Phase::Idle:
            if (bit) {
                phase_ = Phase::Request;
                request_ = 1;
                index_ = 1;
            } else {
                line_bit(false);
            }
            return;
        case Phase::Request:
            request_ = static_cast<uint8_t>(request_ | unsigned{bit} << index_);
            if (++index_ == 8) start_packet();
            return;
        case Phase::Lockout:
            line_bit(bit);
            return;
        case Phase::Ack:
            // Edges 8, 9, 10 of the packet put the ACK's bits out; edge 11 ends it.
            if (index_ < 3) {
                drive(ack_ >> index_ & 1);
                ++index_;
                return;
            }
            if (ack_ == static_cast<uint8_t>(SwdAck::Ok) && (request_ & 0x4)) {
                drive(shift_ & 1);
                phase_ = Phase::ReadData;
                index_ = 1;
            } else {
                target_drives_ = false;
                phase_ = ack_ == static_cast<uint8_t>(SwdAck::Ok) ? Phase::WriteTurn : Phase::TurnToHost;
            }
            return;
        case Phase::ReadData:
            if (index_ < 32) {
                drive(shift_ >> index_ & 1);
            } else if (index_ == 32) {
                bool parity = link::swd::swd_parity(shift_);
                if (corrupt_parity_ > 0) --corrupt_parity_, parity = !parity;
                drive(parity);
            } else {
                target_drives_ = false;  // the turnaround back to the host
                phase_ = Phase::TurnToHost;
            }
            ++index_;
            return;
        case Phase::TurnToHost:
            phase_ = Phase::Idle;
            return;
        case Phase::WriteTurn:
            phase_ = Phase::WriteData;
            index_ = 0;
            shift_ = 0;
            return;
        case Phase::WriteData:
            if (index_ < 32) {
                shift_ |= uint32_t{bit} << index_;
                ++index_;
                return;
            }
            parity_bit_ = bit;
            finish_write();
            return;
    }
}

void SimulatedSwdPins::start_packet() {
    const bool ap = request_ >> 1 & 1, read = request_ >> 2 & 1;
    const uint8_t address = static_cast<uint8_t>((request_ >> 3 & 0x3) << 2);
    const bool parity = request_ >> 5 & 1, stop = request_ >> 6 & 1, park = request_ >> 7 & 1;
    const bool parity_ok = parity == (((request_ >> 1) ^ (request_ >> 2) ^ (request_ >> 3) ^ (request_ >> 4)) & 1);
    if (!parity_ok || stop || !park) {
        // Not a request the DP takes: it answers nothing and waits for a line reset. The bits were
        // line bits after all (a line reset's ones, the select sequence).
        ++bad_requests_;
        phase_ = Phase::Lockout;
        for (unsigned i = 0; i < 8; ++i) line_bit(request_ >> i & 1);
        return;
    }
    ++packets_;
    std::optional<SwdAck> ack;
    // A write the target answered WAIT after its data goes first (a DP ABORT abandons it).
    if (held_) {
        if (!ap && !read && address == 0x0) {
            held_.reset();
        } else {
            uint32_t data = held_->data;
            const SwdAck outcome = target_->transfer(held_->ap, false, held_->address, data, now_, held_->parity_ok);
            if (outcome == SwdAck::Wait) ack = SwdAck::Wait;
            else held_.reset();
            if (outcome == SwdAck::Fault || outcome == SwdAck::NoResponse) owed_ack_ = outcome;
        }
    }
    if (!ack && owed_ack_) ack = std::exchange(owed_ack_, std::nullopt);
    if (!ack) {
        if (read) {
            uint32_t data = 0;
            ack = target_->transfer(ap, true, address, data, now_);
            shift_ = data;
        } else {
            ack = SwdAck::Ok;  // the target's answer comes with the data (see the header)
        }
    }
    ack_ = static_cast<uint8_t>(*ack);
    if (*ack == SwdAck::NoResponse) {
        phase_ = Phase::Lockout;  // nothing driven: the host reads the pull-up's ones
        return;
    }
    phase_ = Phase::Ack;
    index_ = 0;
}

void SimulatedSwdPins::finish_write() {
    const bool ap = request_ >> 1 & 1;
    const uint8_t address = static_cast<uint8_t>((request_ >> 3 & 0x3) << 2);
    const bool parity_ok = parity_bit_ == link::swd::swd_parity(shift_);
    if (!parity_ok) ++write_parity_errors_;
    uint32_t data = shift_;
    const SwdAck outcome = target_->transfer(ap, false, address, data, now_, parity_ok);
    if (outcome == SwdAck::Wait) {
        held_ = HeldWrite{ap, address, shift_, parity_ok};
        ++held_writes_;
    } else if (outcome != SwdAck::Ok) {
        owed_ack_ = outcome;
    }
    phase_ = Phase::Idle;
}

std::unique_ptr<link::swd::BitbangProbe> make_simulated_gpio_probe(const std::string& chip, const DeviceOptions& options,
                                                                   const SwdFaults& faults) {
    auto pins = std::make_unique<SimulatedSwdPins>(make_debug_target(chip, options, faults));
    return std::make_unique<link::swd::BitbangProbe>(std::move(pins));
}

std::unique_ptr<link::swd::DebugProbe> make_simulated_gpio_probe(const std::string& chip, const DeviceOptions& options) {
    return make_simulated_gpio_probe(chip, options, SwdFaults{});
}

}  // namespace mcuflash::sim::swd
