// libFuzzer entry point for STM32 ROM bootloader answers (protocol/stm32uart/codec.hpp, AN3155).
// The input is what the ROM sent between the ACKs: Get's body goes to parse_get, Get ID's to
// parse_get_id. The client reads Get's body as N and then N+1 bytes and Get ID's as 3 bytes, so the
// input is also split that way (Get's body, then Get ID's), as a stream would be.
// Findings: a sanitizer report, any exception (the parsers document none: nullopt when malformed),
// or a parse that disagrees with the AN3155 layout.
#include <algorithm>
#include <cstdint>
#include <span>

#include "fuzz_check.hpp"
#include "protocol/stm32uart/codec.hpp"

using namespace mcuflash;
using namespace mcuflash::protocol::stm32uart;
using fuzz::require;

namespace {

void check_get(std::span<const uint8_t> body) {
    auto parsed = parse_get(body);
    if (!parsed) return;
    require(body.size() >= 2 && body.size() == size_t(body[0]) + 2, "Get: N, version, N command codes");
    require(parsed->version == body[1], "Get: the version is the second byte");
    require(parsed->commands.size() == body[0], "Get: N command codes");
    for (uint8_t code : parsed->commands) {
        require(parsed->has(code), "Get: every listed command is had");
        require(!command_name(code).empty(), "command_name has words for every code");
    }
    require(!version_text(parsed->version).empty(), "version_text has words for every version");
}

void check_get_id(std::span<const uint8_t> body) {
    auto pid = parse_get_id(body);
    if (!pid) return;
    require(body.size() == 3 && body[0] == 1, "Get ID: N=1, then two bytes");
    require(*pid == (body[1] << 8 | body[2]), "Get ID: the product ID is big-endian");
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    const std::span<const uint8_t> input(data, size);
    check_get(input);
    check_get_id(input);
    // As a stream: Get's N and N+1 more bytes, then Get ID's 3 bytes.
    if (size >= 1) {
        const size_t get_size = std::min(size, size_t(data[0]) + 2);
        check_get(input.first(get_size));
        const auto rest = input.subspan(get_size);
        check_get_id(rest.first(std::min<size_t>(rest.size(), 3)));
    }
    return 0;
}
