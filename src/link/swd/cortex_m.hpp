#pragma once
// A Cortex-M core through its debug registers (ARMv6-M / ARMv7-M Architecture Reference Manuals,
// "Debug"): halt, reset into a halt at the reset vector, core registers, and letting it run.
#include <cstdint>
#include <string>

#include "link/swd/adiv5.hpp"

namespace mcuflash::link::swd {

namespace cortex_m {
constexpr uint32_t kCpuid = 0xE000ED00, kAircr = 0xE000ED0C, kDhcsr = 0xE000EDF0, kDcrsr = 0xE000EDF4,
                   kDcrdr = 0xE000EDF8, kDemcr = 0xE000EDFC;
constexpr uint32_t kDbgKey = 0xA05Fu << 16;
constexpr uint32_t kDhcsrDebugEn = 1u << 0, kDhcsrHalt = 1u << 1, kDhcsrMaskInts = 1u << 3;
constexpr uint32_t kDhcsrRegReady = 1u << 16, kDhcsrHalted = 1u << 17, kDhcsrLockup = 1u << 19,
                   kDhcsrResetSeen = 1u << 25;
constexpr uint32_t kDemcrVcCoreReset = 1u << 0, kDemcrTrcEna = 1u << 24;
constexpr uint32_t kAircrVectKey = 0x05FAu << 16, kAircrSysResetReq = 1u << 2;
// Core register numbers for DCRSR.REGSEL.
constexpr unsigned kRegSp = 13, kRegLr = 14, kRegPc = 15, kRegXpsr = 16;
}  // namespace cortex_m

enum class ResetMethod {
    System,      // AIRCR.SYSRESETREQ: the chip resets itself, debug stays connected
    ResetLine,   // the probe's nRESET line (for a chip whose firmware locks up at once, or with SWD pins remapped)
};

class CortexM {
public:
    explicit CortexM(Adiv5& dap) : dap_(dap) {}

    uint32_t cpuid();
    // "Cortex-M3 r1p1" from CPUID.
    static std::string core_name(uint32_t cpuid);

    // Stops the core (DHCSR C_HALT) and waits until it says so.
    void halt();
    bool halted();
    // Resets the chip with the core stopped before its first instruction (DEMCR.VC_CORERESET), so no
    // firmware runs while flash is programmed.
    void reset_and_halt(ResetMethod method = ResetMethod::System);
    // Resets the chip and lets it run its firmware, with debug released.
    void reset_and_run(ResetMethod method = ResetMethod::System);
    // Lets a halted core continue.
    void resume();

    uint32_t read_core_register(unsigned reg);
    void write_core_register(unsigned reg, uint32_t value);

private:
    void reset(ResetMethod method);
    // DHCSR after a reset: the access port may FAULT while the chip is in reset; retried.
    uint32_t read_dhcsr_after_reset();
    void wait_register_ready(const char* what);

    Adiv5& dap_;
};

}  // namespace mcuflash::link::swd
