#pragma once
// The parts of an Atmel SAM chip a SAM-BA monitor reaches through its memory commands: the bus with
// flash (at the chip's flash base), SRAM, the boot ROM (SAM3/SAM4), the NVM user row (SAMD), the
// identification registers (CPUID, DSU DID or CHIPID), the flash controller's registers and the two
// ways software resets the chip (Cortex-M AIRCR, SAM3/SAM4 RSTC).
//
// An access to an address the chip does not decode is a HardFault on a Cortex-M: BusFault is thrown,
// and the monitor is gone until the next reset. Unmodelled peripheral registers read as 0 and ignore
// writes, as reserved registers inside a peripheral bridge do.
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "sim/device.hpp"
#include "sim/flash_memory.hpp"
#include "sim/samba/flash_controllers.hpp"
#include "targets/knowledge.hpp"

namespace mcuflash::sim::samba {

// Which flash controller model the chip has (data/chips.toml sam.controller).
enum class SamController { NvmctrlD21, NvmctrlD51, Eefc };

struct BusFault {
    uint32_t address = 0;
    bool write = false;
};

// Fixed addresses, from the datasheets and the ARMv6-M/ARMv7-M architecture manuals.
namespace address {
constexpr uint32_t kSram = 0x20000000;
constexpr uint32_t kCpuId = 0xE000ED00;
constexpr uint32_t kAircr = 0xE000ED0C;
constexpr uint32_t kDsuDid = 0x41002018;
constexpr uint32_t kNvmUserRow = 0x00804000;
}  // namespace address

class SamChip {
public:
    // `bootloader_size`: flash the bootloader keeps at the flash base (0 for a ROM monitor); it is
    // protected as BOOTPROT protects it and filled with the placeholder.
    SamChip(const targets::Chip& chip, uint32_t bootloader_size, const std::string& bootloader_name, bool timing);

    const targets::Chip& chip() const { return chip_; }
    const targets::SamFacts& facts() const { return *chip_.sam; }
    FlashMemory& flash() { return flash_; }
    const FlashMemory& flash() const { return flash_; }
    FlashControllerModel& controller() { return *controller_; }
    uint32_t app_start() const { return chip_.flash_base + bootloader_size_; }
    bool has_rom_monitor() const { return facts().rom != 0; }
    // SRAM above the monitor's own variables where X/Y/S-buffers and applets go (BOSSA's user area).
    uint32_t sram_size() const;

    // CPU accesses of 1, 2 or 4 bytes (little-endian). Throw BusFault.
    uint32_t read(uint32_t address, unsigned size, Clock::time_point now);
    void write(uint32_t address, uint32_t value, unsigned size, Clock::time_point now);

    // A reset request written by software (AIRCR SYSRESETREQ, RSTC PROCRST) since the last call.
    bool take_reset_request() { return std::exchange(reset_requested_, false); }
    // What a reset does to the chip: the flash controller goes idle, the boot memory is mapped again.
    void reset();
    // Whether the chip starts the application after a software reset: SAMD bootloaders start it when
    // its first word is programmed; SAM3/SAM4 boot from flash when GPNVM bit 1 is set.
    bool starts_application() const;
    uint32_t gpnvm() const;
    // What the application's 1200-baud touch does on SAM3/SAM4: clear GPNVM bit 1 (boot from ROM).
    void boot_from_rom();
    std::optional<Clock::time_point> busy_until(Clock::time_point now) const { return controller_->busy_until(now); }

    uint32_t cpuid() const { return facts().cpuid; }
    uint32_t identity() const;            // DSU DID (SAMD) or CHIPID CIDR (SAM3/SAM4)
    uint32_t identity_extension() const;  // CHIPID EXID

private:
    struct Ram {
        uint32_t base = 0;
        std::vector<uint8_t> bytes;
        bool contains(uint32_t a) const { return a >= base && a - base < bytes.size(); }
    };

    uint32_t read_word(uint32_t word_address, Clock::time_point now);
    void write_word(uint32_t word_address, uint32_t value, uint32_t byte_mask, Clock::time_point now);
    uint32_t rom_word(uint32_t offset) const;
    bool in_peripheral_space(uint32_t a) const;

    const targets::Chip chip_;
    SamController controller_kind_;
    uint32_t bootloader_size_;
    FlashMemory flash_;
    std::unique_ptr<FlashControllerModel> controller_;
    std::vector<Ram> ram_;
    std::vector<uint8_t> user_row_;  // SAMD only
    bool boot_from_flash_ = false;    // SAM3/SAM4: what address 0 maps to, latched at reset
    bool reset_requested_ = false;
};

}  // namespace mcuflash::sim::samba
