#pragma once
// The part of running Klipper firmware that answers a host which wants to know what runs: message
// blocks in, identify_response / uptime / clock / config out, with the MCU's sequence counting (a
// block out of sequence is NAKed with the sequence it expects, and it keeps counting across hosts,
// as a real MCU does). The data dictionary is a real build's: a klipper.dict, or the compressed one
// Klipper keeps in its flash image.
//
// The block and message codec is protocol/klipper_mcu's, shared with the client on purpose: Klipper's
// own host (klippy/console.py) talks to this simulator in tests/interop, so a codec mistake cannot
// hide behind the client making the same one.
#include <cstdint>
#include <functional>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "core/deadline.hpp"
#include "protocol/klipper_mcu/codec.hpp"

namespace mcuflash::sim::klipper {

class McuResponder {
public:
    // `identify_data`: the zlib-compressed data dictionary. Throws core::Error(Protocol) when it does
    // not inflate to a dictionary.
    McuResponder(std::vector<uint8_t> identify_data, std::function<void(const std::string&)> log = {});

    // Bytes from the host; returns the bytes the MCU sends back.
    std::vector<uint8_t> receive(std::span<const uint8_t> bytes, core::Clock::time_point now);

    const protocol::klipper_mcu::Dictionary& dictionary() const { return dictionary_; }
    // On a CAN bus: what get_canbus_id answers (a CAN build's command; klippy checks it on connecting).
    void set_canbus_node(uint64_t uuid, uint8_t node_id) {
        canbus_uuid_ = uuid;
        canbus_node_id_ = node_id;
    }

private:
    void answer(const protocol::klipper_mcu::Message& message, core::Clock::time_point now, std::vector<uint8_t>& content);
    uint64_t clock_at(core::Clock::time_point now) const;

    std::vector<uint8_t> identify_data_;
    protocol::klipper_mcu::Dictionary dictionary_;
    protocol::klipper_mcu::BlockReader reader_;
    std::function<void(const std::string&)> log_;
    uint8_t expected_sequence_ = 0;  // Klipper's next_sequence (low four bits)
    core::Clock::time_point started_ = core::Clock::now();
    double clock_frequency_ = 0;
    std::optional<uint64_t> canbus_uuid_;
    uint8_t canbus_node_id_ = 0;
};

}  // namespace mcuflash::sim::klipper
