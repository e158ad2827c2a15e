// libFuzzer entry point for DfuSe memory layout strings (protocol/dfu/layout.hpp), as a device names
// its alternate settings: parse_layout, then size() and segment_at() on what it returns.
// Findings: a sanitizer report, any exception (parse_layout documents none: nullopt when the text is
// not a layout), a segment reaching past 4 GiB, or segment_at disagreeing with the segment list.
#include <cstdint>
#include <string>
#include <vector>

#include "fuzz_check.hpp"
#include "protocol/dfu/layout.hpp"

using namespace mcuflash;
using namespace mcuflash::protocol::dfu;
using fuzz::require;

namespace {

// What segment_at must answer: the first segment holding the address.
const LayoutSegment* first_holding(const MemoryLayout& layout, uint32_t address) {
    for (const auto& s : layout.segments)
        if (address >= s.address && address < s.end()) return &s;
    return nullptr;
}

void probe(const MemoryLayout& layout, uint64_t address) {
    if (address > 0xFFFFFFFFull) return;
    const auto a = static_cast<uint32_t>(address);
    require(layout.segment_at(a) == first_holding(layout, a), "segment_at finds the first segment holding the address");
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    const std::string text(reinterpret_cast<const char*>(data), size);
    const auto layout = parse_layout(text);
    if (!layout) return 0;

    require(!text.empty() && text[0] == '@', "a layout starts with '@'");
    require(!layout->segments.empty(), "a layout has at least one segment");
    uint64_t total = 0;
    for (const auto& s : layout->segments) {
        require(s.unit_size > 0, "a segment's unit has a size");
        require(s.end() <= 0x100000000ull, "a segment ends inside 4 GiB");
        total += uint64_t(s.unit_size) * s.count;
    }
    require(layout->size() == total, "size() adds up the segments");

    probe(*layout, 0);
    probe(*layout, 0xFFFFFFFFu);
    for (const auto& s : layout->segments) {
        probe(*layout, s.address);
        if (s.address) probe(*layout, s.address - 1ull);
        probe(*layout, s.end());
        if (s.end() > s.address) probe(*layout, s.end() - 1);
        probe(*layout, s.address + uint64_t(s.unit_size) * (s.count / 2));
    }
    return 0;
}
