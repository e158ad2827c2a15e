#pragma once
// Talking to running Klipper firmware over a byte stream (a USB CDC port, a UART, a CAN node's
// stream): send a command in a message block, wait for the response, send again when the MCU did
// not acknowledge (it NAKs with the sequence number it expects; the host takes that one, as klippy
// does on connecting to an MCU a previous host left mid-count).
#include <chrono>
#include <string>
#include <vector>

#include "link/byte_link.hpp"
#include "protocol/klipper_mcu/codec.hpp"

namespace mcuflash::protocol::klipper_mcu {

struct Identified {
    Dictionary dictionary;
    std::vector<uint8_t> identify_data;  // the compressed dictionary as the MCU sent it
};

class Session {
public:
    explicit Session(link::ByteLink& link) : link_(link) {}

    // The identify exchange (40 bytes at a time until an empty piece), then the dictionary is the
    // session's. `timeout` is for each piece. Throws Timeout ("nothing answered like Klipper
    // firmware") when no response comes.
    const Identified& identify(std::chrono::milliseconds timeout = std::chrono::seconds(3));
    // Sends `command` (a name from the dictionary) and returns the first `response` that comes.
    Message query(const std::string& command, const Params& params, const std::string& response,
                  std::chrono::milliseconds timeout = std::chrono::seconds(2));

    uint64_t retransmissions() const { return retransmissions_; }

private:
    Message exchange(const MessageFormat& command, const Params& params, const std::string& response,
                     std::chrono::milliseconds timeout);
    const Dictionary* dictionary() const { return identified_ ? &identified_->dictionary : nullptr; }

    link::ByteLink& link_;
    BlockReader reader_;
    uint8_t sequence_ = 0;  // of the next block we send
    std::optional<Identified> identified_;
    uint64_t retransmissions_ = 0;
};

}  // namespace mcuflash::protocol::klipper_mcu
