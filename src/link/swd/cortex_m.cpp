#include "link/swd/cortex_m.hpp"

#include <fmt/format.h>

#include "core/error.hpp"

namespace mcuflash::link::swd {

using core::Error;
using core::ErrorKind;
using namespace cortex_m;

namespace {
constexpr int kHaltPolls = 100;
}

uint32_t CortexM::cpuid() { return dap_.read32(kCpuid); }

std::string CortexM::core_name(uint32_t cpuid) {
    const uint32_t part = cpuid >> 4 & 0xFFF;
    std::string name;
    switch (part) {
        case 0xC20: name = "Cortex-M0"; break;
        case 0xC60: name = "Cortex-M0+"; break;
        case 0xC21: name = "Cortex-M1"; break;
        case 0xC23: name = "Cortex-M3"; break;
        case 0xC24: name = "Cortex-M4"; break;
        case 0xC27: name = "Cortex-M7"; break;
        case 0xD20: name = "Cortex-M23"; break;
        case 0xD21: name = "Cortex-M33"; break;
        default: return fmt::format("unknown core (CPUID 0x{:08X})", cpuid);
    }
    return fmt::format("{} r{}p{}", name, cpuid >> 20 & 0xF, cpuid & 0xF);
}

bool CortexM::halted() { return dap_.read32(kDhcsr) & kDhcsrHalted; }

void CortexM::halt() {
    auto batch = dap_.batch();
    batch.write32(kDhcsr, kDbgKey | kDhcsrDebugEn | kDhcsrHalt);
    batch.wait_until(kDhcsr, kDhcsrHalted, kDhcsrHalted, "the core to halt (DHCSR.S_HALT)");
    batch.run("halting the core");
}

void CortexM::resume() { dap_.write32(kDhcsr, kDbgKey | kDhcsrDebugEn); }

uint32_t CortexM::read_dhcsr_after_reset() {
    for (int attempt = 0;; ++attempt) {
        try {
            return dap_.read32(kDhcsr);
        } catch (const Error& e) {
            if (attempt >= kHaltPolls || (e.kind() != ErrorKind::Protocol && e.kind() != ErrorKind::Timeout)) throw;
            dap_.probe().pause(std::chrono::milliseconds(2));
        }
    }
}

void CortexM::reset(ResetMethod method) {
    if (method == ResetMethod::System) {
        // The write may not be acknowledged: the chip resets under it.
        try {
            dap_.write32(kAircr, kAircrVectKey | kAircrSysResetReq);
        } catch (const Error& e) {
            if (e.kind() != ErrorKind::Protocol && e.kind() != ErrorKind::Io) throw;
            dap_.clear_errors();
        }
    } else {
        dap_.probe().set_reset_line(true);
        dap_.probe().pause(std::chrono::milliseconds(20));
        dap_.probe().set_reset_line(false);
    }
    dap_.forget_state();
    dap_.probe().pause(std::chrono::milliseconds(5));
}

void CortexM::reset_and_halt(ResetMethod method) {
    // Halt first where we can, so that nothing runs between here and the reset; then catch the core
    // at its reset vector.
    try {
        halt();
    } catch (const Error&) {
        dap_.clear_errors();
    }
    dap_.write32(kDemcr, dap_.read32(kDemcr) | kDemcrVcCoreReset);
    reset(method);
    for (int poll = 0; poll < kHaltPolls; ++poll) {
        const uint32_t dhcsr = read_dhcsr_after_reset();
        if (dhcsr & kDhcsrHalted) {
            dap_.write32(kDemcr, dap_.read32(kDemcr) & ~kDemcrVcCoreReset);
            return;
        }
        dap_.probe().pause(std::chrono::milliseconds(2));
    }
    // Some cores miss the vector catch (a reset line that also resets debug): halt it now.
    halt();
    dap_.write32(kDemcr, dap_.read32(kDemcr) & ~kDemcrVcCoreReset);
}

void CortexM::reset_and_run(ResetMethod method) {
    dap_.write32(kDemcr, dap_.read32(kDemcr) & ~kDemcrVcCoreReset);
    // Debug released (C_DEBUGEN clear): the firmware runs as it would from power-on.
    dap_.write32(kDhcsr, kDbgKey);
    reset(method);
}

void CortexM::wait_register_ready(const char* what) {
    auto batch = dap_.batch();
    batch.wait_until(kDhcsr, kDhcsrRegReady, kDhcsrRegReady, "the core register transfer (DHCSR.S_REGRDY)");
    batch.run(what);
}

uint32_t CortexM::read_core_register(unsigned reg) {
    dap_.write32(kDcrsr, reg & 0x7F);
    wait_register_ready("reading a core register");
    return dap_.read32(kDcrdr);
}

void CortexM::write_core_register(unsigned reg, uint32_t value) {
    auto batch = dap_.batch();
    batch.write32(kDcrdr, value);
    batch.write32(kDcrsr, (reg & 0x7F) | 1u << 16);
    batch.run("writing a core register");
    wait_register_ready("writing a core register");
}

}  // namespace mcuflash::link::swd
