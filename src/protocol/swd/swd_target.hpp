#pragma once
// A chip programmed through a debug probe over SWD: what OpenOCD does for Klipper's bootloader
// steps (identify, reset halt, flash write/read/erase, BOOTPROT on SAMD, reset run), natively.
//
//   auto probe = link::swd::open_cmsis_dap("cmsis-dap");      // link/swd/open_probe.hpp
//   protocol::swd::SwdTarget target(*probe);
//   auto info = target.connect({.expected_chip = "stm32f103xb"});   // or {} to identify it
//   auto backup = target.read_flash(info.flash_base, info.flash_size, progress);
//   target.write_flash(info.application_start, image, progress);     // refuses below application_start
//   target.reset_and_run();
//
// Installing a bootloader (below the application start) is explicit: SwdWriteOptions::bootloader_install,
// chip_erase(), set_bootloader_protection(). Klipper's SAMD21 sequence:
//   target.chip_erase(progress);
//   target.set_bootloader_protection(0);
//   target.write_flash(0x0, bootloader, progress, {.bootloader_install = true});
//   target.set_bootloader_protection(8192);
//   target.reset_and_run();
//
// Progress: core::Progress events, stages Connect, Erase, Write, Verify, Read (bytes) and Start.
// Errors: core::Error with the kind, what was being done and the address (see link/swd/adiv5.hpp for
// the SWD ones); Unsafe for a write below the application start or over a protected region;
// VerifyMismatch naming the first differing address.
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "core/progress.hpp"
#include "link/swd/adiv5.hpp"
#include "link/swd/cortex_m.hpp"
#include "link/swd/debug_probe.hpp"
#include "protocol/swd/flash_driver.hpp"
#include "targets/knowledge.hpp"

namespace mcuflash::protocol::swd {

struct SwdConnectOptions {
    std::string expected_chip;  // a chips.toml name: checked against what the chip reports ("" = identify it)
    uint32_t clock_hz = 4'000'000;
    // How the chip is reset (before programming, and to run): AIRCR.SYSRESETREQ or the nRESET line.
    link::swd::ResetMethod reset = link::swd::ResetMethod::System;
    // Holds nRESET while connecting and catches the core at its reset vector when it is released: for
    // firmware that turns the SWD pins into something else or sleeps at once (OpenOCD's
    // connect_assert_srst). Needs the probe's nRESET wired to the board.
    bool under_reset = false;
};

struct SwdTargetInfo {
    const targets::Chip* chip = nullptr;
    std::string probe;                 // the probe's description
    uint32_t dpidr = 0, cpuid = 0;
    uint32_t id_code = 0;              // STM32 DBGMCU_IDCODE, SAM DSU DID
    std::string id_detail;             // "DBGMCU_IDCODE 0x20036410: DEV_ID 0x410, REV_ID 0x2003"
    std::string core;                  // "Cortex-M3 r1p1"
    uint32_t flash_base = 0, flash_size = 0;
    std::string flash_controller;      // "stm32f1", ...
    ReadoutProtection protection;
    std::optional<uint32_t> bootloader_protection;  // SAMD/SAMC BOOTPROT, in bytes
    uint32_t application_start = 0;    // writes and erases below it need bootloader_install
    std::string describe() const;      // one paragraph for `info`
};

struct SwdWriteOptions {
    bool bootloader_install = false;  // may erase and write below the application start
    bool verify = true;               // read back and compare
};

class SwdTarget {
public:
    explicit SwdTarget(link::swd::DebugProbe& probe, const targets::Knowledge& knowledge = targets::Knowledge::builtin());
    ~SwdTarget();

    // Connects (line reset, DPIDR, power-up), halts the core and identifies the chip: STM32 by
    // DBGMCU_IDCODE's DEV_ID (and the flash size register), SAMD/SAMC by the DSU DID (revision
    // ignored). With expected_chip, a chip that reports otherwise is refused (Unsupported).
    const SwdTargetInfo& connect(const SwdConnectOptions& options = {}, const core::Progress& progress = core::Progress());
    const SwdTargetInfo& info() const { return info_; }

    // Where the application starts (the bootloader's size past the flash base). Defaults to the
    // chip's usual Klipper bootloader offset (chips.toml klipper_offsets[0]), or the BOOTPROT size when
    // larger; the CLI sets the board's.
    void set_application_start(uint32_t address);

    // Any range of flash (fast block reads). Refused while readout protection is on.
    std::vector<uint8_t> read_flash(uint32_t address, uint32_t length, const core::Progress& progress = core::Progress());
    // Erases exactly the erase units the bytes fall in (their other bytes are read first and written
    // back), programs, verifies. Refuses below the application start without bootloader_install.
    void write_flash(uint32_t address, std::span<const uint8_t> data, const core::Progress& progress = core::Progress(),
                     const SwdWriteOptions& options = {});
    // Erases whole units: address and length must be unit boundaries (refused otherwise).
    void erase_flash(uint32_t address, uint32_t length, const core::Progress& progress = core::Progress(),
                     const SwdWriteOptions& options = {});
    // Erases the whole flash, bootloader included (STM32 mass erase, SAM DSU chip erase).
    void chip_erase(const core::Progress& progress = core::Progress());
    // STM32: RDP back to level 0 (the chip erases itself); SAM: chip erase. Then reconnects.
    void remove_readout_protection(const core::Progress& progress = core::Progress());

    // SAMD/SAMC BOOTPROT in bytes (nullopt: the chip has none).
    std::optional<uint32_t> bootloader_protection();
    // Changes BOOTPROT (keeping the rest of the NVM user row), resets the chip so that it takes
    // effect, and checks it did.
    void set_bootloader_protection(uint32_t bytes);
    std::vector<uint32_t> bootloader_protection_sizes() const;

    // Locks the flash controller, resets the chip and lets its firmware run.
    void reset_and_run();

    link::swd::Adiv5& dap() { return dap_; }
    link::swd::CortexM& core() { return core_; }

private:
    void identify(const SwdConnectOptions& options);
    void make_driver();
    void halt_for_programming();
    void erase_units(const std::vector<targets::EraseUnitRange>& units, const core::Progress& progress, uint64_t total);
    // Throws Io when the chip reset (or started running) since programming began.
    void check_still_halted(const char* what);
    void check_readable(const char* what) const;
    void check_range(uint32_t address, uint64_t length, const char* what) const;
    void check_may_change(uint32_t first_unit, uint32_t address, const SwdWriteOptions& options, const char* what) const;
    std::vector<targets::EraseUnitRange> units_covering(uint32_t address, uint64_t length) const;
    FlashDriver& driver();

    link::swd::DebugProbe& probe_;
    const targets::Knowledge& knowledge_;
    link::swd::Adiv5 dap_;
    link::swd::CortexM core_;
    SwdConnectOptions options_;
    SwdTargetInfo info_;
    std::unique_ptr<FlashDriver> driver_;
    bool halted_for_programming_ = false;
};

}  // namespace mcuflash::protocol::swd
