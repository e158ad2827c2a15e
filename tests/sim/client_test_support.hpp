#pragma once
// What the client-against-simulator tests share: images of random bytes and checking that a
// simulated flash holds an image.
#include <random>

#include "image/image.hpp"
#include "sim/flash_memory.hpp"
#include "sim/in_process_link.hpp"

namespace mcuflash::test {

inline image::Image random_image(uint32_t address, size_t size, unsigned seed) {
    std::mt19937 rng(seed);
    std::vector<uint8_t> data(size);
    for (auto& b : data) b = static_cast<uint8_t>(rng());
    image::Image img;
    img.add(address, data, "test");
    return img;
}

inline bool flash_holds(const sim::FlashMemory& flash, const image::Image& img) {
    for (const auto& [address, bytes] : img.runs())
        for (size_t i = 0; i < bytes.size(); ++i)
            if (flash.at(address + static_cast<uint32_t>(i)) != bytes[i]) return false;
    return true;
}

inline bool flash_holds(sim::InProcessLink& link, const image::Image& img) { return flash_holds(link.flash(), img); }

}  // namespace mcuflash::test
