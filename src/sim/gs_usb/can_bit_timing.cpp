#include "sim/gs_usb/can_bit_timing.hpp"

#include <vector>

namespace mcuflash::sim::gs_usb {

namespace {

void put_bits(std::vector<uint8_t>& bits, uint32_t value, int count) {
    for (int i = count - 1; i >= 0; --i) bits.push_back((value >> i) & 1);
}

}  // namespace

uint16_t can_crc15(std::span<const uint8_t> bits) {
    uint16_t crc = 0;
    for (uint8_t bit : bits) {
        const bool feedback = (bit & 1) != ((crc >> 14) & 1);
        crc = static_cast<uint16_t>((crc << 1) & 0x7FFF);
        if (feedback) crc ^= 0x4599;
    }
    return crc;
}

CanFrameBits can_frame_bits(const CanWireFrame& frame) {
    // Dominant = 0, recessive = 1, most significant bit first.
    const size_t length = frame.data.size() > 8 ? 8 : frame.data.size();
    std::vector<uint8_t> bits;  // one bit each: 0 dominant, 1 recessive
    bits.push_back(false);  // SOF
    if (frame.extended) {
        put_bits(bits, frame.id >> 18, 11);  // base id
        bits.push_back(true);                // SRR
        bits.push_back(true);                // IDE: extended
        put_bits(bits, frame.id & 0x3FFFF, 18);
        bits.push_back(frame.remote);        // RTR
        bits.push_back(false);               // r1
        bits.push_back(false);               // r0
    } else {
        put_bits(bits, frame.id & 0x7FF, 11);
        bits.push_back(frame.remote);  // RTR
        bits.push_back(false);         // IDE: standard
        bits.push_back(false);         // r0
    }
    put_bits(bits, static_cast<uint32_t>(length), 4);  // DLC
    if (!frame.remote)
        for (size_t i = 0; i < length; ++i) put_bits(bits, frame.data[i], 8);
    CanFrameBits result;
    result.crc = can_crc15(bits);
    put_bits(bits, result.crc, 15);
    // The stuffed part ends with the CRC: count the bits the sender inserts.
    int run = 0;
    uint8_t last = 0;
    for (size_t i = 0; i < bits.size(); ++i) {
        if (i > 0 && bits[i] == last) {
            ++run;
        } else {
            run = 1;
            last = bits[i];
        }
        if (run == 5) {
            ++result.stuff;
            last ^= 1;  // the stuff bit starts the next run
            run = 1;
        }
    }
    constexpr unsigned kUnstuffedTail = 1 + 2 + 7 + 3;  // CRC delimiter, ACK slot + delimiter, EOF, intermission
    result.unstuffed = static_cast<unsigned>(bits.size()) + kUnstuffedTail;
    return result;
}

std::chrono::nanoseconds can_frame_time(const CanWireFrame& frame, uint32_t bitrate) {
    const uint64_t bits = can_frame_bits(frame).total();
    return std::chrono::nanoseconds(bits * 1'000'000'000ull / (bitrate ? bitrate : 1));
}

uint32_t bitrate_from_timing(uint32_t fclk_can, uint32_t brp, uint32_t prop_seg, uint32_t phase_seg1, uint32_t phase_seg2) {
    const uint64_t quanta = 1ull + prop_seg + phase_seg1 + phase_seg2;
    if (brp == 0 || fclk_can == 0) return 0;
    return static_cast<uint32_t>(fclk_can / (uint64_t{brp} * quanta));
}

}  // namespace mcuflash::sim::gs_usb
