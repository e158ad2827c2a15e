// libFuzzer entry point for what the STM32 HID bootloader client reads from a device: configuration
// descriptors (the HID interface's endpoints) and input reports (acknowledgements), and the command
// reports as the codec decodes them. Findings: a sanitizer report, any exception, an endpoint found
// outside the HID interface's rules, or a command report that does not decode back to its byte.
#include <cstdint>
#include <span>

#include "fuzz_check.hpp"
#include "link/hid_device.hpp"
#include "protocol/hid_stm32/codec.hpp"

using namespace mcuflash::protocol::hid_stm32;
using mcuflash::fuzz::require;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    const std::span<const uint8_t> input(data, size);
    if (auto endpoints = mcuflash::link::hid_endpoints(input)) {
        require(endpoints->in == 0 || (endpoints->in & 0x80), "the IN endpoint has the IN bit");
        require((endpoints->out & 0x80) == 0, "the OUT endpoint has no IN bit");
    }
    if (auto ack = decode_ack(input)) require(size >= kAckSize && (input[7] & 0xFE) == 0x02, "an ack is byte 7 = 2 or 3");
    if (auto command = decode_command(input)) {
        const auto again = command_report(static_cast<Command>(*command));
        require(decode_command(again) == command, "a command report round-trips");
    }
    if (size <= kPageSize) {
        const auto reports = page_reports(input);
        require(reports.size() == kReportsPerPage, "a page is 16 reports");
    }
    return 0;
}
