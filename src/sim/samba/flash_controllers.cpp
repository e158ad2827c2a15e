#include "sim/samba/flash_controllers.hpp"

#include <algorithm>
#include <deque>

namespace mcuflash::sim::samba {

void FlashControllerModel::merge_word(std::vector<uint8_t>& buffer, uint32_t offset, uint32_t value, uint32_t byte_mask) {
    for (uint32_t i = 0; i < 4 && offset + i < buffer.size(); ++i)
        if (byte_mask >> (8 * i) & 0xFF) buffer[offset + i] = static_cast<uint8_t>(value >> (8 * i));
}

Clock::time_point FlashControllerModel::erase_units_to_end(uint32_t address, uint32_t unit, Clock::time_point now) {
    for (uint64_t at = address / unit * unit; at < flash_.end(); at += unit)
        if (auto outcome = flash_.erase(static_cast<uint32_t>(at), unit); outcome.ok()) start_busy(outcome.busy, now);
    return std::max(busy_until_, now);
}

namespace {

uint32_t merged(uint32_t old_value, uint32_t value, uint32_t byte_mask) {
    return (old_value & ~byte_mask) | (value & byte_mask);
}

// Programs `data` (starting at `address`) page by page through a buffer of `page_size` bytes of 0xFF
// with the data where it belongs, as a CPU loop loading the page buffer and writing pages does.
template <typename WritePage>
void for_each_page(uint32_t address, const std::vector<uint8_t>& data, uint32_t page_size, WritePage write_page) {
    const uint32_t first = address / page_size * page_size;
    const uint64_t end = uint64_t{address} + data.size();
    for (uint64_t page = first; page < end; page += page_size) {
        std::vector<uint8_t> image(page_size, FlashMemory::kErased);
        for (uint32_t i = 0; i < page_size; ++i) {
            const uint64_t at = page + i;
            if (at >= address && at < end) image[i] = data[static_cast<size_t>(at - address)];
        }
        write_page(static_cast<uint32_t>(page), image);
    }
}

// ---------------------------------------------------------------- NVMCTRL page buffer

// What both NVMCTRL models share: the page buffer the CPU's stores fill (a store of the page's last
// word writes the page when the controller is in an automatic write mode), the page write from it,
// and the X and Y loops over whole erase units and pages.
class PageBufferModel : public FlashControllerModel {
public:
    PageBufferModel(FlashMemory& flash, uint32_t page_size, uint32_t erase_unit)
        : FlashControllerModel(flash),
          page_size_(page_size),
          erase_unit_(erase_unit),
          page_buffer_(page_size, FlashMemory::kErased) {}

    void store(uint32_t a, uint32_t value, uint32_t mask, Clock::time_point now) override {
        const uint32_t offset = a % page_size_;
        merge_word(page_buffer_, offset, value, mask);
        loaded_ = true;
        // The address of the store selects the page, not ADDR.
        if (writes_when_full() && offset + 4 >= page_size_) write_page(a - offset, now);
    }

    Clock::time_point erase_to_end(uint32_t address, Clock::time_point now) override {
        return erase_units_to_end(address, erase_unit_, now);
    }

    Clock::time_point program_pages(uint32_t address, const std::vector<uint8_t>& data, Clock::time_point now) override {
        for_each_page(address, data, page_size_, [&](uint32_t page, const std::vector<uint8_t>& image) {
            page_buffer_ = image;
            write_page(page, now);
        });
        return std::max(busy_until_, now);
    }

protected:
    // Whether storing the page's last word writes the page (an automatic write mode).
    virtual bool writes_when_full() const = 0;
    // Sets the error flag of a page write flash refused (`protected_range`: BOOTPROT's).
    virtual void page_write_refused(bool protected_range) = 0;

    void clear_page_buffer() {
        std::fill(page_buffer_.begin(), page_buffer_.end(), FlashMemory::kErased);
        loaded_ = false;
    }

    void write_page(uint32_t page, Clock::time_point now) {
        auto outcome = flash_.program(page, page_buffer_);
        clear_page_buffer();
        if (!outcome.ok()) return page_write_refused(outcome.status == FlashStatus::Protected);
        start_busy(outcome.busy, now);
    }

    uint32_t page_size_;
    uint32_t erase_unit_;
    std::vector<uint8_t> page_buffer_;
    bool loaded_ = false;
};

// ---------------------------------------------------------------- SAMD21 NVMCTRL

class NvmctrlD21 : public PageBufferModel {
public:
    static constexpr uint32_t kBase = 0x41004000;
    static constexpr uint32_t kCtrlA = 0x00, kCtrlB = 0x04, kParam = 0x08, kIntFlag = 0x14, kStatus = 0x18,
                              kAddr = 0x1C, kLock = 0x20, kEnd = 0x24;
    static constexpr uint32_t kKey = 0xA5;
    static constexpr uint32_t kIntFlagReady = 1u << 0, kIntFlagError = 1u << 1;
    static constexpr uint32_t kStatusLoad = 1u << 1, kStatusProgE = 1u << 2, kStatusLockE = 1u << 3,
                              kStatusNvmE = 1u << 4, kStatusSecurity = 1u << 8;
    static constexpr uint32_t kStatusErrors = kStatusProgE | kStatusLockE | kStatusNvmE;
    static constexpr uint32_t kCtrlBManualWrite = 1u << 7;
    static constexpr uint8_t kCmdEraseRow = 0x02, kCmdWritePage = 0x04, kCmdSetSecurityBit = 0x45,
                             kCmdPageBufferClear = 0x44;
    static constexpr uint32_t kPagesPerRow = 4;

    NvmctrlD21(FlashMemory& flash, uint32_t page_size) : PageBufferModel(flash, page_size, page_size * kPagesPerRow) {}

    std::string name() const override { return "SAMD21 NVMCTRL"; }
    bool decodes(uint32_t a) const override { return a >= kBase && a < kBase + kEnd; }

    uint32_t read_register(uint32_t a, Clock::time_point now) override {
        switch (a - kBase) {
            case kCtrlB: return ctrlb_;
            case kParam: return flash_.size() / page_size_ | page_size_code() << 16;
            case kIntFlag: return (busy(now) ? 0 : kIntFlagReady) | (error_ ? kIntFlagError : 0);
            case kStatus: return status_ | (loaded_ ? kStatusLoad : 0);
            case kAddr: return addr_;
            case kLock: return 0xFFFF;  // every region unlocked; BOOTPROT guards the bootloader
            default: return 0;
        }
    }

    void write_register(uint32_t a, uint32_t value, uint32_t mask, Clock::time_point now) override {
        switch (a - kBase) {
            case kCtrlA:
                if (mask & 0xFFFF) execute(value & 0xFFFF & mask, now);
                break;
            case kCtrlB: ctrlb_ = merged(ctrlb_, value, mask); break;
            case kIntFlag:
                if (value & mask & kIntFlagError) error_ = false;  // write one to clear
                break;
            case kStatus: status_ &= ~(value & mask & kStatusErrors); break;
            case kAddr: addr_ = merged(addr_, value, mask) & 0x3FFFFF; break;
            default: break;
        }
    }

protected:
    bool writes_when_full() const override { return !(ctrlb_ & kCtrlBManualWrite); }
    void page_write_refused(bool protected_range) override { fail(protected_range ? kStatusLockE : kStatusProgE); }

private:
    uint32_t page_size_code() const {
        uint32_t code = 0;
        while ((8u << code) < page_size_) ++code;
        return code;
    }

    void fail(uint32_t status_bits) {
        status_ |= status_bits;
        error_ = true;
    }

    void execute(uint32_t ctrla, Clock::time_point now) {
        if ((ctrla >> 8) != kKey || busy(now)) return fail(kStatusProgE);
        const uint32_t address = addr_ * 2;
        switch (ctrla & 0x7F) {
            case kCmdEraseRow: {
                if (!flash_.contains(address, 1)) return fail(kStatusProgE);
                auto outcome = flash_.erase(address / erase_unit_ * erase_unit_, erase_unit_);
                if (!outcome.ok()) return fail(kStatusLockE);
                return start_busy(outcome.busy, now);
            }
            case kCmdWritePage:
                if (!flash_.contains(address, 1)) return fail(kStatusProgE);
                return write_page(address / page_size_ * page_size_, now);
            case kCmdPageBufferClear: return clear_page_buffer();
            case kCmdSetSecurityBit: status_ |= kStatusSecurity; return;
            default:
                // Auxiliary row, lock region and EEPROM emulation commands are not modelled: refused.
                return fail(kStatusProgE);
        }
    }

    bool error_ = false;
    uint32_t ctrlb_ = 0;
    uint32_t status_ = 0;
    uint32_t addr_ = 0;
};

// ---------------------------------------------------------------- SAMD51 NVMCTRL

class NvmctrlD51 : public PageBufferModel {
public:
    static constexpr uint32_t kBase = 0x41004000;
    // Word offsets: CTRLA (16 bits) at 0, CTRLB at 4, PARAM at 8, INTFLAG (16) at 0x10 with STATUS (16)
    // at 0x12, ADDR at 0x14, RUNLOCK at 0x18.
    static constexpr uint32_t kCtrlA = 0x00, kCtrlB = 0x04, kParam = 0x08, kIntFlagStatus = 0x10, kAddr = 0x14,
                              kRunLock = 0x18, kEnd = 0x34;
    static constexpr uint32_t kKey = 0xA5;
    static constexpr uint32_t kFlagDone = 1u << 0, kFlagAddrE = 1u << 1, kFlagProgE = 1u << 2, kFlagLockE = 1u << 3;
    static constexpr uint32_t kStatusReady = 1u << 0, kStatusLoad = 1u << 2;
    static constexpr uint8_t kCmdEraseBlock = 0x01, kCmdWritePage = 0x03, kCmdPageBufferClear = 0x15;
    static constexpr uint32_t kBlockSize = 8192;
    static constexpr uint32_t kWriteModeMask = 0x30;  // CTRLA.WMODE: 0 = manual

    NvmctrlD51(FlashMemory& flash, uint32_t page_size, uint32_t bootloader_size)
        : PageBufferModel(flash, page_size, kBlockSize),
          bootprot_(15 - std::min<uint32_t>(15, bootloader_size / kBlockSize)) {}

    std::string name() const override { return "SAMD51 NVMCTRL"; }
    bool decodes(uint32_t a) const override { return a >= kBase && a < kBase + kEnd; }

    uint32_t read_register(uint32_t a, Clock::time_point now) override {
        switch (a - kBase) {
            case kCtrlA: return ctrla_;
            case kParam: return flash_.size() / page_size_ | 6u << 16;  // PSZ 6: 512-byte pages
            case kIntFlagStatus: {
                uint32_t status = (busy(now) ? 0 : kStatusReady) | (loaded_ ? kStatusLoad : 0) | bootprot_ << 8;
                return intflag_ | status << 16;
            }
            case kAddr: return addr_;
            case kRunLock: return 0xFFFFFFFF;  // every region unlocked; BOOTPROT guards the bootloader
            default: return 0;
        }
    }

    void write_register(uint32_t a, uint32_t value, uint32_t mask, Clock::time_point now) override {
        switch (a - kBase) {
            case kCtrlA: ctrla_ = merged(ctrla_, value, mask & 0xFFFF); break;
            case kCtrlB:
                if (mask & 0xFFFF) execute(value & mask & 0xFFFF, now);
                break;
            case kIntFlagStatus: intflag_ &= ~(value & mask & 0xFFFF); break;  // write one to clear; STATUS is read only
            case kAddr: addr_ = merged(addr_, value, mask) & 0xFFFFFF; break;
            default: break;
        }
    }

protected:
    // The automatic write modes (double word, quad word, page) are modelled as page writes.
    bool writes_when_full() const override { return ctrla_ & kWriteModeMask; }
    void page_write_refused(bool protected_range) override { intflag_ |= protected_range ? kFlagLockE : kFlagProgE; }

private:
    void execute(uint32_t ctrlb, Clock::time_point now) {
        if ((ctrlb >> 8) != kKey || busy(now)) {
            intflag_ |= kFlagProgE;
            return;
        }
        switch (ctrlb & 0x7F) {
            case kCmdEraseBlock: {
                if (!flash_.contains(addr_, 1)) {
                    intflag_ |= kFlagAddrE;
                    return;
                }
                auto outcome = flash_.erase(addr_ / kBlockSize * kBlockSize, kBlockSize);
                if (!outcome.ok()) {
                    intflag_ |= kFlagLockE;
                    return;
                }
                start_busy(outcome.busy, now);
                break;
            }
            case kCmdWritePage:
                if (!flash_.contains(addr_, 1)) {
                    intflag_ |= kFlagAddrE;
                    return;
                }
                write_page(addr_ / page_size_ * page_size_, now);
                break;
            case kCmdPageBufferClear: clear_page_buffer(); break;
            default:
                // Page erase (user page only), quad-word write, lock, SmartEEPROM commands: not modelled.
                intflag_ |= kFlagProgE;
                return;
        }
        intflag_ |= kFlagDone;
    }

    uint32_t bootprot_;
    uint32_t ctrla_ = 0x0004;  // reset value: AUTOWS on, WMODE manual
    uint32_t intflag_ = 0;
    uint32_t addr_ = 0;
};

// ---------------------------------------------------------------- SAM3/SAM4 EEFC

class EefcModel : public FlashControllerModel {
public:
    static constexpr uint32_t kBase = 0x400E0A00, kPlaneStride = 0x200;
    static constexpr uint32_t kFmr = 0x0, kFcr = 0x4, kFsr = 0x8, kFrr = 0xC;
    static constexpr uint32_t kKey = 0x5A;
    static constexpr uint32_t kFsrReady = 1u << 0, kFsrCommandError = 1u << 1, kFsrLockError = 1u << 2;
    enum Command : uint8_t {
        kGetDescriptor = 0x00, kWritePage = 0x01, kWritePageLock = 0x02, kEraseWritePage = 0x03,
        kEraseWritePageLock = 0x04, kEraseAll = 0x05, kSetLockBit = 0x08, kClearLockBit = 0x09, kGetLockBits = 0x0A,
        kSetGpnvm = 0x0B, kClearGpnvm = 0x0C, kGetGpnvm = 0x0D,
    };
    static constexpr auto kEraseAllTime = std::chrono::milliseconds(100);  // assumed, not from the datasheet

    EefcModel(FlashMemory& flash, uint32_t page_size, const EefcConfig& config)
        : FlashControllerModel(flash), page_size_(page_size), config_(config), planes_(config.planes) {
        for (auto& plane : planes_) plane.latch.assign(page_size, FlashMemory::kErased);
        locks_.assign(config.lock_regions, false);
    }

    std::string name() const override { return "EEFC"; }
    uint32_t gpnvm() const { return gpnvm_; }
    void set_gpnvm(uint32_t bits) { gpnvm_ = bits; }

    bool decodes(uint32_t a) const override {
        return a >= kBase && a < kBase + kPlaneStride * config_.planes && (a - kBase) % kPlaneStride < 0x10;
    }

    uint32_t read_register(uint32_t a, Clock::time_point now) override {
        Plane& plane = planes_[(a - kBase) / kPlaneStride];
        switch ((a - kBase) % kPlaneStride) {
            case kFmr: return plane.fmr;
            case kFsr: {
                uint32_t fsr = (now < plane.busy_until ? 0 : kFsrReady) | plane.errors;
                plane.errors = 0;  // the error flags clear when FSR is read
                return fsr;
            }
            case kFrr: {
                if (plane.results.empty()) return 0;
                uint32_t value = plane.results.front();
                plane.results.pop_front();
                return value;
            }
            default: return 0;
        }
    }

    void write_register(uint32_t a, uint32_t value, uint32_t mask, Clock::time_point now) override {
        const uint32_t index = (a - kBase) / kPlaneStride;
        Plane& plane = planes_[index];
        switch ((a - kBase) % kPlaneStride) {
            case kFmr: plane.fmr = merged(plane.fmr, value, mask); break;
            case kFcr:
                if (mask == 0xFFFFFFFF) execute(index, value, now);
                break;
            default: break;
        }
    }

    void store(uint32_t a, uint32_t value, uint32_t mask, Clock::time_point) override {
        merge_word(planes_[plane_of(a)].latch, a % page_size_, value, mask);
    }

    Clock::time_point erase_to_end(uint32_t address, Clock::time_point now) override {
        return erase_units_to_end(address, page_size_, now);
    }

    Clock::time_point program_pages(uint32_t address, const std::vector<uint8_t>& data, Clock::time_point now) override {
        for_each_page(address, data, page_size_, [&](uint32_t page, const std::vector<uint8_t>& image) {
            const uint32_t index = plane_of(page);
            planes_[index].latch = image;
            write_page(index, (page - plane_base(index)) / page_size_, true, now);
        });
        return std::max(busy_until_, now);
    }

private:
    struct Plane {
        uint32_t fmr = 0;
        uint32_t errors = 0;
        std::deque<uint32_t> results;  // what successive FRR reads return
        std::vector<uint8_t> latch;
        Clock::time_point busy_until{};
    };

    uint32_t plane_size() const { return flash_.size() / config_.planes; }
    uint32_t pages_per_plane() const { return plane_size() / page_size_; }
    uint32_t plane_base(uint32_t index) const { return flash_.base() + index * plane_size(); }
    uint32_t plane_of(uint32_t address) const {
        return std::min(config_.planes - 1, (address - flash_.base()) / plane_size());
    }
    uint32_t region_size() const { return flash_.size() / std::max<uint32_t>(1, config_.lock_regions); }
    uint32_t regions_per_plane() const { return config_.lock_regions / config_.planes; }
    uint32_t region_of(uint32_t index, uint32_t page) const {
        return (plane_base(index) - flash_.base() + page * page_size_) / region_size();
    }

    void busy_for(uint32_t index, Clock::duration busy, Clock::time_point now) {
        Plane& plane = planes_[index];
        plane.busy_until = std::max(plane.busy_until, now) + busy;
        busy_until_ = std::max(busy_until_, plane.busy_until);
    }

    void execute(uint32_t index, uint32_t fcr, Clock::time_point now) {
        Plane& plane = planes_[index];
        const uint8_t command = fcr & 0xFF;
        const uint32_t argument = fcr >> 8 & 0xFFFF;
        if ((fcr >> 24) != kKey || now < plane.busy_until) {
            plane.errors |= kFsrCommandError;
            return;
        }
        plane.results.clear();
        switch (command) {
            case kGetDescriptor: {
                plane.results = {config_.flash_id, flash_.size(), page_size_, config_.planes};
                for (uint32_t p = 0; p < config_.planes; ++p) plane.results.push_back(plane_size());
                plane.results.push_back(config_.lock_regions);
                for (uint32_t r = 0; r < config_.lock_regions; ++r) plane.results.push_back(region_size());
                return;
            }
            case kWritePage:
            case kWritePageLock:
            case kEraseWritePage:
            case kEraseWritePageLock: {
                if (argument >= pages_per_plane()) {
                    plane.errors |= kFsrCommandError;
                    return;
                }
                write_page(index, argument, command == kEraseWritePage || command == kEraseWritePageLock, now);
                if (command == kWritePageLock || command == kEraseWritePageLock) locks_[region_of(index, argument)] = true;
                return;
            }
            case kEraseAll: {
                for (uint32_t r = 0; r < regions_per_plane(); ++r)
                    if (locks_[index * regions_per_plane() + r]) {
                        plane.errors |= kFsrLockError;
                        return;
                    }
                auto outcome = flash_.erase(plane_base(index), plane_size());
                if (!outcome.ok()) {
                    plane.errors |= kFsrLockError;
                    return;
                }
                return busy_for(index, outcome.busy + (config_.timing ? kEraseAllTime : Clock::duration{}), now);
            }
            case kSetLockBit:
            case kClearLockBit:
                if (argument >= pages_per_plane()) {
                    plane.errors |= kFsrCommandError;
                    return;
                }
                locks_[region_of(index, argument)] = command == kSetLockBit;
                return;
            case kGetLockBits:
                for (uint32_t r = 0; r < regions_per_plane(); r += 32) {
                    uint32_t word = 0;
                    for (uint32_t bit = 0; bit < 32 && r + bit < regions_per_plane(); ++bit)
                        if (locks_[index * regions_per_plane() + r + bit]) word |= 1u << bit;
                    plane.results.push_back(word);
                }
                return;
            case kSetGpnvm:
            case kClearGpnvm:
            case kGetGpnvm:
                // The GPNVM bits belong to the first controller only.
                if (index != 0 || (command != kGetGpnvm && argument >= config_.gpnvm_bits)) {
                    plane.errors |= kFsrCommandError;
                    return;
                }
                if (command == kSetGpnvm) gpnvm_ |= 1u << argument;
                if (command == kClearGpnvm) gpnvm_ &= ~(1u << argument);
                if (command == kGetGpnvm) plane.results.push_back(gpnvm_);
                return;
            default: plane.errors |= kFsrCommandError; return;
        }
    }

    void write_page(uint32_t index, uint32_t page, bool erase_first, Clock::time_point now) {
        Plane& plane = planes_[index];
        const uint32_t address = plane_base(index) + page * page_size_;
        if (locks_[region_of(index, page)]) {
            plane.errors |= kFsrLockError;
            return;
        }
        Clock::duration busy{};
        FlashOutcome outcome;
        if (erase_first) {
            outcome = flash_.erase(address, page_size_);
            busy += outcome.busy;
        }
        if (outcome.ok()) {
            outcome = flash_.program(address, plane.latch);
            busy += outcome.busy;
        }
        std::fill(plane.latch.begin(), plane.latch.end(), FlashMemory::kErased);
        if (!outcome.ok()) {
            plane.errors |= kFsrLockError;
            return;
        }
        busy_for(index, busy, now);
    }

    uint32_t page_size_;
    EefcConfig config_;
    std::vector<Plane> planes_;
    std::vector<bool> locks_;
    uint32_t gpnvm_ = 0;  // bit 1 clear: the chip boots the ROM monitor
};

}  // namespace

std::vector<uint8_t> samd21_user_row(uint32_t bootloader_size) {
    // Word 0: BOOTPROT (bits 2:0) = 7 - log2(size / 512), EEPROM off, BOD33 level 7 enabled with reset
    // action; word 1: WDT defaults and the 16 region lock bits all 1 (unlocked). The Arduino Zero's row.
    uint32_t bootprot = 7;
    for (uint32_t size = 512; size <= bootloader_size && bootprot > 0; size <<= 1) --bootprot;
    std::vector<uint8_t> row(256, 0xFF);
    const uint32_t words[2] = {0xD8E0C7F8u | bootprot, 0xFFFFFC5Du};
    for (int w = 0; w < 2; ++w)
        for (int i = 0; i < 4; ++i) row[w * 4 + i] = static_cast<uint8_t>(words[w] >> (8 * i));
    return row;
}

std::vector<uint8_t> samd51_user_page(uint32_t bootloader_size) {
    // Word 0: BOD33 settings and NVM BOOTPROT (bits 29:26) = 15 - size / 8 KiB; word 2: region lock
    // bits all 1 (unlocked).
    const uint32_t bootprot = 15 - std::min<uint32_t>(15, bootloader_size / 8192);
    std::vector<uint8_t> page(512, 0xFF);
    const uint32_t words[3] = {(0xFE9A9239u & ~(0xFu << 26)) | bootprot << 26, 0xAEECFF80u, 0xFFFFFFFFu};
    for (int w = 0; w < 3; ++w)
        for (int i = 0; i < 4; ++i) page[w * 4 + i] = static_cast<uint8_t>(words[w] >> (8 * i));
    return page;
}

std::unique_ptr<FlashControllerModel> make_nvmctrl_d21(FlashMemory& flash, uint32_t page_size) {
    return std::make_unique<NvmctrlD21>(flash, page_size);
}

std::unique_ptr<FlashControllerModel> make_nvmctrl_d51(FlashMemory& flash, uint32_t page_size, uint32_t bootloader_size) {
    return std::make_unique<NvmctrlD51>(flash, page_size, bootloader_size);
}

std::unique_ptr<FlashControllerModel> make_eefc(FlashMemory& flash, uint32_t page_size, const EefcConfig& config) {
    return std::make_unique<EefcModel>(flash, page_size, config);
}

uint32_t eefc_gpnvm(const FlashControllerModel& eefc) {
    const auto* model = dynamic_cast<const EefcModel*>(&eefc);
    return model ? model->gpnvm() : 0;
}

void eefc_set_gpnvm(FlashControllerModel& eefc, uint32_t bits) {
    if (auto* model = dynamic_cast<EefcModel*>(&eefc)) model->set_gpnvm(bits);
}

}  // namespace mcuflash::sim::samba
