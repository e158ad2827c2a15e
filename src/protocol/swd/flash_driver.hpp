#pragma once
// One driver per flash controller a chip reached over SWD has, each driving the controller's
// registers through the MEM-AP (link/swd/adiv5.hpp) with the core halted. Chosen by the chip's
// `swd.flash_controller` (data/chips.toml): "stm32f1" (RM0008 / PM0075 FPEC), "stm32f4" (RM0090),
// "samd21" (SAMD21 and SAMC21 NVMCTRL, DSU) and "samd51" (SAMD51 NVMCTRL, DSU).
//
// Drivers only do what they are told: erase() takes whole erase units the caller chose, program()
// takes erased flash. The rules (application start, exactly the units written) are SwdTarget's.
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "link/swd/adiv5.hpp"
#include "link/swd/cortex_m.hpp"
#include "targets/knowledge.hpp"

namespace mcuflash::protocol::swd {

struct ReadoutProtection {
    bool active = false;
    std::string detail;   // "RDP level 1 (FLASH_OBR RDPRT set)"
    std::string way_out;  // what removes it, and what that costs
};

// Called with the bytes programmed so far.
using ProgramProgress = std::function<void(uint64_t done)>;

class FlashDriver {
public:
    virtual ~FlashDriver() = default;

    virtual std::string name() const = 0;  // "STM32F1 flash controller (FPEC)"
    // Bytes programmed at once: data is padded with 0xFF to whole units.
    virtual uint32_t write_unit() const = 0;
    // The erase units of the flash (address order).
    virtual std::vector<targets::EraseUnitRange> layout() const = 0;

    // Erases whole units (each one of layout()).
    virtual void erase(std::span<const targets::EraseUnitRange> units, const ProgramProgress& progress) = 0;
    // Programs erased flash: `address` and the length multiples of write_unit().
    virtual void program(uint32_t address, std::span<const uint8_t> data, const ProgramProgress& progress) = 0;
    // Erases the whole flash (STM32 mass erase, SAM DSU chip erase).
    virtual void chip_erase() = 0;

    virtual ReadoutProtection readout_protection() = 0;
    // STM32: option bytes back to RDP level 0, which mass-erases the chip; takes effect after a reset.
    virtual void remove_readout_protection();

    // SAMD/SAMC: bytes at the flash start the BOOTPROT fuse keeps from erases and writes. nullopt
    // where the chip has no such fuse.
    virtual std::optional<uint32_t> bootloader_protection() { return std::nullopt; }
    // Changes BOOTPROT keeping every other bit of the NVM user row; `bytes` must be a size the fuse
    // can express. Takes effect after a reset (SwdTarget resets).
    virtual void set_bootloader_protection(uint32_t bytes);
    // The sizes set_bootloader_protection takes.
    virtual std::vector<uint32_t> bootloader_protection_sizes() const { return {}; }

    // Locks the controller again (STM32).
    virtual void finish() {}
};

struct DriverContext {
    link::swd::Adiv5& dap;
    link::swd::CortexM& core;
    const targets::Chip& chip;
    uint32_t flash_base = 0;
    uint32_t flash_size = 0;  // as the chip reports it
};

// By swd.flash_controller; throws Unsupported for another name.
std::unique_ptr<FlashDriver> make_flash_driver(const std::string& controller, const DriverContext& context);
// The controller of a chip: its swd.flash_controller, else from its family ("" when none).
std::string flash_controller_of(const targets::Chip& chip);

std::unique_ptr<FlashDriver> make_stm32f1_driver(const DriverContext& context);
std::unique_ptr<FlashDriver> make_stm32f4_driver(const DriverContext& context);
std::unique_ptr<FlashDriver> make_samd21_driver(const DriverContext& context);
std::unique_ptr<FlashDriver> make_samd51_driver(const DriverContext& context);

// Polls the word at `address` until (word & mask) == value: first with the probe's value match,
// then from the host every millisecond or so until `timeout` (long erases). Throws Timeout naming `what`.
void wait_for(link::swd::Adiv5& dap, uint32_t address, uint32_t mask, uint32_t value,
              std::chrono::milliseconds timeout, const std::string& what, const std::string& waiting_for);

}  // namespace mcuflash::protocol::swd
