// libFuzzer entry point for what HalfKay's codec reads from a device or a host: the HID report
// descriptor the Teensy serves (its output report size), and block reports as the simulator decodes
// them. Findings: a sanitizer report, any exception, or a block report that does not decode back to
// its address and bytes.
#include <cstdint>
#include <span>

#include "fuzz_check.hpp"
#include "protocol/halfkay/codec.hpp"

using namespace mcuflash::protocol::halfkay;
using mcuflash::fuzz::require;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    const std::span<const uint8_t> input(data, size);
    output_report_bytes(input);
    for (const auto& teensy : teensies()) {
        if (auto report = decode_report(teensy, input); report && !report->boot) {
            require(report->block.size() == teensy.block_size, "a decoded block has the block size");
            // Encoding what was decoded gives the same report back, where the address is one a
            // block may have.
            if (report->address % teensy.block_size == 0 && report->address < teensy.code_size) {
                const auto again = block_report(teensy, report->address, report->block);
                const auto decoded = decode_report(teensy, again);
                require(decoded && !decoded->boot && decoded->address == report->address, "a block report round-trips");
            }
        }
    }
    return 0;
}
