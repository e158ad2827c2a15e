#pragma once
// Classic CAN frames on a Linux SocketCAN interface (can0, vcan0): a raw socket (PF_CAN, SOCK_RAW,
// CAN_RAW) with 11-bit ids, kernel receive filters, and sends and receives bounded by deadlines.
//
// CanBus is what a protocol needs of a bus (frames out, frames in, which ids to take), so the byte
// stream over CAN (can_stream.hpp) and Katapult's admin exchange run on a fake bus in unit tests.
#include <array>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "core/deadline.hpp"

namespace mcuflash::link {

constexpr uint32_t kMaxStandardCanId = 0x7FF;  // 11-bit identifiers
constexpr size_t kCanFrameBytes = 8;           // classic CAN: up to 8 data bytes a frame

struct CanFrame {
    uint32_t id = 0;
    uint8_t length = 0;
    std::array<uint8_t, kCanFrameBytes> data{};

    std::span<const uint8_t> payload() const { return {data.data(), length}; }
    // A frame with these bytes (at most 8; std::invalid_argument otherwise, or for an id above 0x7FF).
    static CanFrame with(uint32_t id, std::span<const uint8_t> bytes);
};

// A byte stream cut into frames of 8 bytes (the last one shorter), all on `id`; none for no bytes.
std::vector<CanFrame> split_into_frames(uint32_t id, std::span<const uint8_t> bytes);

class CanBus {
public:
    virtual ~CanBus() = default;
    virtual void send(const CanFrame& frame) = 0;
    // The next frame on one of the ids taken, or nullopt once the deadline passes.
    virtual std::optional<CanFrame> receive(const core::Deadline& deadline) = 0;
    // Frames on other ids are not delivered from now on (empty: every standard id).
    virtual void take_only(std::vector<uint32_t> ids) = 0;
    virtual std::string interface_name() const = 0;
};

class CanSocket : public CanBus {
public:
    // Opens a raw socket on `interface` (can0). Throws core::Error(NotFound) when the kernel has no
    // SocketCAN, the interface does not exist or is down, Usage when it is no CAN interface.
    explicit CanSocket(std::string interface);
    ~CanSocket() override;
    CanSocket(const CanSocket&) = delete;
    CanSocket& operator=(const CanSocket&) = delete;

    // Waits (up to a second) while the interface's transmit queue is full; a queue that stays full
    // means nothing on the bus acknowledges frames: core::Error(Io) with what to check.
    void send(const CanFrame& frame) override;
    std::optional<CanFrame> receive(const core::Deadline& deadline) override;
    void take_only(std::vector<uint32_t> ids) override;
    std::string interface_name() const override { return interface_; }

    static constexpr const char* kBringUpHint = "sudo ip link set can0 up type can bitrate 1000000";

private:
    std::string interface_;
    int fd_ = -1;
};

}  // namespace mcuflash::link
