#pragma once
// The chip behind the AHB-AP: its memory map, SRAM, flash and flash controller, identification
// registers. The Cortex-M core's own debug registers (SCS, ROM table, DWT, FPB) sit in front of it
// (cortex_m_debug.hpp); everything else the MEM-AP reaches comes here.
#include <cstdint>
#include <memory>
#include <optional>
#include <string>

#include "core/deadline.hpp"
#include "sim/device.hpp"
#include "sim/flash_memory.hpp"
#include "targets/knowledge.hpp"

namespace mcuflash::sim::swd {

using core::Clock;

class ChipBus {
public:
    virtual ~ChipBus() = default;

    // An AHB access of 1, 2 or 4 bytes at an address aligned to its size; the value sits in the low
    // bits. nullopt / false: the chip answered with a bus error (nothing there, or refused).
    virtual std::optional<uint32_t> read(uint32_t address, unsigned size, Clock::time_point now) = 0;
    virtual bool write(uint32_t address, uint32_t value, unsigned size, Clock::time_point now) = 0;
    // When an access to `address` can complete: later than `now` while the flash controller stalls
    // the bus (a flash access while it programs or erases).
    virtual Clock::time_point ready_at(uint32_t address, Clock::time_point now) const = 0;
    // A system reset (SYSRESETREQ, nRESET, brown-out): the flash controller locks and goes idle,
    // option bytes / BOOTPROT are loaded again.
    virtual void reset(Clock::time_point now) = 0;
    virtual void tick(Clock::time_point now) { (void)now; }

    // Where the core fetches its vector table after reset.
    virtual uint32_t vector_table() const { return 0; }
    // The MEM-AP's BASE: where the first ROM table is (SAMD: the DSU's, which points at the core's).
    virtual uint32_t rom_table() const { return 0xE00FF000; }

    virtual FlashMemory& flash() = 0;
    virtual std::string describe() const = 0;
};

struct ChipBusOptions {
    uint32_t bootloader_size = 0;  // bytes at the flash base holding a placeholder bootloader
    std::string bootloader_name;
    bool timing = true;
};

std::unique_ptr<ChipBus> make_stm32f1_bus(const targets::Chip& chip, const ChipBusOptions& options);
std::unique_ptr<ChipBus> make_stm32f4_bus(const targets::Chip& chip, const ChipBusOptions& options);
std::unique_ptr<ChipBus> make_sam_bus(const targets::Chip& chip, const ChipBusOptions& options);

}  // namespace mcuflash::sim::swd
