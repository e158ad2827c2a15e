#include "sim/swd/cortex_m_debug.hpp"

#include <fmt/format.h>

#include <string>
#include <utility>
#include <vector>

namespace mcuflash::sim::swd {

namespace {

// System Control Space registers (ARMv7-M B3.2, C1.6).
constexpr uint32_t kCpuid = 0xE000ED00, kVtor = 0xE000ED08, kAircr = 0xE000ED0C, kDfsr = 0xE000ED30,
                   kCpacr = 0xE000ED88, kDhcsr = 0xE000EDF0, kDcrsr = 0xE000EDF4, kDcrdr = 0xE000EDF8,
                   kDemcr = 0xE000EDFC, kMvfr0 = 0xE000EF40, kMvfr1 = 0xE000EF44;
constexpr uint32_t kFpCtrl = 0xE0002000, kDwtCtrl = 0xE0001000;
constexpr uint32_t kRomTable = 0xE00FF000;

constexpr uint32_t kDbgKey = 0xA05Fu << 16;
constexpr uint32_t kCDebugEn = 1u << 0, kCHalt = 1u << 1, kCStep = 1u << 2, kCMaskInts = 1u << 3;
constexpr uint32_t kSRegRdy = 1u << 16, kSHalt = 1u << 17, kSLockup = 1u << 19,
                   kSRetireSt = 1u << 24, kSResetSt = 1u << 25;
constexpr uint32_t kDcrsrWrite = 1u << 16;
constexpr uint32_t kVectKey = 0x05FA, kVectKeyStat = 0xFA05;
constexpr uint32_t kAircrVectReset = 1u << 0, kAircrSysResetReq = 1u << 2;
constexpr uint32_t kDemcrVcCoreReset = 1u << 0;
constexpr uint32_t kDfsrHalted = 1u << 0, kDfsrVcatch = 1u << 3;
constexpr uint32_t kFpCtrlKey = 1u << 1;

struct Component {
    uint32_t base;
    uint32_t component_class;  // CIDR1[7:4]: 0x1 ROM table, 0x9 CoreSight, 0xE generic IP
    uint32_t part;
    uint32_t rom_entry;  // how the ROM table points at it (0: not listed)
};

// The components of each core as the ARM TRMs give them (part numbers in PIDR0/PIDR1, designer ARM).
std::vector<Component> components_of(CoreProfile profile, uint32_t cpuid) {
    const uint32_t part = cpuid >> 4 & 0xFFF;  // 0xC60 M0+, 0xC23 M3, 0xC24 M4
    if (profile == CoreProfile::ArmV6M)
        return {{kRomTable, 0x1, 0x4C0, 0},
                {0xE000E000, 0xE, 0x008, 0xFFF0F003},
                {0xE0001000, 0xE, 0x00A, 0xFFF02003},
                {0xE0002000, 0xE, 0x00B, 0xFFF03003}};
    const bool m4 = part == 0xC24;
    return {{kRomTable, 0x1, m4 ? 0x4C4u : 0x4C3u, 0},
            {0xE000E000, 0xE, m4 ? 0x00Cu : 0x000u, 0xFFF0F003},
            {0xE0001000, 0xE, 0x002, 0xFFF02003},
            {0xE0002000, 0xE, 0x003, 0xFFF03003},
            {0xE0000000, 0xE, 0x001, 0xFFF01003},
            {0xE0040000, 0x9, m4 ? 0x9A1u : 0x923u, 0xFFF41003}};
}

}  // namespace

CortexMDebug::CortexMDebug(CoreProfile profile, uint32_t cpuid, bool fpu, ChipBus& bus)
    : profile_(profile), cpuid_(cpuid), fpu_(fpu), bus_(bus) {}

bool CortexMDebug::decodes(uint32_t a) const {
    if (a >= 0xE000E000 && a < 0xE000F000) return true;  // SCS
    if (a >= kRomTable && a < kRomTable + 0x1000) return true;
    if (a >= 0xE0001000 && a < 0xE0003000) return true;  // DWT, FPB/BPU
    if (profile_ == CoreProfile::ArmV7M)
        return (a >= 0xE0000000 && a < 0xE0001000) || (a >= 0xE0040000 && a < 0xE0042000);  // ITM, TPIU, ETM
    return false;
}

std::optional<uint32_t> CortexMDebug::component_id(uint32_t a) const {
    const uint32_t offset = a & 0xFFF;
    if (offset < 0xFC8) return std::nullopt;
    for (const auto& c : components_of(profile_, cpuid_)) {
        if ((a & ~0xFFFu) != c.base) continue;
        switch (offset) {
            case 0xFCC: return c.component_class == 0x1 ? 0x1u : c.component_class == 0x9 ? 0x11u : 0u;  // MEMTYPE/DEVTYPE
            case 0xFD0: return 0x04;  // PIDR4: JEP106 continuation 4 (ARM), one 4 KiB block
            case 0xFE0: return c.part & 0xFF;
            case 0xFE4: return (c.part >> 8 & 0xF) | 0xB0;  // JEP106 ID 0x3B, low bits
            case 0xFE8: return 0x0B;                        // JEP106 ID high bits, JEDEC used, revision 0
            case 0xFF0: return 0x0D;
            case 0xFF4: return c.component_class << 4;
            case 0xFF8: return 0x05;
            case 0xFFC: return 0xB1;
            default: return 0;
        }
    }
    return std::nullopt;
}

std::optional<uint32_t> CortexMDebug::read(uint32_t address, unsigned size) {
    const uint32_t word = read_word(address & ~3u);
    const uint32_t shifted = word >> (8 * (address & 3));
    return size == 4 ? shifted : shifted & ((1u << (8 * size)) - 1);
}

bool CortexMDebug::write(uint32_t address, uint32_t value, unsigned size) {
    const uint32_t bits = size == 4 ? 0xFFFFFFFFu : (1u << (8 * size)) - 1;
    const unsigned shift = 8 * (address & 3);
    write_word(address & ~3u, value << shift, bits << shift);
    return true;
}

uint32_t CortexMDebug::read_word(uint32_t a) {
    if (auto id = component_id(a)) return *id;
    if (a >= kRomTable && a < kRomTable + 0xFC8) {
        const auto components = components_of(profile_, cpuid_);
        const uint32_t index = (a - kRomTable) / 4 + 1;  // entries follow the ROM table's own row
        return index < components.size() ? components[index].rom_entry : 0;
    }
    switch (a) {
        case kCpuid: return cpuid_;
        case kVtor: return vtor_;
        case kAircr: return kVectKeyStat << 16 | aircr_prigroup_ << 8;
        case kDfsr: return dfsr_;
        case kCpacr: return cpacr_;
        case kDhcsr: {
            uint32_t value = (debug_enabled_ ? kCDebugEn : 0) | (halt_requested_ ? kCHalt : 0) | (step_ ? kCStep : 0) |
                             (mask_interrupts_ ? kCMaskInts : 0);
            const bool running = !halted_ && !in_reset_ && !lockup_;
            if (halted_) value |= kSHalt | kSRegRdy;
            if (lockup_ && !halted_ && !in_reset_) value |= kSLockup;
            if (running || retired_sticky_) value |= kSRetireSt;
            if (reset_sticky_ || in_reset_) value |= kSResetSt;
            // S_RETIRE_ST and S_RESET_ST are cleared by reading them.
            retired_sticky_ = false;
            reset_sticky_ = false;
            return value;
        }
        case kDcrdr: return dcrdr_;
        case kDemcr: return demcr_;
        case kMvfr0: return fpu_ ? 0x10110021 : 0;  // FPv4-SP: single precision, square root, divide
        case kMvfr1: return fpu_ ? 0x11000011 : 0;
        case kFpCtrl: {
            // NUM_CODE / NUM_LIT: M3/M4 FPB 6 code + 2 literal comparators; M0+ BPU 4.
            const uint32_t layout = profile_ == CoreProfile::ArmV6M ? 4u << 4 : (6u << 4 | 2u << 8);
            return layout | fp_ctrl_enable_;
        }
        case kDwtCtrl: {
            const uint32_t comparators = profile_ == CoreProfile::ArmV6M ? 2 : 4;
            auto it = plain_registers_.find(a);
            return comparators << 28 | (it == plain_registers_.end() ? 0 : it->second & 0x0FFFFFFF);
        }
        default: {
            auto it = plain_registers_.find(a);
            return it == plain_registers_.end() ? 0 : it->second;
        }
    }
}

void CortexMDebug::write_word(uint32_t a, uint32_t value, uint32_t mask) {
    const bool whole = mask == 0xFFFFFFFF;
    switch (a) {
        case kCpuid: return;
        case kVtor: vtor_ = (vtor_ & ~mask) | (value & mask & 0xFFFFFF80); return;
        case kAircr:
            if (!whole || (value >> 16) != kVectKey) return;  // VECTKEY guards every write
            if (profile_ == CoreProfile::ArmV7M) aircr_prigroup_ = value >> 8 & 0x7;
            if (value & kAircrSysResetReq) reset_request_ = ResetRequest::System;
            else if ((value & kAircrVectReset) && profile_ == CoreProfile::ArmV7M) reset_request_ = ResetRequest::Core;
            return;
        case kDfsr: dfsr_ &= ~(value & mask & 0x1F); return;  // write one to clear
        case kCpacr: cpacr_ = (cpacr_ & ~mask) | (value & mask & (fpu_ ? 0x00F00000u : 0u)); return;
        case kDhcsr:
            if (whole) write_dhcsr(value);  // DBGKEY must be in the same write
            return;
        case kDcrsr:
            if (whole) transfer_core_register(value);
            return;
        case kDcrdr: dcrdr_ = (dcrdr_ & ~mask) | (value & mask); return;
        case kDemcr: {
            const uint32_t writable = profile_ == CoreProfile::ArmV6M ? 0x01000401u : 0x010F07F1u;
            demcr_ = (demcr_ & ~mask) | (value & mask & writable);
            return;
        }
        case kFpCtrl:
            if ((value & mask) & kFpCtrlKey) fp_ctrl_enable_ = value & 1;
            return;
        default: break;
    }
    if (component_id(a) || (a >= kRomTable && a < kRomTable + 0x1000)) return;  // read-only
    uint32_t& stored = plain_registers_[a];
    stored = (stored & ~mask) | (value & mask);
}

void CortexMDebug::write_dhcsr(uint32_t value) {
    if ((value & 0xFFFF0000) != kDbgKey) return;
    const bool enable = value & kCDebugEn;
    if (!enable) {
        // Leaving halting debug: the core runs on.
        debug_enabled_ = halt_requested_ = step_ = mask_interrupts_ = false;
        if (halted_) resume();
        return;
    }
    debug_enabled_ = true;
    mask_interrupts_ = value & kCMaskInts;
    step_ = value & kCStep;
    const bool halt_wanted = value & kCHalt;
    halt_requested_ = halt_wanted;
    if (in_reset_) return;  // acted on when the core leaves reset
    if (halt_wanted && !halted_) return halt(kDfsrHalted);
    if (!halt_wanted && halted_) {
        if (step_) {
            // A step retires one instruction and halts again; nothing executes here, so the core
            // stays where it is.
            retired_sticky_ = true;
            dfsr_ |= kDfsrHalted;
            halt_requested_ = true;
            return;
        }
        resume();
    }
}

void CortexMDebug::halt(uint32_t reason) {
    halted_ = true;
    halt_requested_ = true;  // C_HALT reads 1 in Debug state
    lockup_ = false;
    dfsr_ |= reason;
}

void CortexMDebug::resume() {
    halted_ = false;
    retired_sticky_ = true;
    lockup_ = !reset_vector_runs();
}

bool CortexMDebug::reset_vector_runs() const {
    // Without an instruction set simulator: the core "runs" when PC points at programmed memory in
    // Thumb state; an erased vector table (PC 0xFFFFFFFE) or ARM state faults into lockup.
    const uint32_t pc = registers_[core_register::kPc];
    const bool thumb = registers_[core_register::kXpsr] & (1u << 24);
    auto code = bus_.read(pc & ~1u, 2, {});
    return thumb && code && *code != 0xFFFF;
}

uint32_t& CortexMDebug::banked(uint32_t regsel) {
    if (regsel != core_register::kSp) return registers_[regsel];
    // SP is MSP in Handler mode or while CONTROL.SPSEL is 0, else PSP.
    const bool thread_mode = (registers_[core_register::kXpsr] & 0x1FF) == 0;
    const bool process_stack = registers_[core_register::kControlPrimask] >> 24 & 0x2;
    return registers_[thread_mode && process_stack ? core_register::kPsp : core_register::kMsp];
}

bool CortexMDebug::register_exists(uint32_t regsel) const {
    if (regsel <= core_register::kPsp || regsel == core_register::kControlPrimask) return true;
    return fpu_ && (regsel == core_register::kFpscr || (regsel >= core_register::kS0 && regsel < core_register::kS0 + 32));
}

void CortexMDebug::transfer_core_register(uint32_t dcrsr) {
    const uint32_t regsel = dcrsr & 0x7F;
    if (!register_exists(regsel)) return;  // reserved selectors: nothing happens (UNPREDICTABLE)
    uint32_t& reg = banked(regsel);
    if (dcrsr & kDcrsrWrite) {
        uint32_t value = dcrdr_;
        if (regsel == core_register::kMsp || regsel == core_register::kPsp || regsel == core_register::kSp)
            value &= ~3u;  // stack pointers are word aligned
        if (regsel == core_register::kControlPrimask)
            value &= profile_ == CoreProfile::ArmV6M ? 0x03000001u : (fpu_ ? 0x070101FFu : 0x030101FFu);
        reg = value;
    } else {
        dcrdr_ = reg;
    }
}

uint32_t CortexMDebug::core_register(uint32_t regsel) const {
    return regsel == core_register::kSp ? const_cast<CortexMDebug*>(this)->banked(regsel) : registers_[regsel & 0x7F];
}

CortexMDebug::ResetRequest CortexMDebug::take_reset_request() {
    return std::exchange(reset_request_, ResetRequest::None);
}

void CortexMDebug::hold_in_reset(bool held) {
    in_reset_ = held;
    if (held) {
        halted_ = false;
        lockup_ = false;
    }
}

void CortexMDebug::reset(Clock::time_point now) {
    in_reset_ = false;
    reset_sticky_ = true;
    retired_sticky_ = false;
    // Vector table at VTOR 0 (the flash, or its alias at 0): initial SP, then the reset handler.
    const uint32_t table = bus_.vector_table();
    const uint32_t sp = bus_.read(table, 4, now).value_or(0xFFFFFFFF);
    const uint32_t pc = bus_.read(table + 4, 4, now).value_or(0xFFFFFFFF);
    registers_[core_register::kMsp] = sp & ~3u;
    registers_[core_register::kPsp] = 0;
    registers_[core_register::kPc] = pc & ~1u;
    registers_[core_register::kXpsr] = (pc & 1) << 24;
    registers_[core_register::kLr] = 0xFFFFFFFF;
    registers_[core_register::kControlPrimask] = 0;
    vtor_ = 0;
    halted_ = false;
    if (debug_enabled_ && (demcr_ & kDemcrVcCoreReset)) return halt(kDfsrVcatch);
    if (debug_enabled_ && halt_requested_) return halt(kDfsrHalted);
    lockup_ = !reset_vector_runs();
}

std::string CortexMDebug::describe_state() const {
    if (in_reset_) return "held in reset";
    if (halted_) return fmt::format("halted at pc=0x{:08X}", registers_[core_register::kPc]);
    return lockup_ ? "locked up" : "running";
}

}  // namespace mcuflash::sim::swd
