#include "sim/samba/sam_chip.hpp"

#include <fmt/format.h>

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

SamChip::SamChip(const targets::Chip& chip, uint32_t bootloader_size, const std::string& bootloader_name, bool timing)
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
    if (bootloader_size > 0) {
        // BOOTPROT keeps the NVM controller off the bootloader's rows (LOCKE).
        flash_.protect({chip.flash_base, bootloader_size, bootloader_name});
        flash_.fill_protected_with_placeholder();
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

}  // namespace mcuflash::sim::samba
