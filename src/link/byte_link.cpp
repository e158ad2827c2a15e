#include "link/byte_link.hpp"

#include <fmt/format.h>

#include <algorithm>

#include "core/error.hpp"
#include "core/interrupt.hpp"

namespace mcuflash::link {

void ByteLink::write(std::span<const uint8_t> bytes) {
    core::throw_if_interrupted();  // between exchanges: a write begins one
    check_time_limit();
    trace(TraceDirection::ToDevice, bytes);
    do_write(bytes);
}

size_t ByteLink::read_some(std::span<uint8_t> buffer, const core::Deadline& deadline) {
    check_time_limit();
    size_t n = do_read_some(buffer, deadline);
    if (n) trace(TraceDirection::FromDevice, buffer.first(n));
    return n;
}

void ByteLink::drain_input() {
    size_t dropped = do_drain_input();
    if (dropped && tracing()) trace(TraceDirection::Note, {}, fmt::format("dropped {} unread bytes", dropped));
}

void ByteLink::read_exact(std::span<uint8_t> buffer, const core::Deadline& deadline, const char* what) {
    size_t got = 0;
    while (got < buffer.size()) {
        size_t n = read_some(buffer.subspan(got), deadline);
        if (n == 0)
            throw core::Error(core::ErrorKind::Timeout,
                              fmt::format("{}: no answer from {} (got {} of {} bytes)", what, describe(), got,
                                          buffer.size()));
        got += n;
    }
}

uint32_t ByteLink::bytes_per_second() const {
    const auto s = settings();
    return std::max<uint32_t>(s.baud / (s.parity == Parity::None ? 10 : 11), 1);
}

}  // namespace mcuflash::link
