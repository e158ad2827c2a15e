// STM32F1 and STM32F4 as the AHB-AP sees them: flash (aliased at 0, as after a reset with BOOT0 low),
// SRAM, the system memory with the flash size and unique ID registers, option bytes, the flash
// interface (RM0008 "Flash memory programming manual" PM0075 / RM0090 section 3) and DBGMCU.
#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <chrono>
#include <vector>

#include "sim/swd/chip_bus.hpp"

namespace mcuflash::sim::swd {

namespace {

using std::chrono::microseconds;
using std::chrono::milliseconds;

constexpr uint32_t kDbgmcu = 0xE0042000;
constexpr uint32_t kFlashInterfaceSpan = 0x400;

// DBGMCU_IDCODE REV_ID: a revision boards commonly carry (OpenOCD's tables name them).
uint32_t revision_of(uint16_t dev_id) {
    switch (dev_id) {
        case 0x410: return 0x2003;  // F103 medium density, revision X
        case 0x414: return 0x1003;  // F103 high density, revision Y
        case 0x413: return 0x1007;  // F405/F407, revision 2
        default: return 0x1000;     // revision A
    }
}

struct ByteRegion {
    uint32_t base = 0;
    std::vector<uint8_t> bytes;
    bool contains(uint32_t address, unsigned size) const {
        return address >= base && uint64_t{address} - base + size <= bytes.size();
    }
    uint32_t get(uint32_t address, unsigned size) const {
        uint32_t value = 0;
        for (unsigned i = 0; i < size; ++i) value |= uint32_t(bytes[address - base + i]) << (8 * i);
        return value;
    }
    void put(uint32_t address, uint32_t value, unsigned size) {
        for (unsigned i = 0; i < size; ++i) bytes[address - base + i] = static_cast<uint8_t>(value >> (8 * i));
    }
};

uint32_t lane_mask(uint32_t address, unsigned size) {
    const uint32_t bits = size == 4 ? 0xFFFFFFFFu : (1u << (8 * size)) - 1;
    return bits << (8 * (address & 3));
}

// What both flash interfaces share: the memory map, the busy period and its end-of-operation flag.
class Stm32Bus : public ChipBus {
public:
    Stm32Bus(const targets::Chip& chip, const ChipBusOptions& options, uint32_t write_unit, FlashTiming timing,
             uint32_t flash_interface, uint32_t system_memory, uint32_t system_memory_size)
        : chip_(chip),
          flash_(FlashLayout::of_chip(chip, write_unit), options.timing ? timing : FlashTiming{}),
          timing_(options.timing),
          flash_interface_(flash_interface),
          sram_{chip.swd->sram_base, std::vector<uint8_t>(chip.swd->sram_size)},
          system_memory_{system_memory, FlashMemory::placeholder("stm32 system memory", system_memory_size)} {
        if (options.bootloader_size > 0) {
            flash_.load(flash_.base(), FlashMemory::placeholder(options.bootloader_name, options.bootloader_size));
        }
        if (chip.flash_size_register && system_memory_.contains(*chip.flash_size_register, 2))
            system_memory_.put(*chip.flash_size_register, chip.flash_size / 1024, 2);
    }

    std::optional<uint32_t> read(uint32_t address, unsigned size, Clock::time_point now) override {
        settle(now);
        if (auto physical = flash_address(address, size)) {
            if (readout_protected()) return std::nullopt;  // RDP: the debugger gets a bus error
            uint32_t value = 0;
            for (unsigned i = 0; i < size; ++i) value |= uint32_t(flash_.at(*physical + i)) << (8 * i);
            return value;
        }
        if (sram_.contains(address, size)) return sram_.get(address, size);
        if (system_memory_.contains(address, size)) return system_memory_.get(address, size);
        if (auto value = read_options(address, size)) return value;
        if (address >= flash_interface_ && address < flash_interface_ + kFlashInterfaceSpan) {
            const uint32_t word = read_register(address & ~3u & (kFlashInterfaceSpan - 1), now);
            return (word & lane_mask(address, size)) >> (8 * (address & 3));
        }
        if (address >= kDbgmcu && address < kDbgmcu + 0x10) {
            const uint32_t offset = address & 0xC;
            uint32_t word = 0;
            // Bits 15:12 are reserved and read as 6 on these parts ("device id = 0x20036410").
            if (offset == 0) word = revision_of(*chip_.product_id) << 16 | 0x6000 | *chip_.product_id;
            else word = dbgmcu_[offset / 4];
            return (word & lane_mask(address, size)) >> (8 * (address & 3));
        }
        if (in_peripheral_space(address) || in_private_peripheral_bus(address)) return 0;
        return std::nullopt;
    }

    bool write(uint32_t address, uint32_t value, unsigned size, Clock::time_point now) override {
        settle(now);
        if (auto physical = flash_address(address, size)) return program(*physical, value, size, now);
        if (sram_.contains(address, size)) {
            sram_.put(address, value, size);
            return true;
        }
        if (system_memory_.contains(address, size)) return true;  // ROM: the store goes nowhere
        if (is_option_bytes(address)) return write_options(address, value, size, now);
        if (address >= flash_interface_ && address < flash_interface_ + kFlashInterfaceSpan) {
            const uint32_t mask = lane_mask(address, size);
            return write_register(address & ~3u & (kFlashInterfaceSpan - 1), value << (8 * (address & 3)), mask, now);
        }
        if (address >= kDbgmcu && address < kDbgmcu + 0x10) {
            const uint32_t offset = address & 0xC;
            const uint32_t mask = lane_mask(address, size);
            if (offset != 0) dbgmcu_[offset / 4] = (dbgmcu_[offset / 4] & ~mask) | (value << (8 * (address & 3)) & mask);
            return true;
        }
        return in_peripheral_space(address) || in_private_peripheral_bus(address);
    }

    Clock::time_point ready_at(uint32_t address, Clock::time_point now) const override {
        // The flash interface stalls the bus for flash (and option byte) accesses while BSY.
        const bool flash_access = flash_address(address, 1).has_value() || is_option_bytes(address);
        return flash_access && now < busy_until_ ? busy_until_ : now;
    }

    void tick(Clock::time_point now) override { settle(now); }
    FlashMemory& flash() override { return flash_; }

protected:
    std::optional<uint32_t> flash_address(uint32_t address, unsigned size) const {
        if (flash_.contains(address, size)) return address;
        if (uint64_t{address} + size <= flash_.size()) return flash_.base() + address;  // the boot alias at 0
        return std::nullopt;
    }
    bool in_private_peripheral_bus(uint32_t address) const { return address >= 0xE0000000 && address < 0xE0100000; }
    virtual bool in_peripheral_space(uint32_t address) const = 0;
    virtual bool readout_protected() const = 0;
    virtual bool is_option_bytes(uint32_t address) const = 0;
    virtual std::optional<uint32_t> read_options(uint32_t address, unsigned size) const = 0;
    virtual bool write_options(uint32_t address, uint32_t value, unsigned size, Clock::time_point now) = 0;
    virtual uint32_t read_register(uint32_t offset, Clock::time_point now) = 0;
    virtual bool write_register(uint32_t offset, uint32_t value, uint32_t byte_mask, Clock::time_point now) = 0;
    virtual bool program(uint32_t address, uint32_t value, unsigned size, Clock::time_point now) = 0;
    // The operation in progress ended at busy_until_ (called once, when time has passed it).
    virtual void operation_done() = 0;

    bool busy(Clock::time_point now) const { return now < busy_until_; }
    void start_operation(Clock::duration duration, Clock::time_point now) {
        busy_until_ = std::max(busy_until_, now) + (timing_ ? duration : Clock::duration{});
        operation_pending_ = true;
        settle(now);
    }
    void settle(Clock::time_point now) {
        if (operation_pending_ && now >= busy_until_) {
            operation_pending_ = false;
            operation_done();
        }
    }
    void reset_busy() {
        busy_until_ = {};
        operation_pending_ = false;
    }

    const targets::Chip chip_;
    FlashMemory flash_;
    bool timing_;
    uint32_t flash_interface_;
    ByteRegion sram_;
    ByteRegion system_memory_;
    std::array<uint32_t, 4> dbgmcu_{};
    Clock::time_point busy_until_{};
    bool operation_pending_ = false;
};

// ------------------------------------------------------------------------------------------ STM32F1

class Stm32F1Bus : public Stm32Bus {
public:
    static constexpr uint32_t kAcr = 0x00, kKeyr = 0x04, kOptKeyr = 0x08, kSr = 0x0C, kCr = 0x10, kAr = 0x14,
                              kObr = 0x1C, kWrpr = 0x20;
    static constexpr uint32_t kKey1 = 0x45670123, kKey2 = 0xCDEF89AB;
    static constexpr uint32_t kSrBsy = 1u << 0, kSrPgErr = 1u << 2, kSrWrprtErr = 1u << 4, kSrEop = 1u << 5;
    static constexpr uint32_t kCrPg = 1u << 0, kCrPer = 1u << 1, kCrMer = 1u << 2, kCrOptPg = 1u << 4,
                              kCrOptEr = 1u << 5, kCrStrt = 1u << 6, kCrLock = 1u << 7, kCrOptWre = 1u << 9,
                              kCrErrIe = 1u << 10, kCrEopIe = 1u << 12;
    static constexpr uint32_t kOptionBytes = 0x1FFFF800;
    static constexpr uint8_t kRdpUnprotected = 0xA5;
    // Datasheet typical times (STM32F103xB: tPROG 52.5 us, tERASE 20 ms, tME 20 ms... 40 ms).
    static constexpr auto kPageErase = milliseconds(20), kMassErase = milliseconds(30);
    static constexpr auto kHalfWordProgram = microseconds(52);

    Stm32F1Bus(const targets::Chip& chip, const ChipBusOptions& options)
        : Stm32Bus(chip, options, 2, FlashTiming{kPageErase, {}, kHalfWordProgram}, 0x40022000, 0x1FFFF000, 0x800) {
        // Factory option bytes: RDP 0xA5 (no readout protection), USER/DATA 0xFF, no write protection;
        // each byte followed by its complement.
        const uint8_t values[8] = {kRdpUnprotected, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF};
        for (int i = 0; i < 8; ++i) options_[i] = static_cast<uint16_t>(values[i] | (~values[i] & 0xFF) << 8);
        // Unique device ID at F_SIZE + 8 (96 bits).
        if (chip.flash_size_register) {
            const uint32_t uid = *chip.flash_size_register + 8;
            for (uint32_t i = 0; i < 12 && system_memory_.contains(uid + i, 1); ++i)
                system_memory_.put(uid + i, 0x30 + i * 7, 1);
        }
        reset({});
    }

    std::string describe() const override {
        return fmt::format("{} over SWD, {} KiB flash in {} B pages", chip_.description, flash_.size() / 1024,
                           chip_.page_size);
    }

    void reset(Clock::time_point) override {
        reset_busy();
        locked_ = true;
        locked_out_ = false;
        key_stage_ = option_key_stage_ = 0;
        cr_ = kCrLock;
        sr_ = 0;
        ar_ = 0;
        // Option byte loading: a byte whose complement does not match reads as 0xFF (OPTERR).
        option_error_ = false;
        for (int i = 0; i < 8; ++i) {
            loaded_[i] = static_cast<uint8_t>(options_[i]);
            if ((options_[i] >> 8 & 0xFF) != (~options_[i] & 0xFF)) {
                loaded_[i] = 0xFF;
                option_error_ = true;
            }
        }
    }

private:
    bool in_peripheral_space(uint32_t a) const override { return a >= 0x40000000 && a < 0x40030000; }
    bool readout_protected() const override { return loaded_[0] != kRdpUnprotected; }
    bool is_option_bytes(uint32_t a) const override { return a >= kOptionBytes && a < kOptionBytes + 16; }

    std::optional<uint32_t> read_options(uint32_t a, unsigned size) const override {
        if (!is_option_bytes(a) || a + size > kOptionBytes + 16) return std::nullopt;
        uint32_t value = 0;
        for (unsigned i = 0; i < size; ++i) {
            const uint32_t offset = a + i - kOptionBytes;
            value |= uint32_t(options_[offset / 2] >> (8 * (offset & 1)) & 0xFF) << (8 * i);
        }
        return value;
    }

    bool write_options(uint32_t a, uint32_t value, unsigned size, Clock::time_point now) override {
        if (!(cr_ & kCrOptPg) || !(cr_ & kCrOptWre) || locked_) return true;  // ignored
        if (size == 1) return false;
        for (unsigned half = 0; half < size / 2; ++half) {
            const uint32_t index = (a - kOptionBytes) / 2 + half;
            if (index >= 8) break;
            const uint16_t byte = (value >> (16 * half)) & 0xFF;
            if (options_[index] != 0xFFFF) {
                sr_ |= kSrPgErr;
                continue;
            }
            // The interface writes the complement itself.
            options_[index] = static_cast<uint16_t>(byte | (~byte & 0xFF) << 8);
            start_operation(kHalfWordProgram, now);
        }
        return true;
    }

    uint32_t wrpr() const { return loaded_[4] | loaded_[5] << 8 | loaded_[6] << 16 | uint32_t(loaded_[7]) << 24; }

    bool write_protected(uint32_t address) const {
        // One WRPR bit per 4 KiB (1 KiB pages: 4 pages; 2 KiB pages: 2 pages); bit 31 covers the rest.
        const uint32_t pages_per_bit = chip_.page_size >= 2048 ? 2 : 4;
        const uint32_t bit = std::min<uint32_t>(31, (address - flash_.base()) / chip_.page_size / pages_per_bit);
        return !(wrpr() >> bit & 1);
    }

    uint32_t read_register(uint32_t offset, Clock::time_point now) override {
        switch (offset) {
            case kAcr: return acr_;
            case kSr: return sr_ | (busy(now) ? kSrBsy : 0);
            case kCr: return cr_;
            case kAr: return ar_;
            case kObr: {
                const uint32_t rdprt = readout_protected() ? 1u << 1 : 0;
                return (option_error_ ? 1u : 0) | rdprt | uint32_t(loaded_[1]) << 2 | uint32_t(loaded_[2]) << 10 |
                       uint32_t(loaded_[3]) << 18;
            }
            case kWrpr: return wrpr();
            default: return 0;
        }
    }

    bool write_register(uint32_t offset, uint32_t value, uint32_t mask, Clock::time_point now) override {
        switch (offset) {
            case kAcr: acr_ = (acr_ & ~mask) | (value & mask & 0x1F); return true;
            case kKeyr:
                if (!locked_) return true;  // already unlocked: the keys are not looked at
                if (!unlock_step(value, key_stage_)) return false;
                if (key_stage_ == 2) {
                    key_stage_ = 0;
                    locked_ = false;
                    cr_ &= ~kCrLock;
                }
                return true;
            case kOptKeyr:
                if (locked_ || (cr_ & kCrOptWre)) return true;  // needs the FPEC unlocked; done already
                if (!unlock_step(value, option_key_stage_)) return false;
                if (option_key_stage_ == 2) {
                    option_key_stage_ = 0;
                    cr_ |= kCrOptWre;
                }
                return true;
            case kSr: sr_ &= ~(value & mask & (kSrPgErr | kSrWrprtErr | kSrEop)); return true;
            case kCr: write_cr((cr_ & ~mask) | (value & mask), now); return true;
            case kAr:
                if (!locked_) ar_ = (ar_ & ~mask) | (value & mask);
                return true;
            default: return true;
        }
    }

    // KEY1 then KEY2 (stage 2: unlocked); anything else locks the FPEC until the next reset and is a
    // bus error.
    bool unlock_step(uint32_t value, int& stage) {
        if (locked_out_) return false;
        if ((stage == 0 && value == kKey1) || (stage == 1 && value == kKey2)) {
            ++stage;
            return true;
        }
        stage = 0;
        locked_out_ = true;
        return false;
    }

    void write_cr(uint32_t value, Clock::time_point now) {
        if (locked_) return;  // FLASH_CR is read-only while locked
        const uint32_t writable = kCrPg | kCrPer | kCrMer | kCrOptPg | kCrOptEr | kCrErrIe | kCrEopIe;
        const bool start = (value & kCrStrt) && !(cr_ & kCrStrt);
        // OPTWRE is set by hardware only; software can clear it.
        cr_ = (value & writable) | (cr_ & kCrOptWre & value) | (cr_ & kCrStrt);
        if (value & kCrLock) {
            locked_ = true;
            cr_ |= kCrLock;
            cr_ &= ~kCrOptWre;
            return;
        }
        if (!start || busy(now)) return;
        if (cr_ & kCrPer) return erase_page(now);
        if (cr_ & kCrMer) {
            flash_.erase(flash_.base(), flash_.size());
            cr_ |= kCrStrt;
            return start_operation(kMassErase, now);
        }
        if ((cr_ & kCrOptEr) && (cr_ & kCrOptWre)) {
            // Erasing the option bytes of a read-protected chip mass-erases the flash first.
            if (readout_protected()) flash_.erase(flash_.base(), flash_.size());
            options_.fill(0xFFFF);
            cr_ |= kCrStrt;
            return start_operation(kPageErase, now);
        }
    }

    void erase_page(Clock::time_point now) {
        const auto physical = flash_address(ar_, 1);
        const auto unit = physical ? flash_.erase_unit_at(*physical) : std::nullopt;
        if (!unit) return;  // AR outside the flash: nothing to erase
        if (write_protected(unit->address)) {
            sr_ |= kSrWrprtErr;
            return;
        }
        flash_.erase(unit->address, unit->size);
        cr_ |= kCrStrt;
        start_operation(kPageErase, now);
    }

    bool program(uint32_t address, uint32_t value, unsigned size, Clock::time_point now) override {
        if (!(cr_ & kCrPg) || locked_) return true;  // not programming: the store is ignored
        if (size == 1) return false;                  // the FPEC takes half-words only
        for (unsigned half = 0; half < size / 2; ++half) {
            const uint32_t at = address + 2 * half;
            const uint16_t data = static_cast<uint16_t>(value >> (16 * half));
            const uint16_t old = static_cast<uint16_t>(flash_.at(at) | flash_.at(at + 1) << 8);
            if (write_protected(at)) {
                sr_ |= kSrWrprtErr;
                continue;
            }
            // RM0008: programming a half-word that is not erased is refused (PGERR), unless it
            // writes zero.
            if (old != 0xFFFF && data != 0) {
                sr_ |= kSrPgErr;
                continue;
            }
            const uint8_t bytes[2] = {static_cast<uint8_t>(data), static_cast<uint8_t>(data >> 8)};
            flash_.program(at, bytes);
            start_operation(kHalfWordProgram, now);
        }
        return true;
    }

    void operation_done() override {
        sr_ |= kSrEop;
        cr_ &= ~kCrStrt;
    }

    uint32_t acr_ = 0x30;
    uint32_t cr_ = kCrLock, sr_ = 0, ar_ = 0;
    bool locked_ = true, locked_out_ = false;
    int key_stage_ = 0, option_key_stage_ = 0;
    std::array<uint16_t, 8> options_{};  // RDP, USER, DATA0, DATA1, WRP0..3 (with complements)
    std::array<uint8_t, 8> loaded_{};    // what the option byte loader took at reset
    bool option_error_ = false;
};

// ------------------------------------------------------------------------------------------ STM32F4

class Stm32F4Bus : public Stm32Bus {
public:
    static constexpr uint32_t kAcr = 0x00, kKeyr = 0x04, kOptKeyr = 0x08, kSr = 0x0C, kCr = 0x10, kOptCr = 0x14;
    static constexpr uint32_t kKey1 = 0x45670123, kKey2 = 0xCDEF89AB;
    static constexpr uint32_t kOptKey1 = 0x08192A3B, kOptKey2 = 0x4C5D6E7F;
    static constexpr uint32_t kSrEop = 1u << 0, kSrOpErr = 1u << 1, kSrWrpErr = 1u << 4, kSrPgaErr = 1u << 5,
                              kSrPgpErr = 1u << 6, kSrPgsErr = 1u << 7, kSrBsy = 1u << 16;
    static constexpr uint32_t kSrClearable = kSrEop | kSrOpErr | kSrWrpErr | kSrPgaErr | kSrPgpErr | kSrPgsErr;
    static constexpr uint32_t kCrPg = 1u << 0, kCrSer = 1u << 1, kCrMer = 1u << 2, kCrSnbShift = 3,
                              kCrSnbMask = 0xFu << 3, kCrPsizeShift = 8, kCrPsizeMask = 3u << 8, kCrStrt = 1u << 16,
                              kCrEopIe = 1u << 24, kCrErrIe = 1u << 25, kCrLock = 1u << 31;
    static constexpr uint32_t kOptCrLock = 1u << 0, kOptCrStart = 1u << 1;
    static constexpr uint32_t kOptionBytes = 0x1FFFC000;
    static constexpr uint8_t kRdpLevel0 = 0xAA;
    // RM0090 / datasheet typical times at x32 parallelism: 16 us a word, a 16 KiB sector ~250 ms, a
    // 128 KiB sector ~1 s, a mass erase ~8 s.
    static constexpr auto kSectorEraseBase = milliseconds(125), kSectorErasePerKib = milliseconds(7);
    static constexpr auto kByteProgram = microseconds(4);
    static constexpr auto kMassErase = milliseconds(8000), kOptionProgram = milliseconds(16);

    Stm32F4Bus(const targets::Chip& chip, const ChipBusOptions& options)
        : Stm32Bus(chip, options, 1, FlashTiming{kSectorEraseBase, kSectorErasePerKib, kByteProgram}, 0x40023C00,
                   0x1FFF0000, 0x7A30) {
        // OTP 0x1FFF7800..0x1FFF7A0F is erased; the unique ID follows at 0x1FFF7A10.
        for (uint32_t a = 0x1FFF7800; a < 0x1FFF7A10; ++a) system_memory_.put(a, 0xFF, 1);
        for (uint32_t i = 0; i < 12; ++i) system_memory_.put(0x1FFF7A10 + i, 0x41 + i * 5, 1);
        if (chip.flash_size_register) system_memory_.put(*chip.flash_size_register, chip.flash_size / 1024, 2);
        sectors_ = static_cast<uint32_t>(chip.sectors.size());
        // Factory option bytes: BOR off (3), USER all set, RDP level 0, no sector write-protected.
        committed_ = ((1u << sectors_) - 1) << 16 | uint32_t{kRdpLevel0} << 8 | 0xE0 | 0x0C;
        reset({});
    }

    std::string describe() const override {
        return fmt::format("{} over SWD, {} KiB flash in {} sectors", chip_.description, flash_.size() / 1024, sectors_);
    }

    void reset(Clock::time_point) override {
        reset_busy();
        locked_ = true;
        locked_out_ = false;
        option_locked_ = true;
        key_stage_ = option_key_stage_ = 0;
        cr_ = kCrLock;
        sr_ = 0;
        optcr_ = committed_;
        rdp_loaded_ = static_cast<uint8_t>(committed_ >> 8);
    }

private:
    bool in_peripheral_space(uint32_t a) const override {
        return (a >= 0x40000000 && a < 0x40080000) || (a >= 0x50000000 && a < 0x50061000) ||
               (a >= 0xA0000000 && a < 0xA0001000);
    }
    bool readout_protected() const override { return rdp_loaded_ != kRdpLevel0; }
    bool is_option_bytes(uint32_t a) const override { return a >= kOptionBytes && a < kOptionBytes + 16; }

    std::optional<uint32_t> read_options(uint32_t a, unsigned size) const override {
        if (!is_option_bytes(a)) return std::nullopt;
        // 0x1FFFC000: RDP and USER; 0x1FFFC008: nWRP.
        const uint32_t words[4] = {committed_ & 0xFFEC, 0, committed_ >> 16 & 0xFFF, 0};
        const uint32_t word = words[(a - kOptionBytes) / 4];
        return (word & lane_mask(a, size)) >> (8 * (a & 3));
    }
    bool write_options(uint32_t, uint32_t, unsigned, Clock::time_point) override { return true; }

    uint32_t read_register(uint32_t offset, Clock::time_point now) override {
        switch (offset) {
            case kAcr: return acr_;
            case kSr: return sr_ | (busy(now) ? kSrBsy : 0);
            case kCr: return cr_;
            case kOptCr: return optcr_ | (option_locked_ ? kOptCrLock : 0) | (busy(now) && option_busy_ ? kOptCrStart : 0);
            default: return 0;
        }
    }

    bool write_register(uint32_t offset, uint32_t value, uint32_t mask, Clock::time_point now) override {
        switch (offset) {
            case kAcr: acr_ = (acr_ & ~mask) | (value & mask & 0x1F0F); return true;
            case kKeyr: return unlock_step(value, kKey1, kKey2, key_stage_, locked_, true);
            case kOptKeyr: return unlock_step(value, kOptKey1, kOptKey2, option_key_stage_, option_locked_, false);
            case kSr: sr_ &= ~(value & mask & kSrClearable); return true;
            case kCr: write_cr((cr_ & ~mask) | (value & mask), now); return true;
            case kOptCr: write_optcr((optcr_ & ~mask) | (value & mask), now); return true;
            default: return true;
        }
    }

    // RM0090: a wrong key, or a key written while unlocked, is a bus error and locks the register
    // until the next reset.
    bool unlock_step(uint32_t value, uint32_t key1, uint32_t key2, int& stage, bool& locked, bool main_lock) {
        if (locked_out_ || !locked) {
            locked = true;
            if (main_lock) cr_ |= kCrLock;
            locked_out_ = true;
            return false;
        }
        if (stage == 0 && value == key1) {
            stage = 1;
            return true;
        }
        if (stage == 1 && value == key2) {
            stage = 0;
            locked = false;
            if (main_lock) cr_ &= ~kCrLock;
            return true;
        }
        stage = 0;
        locked_out_ = true;
        return false;
    }

    uint32_t sector_address(uint32_t index) const {
        uint32_t address = flash_.base();
        for (uint32_t i = 0; i < index; ++i) address += chip_.sectors[i];
        return address;
    }

    bool sector_protected(uint32_t address) const {
        for (uint32_t i = 0; i < sectors_; ++i)
            if (address >= sector_address(i) && address < sector_address(i) + chip_.sectors[i])
                return !(committed_ >> (16 + i) & 1);
        return false;
    }

    void write_cr(uint32_t value, Clock::time_point now) {
        if (locked_) return;
        const uint32_t writable = kCrPg | kCrSer | kCrMer | kCrSnbMask | kCrPsizeMask | kCrEopIe | kCrErrIe;
        const bool start = (value & kCrStrt) && !(cr_ & kCrStrt);
        cr_ = (value & writable) | (cr_ & kCrStrt);
        if (value & kCrLock) {
            locked_ = true;
            cr_ |= kCrLock;
            return;
        }
        if (!start || busy(now)) return;
        if ((cr_ & kCrSer) && (cr_ & kCrMer)) {
            sr_ |= kSrPgsErr;
            return;
        }
        if (cr_ & kCrSer) {
            const uint32_t sector = (cr_ & kCrSnbMask) >> kCrSnbShift;
            if (sector >= sectors_) {
                sr_ |= kSrPgsErr;
                return;
            }
            if (!(committed_ >> (16 + sector) & 1)) {
                sr_ |= kSrWrpErr;
                return;
            }
            auto outcome = flash_.erase(sector_address(sector), chip_.sectors[sector]);
            cr_ |= kCrStrt;
            return start_operation(outcome.busy, now);
        }
        if (cr_ & kCrMer) {
            if ((committed_ >> 16 & ((1u << sectors_) - 1)) != (1u << sectors_) - 1) {
                sr_ |= kSrWrpErr;
                return;
            }
            flash_.erase(flash_.base(), flash_.size());
            cr_ |= kCrStrt;
            return start_operation(kMassErase, now);
        }
    }

    void write_optcr(uint32_t value, Clock::time_point now) {
        if (value & kOptCrLock) option_locked_ = true;
        if (option_locked_ && !(value & kOptCrLock)) return;
        const uint32_t writable = 0x0FFF0000 | 0xFF00 | 0xEC;
        if (!option_locked_) optcr_ = value & writable;
        if ((value & kOptCrStart) && !option_locked_ && !busy(now)) {
            // Leaving readout protection level 1 erases the whole flash first.
            const bool leaves_protection = (committed_ >> 8 & 0xFF) != kRdpLevel0 && (optcr_ >> 8 & 0xFF) == kRdpLevel0;
            if (leaves_protection) flash_.erase(flash_.base(), flash_.size());
            committed_ = optcr_;
            option_busy_ = true;
            start_operation(leaves_protection ? kMassErase : kOptionProgram, now);
        }
    }

    bool program(uint32_t address, uint32_t value, unsigned size, Clock::time_point now) override {
        if (locked_ || !(cr_ & kCrPg) || (cr_ & (kCrSer | kCrMer))) {
            sr_ |= kSrPgsErr;  // a flash write while FLASH_CR is not set up for programming
            return true;
        }
        // PSIZE (x8, x16, x32, x64) must match the access size (PGPERR); a 32-bit bus cannot do x64.
        const unsigned psize_bytes = 1u << ((cr_ & kCrPsizeMask) >> kCrPsizeShift);
        if (psize_bytes != size) {
            sr_ |= kSrPgpErr;
            return true;
        }
        if (sector_protected(address)) {
            sr_ |= kSrWrpErr;
            return true;
        }
        uint8_t bytes[4];
        for (unsigned i = 0; i < size; ++i) bytes[i] = static_cast<uint8_t>(value >> (8 * i));
        auto outcome = flash_.program(address, std::span<const uint8_t>(bytes, size));
        start_operation(outcome.busy, now);
        return true;
    }

    void operation_done() override {
        if (cr_ & kCrEopIe) sr_ |= kSrEop;  // RM0090: EOP is only set when EOPIE is
        cr_ &= ~kCrStrt;
        option_busy_ = false;
    }

    uint32_t sectors_ = 0;
    uint32_t acr_ = 0;
    uint32_t cr_ = kCrLock, sr_ = 0;
    uint32_t optcr_ = 0, committed_ = 0;
    uint8_t rdp_loaded_ = kRdpLevel0;
    bool locked_ = true, option_locked_ = true, locked_out_ = false, option_busy_ = false;
    int key_stage_ = 0, option_key_stage_ = 0;
};

}  // namespace

std::unique_ptr<ChipBus> make_stm32f1_bus(const targets::Chip& chip, const ChipBusOptions& options) {
    return std::make_unique<Stm32F1Bus>(chip, options);
}

std::unique_ptr<ChipBus> make_stm32f4_bus(const targets::Chip& chip, const ChipBusOptions& options) {
    return std::make_unique<Stm32F4Bus>(chip, options);
}

}  // namespace mcuflash::sim::swd
