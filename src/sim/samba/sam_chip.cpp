#include "sim/samba/sam_chip.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <chrono>

#include "core/error.hpp"

namespace mcuflash::sim::samba {

namespace {

SamController controller_of(const targets::Chip& chip) {
    if (!chip.sam)
        throw core::Error(core::ErrorKind::Usage,
                          fmt::format("the SAM-BA simulator has no model of the {} ({}: no sam facts in chips.toml)",
                                      chip.name, chip.family));
    if (chip.sam->controller == "nvmctrl_d21") return SamController::NvmctrlD21;
    if (chip.sam->controller == "nvmctrl_d51") return SamController::NvmctrlD51;
    return SamController::Eefc;
}

FlashLayout layout_of(const targets::Chip& chip) {
    // NVMCTRL: rows or blocks are erased, pages written; EEFC: "erase and write page" erases what it writes.
    const uint32_t erase_unit = chip.sam->erase_unit ? chip.sam->erase_unit : chip.page_size;
    return FlashLayout::uniform(chip.flash_base, chip.flash_size, erase_unit, chip.page_size);
}

FlashTiming timing_of(SamController controller, bool timing) {
    if (!timing) return {};
    switch (controller) {
        case SamController::NvmctrlD21: return {SamFlashTiming::kD21RowErase, {}, SamFlashTiming::kD21PageWrite};
        case SamController::NvmctrlD51: return {SamFlashTiming::kD51BlockErase, {}, SamFlashTiming::kD51PageWrite};
        default: return {{}, {}, SamFlashTiming::kEefcEraseWritePage};
    }
}

uint32_t be32(const std::vector<uint8_t>& bytes, size_t offset) {
    if (bytes.size() < offset + 4) return 0;
    return uint32_t(bytes[offset]) << 24 | uint32_t(bytes[offset + 1]) << 16 | uint32_t(bytes[offset + 2]) << 8 |
           bytes[offset + 3];
}

constexpr uint32_t kDidRevisionD = 0x3u << 8;  // DSU DID.REVISION: the die revision boards ship with
constexpr uint32_t kAircrKey = 0x05FA, kAircrSysResetReq = 1u << 2;
constexpr uint32_t kRstcKey = 0xA5, kRstcProcessorReset = 1u << 0;
constexpr uint32_t kGpnvmBootFromFlash = 1u << 1;

}  // namespace

SamChip::SamChip(const targets::Chip& chip, uint32_t bootloader_size, const std::string& bootloader_name, bool timing,
                 SamBootProtection protection)
    : chip_(chip),
      controller_kind_(controller_of(chip)),
      bootloader_size_(bootloader_size),
      flash_(layout_of(chip), timing_of(controller_kind_, timing)) {
    const auto& sam = facts();
    switch (controller_kind_) {
        case SamController::NvmctrlD21:
            controller_ = make_nvmctrl_d21(flash_, chip.page_size);
            user_row_ = samd21_user_row(bootloader_size);
            break;
        case SamController::NvmctrlD51:
            controller_ = make_nvmctrl_d51(flash_, chip.page_size, bootloader_size);
            user_row_ = samd51_user_page(bootloader_size);
            break;
        case SamController::Eefc:
            controller_ = make_eefc(flash_, chip.page_size, {sam.planes, sam.lock_regions, sam.gpnvm_bits, 0, timing});
            break;
    }
    for (auto [base, size] : sam.sram) ram_.push_back({base, std::vector<uint8_t>(size)});
    protection_ = controller_kind_ == SamController::Eefc ? SamBootProtection::FixedRange : protection;
    timing_ = timing;
    if (bootloader_size > 0 && protection_ == SamBootProtection::FixedRange) {
        // BOOTPROT keeps the NVM controller off the bootloader's rows (LOCKE).
        flash_.protect({chip.flash_base, bootloader_size, bootloader_name});
        flash_.fill_protected_with_placeholder();
    }
    if (protection_ == SamBootProtection::UserRow) {
        if (bootloader_size > 0)
            flash_.load(chip.flash_base, FlashMemory::placeholder(bootloader_name, bootloader_size));
        user_row_buffer_.assign(user_row_.size(), FlashMemory::kErased);
        bootprot_size_ = latched_bootprot_size();
    }
}

uint32_t SamChip::sram_size() const {
    uint32_t total = 0;
    for (const auto& r : ram_) total += static_cast<uint32_t>(r.bytes.size());
    return total;
}

uint32_t SamChip::identity() const {
    const uint32_t value = be32(chip_.signature, 0);
    return has_rom_monitor() ? value : value | kDidRevisionD;
}

uint32_t SamChip::identity_extension() const { return be32(chip_.signature, 4); }

uint32_t SamChip::gpnvm() const { return has_rom_monitor() ? eefc_gpnvm(*controller_) : 0; }

void SamChip::boot_from_rom() {
    if (has_rom_monitor()) eefc_set_gpnvm(*controller_, gpnvm() & ~kGpnvmBootFromFlash);
}

void SamChip::reset() {
    controller_->reset();
    boot_from_flash_ = gpnvm() & kGpnvmBootFromFlash;
    reset_requested_ = false;
    if (protection_ == SamBootProtection::UserRow) {
        bootprot_size_ = latched_bootprot_size();  // BOOTPROT takes effect at reset
        nvm_errors_ = 0;
        user_row_busy_until_ = {};
        std::fill(user_row_buffer_.begin(), user_row_buffer_.end(), FlashMemory::kErased);
    }
}

std::optional<Clock::time_point> SamChip::busy_until(Clock::time_point now) const {
    auto until = controller_->busy_until(now);
    for (auto extra : {user_row_busy_until_, chip_erase_until_})
        if (now < extra && (!until || *until < extra)) until = extra;
    return until;
}

bool SamChip::starts_application() const {
    if (has_rom_monitor()) return gpnvm() & kGpnvmBootFromFlash;
    uint32_t first_word = 0;
    for (int i = 0; i < 4; ++i) first_word |= uint32_t(flash_.at(app_start() + i)) << (8 * i);
    return first_word != 0xFFFFFFFF;
}

uint32_t SamChip::rom_word(uint32_t offset) const {
    // The ROM's vector table: the monitor's stack below the SRAM it leaves to the host (BOSSA puts its
    // applet at 0x20001000), and its Thumb entry point in the ROM. The code itself reads as zeros.
    if (offset == 0) return address::kSram + 0x1000;
    if (offset == 4) return facts().rom + 0xA1;
    return 0;
}

bool SamChip::in_peripheral_space(uint32_t a) const {
    if (a >= 0xE0000000 && a < 0xE0100000) return true;  // Cortex-M private peripheral bus
    if (has_rom_monitor()) return a >= 0x40000000 && a < 0x40100000;
    return a >= 0x40000000 && a < 0x48000000;  // SAMD APB bridges A-D
}

uint32_t SamChip::read_word(uint32_t a, Clock::time_point now) {
    auto bytes_word = [](const uint8_t* p) {
        return uint32_t(p[0]) | uint32_t(p[1]) << 8 | uint32_t(p[2]) << 16 | uint32_t(p[3]) << 24;
    };
    if (has_rom_monitor()) {
        constexpr uint32_t kRomWindow = 0x10000;
        if (a < kRomWindow && !boot_from_flash_) return rom_word(a);
        if (a >= facts().rom && a - facts().rom < kRomWindow) return rom_word(a - facts().rom);
    }
    if (protection_ == SamBootProtection::UserRow)
        if (auto value = debug_read_word(a, now)) return *value;
    if (flash_.contains(a, 4)) {
        uint8_t b[4];
        flash_.read(a, b);
        return bytes_word(b);
    }
    if (has_rom_monitor() && boot_from_flash_ && a < flash_.size()) return read_word(flash_.base() + a, now);
    for (auto& ram : ram_)
        if (ram.contains(a)) return bytes_word(&ram.bytes[a - ram.base]);
    if (!user_row_.empty() && a >= address::kNvmUserRow && a - address::kNvmUserRow < user_row_.size())
        return bytes_word(&user_row_[a - address::kNvmUserRow]);
    if (controller_->decodes(a)) return controller_->read_register(a, now);
    if (a == address::kCpuId) return cpuid();
    if (!has_rom_monitor() && a == address::kDsuDid) return identity();
    if (has_rom_monitor()) {
        if (a == facts().chipid_register) return identity();
        if (a == facts().chipid_register + 4) return identity_extension();
    }
    if (in_peripheral_space(a)) return 0;
    throw BusFault{a, false};
}

void SamChip::write_word(uint32_t a, uint32_t value, uint32_t mask, Clock::time_point now) {
    if (protection_ == SamBootProtection::UserRow && debug_write_word(a, value, mask, now)) return;
    if (flash_.contains(a, 4)) return controller_->store(a, value, mask, now);
    for (auto& ram : ram_) {
        if (!ram.contains(a)) continue;
        for (uint32_t i = 0; i < 4; ++i)
            if (mask >> (8 * i) & 0xFF) ram.bytes[a - ram.base + i] = static_cast<uint8_t>(value >> (8 * i));
        return;
    }
    if (controller_->decodes(a)) return controller_->write_register(a, value, mask, now);
    if (a == address::kAircr && mask == 0xFFFFFFFF) {
        if ((value >> 16) == kAircrKey && (value & kAircrSysResetReq)) reset_requested_ = true;
        return;
    }
    if (has_rom_monitor() && a == facts().reset_controller && mask == 0xFFFFFFFF) {
        if ((value >> 24) == kRstcKey && (value & kRstcProcessorReset)) reset_requested_ = true;
        return;
    }
    if (in_peripheral_space(a)) return;
    // ROM, boot memory and the user row ignore stores; anything else is not decoded.
    const bool read_only = (has_rom_monitor() && (a < 0x10000 || (a >= facts().rom && a - facts().rom < 0x10000))) ||
                           (!user_row_.empty() && a >= address::kNvmUserRow && a - address::kNvmUserRow < user_row_.size());
    if (!read_only) throw BusFault{a, true};
}

uint32_t SamChip::read(uint32_t a, unsigned size, Clock::time_point now) {
    if (a % size != 0) {  // unaligned: byte by byte
        uint32_t value = 0;
        for (unsigned i = 0; i < size; ++i) value |= read(a + i, 1, now) << (8 * i);
        return value;
    }
    const uint32_t word = read_word(a & ~3u, now);
    const uint32_t shifted = word >> (8 * (a & 3));
    return size == 4 ? shifted : shifted & ((1u << (8 * size)) - 1);
}

void SamChip::write(uint32_t a, uint32_t value, unsigned size, Clock::time_point now) {
    if (a % size != 0) {
        for (unsigned i = 0; i < size; ++i) write(a + i, value >> (8 * i) & 0xFF, 1, now);
        return;
    }
    const unsigned shift = 8 * (a & 3);
    const uint32_t mask = (size == 4 ? 0xFFFFFFFFu : (1u << (8 * size)) - 1) << shift;
    write_word(a & ~3u, value << shift, mask, now);
}

// ---------------------------------------------------------------- what a debugger adds (UserRow)

namespace {

constexpr uint32_t kNvmctrl = 0x41004000;
// SAMD21/SAMC21 NVMCTRL
constexpr uint32_t kD21CtrlA = 0x00, kD21CtrlB = 0x04, kD21IntFlag = 0x14, kD21Status = 0x18, kD21Addr = 0x1C;
constexpr uint32_t kD21ManualWrite = 1u << 7, kD21Ready = 1u << 0, kD21Error = 1u << 1;
constexpr uint32_t kD21ProgE = 1u << 2, kD21LockE = 1u << 3;
constexpr uint32_t kD21EraseRow = 0x02, kD21WritePage = 0x04, kD21EraseAuxRow = 0x05, kD21WriteAuxPage = 0x06,
                   kD21PageBufferClear = 0x44;
// SAMD51 NVMCTRL
constexpr uint32_t kD51CtrlA = 0x00, kD51CtrlB = 0x04, kD51IntFlagStatus = 0x10, kD51Addr = 0x14;
constexpr uint32_t kD51WriteModeMask = 0x30, kD51StatusReady = 1u << 16;
constexpr uint32_t kD51Done = 1u << 0, kD51ProgE = 1u << 2, kD51LockE = 1u << 3;
constexpr uint32_t kD51ErasePage = 0x00, kD51EraseBlock = 0x01, kD51WritePage = 0x03, kD51WriteQuadWord = 0x04,
                   kD51PageBufferClear = 0x15;
constexpr uint32_t kCmdKey = 0xA5;
// DSU
constexpr uint32_t kDsuExternalMirror = 0x100;  // the debugger's view of the registers (OpenOCD writes CTRL there)
constexpr uint32_t kDsuChipErase = 1u << 4, kDsuStatusDone = 1u << 0;
constexpr uint32_t kDsuStatusBDebuggerPresent = 1u << 1, kDsuStatusBHotPlugEnabled = 1u << 4;
constexpr auto kChipEraseTime = std::chrono::milliseconds(240);  // "about 240 ms" (OpenOCD, at91samd.c)

// The DSU's CoreSight ROM table (DSU + 0x1000): entry 0 the Cortex-M0+/M4 ROM table at 0xE00FF000,
// entry 1 the MTB (not present for the debugger's purposes), then the Atmel component IDs.
uint32_t dsu_rom_table_word(uint32_t offset) {
    switch (offset) {
        case 0x000: return (0xE00FF000u - address::kDsuRomTable) | 0x3;
        case 0x004: return 0x00003002;
        case 0xFCC: return 0x1;  // MEMTYPE: system memory present
        case 0xFE0: return 0xD0;
        case 0xFE4: return 0xFC;
        case 0xFE8: return 0x09;
        case 0xFF0: return 0x0D;
        case 0xFF4: return 0x10;
        case 0xFF8: return 0x05;
        case 0xFFC: return 0xB1;
        default: return 0;
    }
}

}  // namespace

uint32_t SamChip::latched_bootprot_size() const {
    const uint32_t word0 = uint32_t(user_row_[0]) | uint32_t(user_row_[1]) << 8 | uint32_t(user_row_[2]) << 16 |
                           uint32_t(user_row_[3]) << 24;
    if (controller_kind_ == SamController::NvmctrlD51) return (15 - (word0 >> 26 & 0xF)) * 8192;
    const uint32_t bootprot = word0 & 0x7;  // 7: none, 6: 512 B ... 0: 32 KiB
    return bootprot == 7 ? 0 : 256u << (7 - bootprot);
}

uint32_t SamChip::user_row_page_size() const { return chip_.page_size; }

uint32_t SamChip::nvm_address() const {
    if (controller_kind_ == SamController::NvmctrlD51) return controller_->read_register(kNvmctrl + kD51Addr, {});
    return controller_->read_register(kNvmctrl + kD21Addr, {}) * 2;  // ADDR counts 16-bit words
}

void SamChip::refuse_nvm_command(uint32_t error_bits) { nvm_errors_ |= error_bits; }

void SamChip::program_user_row(uint32_t offset, uint32_t length, Clock::time_point now) {
    for (uint32_t i = offset; i < offset + length && i < user_row_.size(); ++i) {
        user_row_[i] &= user_row_buffer_[i];  // flash: programming only clears bits
        user_row_buffer_[i] = FlashMemory::kErased;
    }
    const auto write_time =
        controller_kind_ == SamController::NvmctrlD51 ? SamFlashTiming::kD51PageWrite : SamFlashTiming::kD21PageWrite;
    user_row_busy_until_ = now + (timing_ ? Clock::duration(write_time) : Clock::duration{});
    if (controller_kind_ == SamController::NvmctrlD51) nvm_errors_ |= kD51Done;
}

bool SamChip::nvm_command(uint32_t command, Clock::time_point now) {
    const bool d51 = controller_kind_ == SamController::NvmctrlD51;
    uint32_t address = nvm_address();
    // D21 ADDR holds 22 bits of a 16-bit word address: the auxiliary space (0x800000 up) loses its top
    // bit, and EAR/WAP put it back.
    if (!d51 && (command == kD21EraseAuxRow || command == kD21WriteAuxPage)) address |= 0x800000;
    const bool in_user_row = address >= address::kNvmUserRow && address - address::kNvmUserRow < user_row_.size();
    const uint32_t row_offset = address - address::kNvmUserRow;
    const uint32_t lock_error = d51 ? kD51LockE : kD21LockE, program_error = d51 ? kD51ProgE : kD21ProgE;
    const bool flash_target = flash_.contains(address, 1);
    const bool busy_now = busy_until(now).has_value();

    if (command == (d51 ? kD51PageBufferClear : kD21PageBufferClear)) {
        std::fill(user_row_buffer_.begin(), user_row_buffer_.end(), FlashMemory::kErased);
        return false;  // the controller clears its own buffer too
    }
    const bool main_flash_command = d51 ? (command == kD51EraseBlock || command == kD51WritePage ||
                                           command == kD51WriteQuadWord)
                                        : (command == kD21EraseRow || command == kD21WritePage);
    if (main_flash_command && flash_target && bootprot_covers(address)) {
        // BOOTPROT: the controller refuses the bootloader's rows (the debugger gets no exception here).
        refuse_nvm_command(lock_error);
        return true;
    }
    if (d51) {
        if (!in_user_row) return false;
        if (busy_now) return refuse_nvm_command(program_error), true;
        if (command == kD51ErasePage || command == kD51EraseBlock) {
            std::fill(user_row_.begin(), user_row_.end(), FlashMemory::kErased);
            user_row_busy_until_ = now + (timing_ ? Clock::duration(SamFlashTiming::kD51BlockErase) : Clock::duration{});
            nvm_errors_ |= kD51Done;
        } else if (command == kD51WritePage) {
            program_user_row(row_offset / user_row_page_size() * user_row_page_size(), user_row_page_size(), now);
        } else if (command == kD51WriteQuadWord) {
            program_user_row(row_offset / 16 * 16, 16, now);
        } else {
            refuse_nvm_command(program_error);
        }
        return true;
    }
    if (command == kD21EraseAuxRow || command == kD21WriteAuxPage) {
        if (!in_user_row || busy_now) return refuse_nvm_command(program_error), true;
        if (command == kD21EraseAuxRow) {
            std::fill(user_row_.begin(), user_row_.end(), FlashMemory::kErased);
            user_row_busy_until_ = now + (timing_ ? Clock::duration(SamFlashTiming::kD21RowErase) : Clock::duration{});
        } else {
            program_user_row(row_offset / user_row_page_size() * user_row_page_size(), user_row_page_size(), now);
        }
        return true;
    }
    return false;
}

std::optional<uint32_t> SamChip::debug_read_word(uint32_t a, Clock::time_point now) {
    const bool d51 = controller_kind_ == SamController::NvmctrlD51;
    if (a >= address::kDsu && a < address::kDsu + 2 * kDsuExternalMirror) {
        const uint32_t reg = (a - address::kDsu) % kDsuExternalMirror;
        if (chip_erase_pending_ && now >= chip_erase_until_) {
            chip_erase_pending_ = false;
            dsu_status_a_ |= kDsuStatusDone;
        }
        if (reg == 0x00) return uint32_t(dsu_status_a_) << 8 | (kDsuStatusBDebuggerPresent | kDsuStatusBHotPlugEnabled) << 16;
        if (reg >= 0x04 && reg <= 0x14) return dsu_registers_[(reg - 0x04) / 4];
        if (reg == 0x18) return identity();
        return 0;
    }
    if (a >= address::kDsuRomTable && a < address::kDsuRomTable + 0x1000) return dsu_rom_table_word(a - address::kDsuRomTable);
    const bool user_row_busy = now < user_row_busy_until_ || now < chip_erase_until_;
    if (!d51 && a == kNvmctrl + kD21IntFlag) {
        uint32_t value = controller_->read_register(a, now) | (nvm_errors_ ? kD21Error : 0);
        return user_row_busy ? value & ~kD21Ready : value;
    }
    if (!d51 && a == kNvmctrl + kD21Status) return controller_->read_register(a, now) | nvm_errors_;
    if (d51 && a == kNvmctrl + kD51IntFlagStatus) {
        // INTFLAG.DONE means the command has finished (atsame5 waits for it, not for READY).
        uint32_t value = controller_->read_register(a, now) | nvm_errors_;
        return busy_until(now) ? value & ~(kD51StatusReady | kD51Done) : value;
    }
    return std::nullopt;
}

bool SamChip::debug_write_word(uint32_t a, uint32_t value, uint32_t mask, Clock::time_point now) {
    const bool d51 = controller_kind_ == SamController::NvmctrlD51;
    if (a >= address::kDsu && a < address::kDsu + 2 * kDsuExternalMirror) {
        const uint32_t reg = (a - address::kDsu) % kDsuExternalMirror;
        if (reg == 0x00) {
            if ((mask & 0xFF) && (value & kDsuChipErase)) {
                // Chip erase: the whole flash, the bootloader's rows included whatever BOOTPROT says.
                flash_.load(chip_.flash_base, std::vector<uint8_t>(flash_.size(), FlashMemory::kErased));
                chip_erase_until_ = now + (timing_ ? Clock::duration(kChipEraseTime) : Clock::duration{});
                chip_erase_pending_ = true;
                dsu_status_a_ &= ~kDsuStatusDone;
            }
            if (mask & 0xFF00) dsu_status_a_ &= ~(value >> 8 & 0x1F);  // write one to clear
        } else if (reg >= 0x04 && reg <= 0x14) {
            uint32_t& r = dsu_registers_[(reg - 0x04) / 4];
            r = (r & ~mask) | (value & mask);
        }
        return true;
    }
    if (a >= address::kDsuRomTable && a < address::kDsuRomTable + 0x1000) return true;

    const uint32_t page = user_row_page_size();
    const bool automatic_write = d51 ? (controller_->read_register(kNvmctrl + kD51CtrlA, now) & kD51WriteModeMask) != 0
                                     : !(controller_->read_register(kNvmctrl + kD21CtrlB, now) & kD21ManualWrite);
    const uint32_t address_register = d51 ? kNvmctrl + kD51Addr : kNvmctrl + kD21Addr;
    // Stores into the page buffer also set ADDR (the datasheets: "automatically updated when writing
    // to the page buffer"), so the write page command that follows knows its page.
    auto set_nvm_address = [&](uint32_t address) {
        controller_->write_register(address_register, d51 ? address : address / 2, 0xFFFFFFFF, now);
    };
    if (a >= address::kNvmUserRow && a - address::kNvmUserRow < user_row_.size()) {
        const uint32_t offset = a - address::kNvmUserRow;
        for (uint32_t i = 0; i < 4; ++i)
            if (mask >> (8 * i) & 0xFF) user_row_buffer_[offset + i] = static_cast<uint8_t>(value >> (8 * i));
        set_nvm_address(a);
        if (automatic_write && offset % page + 4 >= page) program_user_row(offset / page * page, page, now);
        return true;
    }
    if (flash_.contains(a, 4)) {
        if (automatic_write && a % page + 4 >= page && bootprot_covers(a)) {
            // The automatic page write hits BOOTPROT: refused, the buffer is dropped.
            controller_->write_register(kNvmctrl + (d51 ? kD51CtrlB : kD21CtrlA),
                                        kCmdKey << 8 | (d51 ? kD51PageBufferClear : kD21PageBufferClear), 0xFFFF, now);
            refuse_nvm_command(d51 ? kD51LockE : kD21LockE);
            return true;
        }
        controller_->store(a, value, mask, now);
        set_nvm_address(a);
        return true;
    }
    if (a == kNvmctrl + (d51 ? kD51CtrlB : kD21CtrlA) && (mask & 0xFFFF) == 0xFFFF && (value >> 8 & 0xFF) == kCmdKey)
        return nvm_command(value & 0x7F, now);
    if (!d51 && a == kNvmctrl + kD21Status) nvm_errors_ &= ~(value & mask & (kD21LockE | kD21ProgE));
    if (!d51 && a == kNvmctrl + kD21IntFlag && (value & mask & kD21Error)) nvm_errors_ = 0;
    if (d51 && a == kNvmctrl + kD51IntFlagStatus) nvm_errors_ &= ~(value & mask & 0xFFFF);
    return false;  // the plain model handles the rest
}

}  // namespace mcuflash::sim::samba
