#pragma once
// ST's DfuSe memory layout strings, as DfuSe devices put them in their alternate settings' names:
//   "@Internal Flash  /0x08000000/04*016Kg,01*064Kg,07*128Kg"
// a name, then one or more "/ADDRESS/SEGMENTS" groups; a segment is COUNT*SIZE followed by a unit
// (' ' bytes, 'K', 'M') and a type letter whose low 3 bits say readable (1), erasable (2), writable (4).
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace mcuflash::protocol::dfu {

struct LayoutSegment {
    uint32_t address = 0;
    uint32_t unit_size = 0;  // one page/sector
    uint32_t count = 0;
    bool readable = false, erasable = false, writable = false;
    uint64_t end() const { return uint64_t(address) + uint64_t(unit_size) * count; }
};

struct MemoryLayout {
    std::string name;  // "Internal Flash"
    std::vector<LayoutSegment> segments;  // in address order
    // The segment holding `address`, if any.
    const LayoutSegment* segment_at(uint32_t address) const;
    uint64_t size() const;
};

// nullopt when `text` is not a DfuSe layout (plain DFU alt names).
std::optional<MemoryLayout> parse_layout(const std::string& text);

}  // namespace mcuflash::protocol::dfu
