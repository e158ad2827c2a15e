#include "link/byte_link.hpp"

#include <fmt/format.h>

#include "core/error.hpp"

namespace mcuflash::link {

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

}  // namespace mcuflash::link
