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

// How the bootloader's rows are kept from the NVM controller.
enum class SamBootProtection {
    // A protected FlashMemory range of the bootloader's size (the SAM-BA devices).
    FixedRange,
    // SAMD/SAMC as a debugger sees them: BOOTPROT in the NVM user row, latched at every reset, which
    // the debugger can change through NVMCTRL (EAR/WAP on D21/C21, EP/WQW/WP on D51); the DSU with its
    // chip erase (which ignores BOOTPROT) and its CoreSight ROM table.
    UserRow,
};

struct BusFault {
    uint32_t address = 0;
    bool write = false;
};

// Fixed addresses, from the datasheets and the ARMv6-M/ARMv7-M architecture manuals.
namespace address {
constexpr uint32_t kSram = 0x20000000;
constexpr uint32_t kCpuId = 0xE000ED00;
constexpr uint32_t kAircr = 0xE000ED0C;
constexpr uint32_t kDsu = 0x41002000;
constexpr uint32_t kDsuDid = 0x41002018;
constexpr uint32_t kDsuRomTable = 0x41003000;
constexpr uint32_t kNvmUserRow = 0x00804000;
}  // namespace address

class SamChip {
public:
    // `bootloader_size`: flash the bootloader keeps at the flash base (0 for a ROM monitor); it is
    // protected as BOOTPROT protects it and filled with the placeholder.
    SamChip(const targets::Chip& chip, uint32_t bootloader_size, const std::string& bootloader_name, bool timing,
            SamBootProtection protection = SamBootProtection::FixedRange);

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
    std::optional<Clock::time_point> busy_until(Clock::time_point now) const;

    // SamBootProtection::UserRow only: the bytes from the flash base BOOTPROT protected at the last
    // reset, and the NVM user row (user page on D51) as it is now.
    uint32_t bootprot_size() const { return bootprot_size_; }
    const std::vector<uint8_t>& user_row() const { return user_row_; }

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
    // SamBootProtection::UserRow: the DSU, the user row through NVMCTRL and BOOTPROT. nullopt / false:
    // not one of theirs, the plain model goes on.
    std::optional<uint32_t> debug_read_word(uint32_t word_address, Clock::time_point now);
    bool debug_write_word(uint32_t word_address, uint32_t value, uint32_t byte_mask, Clock::time_point now);
    bool nvm_command(uint32_t command, Clock::time_point now);
    uint32_t nvm_address() const;
    bool bootprot_covers(uint32_t address) const { return address - chip_.flash_base < bootprot_size_; }
    uint32_t user_row_page_size() const;
    void program_user_row(uint32_t offset, uint32_t length, Clock::time_point now);
    void refuse_nvm_command(uint32_t error_bits);
    uint32_t latched_bootprot_size() const;

    const targets::Chip chip_;
    SamController controller_kind_;
    uint32_t bootloader_size_;
    FlashMemory flash_;
    std::unique_ptr<FlashControllerModel> controller_;
    std::vector<Ram> ram_;
    std::vector<uint8_t> user_row_;  // SAMD only
    bool boot_from_flash_ = false;    // SAM3/SAM4: what address 0 maps to, latched at reset
    bool reset_requested_ = false;

    SamBootProtection protection_ = SamBootProtection::FixedRange;
    bool timing_ = true;
    uint32_t bootprot_size_ = 0;
    std::vector<uint8_t> user_row_buffer_;  // the page buffer as far as stores into the user row fill it
    uint32_t nvm_errors_ = 0;               // LOCKE/PROGE the additions raised (D21 STATUS, D51 INTFLAG bits)
    Clock::time_point user_row_busy_until_{};
    uint8_t dsu_status_a_ = 0;
    Clock::time_point chip_erase_until_{};
    bool chip_erase_pending_ = false;
    uint32_t dsu_registers_[5] = {};  // ADDR, LENGTH, DATA, DCC0, DCC1
};

}  // namespace mcuflash::sim::samba
