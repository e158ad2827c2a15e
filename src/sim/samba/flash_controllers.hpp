#pragma once
// Register models of the three flash controllers the SAM-BA chips have, acting on FlashMemory:
//  - SAMD21 NVMCTRL: commands in CTRLA, halfword ADDR, 64-byte page buffer, rows of 4 pages erased;
//  - SAMD51 NVMCTRL: commands in CTRLB, byte ADDR, 512-byte page buffer, 8 KiB blocks erased;
//  - SAM3/SAM4 EEFC: one controller per flash plane, commands in FCR with the 0x5A key, a page latch
//    per plane filled by stores into the plane, "erase and write page", lock bits and GPNVM bits.
// The CPU (the monitor, the word-copy applet, the Arduino bootloaders' own X/Y code) fills the page
// buffer or latch by storing into flash addresses, then starts a command; the controller is busy for
// the command's real duration and reports it through its ready flag. Commands on the bootloader's
// protected range are refused as BOOTPROT / lock bits refuse them (LOCKE).
//
// Register offsets and bits are written from the datasheets (SAM D21 "NVMCTRL", SAM D5x "NVMCTRL",
// SAM3X/SAM4E "EEFC"), not shared with protocol/samba, so a client mistake cannot hide behind them.
#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "sim/device.hpp"
#include "sim/flash_memory.hpp"

namespace mcuflash::sim::samba {

// Busy times. SAMD21: tFPP 2.5 ms is the datasheet maximum; for the row erase the maximum (tFRE,
// 6 ms) is not used: at 6 ms, X over the 992 application rows takes 5.95 s, longer than the 5 s bossac
// waits for its answer, yet `bossac -e -w` (what the Arduino IDE runs) works on the boards; 4 ms keeps
// a whole-application erase within it.
struct SamFlashTiming {
    static constexpr auto kD21RowErase = std::chrono::microseconds(4000);
    static constexpr auto kD21PageWrite = std::chrono::microseconds(2500);  // tFPP
    static constexpr auto kD51BlockErase = std::chrono::milliseconds(50);
    static constexpr auto kD51PageWrite = std::chrono::microseconds(2500);
    static constexpr auto kEefcEraseWritePage = std::chrono::microseconds(4000);
};

class FlashControllerModel {
public:
    explicit FlashControllerModel(FlashMemory& flash) : flash_(flash) {}
    virtual ~FlashControllerModel() = default;

    virtual std::string name() const = 0;
    // Whether `word_address` is one of the controller's registers.
    virtual bool decodes(uint32_t word_address) const = 0;
    virtual uint32_t read_register(uint32_t word_address, Clock::time_point now) = 0;
    // `byte_mask`: which bytes of the word the CPU wrote (0xFF for a byte store at offset 0, ...).
    virtual void write_register(uint32_t word_address, uint32_t value, uint32_t byte_mask, Clock::time_point now) = 0;
    // A CPU store into the flash address range: lands in the page buffer or latch, never in flash.
    virtual void store(uint32_t word_address, uint32_t value, uint32_t byte_mask, Clock::time_point now) = 0;

    // What the Arduino/Adafruit bootloaders' X and Y do on the CPU, through the same controller:
    // erase every erase unit from `address` to the end of flash, and program whole pages from bytes.
    // Both return when the controller is ready again (the CPU waits for it).
    virtual Clock::time_point erase_to_end(uint32_t address, Clock::time_point now) = 0;
    virtual Clock::time_point program_pages(uint32_t address, const std::vector<uint8_t>& data, Clock::time_point now) = 0;

    bool busy(Clock::time_point now) const { return now < busy_until_; }
    std::optional<Clock::time_point> busy_until(Clock::time_point now) const {
        return busy(now) ? std::optional(busy_until_) : std::nullopt;
    }
    void reset() { busy_until_ = {}; }

protected:
    void start_busy(Clock::duration busy, Clock::time_point now) { busy_until_ = std::max(busy_until_, now) + busy; }
    // Erases every `unit` from the one holding `address` to the end of flash (the protected ones stay);
    // returns when the controller is ready again.
    Clock::time_point erase_units_to_end(uint32_t address, uint32_t unit, Clock::time_point now);
    // Loads the bytes `byte_mask` selects of `value` into `buffer` at `offset` (word aligned).
    static void merge_word(std::vector<uint8_t>& buffer, uint32_t offset, uint32_t value, uint32_t byte_mask);

    FlashMemory& flash_;
    Clock::time_point busy_until_{};
};

// The NVM user row (SAMD21) / user page (SAMD51): fuses the bootloader and BOSSA read (BOOTPROT,
// BOD33, region lock bits). Read only here.
std::vector<uint8_t> samd21_user_row(uint32_t bootloader_size);
std::vector<uint8_t> samd51_user_page(uint32_t bootloader_size);

std::unique_ptr<FlashControllerModel> make_nvmctrl_d21(FlashMemory& flash, uint32_t page_size);
std::unique_ptr<FlashControllerModel> make_nvmctrl_d51(FlashMemory& flash, uint32_t page_size, uint32_t bootloader_size);

// EEFC: `planes` controllers 0x200 apart from 0x400E0A00; GPNVM bits live in plane 0's controller.
struct EefcConfig {
    uint32_t planes = 1;
    uint32_t lock_regions = 0;  // over the whole flash
    uint32_t gpnvm_bits = 2;
    uint32_t flash_id = 0;      // what GETD reports first
    bool timing = true;         // erase-all keeps the controller busy (the rest follows FlashMemory's timing)
};
std::unique_ptr<FlashControllerModel> make_eefc(FlashMemory& flash, uint32_t page_size, const EefcConfig& config);
// GPNVM bits of an EEFC model (bit 1: boot from flash instead of the ROM monitor).
uint32_t eefc_gpnvm(const FlashControllerModel& eefc);
void eefc_set_gpnvm(FlashControllerModel& eefc, uint32_t bits);

}  // namespace mcuflash::sim::samba
