#pragma once
// One driver per flash controller, each driving the controller's registers through the monitor's
// word commands (what BOSSA's D2xNvmFlash, D5xNvmFlash and EefcFlash do).
#include <cstdint>
#include <memory>
#include <optional>
#include <string>

#include "protocol/samba/monitor.hpp"
#include "protocol/samba/word_copy_applet.hpp"

namespace mcuflash::protocol::samba {

// Where things are on one chip.
struct FlashGeometry {
    uint32_t flash_base = 0;
    uint32_t flash_size = 0;
    uint32_t page_size = 0;  // the program unit
    uint32_t planes = 1;     // EEFC: flash halves with a controller each
    uint32_t erase_unit = 0; // bytes one erase clears (a SAMD21 row, a SAMD51 block); 0: EEFC
};

class FlashController {
public:
    virtual ~FlashController() = default;

    virtual std::string name() const = 0;  // "SAMD21 NVMCTRL"
    // Bytes erased at once (a SAMD21 row, a SAMD51 block); 0 where writing a page erases it (EEFC EWP).
    virtual uint32_t erase_unit() const = 0;
    // Erases whole erase units covering [address, address + length).
    virtual void erase(uint32_t address, uint32_t length) = 0;
    // Programs whole pages at `flash` from `sram`, where the data already is, with the applet copying
    // it into the page buffer. Flash with erase units must be erased.
    virtual void program_pages(uint32_t flash, uint32_t sram, uint32_t length, WordCopyApplet& applet) = 0;
    // Where reads through R return flash contents; false: go through the applet (SAM3 ROM).
    virtual bool monitor_reads_flash() const { return true; }
    // Sets the boot-from-flash option (EEFC GPNVM bit) when the chip has one and it is clear;
    // returns whether it was changed.
    virtual bool set_boot_from_flash() { return false; }
    // Resets the chip through its reset controller (the bootloader then starts the application).
    virtual void reset() = 0;
    // Bytes at the start of flash the chip itself keeps from erases and writes (the SAMD's BOOTPROT
    // fuse, read from the NVM user row); nullopt where the controller has no such fuse.
    virtual std::optional<uint32_t> boot_protection() { return std::nullopt; }
    // Extra facts for `info`.
    virtual std::vector<std::pair<std::string, std::string>> details() { return {}; }
};

std::unique_ptr<FlashController> make_nvmctrl_d21(Monitor& monitor, const FlashGeometry& geometry);
std::unique_ptr<FlashController> make_nvmctrl_d51(Monitor& monitor, const FlashGeometry& geometry);
// `reset_controller`: the RSTC control register (SAM3X 0x400E1A00, SAM4E 0x400E1800).
std::unique_ptr<FlashController> make_eefc(Monitor& monitor, const FlashGeometry& geometry, std::string family,
                                           uint32_t reset_controller, bool rom_reads_flash_as_zero);

}  // namespace mcuflash::protocol::samba
