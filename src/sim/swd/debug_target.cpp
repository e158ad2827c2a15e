// The SW-DP and the AHB-AP (ARM Debug Interface v5: ADIv5.2 chapters B2 "DP", B4 "SW-DP", C2 "MEM-AP")
// in front of a chip model, one SWD packet at a time.
#include "sim/swd/debug_target.hpp"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>

#include "core/error.hpp"
#include "sim/swd/chip_bus.hpp"
#include "sim/swd/cortex_m_debug.hpp"
#include "targets/knowledge.hpp"

namespace mcuflash::sim::swd {

using core::Error;
using core::ErrorKind;

namespace {

// DP registers and bits.
constexpr uint32_t kCtrlOrunDetect = 1u << 0, kCtrlStickyOrun = 1u << 1, kCtrlStickyCmp = 1u << 4,
                   kCtrlStickyErr = 1u << 5, kCtrlReadOk = 1u << 6, kCtrlWDataErr = 1u << 7,
                   kCtrlDbgRstReq = 1u << 26, kCtrlDbgPwrUpReq = 1u << 28, kCtrlSysPwrUpReq = 1u << 30;
constexpr uint32_t kCtrlWritable = kCtrlOrunDetect | 0xC /*TRNMODE*/ | 0xF00 /*MASKLANE*/ | 0xFFF000 /*TRNCNT*/ |
                                   kCtrlDbgRstReq | kCtrlDbgPwrUpReq | kCtrlSysPwrUpReq;
constexpr uint32_t kCtrlSticky = kCtrlStickyOrun | kCtrlStickyCmp | kCtrlStickyErr | kCtrlWDataErr;
constexpr uint32_t kAbortDapAbort = 1u << 0, kAbortStkCmpClr = 1u << 1, kAbortStkErrClr = 1u << 2,
                   kAbortWdErrClr = 1u << 3, kAbortOrunErrClr = 1u << 4;

// MEM-AP registers (ADIv5.2 C2.6) and CSW fields.
constexpr uint32_t kCsw = 0x00, kTar = 0x04, kTarHigh = 0x08, kDrw = 0x0C, kBd0 = 0x10, kBd3 = 0x1C,
                   kCfg = 0xF4, kBase = 0xF8, kIdr = 0xFC;
constexpr uint32_t kCswSizeMask = 0x7, kCswAddrIncShift = 4, kCswAddrIncMask = 0x3u << 4, kCswDeviceEn = 1u << 6,
                   kCswTrInProg = 1u << 7, kCswProtMask = 0xFF000000u;
constexpr uint32_t kAddrIncSingle = 1;

constexpr uint16_t kJtagToSwd = 0xE79E;
constexpr unsigned kLineResetOnes = 50;

const char* ack_name(SwdAck ack) {
    switch (ack) {
        case SwdAck::Ok: return "OK";
        case SwdAck::Wait: return "WAIT";
        case SwdAck::Fault: return "FAULT";
        default: return "no response";
    }
}

const char* dp_register_name(bool read, uint8_t address, uint32_t select) {
    switch (address) {
        case 0x0: return read ? "DPIDR" : "ABORT";
        case 0x4: return (select & 0xF) == 0 ? "CTRL/STAT" : (select & 0xF) == 1 ? "DLCR" : "DP bank reg";
        case 0x8: return read ? "RESEND" : "SELECT";
        default: return read ? "RDBUFF" : "TARGETSEL";
    }
}

std::string ap_register_name(uint32_t reg) {
    switch (reg) {
        case kCsw: return "CSW";
        case kTar: return "TAR";
        case kDrw: return "DRW";
        case kCfg: return "CFG";
        case kBase: return "BASE";
        case kIdr: return "IDR";
        default:
            if (reg >= kBd0 && reg <= kBd3) return fmt::format("BD{}", (reg - kBd0) / 4);
            return fmt::format("0x{:02X}", reg);
    }
}

struct CoreFacts {
    CoreProfile profile;
    bool fpu;
    uint32_t ap_idr;     // AHB-AP IDR as the cores report it
    uint32_t tar_wrap;   // how far TAR auto-increments before it wraps
};

CoreFacts core_facts(uint32_t cpuid) {
    const uint32_t part = cpuid >> 4 & 0xFFF;
    // Cortex-M0+ (and M0) parts: an ARMv6-M core with the 1 KiB-wrapping AHB-AP (IDR 0x04770031).
    if (part == 0xC60 || part == 0xC20) return {CoreProfile::ArmV6M, false, 0x04770031, 0x400};
    // Cortex-M3/M4: the AHB-AP with IDR 0x24770011 increments TAR over 4 KiB (the M3/M4 TRMs; pyOCD
    // relies on it), beyond the 1 KiB ADIv5 guarantees.
    return {CoreProfile::ArmV7M, part == 0xC24, 0x24770011, 0x1000};
}

class SwdDebugTarget : public DebugTarget {
public:
    SwdDebugTarget(const targets::Chip& chip, std::unique_ptr<ChipBus> bus, SwdFaults faults, TraceSink trace)
        : chip_(chip),
          facts_(core_facts(chip.swd->cpuid)),
          bus_(std::move(bus)),
          core_(facts_.profile, chip.swd->cpuid, facts_.fpu, *bus_),
          faults_(std::move(faults)),
          trace_(std::move(trace)) {
        core_.reset({});  // power-on: the core comes out of reset running whatever the flash holds
    }

    void swj_sequence(std::span<const uint8_t> bits, unsigned count, Clock::time_point now) override {
        (void)now;
        for (unsigned i = 0; i < count && i / 8 < bits.size(); ++i) clock_bit(bits[i / 8] >> (i % 8) & 1);
    }

    SwdAck transfer(bool ap, bool read, uint8_t address, uint32_t& data, Clock::time_point now,
                    bool parity_ok) override {
        const uint64_t n = transactions_++;
        bus_->tick(now);
        const uint32_t written = data;
        SwdAck ack = handle(n, ap, read, address & 0xC, data, now, parity_ok);
        if (trace_) {
            const std::string reg = ap ? fmt::format("AP{} {}", select_ >> 24, ap_register_name((select_ & 0xF0) | (address & 0xC)))
                                       : fmt::format("DP {}", dp_register_name(read, address & 0xC, select_));
            std::string detail;
            if (ack == SwdAck::Ok) detail = read ? fmt::format(" -> 0x{:08X}", data) : "";
            trace_(fmt::format("swd #{} {} {}{}{}: {}{}", n, read ? "read" : "write", reg,
                               read ? "" : fmt::format(" 0x{:08X}", written), detail, ack_name(ack),
                               pending_note_.empty() ? "" : " (" + std::exchange(pending_note_, {}) + ")"));
        }
        pending_note_.clear();
        return ack;
    }

    void set_reset_line(bool asserted, Clock::time_point now) override {
        if (asserted == reset_held_) return;
        reset_held_ = asserted;
        if (asserted) {
            core_.hold_in_reset(true);
            bus_->reset(now);
        } else {
            bus_->reset(now);
            core_.reset(now);
        }
        note(fmt::format("nRESET {}: core {}", asserted ? "asserted" : "released", core_.describe_state()));
    }

    void tick(Clock::time_point now) override { bus_->tick(now); }
    FlashMemory& flash() override { return bus_->flash(); }
    std::string describe() const override { return bus_->describe(); }

private:
    void note(const std::string& text) {
        if (trace_) trace_("swd: " + text);
    }

    // ---- the wire outside packets: line reset, JTAG-to-SWD select

    void clock_bit(unsigned bit) {
        history_ = static_cast<uint16_t>(history_ >> 1 | bit << 15);
        if (bit) {
            ++ones_;
            zeros_ = 0;
            if (capturing_ && ++captured_ == 16) finish_capture();
            return;
        }
        if (ones_ >= kLineResetOnes) {
            // The first idle bit after a line reset: it also starts what may be the select sequence.
            after_line_reset_ = true;
            capturing_ = true;
            captured_ = 1;
        } else {
            if (zeros_ == 0) after_line_reset_ = false;  // a short run of ones: not a line reset
            if (capturing_ && ++captured_ == 16) finish_capture();
        }
        ones_ = 0;
        ++zeros_;
        if (after_line_reset_ && zeros_ >= 2) {
            after_line_reset_ = false;
            // A line reset followed by idle cycles: the DP waits for a DPIDR read. A target still in
            // JTAG state takes it as SWD selection too (probes that skip 0xE79E work with many parts).
            if (!swd_selected_) note("line reset: SWD selected");
            swd_selected_ = true;
            needs_line_reset_ = false;
            awaiting_dpidr_ = true;
        }
    }

    void finish_capture() {
        capturing_ = false;
        if (history_ == kJtagToSwd) {
            swd_selected_ = true;
            needs_line_reset_ = true;  // the select sequence must be followed by a line reset
            note("JTAG-to-SWD select sequence");
        }
    }

    // ---- packets

    bool sticky_error() const { return ctrl_stat_ & kCtrlSticky; }

    SwdAck wait_ack() {
        if (ctrl_stat_ & kCtrlOrunDetect) ctrl_stat_ |= kCtrlStickyOrun;
        return SwdAck::Wait;
    }

    SwdAck handle(uint64_t n, bool ap, bool read, uint8_t address, uint32_t& data, Clock::time_point now,
                  bool parity_ok) {
        if (faults_.noresponse_at && n >= *faults_.noresponse_at) return SwdAck::NoResponse;
        if (faults_.reset_at.count(n)) {
            // A brown-out: the chip and the core reset, the DP (on its own power domain here) does not.
            bus_->reset(now);
            core_.reset(now);
            pending_note_ = "injected reset";
        }
        if (!swd_selected_ || needs_line_reset_) return SwdAck::NoResponse;
        const bool dpidr_read = !ap && read && address == 0x0;
        if (awaiting_dpidr_) {
            if (!dpidr_read) return SwdAck::NoResponse;  // the DP stays in its reset state
            awaiting_dpidr_ = false;
        }
        for (auto [first, count] : faults_.waits)
            if (n >= first && n - first < count) {
                pending_note_ = "injected WAIT";
                return wait_ack();
            }
        if (faults_.fault_at.count(n)) {
            ctrl_stat_ |= kCtrlStickyErr;
            pending_note_ = "injected FAULT";
            return SwdAck::Fault;
        }
        // With a sticky flag set only DPIDR and CTRL/STAT reads and ABORT writes get through.
        const bool allowed_while_sticky = !ap && ((read && (address == 0x0 || address == 0x4)) || (!read && address == 0x0));
        if (sticky_error() && !allowed_while_sticky) return SwdAck::Fault;
        const bool needs_ap = ap || (read && address == 0xC);
        if (needs_ap && now < ap_busy_until_) {
            pending_note_ = "AP busy: the bus is stalled";
            return wait_ack();
        }
        if (!read && !parity_ok) {
            // The ACK went out before the data: OK, then the data is thrown away.
            ctrl_stat_ |= kCtrlWDataErr;
            pending_note_ = "write data parity error";
            return SwdAck::Ok;
        }
        if (ap) return access_ap(read, address, data, now);
        access_dp(read, address, data, now);
        return SwdAck::Ok;
    }

    void access_dp(bool read, uint8_t address, uint32_t& data, Clock::time_point now) {
        switch (address) {
            case 0x0:
                if (read) data = chip_.swd->dpidr;
                else abort(data, now);
                return;
            case 0x4: {
                const uint32_t bank = select_ & 0xF;
                if (read) {
                    if (bank == 0) data = ctrl_stat_value();
                    else if (bank == 1) data = dlcr_;
                    else data = 0;
                } else if (bank == 0) {
                    ctrl_stat_ = (ctrl_stat_ & ~kCtrlWritable) | (data & kCtrlWritable);
                } else if (bank == 1) {
                    dlcr_ = data & 0x3C0;
                }
                return;
            }
            case 0x8:
                if (read) data = read_buffer_;  // RESEND
                else select_ = data;
                return;
            default:
                if (read) data = read_buffer_;  // RDBUFF: the posted AP read's result, no new access
                return;
        }
    }

    uint32_t ctrl_stat_value() const {
        // The power domains come up at once: each ACK follows its REQ.
        uint32_t value = ctrl_stat_;
        if (value & kCtrlDbgRstReq) value |= kCtrlDbgRstReq << 1;
        if (value & kCtrlDbgPwrUpReq) value |= kCtrlDbgPwrUpReq << 1;
        if (value & kCtrlSysPwrUpReq) value |= kCtrlSysPwrUpReq << 1;
        return value;
    }

    void abort(uint32_t value, Clock::time_point now) {
        if (value & kAbortDapAbort) ap_busy_until_ = std::min(ap_busy_until_, now);  // the AP gives up waiting
        if (value & kAbortStkCmpClr) ctrl_stat_ &= ~kCtrlStickyCmp;
        if (value & kAbortStkErrClr) ctrl_stat_ &= ~kCtrlStickyErr;
        if (value & kAbortWdErrClr) ctrl_stat_ &= ~kCtrlWDataErr;
        if (value & kAbortOrunErrClr) ctrl_stat_ &= ~kCtrlStickyOrun;
    }

    SwdAck access_ap(bool read, uint8_t address, uint32_t& data, Clock::time_point now) {
        const uint32_t apsel = select_ >> 24;
        const uint32_t reg = (select_ & 0xF0) | address;
        if (!(ctrl_stat_ & kCtrlDbgPwrUpReq) || !(ctrl_stat_ & kCtrlSysPwrUpReq)) {
            // The debug and system power domains are off: the access fails.
            ctrl_stat_ |= kCtrlStickyErr;
            pending_note_ = "AP access with the power domains off";
            if (read) data = std::exchange(read_buffer_, 0);
            return SwdAck::Ok;
        }
        if (read) {
            // Posted read: this packet returns the previous AP read's result; the value fetched now
            // comes with the next AP read or RDBUFF.
            uint32_t fetched = 0;
            const bool ok = apsel != 0 || mem_ap_read(reg, fetched, now);
            data = std::exchange(read_buffer_, apsel == 0 ? fetched : 0);
            if (ok) ctrl_stat_ |= kCtrlReadOk;
            else ctrl_stat_ &= ~kCtrlReadOk;
            return SwdAck::Ok;
        }
        if (apsel == 0) mem_ap_write(reg, data, now);
        return SwdAck::Ok;
    }

    unsigned access_size() const {
        switch (csw_ & kCswSizeMask) {
            case 0: return 1;
            case 1: return 2;
            default: return 4;
        }
    }

    void increment_tar(unsigned size) {
        if (((csw_ & kCswAddrIncMask) >> kCswAddrIncShift) != kAddrIncSingle) return;
        const uint32_t wrap = facts_.tar_wrap;
        tar_ = (tar_ & ~(wrap - 1)) | ((tar_ + size) & (wrap - 1));
    }

    bool mem_ap_read(uint32_t reg, uint32_t& value, Clock::time_point now) {
        switch (reg) {
            case kCsw: value = csw_ | kCswDeviceEn | (now < ap_busy_until_ ? kCswTrInProg : 0); return true;
            case kTar: value = tar_; return true;
            case kTarHigh: value = 0; return true;
            case kCfg: value = 0; return true;  // little-endian, 32-bit addresses
            case kBase: value = bus_->rom_table() | 0x3; return true;  // ADIv5 format, entry present
            case kIdr: value = facts_.ap_idr; return true;
            case kDrw: {
                const unsigned size = access_size();
                const uint32_t address = tar_ & ~(size - 1);
                auto read = bus_read(address, size, now);
                if (!read) return bus_error(address, now);
                value = *read << (8 * (address & 3));  // the byte lanes the address selects
                increment_tar(size);
                return true;
            }
            default:
                if (reg >= kBd0 && reg <= kBd3) {
                    const uint32_t address = (tar_ & ~0xFu) | (reg - kBd0);
                    auto read = bus_read(address, 4, now);
                    if (!read) return bus_error(address, now);
                    value = *read;
                    return true;
                }
                value = 0;
                return true;
        }
    }

    void mem_ap_write(uint32_t reg, uint32_t value, Clock::time_point now) {
        switch (reg) {
            case kCsw: {
                uint32_t size = value & kCswSizeMask;
                if (size > 2) size = csw_ & kCswSizeMask;  // 64/128-bit: not implemented, the field keeps its value
                uint32_t increment = (value & kCswAddrIncMask) >> kCswAddrIncShift;
                if (increment > kAddrIncSingle) increment = 0;  // packed transfers are not implemented
                csw_ = (value & kCswProtMask) | increment << kCswAddrIncShift | size;
                return;
            }
            case kTar: tar_ = value; return;
            case kDrw: {
                const unsigned size = access_size();
                const uint32_t address = tar_ & ~(size - 1);
                const uint32_t lanes = size == 4 ? 0xFFFFFFFFu : (1u << (8 * size)) - 1;
                if (!bus_write(address, value >> (8 * (address & 3)) & lanes, size, now)) {
                    bus_error(address, now);
                    return;
                }
                increment_tar(size);
                return;
            }
            default:
                if (reg >= kBd0 && reg <= kBd3) {
                    const uint32_t address = (tar_ & ~0xFu) | (reg - kBd0);
                    if (!bus_write(address, value, 4, now)) bus_error(address, now);
                }
                return;
        }
    }

    bool bus_error(uint32_t address, Clock::time_point) {
        ctrl_stat_ |= kCtrlStickyErr;
        pending_note_ = fmt::format("bus error at 0x{:08X}", address);
        return false;
    }

    // A bus access; a stalled one keeps the AP busy (TrInProg, WAIT) until it completes.
    Clock::time_point stall(uint32_t address, Clock::time_point now) {
        if (core_.decodes(address)) return now;
        const auto ready = bus_->ready_at(address, now);
        if (ready > now) {
            ap_busy_until_ = std::max(ap_busy_until_, ready);
            pending_note_ = fmt::format("0x{:08X}: the bus stalls while the flash is busy", address);
        }
        return ready;
    }

    std::optional<uint32_t> bus_read(uint32_t address, unsigned size, Clock::time_point now) {
        const auto at = stall(address, now);
        if (core_.decodes(address)) return core_.read(address, size);
        return bus_->read(address, size, at);
    }

    bool bus_write(uint32_t address, uint32_t value, unsigned size, Clock::time_point now) {
        const auto at = stall(address, now);
        if (!core_.decodes(address)) return bus_->write(address, value, size, at);
        core_.write(address, value, size);
        switch (core_.take_reset_request()) {
            case CortexMDebug::ResetRequest::System:
                bus_->reset(at);
                core_.reset(at);
                pending_note_ = fmt::format("SYSRESETREQ: core {}", core_.describe_state());
                break;
            case CortexMDebug::ResetRequest::Core:
                core_.reset(at);
                pending_note_ = fmt::format("VECTRESET: core {}", core_.describe_state());
                break;
            case CortexMDebug::ResetRequest::None: break;
        }
        return true;
    }

    const targets::Chip chip_;
    CoreFacts facts_;
    std::unique_ptr<ChipBus> bus_;
    CortexMDebug core_;
    SwdFaults faults_;
    TraceSink trace_;
    std::string pending_note_;
    uint64_t transactions_ = 0;

    // The wire
    unsigned ones_ = 0, zeros_ = 0, captured_ = 0;
    uint16_t history_ = 0;
    bool capturing_ = false, after_line_reset_ = false;
    bool swd_selected_ = false, needs_line_reset_ = false, awaiting_dpidr_ = false;
    bool reset_held_ = false;

    // DP
    uint32_t ctrl_stat_ = 0, select_ = 0, dlcr_ = 0, read_buffer_ = 0;
    Clock::time_point ap_busy_until_{};

    // MEM-AP: HPROT privileged data (bits 25:24 as the cores reset them), word size, no increment.
    uint32_t csw_ = 0x03000002, tar_ = 0;
};

uint32_t bootloader_size(const targets::Chip& chip, const std::string& requested, std::string& name) {
    const auto& knowledge = targets::Knowledge::builtin();
    if (requested == "none") return 0;
    if (requested.empty()) {
        // The chip's usual bootloader: the SAM-BA one on SAMD/SAMC (STM32s boot from ROM).
        for (const auto& [bootloader_name, bootloader] : knowledge.bootloaders())
            if (bootloader.protocol == "samba")
                if (auto size = bootloader.size_on(chip.name); size && *size > 0) {
                    name = bootloader_name;
                    return *size;
                }
        return 0;
    }
    const auto* bootloader = knowledge.find_bootloader(requested);
    auto size = bootloader ? bootloader->size_on(chip.name) : std::nullopt;
    if (!size)
        throw Error(ErrorKind::Usage,
                    fmt::format("the SWD simulator has no bootloader '{}' for the {} (data/bootloaders.toml gives "
                                "each bootloader's size per chip; 'none' starts with erased flash)",
                                requested, chip.name));
    name = requested;
    return *size;
}

}  // namespace

SwdFaults SwdFaults::parse(const std::string& text) {
    SwdFaults faults;
    size_t start = 0;
    auto number = [](const std::string& item, const std::string& digits) {
        try {
            size_t used = 0;
            const uint64_t value = std::stoull(digits, &used, 0);
            if (used == digits.size()) return value;
        } catch (const std::exception&) {
        }
        throw Error(ErrorKind::Usage, fmt::format("SWD fault '{}': N and K must be numbers", item));
    };
    while (start < text.size()) {
        const size_t end = text.find(',', start);
        const std::string item = text.substr(start, end == std::string::npos ? std::string::npos : end - start);
        start = end == std::string::npos ? text.size() : end + 1;
        if (item.empty()) continue;
        const auto at = item.find('@');
        if (at == std::string::npos)
            throw Error(ErrorKind::Usage,
                        fmt::format("SWD fault '{}': expected ACTION@N (wait@N:K, fault@N, reset@N, noresponse@N)", item));
        const std::string action = item.substr(0, at);
        std::string where = item.substr(at + 1);
        if (action == "wait") {
            const auto colon = where.find(':');
            const uint64_t first = number(item, where.substr(0, colon));
            const uint64_t count = colon == std::string::npos ? 1 : number(item, where.substr(colon + 1));
            faults.waits.emplace_back(first, count);
        } else if (action == "fault") {
            faults.fault_at.insert(number(item, where));
        } else if (action == "reset") {
            faults.reset_at.insert(number(item, where));
        } else if (action == "noresponse") {
            faults.noresponse_at = number(item, where);
        } else {
            throw Error(ErrorKind::Usage,
                        fmt::format("SWD fault '{}': unknown action (wait, fault, reset, noresponse)", item));
        }
    }
    return faults;
}

const std::vector<std::string>& debug_target_chips() {
    static const std::vector<std::string> chips = [] {
        std::vector<std::string> names;
        for (const auto& [name, chip] : targets::Knowledge::builtin().chips())
            if (chip.swd && (chip.swd->flash_controller == "stm32f1" || chip.swd->flash_controller == "stm32f4" ||
                             chip.swd->flash_controller == "samd21" || chip.swd->flash_controller == "samd51"))
                names.push_back(name);
        return names;
    }();
    return chips;
}

std::unique_ptr<DebugTarget> make_debug_target(const std::string& chip_name, const DeviceOptions& options) {
    return make_debug_target(chip_name, options, SwdFaults{});
}

std::unique_ptr<DebugTarget> make_debug_target(const std::string& chip_name, const DeviceOptions& options,
                                               const SwdFaults& faults) {
    const auto* chip = targets::Knowledge::builtin().find_chip(chip_name);
    const auto& known = debug_target_chips();
    if (!chip || std::find(known.begin(), known.end(), chip->name) == known.end())
        throw Error(ErrorKind::Usage, fmt::format("the SWD simulator has no model of '{}'; it simulates: {}", chip_name,
                                                  fmt::join(known, ", ")));
    ChipBusOptions bus_options;
    bus_options.bootloader_size = bootloader_size(*chip, options.bootloader, bus_options.bootloader_name);
    bus_options.timing = options.timing;
    std::unique_ptr<ChipBus> bus;
    const auto& controller = chip->swd->flash_controller;
    if (controller == "stm32f1") bus = make_stm32f1_bus(*chip, bus_options);
    else if (controller == "stm32f4") bus = make_stm32f4_bus(*chip, bus_options);
    else bus = make_sam_bus(*chip, bus_options);
    if (options.flash_file) bus->flash().attach_file(*options.flash_file);
    return std::make_unique<SwdDebugTarget>(*chip, std::move(bus), faults, options.trace);
}

}  // namespace mcuflash::sim::swd
