#pragma once
// What the SWD tests share: random images, the simulated flash's bytes, and a failure's kind.
#include <gtest/gtest.h>

#include <fmt/format.h>

#include <optional>
#include <random>
#include <string>
#include <vector>

#include "core/error.hpp"
#include "sim/flash_memory.hpp"

namespace mcuflash::swd_test {

inline std::vector<uint8_t> random_bytes(size_t size, unsigned seed) {
    std::mt19937 rng(seed);
    std::vector<uint8_t> bytes(size);
    for (auto& b : bytes) b = static_cast<uint8_t>(rng());
    return bytes;
}

// The simulated flash's bytes (read from the model, not through the probe).
inline std::vector<uint8_t> flash_bytes(sim::FlashMemory& flash, uint32_t address, size_t length) {
    std::vector<uint8_t> out(length);
    for (size_t i = 0; i < length; ++i) out[i] = flash.at(address + static_cast<uint32_t>(i));
    return out;
}

// Runs `operation`, which must fail with a core::Error with a message; returns its kind (nullopt: it
// did not fail). `message` gets the message and the hint.
template <class Operation>
std::optional<core::ErrorKind> failure_of(Operation&& operation, std::string* message = nullptr) {
    try {
        operation();
    } catch (const core::Error& e) {
        EXPECT_FALSE(std::string(e.what()).empty());
        if (message) *message = e.full_message() + " | hint: " + e.hint();
        return e.kind();
    }
    return std::nullopt;
}

}  // namespace mcuflash::swd_test
