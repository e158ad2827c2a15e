#pragma once
// Internal: unsigned integers from and to bytes in either order, shared by all parsers.
#include <cstdint>
#include <span>
#include <vector>

namespace mcuflash::image {

inline uint64_t read_big_endian(std::span<const uint8_t> bytes) {
    uint64_t value = 0;
    for (uint8_t byte : bytes) value = value << 8 | byte;
    return value;
}

inline uint64_t read_little_endian(std::span<const uint8_t> bytes) {
    uint64_t value = 0;
    for (size_t i = bytes.size(); i-- > 0;) value = value << 8 | bytes[i];
    return value;
}

// The low `width` bytes of `value`, most significant first.
inline std::vector<uint8_t> big_endian_bytes(uint64_t value, size_t width) {
    std::vector<uint8_t> bytes(width);
    for (size_t i = width; i-- > 0; value >>= 8) bytes[i] = static_cast<uint8_t>(value);
    return bytes;
}

}  // namespace mcuflash::image
