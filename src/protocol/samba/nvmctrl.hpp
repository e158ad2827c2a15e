#pragma once
// What the SAMD21 and SAMD51 NVMCTRL drivers share (BOSSA's D2xNvmFlash and D5xNvmFlash do the same):
// the erase loop over whole erase units, the page loop (page buffer clear, the applet's copy, write
// page), ADDR read back before each command, and the wait for the controller. A family gives its
// registers and commands as data, and how it reads READY and the error flags (nvmctrl_d21.cpp,
// nvmctrl_d51.cpp).
#include <optional>
#include <string>
#include <utility>

#include "protocol/samba/flash_controller.hpp"

namespace mcuflash::protocol::samba {

struct NvmctrlFamily {
    std::string name;             // "SAMD21 NVMCTRL"
    std::string unit;             // the erase unit's word: "row", "block"
    std::string ready;            // the flag that says the controller is idle: "INTFLAG.READY"
    int ready_polls = 0;          // reads of it before giving up
    uint32_t command_register = 0;
    uint32_t address_register = 0;
    uint32_t address_shift = 0;   // ADDR = byte address >> this (1: halfwords)
    uint32_t address_mask = 0;    // the bits of ADDR that read back
    uint8_t erase_unit_command = 0, write_page_command = 0, page_buffer_clear_command = 0;
};

class NvmctrlFlash : public FlashController {
public:
    NvmctrlFlash(Monitor& monitor, const FlashGeometry& geometry, NvmctrlFamily family)
        : monitor_(monitor), geometry_(geometry), family_(std::move(family)) {}

    std::string name() const override { return family_.name; }
    uint32_t erase_unit() const override { return geometry_.erase_unit; }
    void erase(uint32_t address, uint32_t length) override;
    void program_pages(uint32_t flash, uint32_t sram, uint32_t length, WordCopyApplet& applet) override;
    void reset() override;

protected:
    struct Refusal {
        std::string why;   // "the region is locked (LOCKE)"
        std::string hint;
    };
    // Whether the controller is idle.
    virtual bool ready() = 0;
    // Manual page writes and no cache in the way (once, before the first page).
    virtual void prepare_page_writes() = 0;
    // Before each erase command.
    virtual void before_erase(const std::string& /*what*/) {}
    // After a command: what the error flags say, and clears them; nullopt when there were none.
    virtual std::optional<Refusal> refusal() = 0;

    Monitor& monitor_;
    FlashGeometry geometry_;
    NvmctrlFamily family_;

    void wait_ready(const std::string& what);

private:
    void set_address(uint32_t byte_address);
    void run(uint8_t command, const std::string& what);

    bool pages_prepared_ = false;
};

}  // namespace mcuflash::protocol::samba
