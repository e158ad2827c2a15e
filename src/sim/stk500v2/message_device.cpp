#include "sim/stk500v2/message_device.hpp"

namespace mcuflash::sim::stk500v2 {

void MessageDevice::reset(ResetCause cause, Clock::time_point now) {
    discard_output();
    reader_.clear();
    pending_.clear();
    busy_until_.reset();
    answer_after_busy_.clear();
    timer_.reset();
    running_ = starts_listening(cause, now);
}

void MessageDevice::stop_listening(const std::string& why) {
    running_ = false;
    reader_.clear();
    pending_.clear();
    busy_until_.reset();
    answer_after_busy_.clear();
    timer_.reset();
    trace(why);
}

std::optional<Clock::time_point> MessageDevice::next_deadline() const {
    std::optional<Clock::time_point> next = busy_until_;
    if (timer_ && (!next || *timer_ < *next)) next = timer_;
    return next;
}

void MessageDevice::tick(Clock::time_point now) {
    while (auto next = next_deadline()) {
        if (*next > now) return;
        if (busy_until_ && *next == *busy_until_) {
            busy_until_.reset();
            send(std::exchange(answer_after_busy_, {}), *next);
            process(*next);
        } else {
            timer_.reset();
            timer_fired(*next);
        }
    }
}

void MessageDevice::receive(uint8_t byte, Clock::time_point now) {
    tick(now);
    if (!running_) return;
    pending_.push_back(byte);
    process(now);
}

void MessageDevice::process(Clock::time_point now) {
    while (running_ && !busy_until_ && !pending_.empty()) {
        uint8_t byte = pending_.front();
        pending_.pop_front();
        auto message = reader_.take(byte);
        if (!message) continue;
        Answer answer;
        if (message->checksum_ok) {
            ++handled_;
            answer = handle(message->body, now);
        } else {
            ++bad_checksums_;
            answer = bad_checksum(*message);
        }
        if (!running_) return;  // the message started the application
        if (!answer.body) continue;
        auto framed = frame_message(message->sequence, *answer.body);
        if (answer.busy > Clock::duration::zero()) {
            busy_until_ = now + answer.busy;
            answer_after_busy_ = std::move(framed);
        } else {
            send(framed, now);
        }
    }
}

}  // namespace mcuflash::sim::stk500v2
