// SAMD51 flash over SWD (datasheet "NVMCTRL", "DSU", "NVM User Page"): the NVM controller at
// 0x41004000. Blocks of 16 pages (8 KiB) are the erase unit (EB); a 512-byte page is written through
// the page buffer (PBC, the words, then WP; CTRLA.WMODE manual). Commands go to CTRLB with the 0xA5
// key; ADDR takes byte addresses; STATUS.READY says the controller is idle. The user page at 0x00804000
// holds BOOTPROT (bits 29:26: (15 - BOOTPROT) x 8 KiB protected); it is erased with EP and written in
// quad words (WQW).
#include <algorithm>

#include <fmt/format.h>

#include "core/error.hpp"
#include "protocol/sam_nvmctrl.hpp"
#include "protocol/swd/sam_nvm_flash.hpp"

namespace mcuflash::protocol::swd {

using core::Error;
using core::ErrorKind;

namespace {

using namespace nvmctrl::d51;
using nvmctrl::kCmdKey;
using nvmctrl::kUserRow;
// The word at 0x41004010 holds INTFLAG (bits 15:0) and STATUS (bits 31:16).
constexpr uint32_t kStatusReadyInWord = uint32_t{kStatusReady} << 16;

std::string intflag_words(uint32_t flags) {
    if (flags & kIntFlagLockE) return "LOCKE: the region is locked (BOOTPROT or the user page's lock bits)";
    if (flags & kIntFlagProgE) return "PROGE: a bad command";
    if (flags & kIntFlagAddrE) return "ADDRE: a bad address";
    if (flags & kIntFlagNvmE) return "NVME: the NVM reported an error";
    return fmt::format("INTFLAG 0x{:04X}", flags & 0xFFFF);
}

SamNvmFamily samd51_family() {
    return {.name = "SAMD51 NVM controller", .unit = "block", .ready = "STATUS.READY", .user_row = "user page",
            .default_page = 512, .pages_per_unit = 16, .flags_register = kIntFlag, .error_flags = kIntFlagErrors,
            .lock_error = kIntFlagLockE, .flag_words = intflag_words};
}

class Samd51Flash : public SamNvmFlash {
public:
    explicit Samd51Flash(const DriverContext& context) : SamNvmFlash(context, samd51_family()) {}

    std::optional<uint32_t> bootloader_protection() override {
        const uint32_t bootprot = c_.dap.read32(kUserRow) >> 26 & 0xF;
        return (15 - bootprot) * 8192u;
    }

    std::vector<uint32_t> bootloader_protection_sizes() const override {
        std::vector<uint32_t> sizes;
        for (uint32_t n = 0; n <= 15; ++n) sizes.push_back(n * 8192);
        return sizes;
    }

    void set_bootloader_protection(uint32_t bytes) override {
        if (bytes % 8192 || bytes > 15 * 8192)
            throw Error(ErrorKind::Usage, fmt::format("the SAMD51's BOOTPROT cannot protect {} bytes", bytes),
                        "it takes a multiple of 8192 up to 122880 (0 for none)");
        const uint32_t bootprot = 15 - bytes / 8192;
        prepare();
        auto page = c_.dap.read_bytes(kUserRow, kUserPageSize);
        uint32_t word0 = little_endian_words(std::span<const uint8_t>(page).first(4))[0];
        if ((word0 >> 26 & 0xF) == bootprot) return;
        word0 = (word0 & ~(0xFu << 26)) | bootprot << 26;
        for (int i = 0; i < 4; ++i) page[static_cast<size_t>(i)] = static_cast<uint8_t>(word0 >> (8 * i));
        auto batch = c_.dap.batch();
        queue_command(batch, kUserRow, kCmdErasePage, "the user page erase to finish (STATUS.READY)");
        std::vector<size_t> status = {batch.read32(kIntFlag)};
        for (uint32_t offset = 0; offset < kUserPageSize; offset += 16) {
            auto quad = std::span<const uint8_t>(page).subspan(offset, 16);
            if (std::all_of(quad.begin(), quad.end(), [](uint8_t b) { return b == 0xFF; })) continue;  // erased already
            queue_buffer(batch, kUserRow + offset, quad, true);
            queue_command(batch, kUserRow + offset, kCmdWriteQuadWord, "the user page write to finish (STATUS.READY)");
            status.push_back(batch.read32(kIntFlag));
        }
        run_user_row_write(batch, status,
                           fmt::format("changing BOOTPROT in the NVM user page to protect {} bytes", bytes), page);
    }

protected:
    void prepare_controller() override {
        // Manual write mode: a page goes to flash only on WP.
        const uint32_t ctrla = c_.dap.read32(kCtrlA) & 0xFFFF;
        if (ctrla & kCtrlAWriteMode) c_.dap.write16(kCtrlA, static_cast<uint16_t>(ctrla & ~kCtrlAWriteMode));
    }

    void queue_unit_erase(link::swd::MemoryBatch& batch, uint32_t address, std::string waiting_for) override {
        queue_command(batch, address, kCmdEraseBlock, std::move(waiting_for));
    }

    void queue_page_write(link::swd::MemoryBatch& batch, uint32_t address, std::span<const uint8_t> bytes, bool clear,
                          std::string waiting_for) override {
        queue_buffer(batch, address, bytes, clear);
        queue_command(batch, address, kCmdWritePage, std::move(waiting_for));
    }

private:
    // `clear`: a page buffer clear first (needed where not every word of the buffer is written).
    void queue_buffer(link::swd::MemoryBatch& batch, uint32_t address, std::span<const uint8_t> bytes, bool clear) {
        if (clear) queue_command(batch, address, kCmdPageBufferClear, "the page buffer clear (STATUS.READY)", false);
        batch.write_words(address, little_endian_words(bytes));
    }

    // Clears the error flags, sets ADDR, issues the command, waits for READY.
    void queue_command(link::swd::MemoryBatch& batch, uint32_t address, uint16_t command, std::string waiting_for,
                       bool with_address = true) {
        batch.write16(kIntFlag, static_cast<uint16_t>(kIntFlagErrors | kIntFlagDone));  // write 1 to clear
        if (with_address) batch.write32(kAddr, address);
        batch.write16(kCtrlB, kCmdKey | command);
        batch.wait_until(kIntFlag, kStatusReadyInWord, kStatusReadyInWord, std::move(waiting_for));
    }
};

}  // namespace

std::unique_ptr<FlashDriver> make_samd51_driver(const DriverContext& context) {
    return std::make_unique<Samd51Flash>(context);
}

}  // namespace mcuflash::protocol::swd
