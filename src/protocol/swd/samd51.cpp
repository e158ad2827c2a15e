// SAMD51 flash over SWD (datasheet "NVMCTRL", "DSU", "NVM User Page"): the NVM controller at
// 0x41004000. Blocks of 16 pages (8 KiB) are the erase unit (EB); a 512-byte page is written through
// the page buffer (PBC, the words, then WP; CTRLA.WMODE manual). Commands go to CTRLB with the 0xA5
// key; ADDR takes byte addresses; STATUS.READY says the controller is idle. The user page at 0x00804000
// holds BOOTPROT (bits 29:26: (15 - BOOTPROT) x 8 KiB protected); it is erased with EP and written in
// quad words (WQW).
#include <fmt/format.h>

#include "core/error.hpp"
#include "core/hexdump.hpp"
#include "protocol/swd/flash_driver.hpp"

namespace mcuflash::protocol::swd {

using core::Error;
using core::ErrorKind;
using core::hex_address;

namespace {

constexpr uint32_t kBase = 0x41004000;
constexpr uint32_t kCtrlA = kBase + 0x00, kCtrlB = kBase + 0x04, kIntFlag = kBase + 0x10, kAddr = kBase + 0x14;
// The word at 0x41004010 holds INTFLAG (bits 15:0) and STATUS (bits 31:16).
constexpr uint32_t kStatusReady = 1u << 16;
constexpr uint16_t kCmdKey = 0xA500;
constexpr uint16_t kCmdErasePage = 0x00, kCmdEraseBlock = 0x01, kCmdWritePage = 0x03, kCmdWriteQuadWord = 0x04,
                   kCmdPageBufferClear = 0x15;
constexpr uint32_t kIntFlagAddrE = 1u << 1, kIntFlagProgE = 1u << 2, kIntFlagLockE = 1u << 3, kIntFlagNvmE = 1u << 6;
constexpr uint32_t kIntFlagErrors = kIntFlagAddrE | kIntFlagProgE | kIntFlagLockE | kIntFlagNvmE;
constexpr uint32_t kCtrlAWriteMode = 3u << 4;
constexpr uint32_t kUserPage = 0x00804000, kUserPageSize = 512;
constexpr uint32_t kProgramBatch = 4096;

std::string intflag_words(uint32_t flags) {
    if (flags & kIntFlagLockE) return "LOCKE: the region is locked (BOOTPROT or the user page's lock bits)";
    if (flags & kIntFlagProgE) return "PROGE: a bad command";
    if (flags & kIntFlagAddrE) return "ADDRE: a bad address";
    if (flags & kIntFlagNvmE) return "NVME: the NVM reported an error";
    return fmt::format("INTFLAG 0x{:04X}", flags & 0xFFFF);
}

class Samd51Flash : public SamDsuFlash {
public:
    explicit Samd51Flash(const DriverContext& context)
        : SamDsuFlash(context.dap),
          c_(context),
          page_(c_.chip.page_size ? c_.chip.page_size : 512),
          block_(c_.chip.sam && c_.chip.sam->erase_unit ? c_.chip.sam->erase_unit : 16 * page_) {}

    std::string name() const override { return "SAMD51 NVM controller"; }
    uint32_t write_unit() const override { return page_; }
    std::vector<targets::EraseUnitRange> layout() const override {
        std::vector<targets::EraseUnitRange> blocks;
        for (uint32_t at = 0; at < c_.flash_size; at += block_) blocks.push_back({c_.flash_base + at, block_});
        return blocks;
    }

    void erase(std::span<const targets::EraseUnitRange> units, const ProgramProgress& progress) override {
        prepare();
        auto batch = c_.dap.batch();
        std::vector<size_t> status;
        for (const auto& unit : units) {
            queue_command(batch, unit.address, kCmdEraseBlock,
                          fmt::format("the erase of the block at {} to finish (STATUS.READY)", hex_address(unit.address)));
            status.push_back(batch.read32(kIntFlag));
        }
        auto reads = batch.run(fmt::format("erasing {} blocks from {}", units.size(), hex_address(units.front().address)));
        uint64_t done = 0;
        for (size_t i = 0; i < units.size(); ++i) {
            check(reads[status[i]], fmt::format("erasing the block at {}", hex_address(units[i].address)), units[i].address);
            done += units[i].size;
        }
        if (progress) progress(done);
    }

    void program(uint32_t address, std::span<const uint8_t> data, const ProgramProgress& progress) override {
        prepare();
        for (size_t offset = 0; offset < data.size(); offset += kProgramBatch) {
            const size_t length = std::min<size_t>(kProgramBatch, data.size() - offset);
            const uint32_t at = address + static_cast<uint32_t>(offset);
            auto batch = c_.dap.batch();
            std::vector<std::pair<uint32_t, size_t>> status;
            for (size_t piece = 0; piece < length; piece += page_) {
                const uint32_t page_at = at + static_cast<uint32_t>(piece);
                queue_buffer(batch, page_at, data.subspan(offset + piece, page_), piece == 0);
                queue_command(batch, page_at, kCmdWritePage,
                              fmt::format("the write of the page at {} to finish (STATUS.READY)", hex_address(page_at)));
                status.emplace_back(page_at, batch.read32(kIntFlag));
            }
            const std::string what = fmt::format("writing {} bytes at {}", length, hex_address(at));
            auto reads = batch.run(what);
            for (const auto& [page_at, index] : status)
                check(reads[index], fmt::format("writing the page at {}", hex_address(page_at)), page_at);
            if (progress) progress(offset + length);
        }
    }

    std::optional<uint32_t> bootloader_protection() override {
        const uint32_t bootprot = c_.dap.read32(kUserPage) >> 26 & 0xF;
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
        auto page = c_.dap.read_bytes(kUserPage, kUserPageSize);
        uint32_t word0 = static_cast<uint32_t>(page[0] | page[1] << 8 | page[2] << 16) | static_cast<uint32_t>(page[3]) << 24;
        if ((word0 >> 26 & 0xF) == bootprot) return;
        word0 = (word0 & ~(0xFu << 26)) | bootprot << 26;
        for (int i = 0; i < 4; ++i) page[static_cast<size_t>(i)] = static_cast<uint8_t>(word0 >> (8 * i));
        const std::string what = fmt::format("changing BOOTPROT in the NVM user page to protect {} bytes", bytes);
        auto batch = c_.dap.batch();
        queue_command(batch, kUserPage, kCmdErasePage, "the user page erase to finish (STATUS.READY)");
        std::vector<size_t> status = {batch.read32(kIntFlag)};
        for (uint32_t offset = 0; offset < kUserPageSize; offset += 16) {
            auto quad = std::span<const uint8_t>(page).subspan(offset, 16);
            if (std::all_of(quad.begin(), quad.end(), [](uint8_t b) { return b == 0xFF; })) continue;  // erased already
            queue_buffer(batch, kUserPage + offset, quad);
            queue_command(batch, kUserPage + offset, kCmdWriteQuadWord, "the user page write to finish (STATUS.READY)");
            status.push_back(batch.read32(kIntFlag));
        }
        auto reads = batch.run(what);
        for (size_t index : status) check(reads[index], what, kUserPage);
        if (c_.dap.read_bytes(kUserPage, kUserPageSize) != page)
            throw Error(ErrorKind::VerifyMismatch, "the NVM user page reads back other than written", "").during(what);
    }

private:
    void prepare() {
        if (prepared_) return;
        // Manual write mode: a page goes to flash only on WP.
        const uint32_t ctrla = c_.dap.read32(kCtrlA) & 0xFFFF;
        if (ctrla & kCtrlAWriteMode) c_.dap.write16(kCtrlA, static_cast<uint16_t>(ctrla & ~kCtrlAWriteMode));
        prepared_ = true;
    }

    // `clear`: a page buffer clear first (needed where not every word of the buffer is written).
    void queue_buffer(link::swd::MemoryBatch& batch, uint32_t address, std::span<const uint8_t> bytes, bool clear = true) {
        std::vector<uint32_t> words(bytes.size() / 4);
        for (size_t i = 0; i < words.size(); ++i)
            words[i] = static_cast<uint32_t>(bytes[4 * i] | bytes[4 * i + 1] << 8 | bytes[4 * i + 2] << 16) |
                       static_cast<uint32_t>(bytes[4 * i + 3]) << 24;
        if (clear) queue_command(batch, address, kCmdPageBufferClear, "the page buffer clear (STATUS.READY)", false);
        batch.write_words(address, words);
    }

    // Clears the error flags, sets ADDR, issues the command, waits for READY.
    void queue_command(link::swd::MemoryBatch& batch, uint32_t address, uint16_t command, std::string waiting_for,
                       bool with_address = true) {
        batch.write16(kIntFlag, static_cast<uint16_t>(kIntFlagErrors | 1u));  // DONE and the errors: write 1 to clear
        if (with_address) batch.write32(kAddr, address);
        batch.write16(kCtrlB, kCmdKey | command);
        batch.wait_until(kIntFlag, kStatusReady, kStatusReady, std::move(waiting_for));
    }

    void check(uint32_t flags, const std::string& what, uint32_t address) const {
        if (flags & kIntFlagErrors)
            throw Error(ErrorKind::Protocol, fmt::format("the NVM controller refused: {}", intflag_words(flags)),
                        flags & kIntFlagLockE ? "BOOTPROT protects the start of flash: lower it first "
                                                "(mcuflash does when installing a bootloader)"
                                              : "")
                .during(what)
                .at_address(address);
    }

    DriverContext c_;
    uint32_t page_, block_;
    bool prepared_ = false;
};

}  // namespace

std::unique_ptr<FlashDriver> make_samd51_driver(const DriverContext& context) {
    return std::make_unique<Samd51Flash>(context);
}

}  // namespace mcuflash::protocol::swd
