#pragma once
// One CAN node's byte stream, as Klipper and Katapult carry their serial protocol over CAN: what the
// host writes goes out cut into 8-byte frames on the node's id, and what the node sends arrives as
// the payloads of frames on the id above it, concatenated in order. A ByteLink, so a protocol made
// for a serial port (Katapult's client) runs on it unchanged; it has no serial line facet.
#include <cstdint>
#include <deque>
#include <memory>

#include "link/byte_link.hpp"
#include "link/can_socket.hpp"

namespace mcuflash::link {

class CanNodeStream : public ByteLink {
public:
    // Writes on `to_node`, reads frames on `from_node` (the bus is told to take only those).
    // `name` is how messages name the node ("CAN node 0a1b2c3d4e5f on can0"), `address` what reaches
    // it again on the command line ("can:can0:0a1b2c3d4e5f").
    CanNodeStream(std::unique_ptr<CanBus> bus, uint32_t to_node, uint32_t from_node, std::string name,
                  std::string address);

    std::string describe() const override { return name_; }
    // No line settings: the nominal 1 Mbit/s a CAN bus for printers usually runs at.
    SerialSettings settings() const override { return {1000000, Parity::None}; }
    // What a 250 kbit/s bus carries (an 8-byte frame is about 130 bits on the wire): a bound on time
    // limits that holds on the slower buses too.
    uint32_t bytes_per_second() const override { return 15000; }

    const std::string& address() const { return address_; }
    uint32_t to_node() const { return to_node_; }
    uint32_t from_node() const { return from_node_; }

protected:
    void do_write(std::span<const uint8_t> bytes) override;
    size_t do_read_some(std::span<uint8_t> buffer, const core::Deadline& deadline) override;
    size_t do_drain_input() override;

private:
    std::unique_ptr<CanBus> bus_;
    uint32_t to_node_, from_node_;
    std::string name_, address_;
    std::deque<uint8_t> received_;  // payload bytes not yet read
};

}  // namespace mcuflash::link
