// SAMD21/SAMC21/SAMD51 as the AHB-AP sees them: the SamChip the SAM-BA simulator runs on, with the
// parts only a debugger reaches (DSU, user row writes, BOOTPROT from the user row).
#include <fmt/format.h>

#include "sim/samba/sam_chip.hpp"
#include "sim/swd/chip_bus.hpp"

namespace mcuflash::sim::swd {

namespace {

class SamBus : public ChipBus {
public:
    SamBus(const targets::Chip& chip, const ChipBusOptions& options)
        : chip_(chip, options.bootloader_size, options.bootloader_name, options.timing,
                samba::SamBootProtection::UserRow) {}

    std::optional<uint32_t> read(uint32_t address, unsigned size, Clock::time_point now) override {
        try {
            return chip_.read(address, size, now);
        } catch (const samba::BusFault&) {
            return std::nullopt;
        }
    }

    bool write(uint32_t address, uint32_t value, unsigned size, Clock::time_point now) override {
        try {
            chip_.write(address, value, size, now);
            return true;
        } catch (const samba::BusFault&) {
            return false;
        }
    }

    Clock::time_point ready_at(uint32_t address, Clock::time_point now) const override {
        // The NVM controller stalls flash accesses while it writes or erases (OpenOCD's at91samd
        // notes it: "Access through AHB is stalled while flash is being programmed").
        const bool flash_access = chip_.flash().contains(address, 1) ||
                                  (address >= samba::address::kNvmUserRow && address < samba::address::kNvmUserRow + 0x200);
        if (!flash_access) return now;
        auto busy = chip_.busy_until(now);
        return busy ? *busy : now;
    }

    void reset(Clock::time_point) override { chip_.reset(); }
    uint32_t vector_table() const override { return chip_.chip().flash_base; }
    uint32_t rom_table() const override { return samba::address::kDsuRomTable; }
    FlashMemory& flash() override { return chip_.flash(); }

    std::string describe() const override {
        return fmt::format("{} over SWD, {} KiB flash, BOOTPROT {} bytes", chip_.chip().description,
                           chip_.flash().size() / 1024, chip_.bootprot_size());
    }

private:
    samba::SamChip chip_;
};

}  // namespace

std::unique_ptr<ChipBus> make_sam_bus(const targets::Chip& chip, const ChipBusOptions& options) {
    return std::make_unique<SamBus>(chip, options);
}

}  // namespace mcuflash::sim::swd
