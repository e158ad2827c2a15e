#pragma once
// How long a classic CAN frame occupies the bus (ISO 11898-1): the frame's bits as a controller
// sends them, stuff bits included, counted rather than bounded.
//
// A data frame with an 11-bit id and n data bytes is SOF, id (11), RTR, IDE, r0, DLC (4), the data
// (8n), CRC-15 (15): 34 + 8n bits that are stuffed (after five equal bits the sender inserts one of
// the other value, which counts towards the next run), then CRC delimiter, ACK slot and delimiter,
// EOF (7) and the 3-bit intermission before the next frame: 13 more. 47 + 8n bits unstuffed; the
// stuff bits come on top (at most (34 + 8n - 1) / 4). A 29-bit frame has SRR, IDE, the 18 more id
// bits, r1: 67 + 8n unstuffed. A remote frame (RTR) has no data field.
#include <chrono>
#include <cstdint>
#include <span>

namespace mcuflash::sim::gs_usb {

struct CanWireFrame {
    uint32_t id = 0;          // 11 bits, or 29 with `extended`
    bool extended = false;
    bool remote = false;
    std::span<const uint8_t> data;  // 0..8 bytes (none on the wire for a remote frame)
};

struct CanFrameBits {
    unsigned unstuffed = 0;  // every bit from SOF to the end of the intermission
    unsigned stuff = 0;      // the stuff bits the sender inserts
    uint16_t crc = 0;        // the CRC-15 the frame carries
    unsigned total() const { return unstuffed + stuff; }
};

// The CRC-15 of the bits SOF..data (polynomial 0x4599, initial 0), as the frame computes it.
uint16_t can_crc15(std::span<const uint8_t> bits);
CanFrameBits can_frame_bits(const CanWireFrame& frame);
// The time those bits take at `bitrate` bits per second (> 0).
std::chrono::nanoseconds can_frame_time(const CanWireFrame& frame, uint32_t bitrate);

// The bitrate a gs_usb BITTIMING request sets: fclk / (brp x (1 + prop_seg + phase_seg1 +
// phase_seg2)), the sync segment being one time quantum. 0 when the numbers make no bit time.
uint32_t bitrate_from_timing(uint32_t fclk_can, uint32_t brp, uint32_t prop_seg, uint32_t phase_seg1, uint32_t phase_seg2);

}  // namespace mcuflash::sim::gs_usb
