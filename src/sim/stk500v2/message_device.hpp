#pragma once
// What the STK500v2 devices that are not classic-AVR bootloaders share (the Arduino M0's bootloader
// on USB, an ISP programmer): messages collected by a MessageReader, handled one at a time, each
// answer sent once the work it needed (flash busy time) is done. Bytes arriving meanwhile wait in
// the host-side buffer (USB CDC), none are lost. One timer for the personality's own use.
#include <deque>
#include <optional>

#include "sim/device.hpp"
#include "sim/stk500v2/messages.hpp"

namespace mcuflash::sim::stk500v2 {

class MessageDevice : public Device {
public:
    void receive(uint8_t byte, Clock::time_point now) override;
    void tick(Clock::time_point now) override;
    std::optional<Clock::time_point> next_deadline() const override;
    void reset(ResetCause cause, Clock::time_point now) override;
    bool in_bootloader() const override { return running_; }

    uint64_t messages_handled() const { return handled_; }
    uint64_t bad_checksums() const { return bad_checksums_; }

protected:
    struct Answer {
        std::optional<std::vector<uint8_t>> body;  // nullopt: no answer (an empty body is sent)
        Clock::duration busy{};      // how long the work takes before the answer goes out
    };
    explicit MessageDevice(size_t max_body) : reader_(max_body) {}

    virtual Answer handle(const std::vector<uint8_t>& body, Clock::time_point now) = 0;
    // A message whose checksum did not match: by default dropped without an answer.
    virtual Answer bad_checksum(const MessageReader::Message& message) {
        (void)message;
        return {};
    }
    // After a reset: whether the device listens (false: it runs something else, silent).
    virtual bool starts_listening(ResetCause cause, Clock::time_point now) = 0;
    virtual void timer_fired(Clock::time_point now) = 0;

    void set_timer(Clock::time_point at) { timer_ = at; }
    void cancel_timer() { timer_.reset(); }
    // Stops listening (the application runs) until the next reset.
    void stop_listening(const std::string& why);

private:
    void process(Clock::time_point now);

    MessageReader reader_;
    bool running_ = false;
    std::deque<uint8_t> pending_;                 // bytes received while busy
    std::optional<Clock::time_point> busy_until_;
    std::vector<uint8_t> answer_after_busy_;
    std::optional<Clock::time_point> timer_;
    uint64_t handled_ = 0, bad_checksums_ = 0;
};

}  // namespace mcuflash::sim::stk500v2
