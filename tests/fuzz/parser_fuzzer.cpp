// libFuzzer entry point for one image parser, chosen at build time by MCUFLASH_FUZZ_FORMAT.
// Findings: a sanitizer report, any exception other than core::Error, or (for formats mcuflash also
// writes) an image that does not survive being written and read back.
#include <cstdint>
#include <cstdlib>
#include <sstream>

#include "core/error.hpp"
#include "image/format.hpp"

using namespace mcuflash;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    const image::FormatHandler& format = image::handler(image::Format::MCUFLASH_FUZZ_FORMAT);
    image::Image parsed;
    try {
        parsed = format.parse({data, size}, {}, "fuzz-input");
    } catch (const core::Error&) {
        return 0;  // rejected with a message: the expected outcome for most inputs
    }
    if (!format.write) return 0;

    std::ostringstream written;
    format.write(parsed, written);
    const std::string text = std::move(written).str();
    const auto* bytes = reinterpret_cast<const uint8_t*>(text.data());
    const image::Image again = format.parse({bytes, text.size()}, {}, "round-trip");  // must not throw
    if (image::Format::MCUFLASH_FUZZ_FORMAT == image::Format::Uf2) {
        // UF2 carries whole 256-byte blocks: what was read must come back at its addresses, inside
        // blocks padded around it.
        for (const auto& [address, bytes] : parsed.runs()) {
            const uint64_t end = address + bytes.size();  // may be 2^32: a block at the top of memory
            if (again.flatten(address, end, 0x00) != bytes || again.flatten(address, end, 0xFF) != bytes) std::abort();
        }
        return 0;
    }
    if (again.runs() != parsed.runs() || again.entry != parsed.entry) std::abort();
    return 0;
}
