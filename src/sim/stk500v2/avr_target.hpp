#pragma once
// A classic ATmega as an ISP programmer sees it (datasheet "Serial Downloading" / "Memory
// Programming"): flash, EEPROM, fuses, lock bits and signature behind the 4-byte serial programming
// instructions, with their real effects:
// - flash is programmed a page at a time from a page buffer and never erased by a page write: only
//   Chip Erase (flash, EEPROM unless EESAVE, and the lock bits) makes it writable again;
// - lock bits can only be programmed (1 -> 0); lock mode 2 (LB = 10) stops flash, EEPROM and fuse
//   programming, mode 3 (LB = 00) stops verification too (reads return 0xFF here);
// - SPIEN cannot be changed through ISP; fuses take effect when the chip leaves programming mode.
//   Then RSTDISBL or DWEN programmed (atmega168/328P), or a clock source the board's 16 MHz crystal
//   cannot drive (external clock, 128 kHz RC, low-frequency crystal) leave a chip that no longer
//   enters programming mode: bricked, as on a real board, until a high-voltage programmer.
// With a flash file, the fuses and lock byte live beside it in "<file>.fuses".
#include <array>
#include <filesystem>
#include <optional>
#include <string>

#include "sim/flash_memory.hpp"
#include "targets/knowledge.hpp"

namespace mcuflash::sim::stk500v2 {

struct AvrFuseState {
    uint8_t low = 0xFF, high = 0xFF, extended = 0xFF, lock = 0xFF;
    bool operator==(const AvrFuseState&) const = default;
};

class AvrTarget {
public:
    AvrTarget(const targets::Chip& chip, bool timing, const std::optional<std::filesystem::path>& flash_file);

    // RESET held low, then "Programming Enable" (AC 53 00 00): true when the chip answers (echoes 0x53).
    bool enter_programming();
    // RESET released: the chip runs, and the fuses written meanwhile take effect.
    void leave_programming();
    bool programming() const { return programming_; }

    // One serial programming instruction; returns the four bytes the chip shifts out. `busy` grows
    // by the time the instruction keeps the chip busy.
    std::array<uint8_t, 4> instruction(const std::array<uint8_t, 4>& in, Clock::duration& busy);

    FlashMemory& flash() { return flash_; }
    FlashMemory& eeprom() { return eeprom_; }
    const AvrFuseState& fuses() const { return fuses_; }
    const AvrFuseState& fuses_in_effect() const { return latched_; }
    // Why the chip no longer enters programming mode ("" while it does).
    const std::string& bricked() const { return bricked_; }
    const targets::Chip& chip() const { return chip_; }

private:
    uint8_t lock_mode() const { return fuses_.lock & 0x03; }  // 3 no lock, 2 no programming, 0 no verify
    bool may_program() const { return lock_mode() == 0x03; }
    bool may_read() const { return lock_mode() != 0x00; }
    uint32_t word_address(uint8_t high, uint8_t low) const;
    void write_fuse(uint8_t which, uint8_t value, Clock::duration& busy);
    void chip_erase(Clock::duration& busy);
    void save_fuses() const;
    std::string why_dead(const AvrFuseState& fuses) const;

    const targets::Chip chip_;
    bool timing_;
    FlashMemory flash_;
    FlashMemory eeprom_;
    std::vector<uint8_t> page_buffer_;
    std::vector<std::pair<uint32_t, uint8_t>> eeprom_buffer_;
    AvrFuseState fuses_;
    AvrFuseState latched_;
    uint8_t extended_address_ = 0;
    bool programming_ = false;
    std::string bricked_;
    std::optional<std::filesystem::path> fuse_file_;
};

}  // namespace mcuflash::sim::stk500v2
