// SAMD21 and SAMC21 flash over SWD (datasheets: "NVMCTRL", "DSU", "NVM User Row"): the NVM
// controller at 0x41004000. Rows of 4 pages are the erase unit (ER); a page is written through the
// page buffer (PBC, the words written to the page's own addresses, then WP with manual writes on).
// ADDR takes halfword addresses. The NVM user row at 0x00804000 holds BOOTPROT (bits 2:0), the
// bytes at the flash start the chip keeps from writes; it is erased with EAR and written with WAP.
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
constexpr uint32_t kCtrlA = kBase + 0x00, kCtrlB = kBase + 0x04, kIntFlag = kBase + 0x14, kStatus = kBase + 0x18,
                   kAddr = kBase + 0x1C;
// CTRLA is a 16-bit register whose upper half is reserved: written as a word (as BOSSA does), so that
// page writes need no switch of the MEM-AP's access size.
constexpr uint16_t kCmdKey = 0xA500;
constexpr uint16_t kCmdEraseRow = 0x02, kCmdWritePage = 0x04, kCmdEraseAuxRow = 0x05, kCmdWriteAuxPage = 0x06,
                   kCmdPageBufferClear = 0x44;
constexpr uint32_t kIntFlagReady = 1u << 0;
constexpr uint32_t kStatusProgE = 1u << 2, kStatusLockE = 1u << 3, kStatusNvmE = 1u << 4;
constexpr uint32_t kStatusErrors = kStatusProgE | kStatusLockE | kStatusNvmE;
constexpr uint32_t kCtrlBManualWrite = 1u << 7;
constexpr uint32_t kUserRow = 0x00804000, kUserRowSize = 256;
constexpr uint32_t kProgramBatch = 4096;

constexpr uint32_t kDsu = 0x41002000;  // CTRL (byte 0), STATUSA (byte 1), STATUSB (byte 2)
constexpr uint8_t kDsuCe = 1u << 4;
constexpr uint32_t kDsuStatusADone = 1u << 8, kDsuStatusAFail = 1u << 11, kDsuStatusBProt = 1u << 16;
constexpr auto kChipEraseTimeout = std::chrono::milliseconds(30000);

std::string status_words(uint32_t status) {
    if (status & kStatusLockE) return "LOCKE: the region is locked (BOOTPROT or the user row's LOCK bits)";
    if (status & kStatusProgE) return "PROGE: a bad command or address";
    if (status & kStatusNvmE) return "NVME: the NVM reported an error";
    return fmt::format("STATUS 0x{:04X}", status);
}

class Samd21Flash : public SamDsuFlash {
public:
    explicit Samd21Flash(const DriverContext& context)
        : SamDsuFlash(context.dap),
          c_(context),
          page_(c_.chip.page_size ? c_.chip.page_size : 64),
          row_(c_.chip.sam && c_.chip.sam->erase_unit ? c_.chip.sam->erase_unit : 4 * page_) {}

    std::string name() const override { return "SAMD21 NVM controller"; }
    uint32_t write_unit() const override { return page_; }
    std::vector<targets::EraseUnitRange> layout() const override {
        std::vector<targets::EraseUnitRange> rows;
        for (uint32_t at = 0; at < c_.flash_size; at += row_) rows.push_back({c_.flash_base + at, row_});
        return rows;
    }

    void erase(std::span<const targets::EraseUnitRange> units, const ProgramProgress& progress) override {
        prepare();
        auto batch = c_.dap.batch();
        std::vector<size_t> status;
        for (const auto& unit : units) {
            batch.write32(kStatus, kStatusErrors);
            batch.write32(kAddr, unit.address / 2);
            batch.write32(kCtrlA, kCmdKey | kCmdEraseRow);
            batch.wait_until(kIntFlag, kIntFlagReady, kIntFlagReady,
                             fmt::format("the erase of the row at {} to finish (INTFLAG.READY)", hex_address(unit.address)));
            status.push_back(batch.read32(kStatus));
        }
        auto reads = batch.run(fmt::format("erasing {} rows from {}", units.size(), hex_address(units.front().address)));
        uint64_t done = 0;
        for (size_t i = 0; i < units.size(); ++i) {
            check(reads[status[i]], fmt::format("erasing the row at {}", hex_address(units[i].address)), units[i].address);
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
                // The errors are sticky and every word of each page is written: one clear and one page
                // buffer clear per batch, STATUS read after each page (the first with an error names it).
                queue_page(batch, page_at, data.subspan(offset + piece, page_), kCmdWritePage, piece == 0);
                status.emplace_back(page_at, batch.read32(kStatus));
            }
            const std::string what = fmt::format("writing {} bytes at {}", length, hex_address(at));
            auto reads = batch.run(what);
            for (const auto& [page_at, index] : status)
                check(reads[index], fmt::format("writing the page at {}", hex_address(page_at)), page_at);
            if (progress) progress(offset + length);
        }
    }

    std::optional<uint32_t> bootloader_protection() override {
        const uint32_t bootprot = c_.dap.read32(kUserRow) & 0x7;
        return bootprot == 7 ? 0u : 512u << (6 - bootprot);
    }

    std::vector<uint32_t> bootloader_protection_sizes() const override {
        return {0, 512, 1024, 2048, 4096, 8192, 16384, 32768};
    }

    void set_bootloader_protection(uint32_t bytes) override {
        const auto sizes = bootloader_protection_sizes();
        auto found = std::find(sizes.begin(), sizes.end(), bytes);
        if (found == sizes.end())
            throw Error(ErrorKind::Usage, fmt::format("the SAMD21's BOOTPROT cannot protect {} bytes", bytes),
                        "it takes 0, 512, 1024, 2048, 4096, 8192, 16384 or 32768");
        const uint32_t bootprot = 7 - static_cast<uint32_t>(found - sizes.begin());
        prepare();
        // The whole row is erased at once: read it all, change BOOTPROT only, write every page back.
        auto row = c_.dap.read_bytes(kUserRow, kUserRowSize);
        if ((row[0] & 0x7) == bootprot) return;
        row[0] = static_cast<uint8_t>((row[0] & ~0x7u) | bootprot);
        const std::string what = fmt::format("changing BOOTPROT in the NVM user row to protect {} bytes", bytes);
        auto batch = c_.dap.batch();
        batch.write32(kStatus, kStatusErrors);
        batch.write32(kAddr, kUserRow / 2);
        batch.write32(kCtrlA, kCmdKey | kCmdEraseAuxRow);
        batch.wait_until(kIntFlag, kIntFlagReady, kIntFlagReady, "the user row erase to finish (INTFLAG.READY)");
        std::vector<size_t> status = {batch.read32(kStatus)};
        for (uint32_t offset = 0; offset < kUserRowSize; offset += page_) {
            queue_page(batch, kUserRow + offset, std::span<const uint8_t>(row).subspan(offset, page_), kCmdWriteAuxPage);
            status.push_back(batch.read32(kStatus));
        }
        auto reads = batch.run(what);
        for (size_t index : status) check(reads[index], what, kUserRow);
        if (c_.dap.read_bytes(kUserRow, kUserRowSize) != row)
            throw Error(ErrorKind::VerifyMismatch, "the NVM user row reads back other than written", "").during(what);
    }

private:
    void prepare() {
        if (prepared_) return;
        // Manual page writes: the page buffer goes to flash only on WP, not when its last word is loaded.
        const uint32_t ctrlb = c_.dap.read32(kCtrlB);
        if (!(ctrlb & kCtrlBManualWrite)) c_.dap.write32(kCtrlB, ctrlb | kCtrlBManualWrite);
        prepared_ = true;
    }

    void queue_page(link::swd::MemoryBatch& batch, uint32_t address, std::span<const uint8_t> bytes, uint16_t command,
                    bool clear = true) {
        std::vector<uint32_t> words(bytes.size() / 4);
        for (size_t i = 0; i < words.size(); ++i)
            words[i] = static_cast<uint32_t>(bytes[4 * i] | bytes[4 * i + 1] << 8 | bytes[4 * i + 2] << 16) |
                       static_cast<uint32_t>(bytes[4 * i + 3]) << 24;
        if (clear) {
            batch.write32(kStatus, kStatusErrors);
            batch.write32(kCtrlA, kCmdKey | kCmdPageBufferClear);
            batch.wait_until(kIntFlag, kIntFlagReady, kIntFlagReady, "the page buffer clear (INTFLAG.READY)");
        }
        batch.write_words(address, words);
        batch.write32(kAddr, address / 2);
        batch.write32(kCtrlA, kCmdKey | command);
        batch.wait_until(kIntFlag, kIntFlagReady, kIntFlagReady,
                         fmt::format("the write of the page at {} to finish (INTFLAG.READY)", hex_address(address)));
    }

    void check(uint32_t status, const std::string& what, uint32_t address) const {
        if (status & kStatusErrors)
            throw Error(ErrorKind::Protocol, fmt::format("the NVM controller refused: {}", status_words(status)),
                        status & kStatusLockE ? "BOOTPROT protects the start of flash: lower it first "
                                                "(mcuflash does when installing a bootloader)"
                                              : "")
                .during(what)
                .at_address(address);
    }

    DriverContext c_;
    uint32_t page_, row_;
    bool prepared_ = false;
};

}  // namespace

void SamDsuFlash::chip_erase() {
    auto& dap = dap_;
    auto batch = dap.batch();
    batch.write8(kDsu + 1, 0x1F);  // STATUSA: clear DONE, CRSTEXT, BERR, FAIL, PERR (write 1 to clear)
    batch.write8(kDsu, kDsuCe);
    batch.run("starting the chip erase (DSU CTRL.CE)");
    wait_for(dap, kDsu, kDsuStatusADone, kDsuStatusADone, kChipEraseTimeout, "the chip erase",
             "the chip erase to finish (DSU STATUSA.DONE)");
    const uint32_t status = dap.read32(kDsu);
    if (status & kDsuStatusAFail)
        throw Error(ErrorKind::Protocol, fmt::format("the chip erase failed (DSU STATUSA 0x{:02X}: FAIL)", status >> 8 & 0xFF),
                    "power the board off and on, and try again");
}

ReadoutProtection SamDsuFlash::readout_protection() {
    ReadoutProtection protection;
    protection.active = dap_.read32(kDsu) & kDsuStatusBProt;
    if (protection.active) {
        protection.detail = "the security bit is set (DSU STATUSB.PROT): the flash cannot be read";
        protection.way_out = "a chip erase clears it, and erases the whole flash (bootloader included)";
    }
    return protection;
}

std::unique_ptr<FlashDriver> make_samd21_driver(const DriverContext& context) {
    return std::make_unique<Samd21Flash>(context);
}

}  // namespace mcuflash::protocol::swd
