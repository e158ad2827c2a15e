// libFuzzer entry point for STK500v1 answers (protocol/stk500v1/codec.hpp). The input is what the
// bootloader sent: the client reads reply_size(n) bytes and hands them to check_reply, so every
// prefix is an answer some command could have received.
// Findings: a sanitizer report, any exception (check_reply documents none), or a verdict that
// disagrees with the frame rule (0x14, data, 0x10).
#include <cstdint>
#include <span>

#include "fuzz_check.hpp"
#include "protocol/stk500v1/codec.hpp"

using namespace mcuflash;
using namespace mcuflash::protocol::stk500v1;
using fuzz::require;

namespace {
constexpr size_t kMaxPrefixes = 300;  // a 256-byte READ_PAGE answer plus room
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    const std::span<const uint8_t> stream(data, size);
    for (size_t n = 0; n <= size && n <= kMaxPrefixes; ++n) {
        const auto reply = stream.first(n);
        const auto problem = check_reply(reply);
        const bool good = n >= 2 && reply.front() == resp::kInSync && reply.back() == resp::kOk;
        require(good == !problem.has_value(), "check_reply accepts exactly 0x14 ... 0x10");
        require(!problem || !problem->empty(), "a rejection says why");
        if (n >= 2) require(reply_size(n - 2) == n, "reply_size counts INSYNC and OK");
    }
    if (size) require(!describe_status(data[0]).empty(), "describe_status has words for every byte");
    return 0;
}
