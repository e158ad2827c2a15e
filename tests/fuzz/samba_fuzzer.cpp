// libFuzzer entry point for SAM-BA monitor answers (protocol/samba/codec.hpp). The same input is
// read as each answer the client decodes: the version line (parse_extensions), the Z command's
// checksum answer (parse_checksum_answer) and an XMODEM-CRC block (parse_xmodem_block, expecting the
// number the block carries, then another).
// Findings: a sanitizer report, any exception (the parsers document none), or a parse that does not
// match what the codec would encode.
#include <fmt/format.h>

#include <algorithm>
#include <cstdint>
#include <span>
#include <string>

#include "fuzz_check.hpp"
#include "protocol/samba/codec.hpp"

using namespace mcuflash;
using namespace mcuflash::protocol::samba;
using fuzz::require;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    const std::span<const uint8_t> input(data, size);
    const std::string text(reinterpret_cast<const char*>(data), size);

    const Extensions ext = parse_extensions(text);
    if (text.find("[Arduino:") == std::string::npos)
        require(!ext.erase && !ext.buffered_write && !ext.checksum, "no [Arduino:...] tag, no extensions");

    if (auto value = parse_checksum_answer(text)) {
        require(size >= 10 && text[0] == 'Z' && text[9] == '#', "a checksum answer is Z, 8 hex digits, #");
        require(parse_checksum_answer(fmt::format("Z{:08X}#\n\r", *value)) == value, "checksum answers round-trip");
    }

    if (size >= 2) {
        const uint8_t number = data[1];
        if (auto block = parse_xmodem_block(input, number)) {
            require(block->size() == kXmodemBlock, "an XMODEM block carries 128 bytes");
            const Bytes again = xmodem_block(number, *block);
            require(std::equal(again.begin(), again.end(), input.begin(), input.end()),
                    "a well-formed block is exactly what xmodem_block makes of its data");
        }
        require(!parse_xmodem_block(input, static_cast<uint8_t>(number + 1)), "a block with another number is refused");
    }
    return 0;
}
