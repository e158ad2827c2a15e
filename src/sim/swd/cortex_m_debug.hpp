#pragma once
// The Cortex-M core as a debugger sees it through the AHB-AP (ARMv6-M / ARMv7-M architecture
// manuals, "Debug"): the System Control Space with CPUID, AIRCR and the debug registers (DHCSR,
// DCRSR, DCRDR, DEMCR, DFSR), the ROM table and the CoreSight components it lists (SCS, DWT, FPB/BPU;
// ITM and TPIU on v7-M) with their component and peripheral ID registers.
//
// The core does not execute instructions: "running" is a state. A reset loads SP and PC from the
// vector table, sets S_RESET_ST and halts at once when C_DEBUGEN and DEMCR.VC_CORERESET are set.
// Debug registers survive a system reset (only a power-on reset clears them).
#include <array>
#include <cstdint>
#include <map>
#include <optional>
#include <string>

#include "core/deadline.hpp"
#include "sim/swd/chip_bus.hpp"

namespace mcuflash::sim::swd {

enum class CoreProfile { ArmV6M, ArmV7M };

// Core register numbers of DCRSR.REGSEL (ARMv7-M C1.6.3).
namespace core_register {
constexpr uint32_t kR0 = 0, kSp = 13, kLr = 14, kPc = 15, kXpsr = 16, kMsp = 17, kPsp = 18;
constexpr uint32_t kControlPrimask = 20;  // CONTROL[31:24], FAULTMASK[23:16], BASEPRI[15:8], PRIMASK[7:0]
constexpr uint32_t kFpscr = 33, kS0 = 64;
}  // namespace core_register

class CortexMDebug {
public:
    CortexMDebug(CoreProfile profile, uint32_t cpuid, bool fpu, ChipBus& bus);

    // Whether the address is one of the core's own (SCS, ROM table, DWT, FPB, ITM, TPIU).
    bool decodes(uint32_t address) const;
    std::optional<uint32_t> read(uint32_t address, unsigned size);
    bool write(uint32_t address, uint32_t value, unsigned size);

    enum class ResetRequest { None, System, Core };
    // What the last AIRCR write asked for (cleared by the call).
    ResetRequest take_reset_request();

    // nRESET held: the core does not run; its debug registers still answer.
    void hold_in_reset(bool held);
    // The core leaves reset: vector fetch, S_RESET_ST, vector catch.
    void reset(Clock::time_point now);

    bool halted() const { return halted_; }
    bool locked_up() const { return lockup_; }
    uint32_t core_register(uint32_t regsel) const;
    std::string describe_state() const;

private:
    uint32_t read_word(uint32_t address);
    void write_word(uint32_t address, uint32_t value, uint32_t byte_mask);
    void write_dhcsr(uint32_t value);
    void transfer_core_register(uint32_t dcrsr);
    bool register_exists(uint32_t regsel) const;
    uint32_t& banked(uint32_t regsel);
    void halt(uint32_t dfsr_reason);
    void resume();
    bool reset_vector_runs() const;
    std::optional<uint32_t> component_id(uint32_t address) const;

    CoreProfile profile_;
    uint32_t cpuid_;
    bool fpu_;
    ChipBus& bus_;

    // DHCSR control bits as written, status as the core is.
    bool debug_enabled_ = false, halt_requested_ = false, step_ = false, mask_interrupts_ = false;
    bool halted_ = false, lockup_ = false, in_reset_ = false;
    bool reset_sticky_ = false, retired_sticky_ = false;
    uint32_t demcr_ = 0, dfsr_ = 0, dcrdr_ = 0, aircr_prigroup_ = 0, vtor_ = 0, cpacr_ = 0;
    uint32_t fp_ctrl_enable_ = 0;
    std::array<uint32_t, 128> registers_{};
    std::map<uint32_t, uint32_t> plain_registers_;  // DWT/FPB comparators, NVIC, ... as written
    ResetRequest reset_request_ = ResetRequest::None;
};

}  // namespace mcuflash::sim::swd
