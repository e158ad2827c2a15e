#pragma once
// Programming a drive bootloader's flash as the drive's bootloaders do it: each erase unit is erased
// the first time this update writes into it (what the rest of the unit held is gone, as on the
// chip), then the bytes are programmed in the flash's write units.
#include <set>
#include <span>

#include "sim/flash_memory.hpp"

namespace mcuflash::sim::msc {

class FlashWriter {
public:
    explicit FlashWriter(FlashMemory& flash) : flash_(flash) {}
    // A new update begins: every unit gets erased again before its first write.
    void restart() { erased_.clear(); }
    // Writes `data` at `address` (whole write units); false when the flash refused (a protected
    // range, outside the flash). `busy` grows by the time the chip takes.
    bool write(uint32_t address, std::span<const uint8_t> data, Clock::duration& busy) {
        uint64_t at = address;
        const uint64_t end = uint64_t(address) + data.size();
        while (at < end) {
            auto unit = flash_.erase_unit_at(uint32_t(at));
            if (!unit) return false;
            if (!erased_.count(unit->address)) {
                auto outcome = flash_.erase(unit->address, unit->size);
                if (!outcome.ok()) return false;
                busy += outcome.busy;
                erased_.insert(unit->address);
            }
            at = uint64_t(unit->address) + unit->size;
        }
        auto outcome = flash_.program(address, data);
        busy += outcome.busy;
        return outcome.ok();
    }

private:
    FlashMemory& flash_;
    std::set<uint32_t> erased_;
};

}  // namespace mcuflash::sim::msc
