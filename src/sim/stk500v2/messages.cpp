#include "sim/stk500v2/messages.hpp"

namespace mcuflash::sim::stk500v2 {

std::vector<uint8_t> frame_message(uint8_t sequence, std::span<const uint8_t> body) {
    std::vector<uint8_t> out;
    out.reserve(body.size() + 6);
    for (uint8_t b : {bytes::kMessageStart, sequence, static_cast<uint8_t>(body.size() >> 8),
                      static_cast<uint8_t>(body.size()), bytes::kToken})
        out.push_back(b);
    out.insert(out.end(), body.begin(), body.end());
    uint8_t checksum = 0;
    for (uint8_t b : out) checksum ^= b;
    out.push_back(checksum);
    return out;
}

std::optional<MessageReader::Message> MessageReader::take(uint8_t byte) {
    switch (state_) {
        case State::Start:
            if (byte == bytes::kMessageStart) {
                checksum_ = byte;
                message_ = {};
                state_ = State::Sequence;
            }
            return std::nullopt;
        case State::Sequence:
            message_.sequence = byte;
            state_ = State::LengthHigh;
            break;
        case State::LengthHigh:
            length_ = size_t{byte} << 8;
            state_ = State::LengthLow;
            break;
        case State::LengthLow:
            length_ |= byte;
            // A length the device's buffer cannot hold: it would overrun its RAM; we drop the message.
            state_ = length_ == 0 || length_ > max_body_ ? State::Start : State::Token;
            break;
        case State::Token:
            state_ = byte == bytes::kToken ? State::Body : State::Start;
            break;
        case State::Body:
            message_.body.push_back(byte);
            if (message_.body.size() == length_) state_ = State::Checksum;
            break;
        case State::Checksum:
            state_ = State::Start;
            message_.checksum_ok = byte == checksum_;
            return std::move(message_);
    }
    checksum_ ^= byte;
    return std::nullopt;
}

}  // namespace mcuflash::sim::stk500v2
