// SAMD21 and SAMC21 flash over SWD (datasheets: "NVMCTRL", "DSU", "NVM User Row"): the NVM
// controller at 0x41004000. Rows of 4 pages are the erase unit (ER); a page is written through the
// page buffer (PBC, the words written to the page's own addresses, then WP with manual writes on).
// ADDR takes halfword addresses. The NVM user row at 0x00804000 holds BOOTPROT (bits 2:0), the
// bytes at the flash start the chip keeps from writes; it is erased with EAR and written with WAP.
#include <algorithm>

#include <fmt/format.h>

#include "core/error.hpp"
#include "core/hexdump.hpp"
#include "protocol/sam_nvmctrl.hpp"
#include "protocol/swd/sam_nvm_flash.hpp"

namespace mcuflash::protocol::swd {

using core::Error;
using core::ErrorKind;
using core::hex_address;

namespace {

using namespace nvmctrl::d21;
using nvmctrl::kCmdKey;
using nvmctrl::kUserRow;
// CTRLA is a 16-bit register whose upper half is reserved: written as a word (as BOSSA does), so that
// page writes need no switch of the MEM-AP's access size.

std::string status_words(uint32_t status) {
    if (status & kStatusLockE) return "LOCKE: the region is locked (BOOTPROT or the user row's LOCK bits)";
    if (status & kStatusProgE) return "PROGE: a bad command or address";
    if (status & kStatusNvmE) return "NVME: the NVM reported an error";
    return fmt::format("STATUS 0x{:04X}", status);
}

SamNvmFamily samd21_family() {
    return {.name = "SAMD21 NVM controller", .unit = "row", .ready = "INTFLAG.READY", .user_row = "user row",
            .default_page = 64, .pages_per_unit = 4, .flags_register = kStatus, .error_flags = kStatusErrors,
            .lock_error = kStatusLockE, .flag_words = status_words};
}

class Samd21Flash : public SamNvmFlash {
public:
    explicit Samd21Flash(const DriverContext& context) : SamNvmFlash(context, samd21_family()) {}

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
        auto batch = c_.dap.batch();
        queue_command(batch, kUserRow, kCmdEraseAuxRow, "the user row erase to finish (INTFLAG.READY)");
        std::vector<size_t> status = {batch.read32(kStatus)};
        for (uint32_t offset = 0; offset < kUserRowSize; offset += page_) {
            const uint32_t page_at = kUserRow + offset;
            queue_page(batch, page_at, std::span<const uint8_t>(row).subspan(offset, page_), kCmdWriteAuxPage, true,
                       fmt::format("the write of the page at {} to finish (INTFLAG.READY)", hex_address(page_at)));
            status.push_back(batch.read32(kStatus));
        }
        run_user_row_write(batch, status, fmt::format("changing BOOTPROT in the NVM user row to protect {} bytes", bytes),
                           row);
    }

protected:
    void prepare_controller() override {
        // Manual page writes: the page buffer goes to flash only on WP, not when its last word is loaded.
        const uint32_t ctrlb = c_.dap.read32(kCtrlB);
        if (!(ctrlb & kCtrlBManualWrite)) c_.dap.write32(kCtrlB, ctrlb | kCtrlBManualWrite);
    }

    void queue_unit_erase(link::swd::MemoryBatch& batch, uint32_t address, std::string waiting_for) override {
        queue_command(batch, address, kCmdEraseRow, std::move(waiting_for));
    }

    void queue_page_write(link::swd::MemoryBatch& batch, uint32_t address, std::span<const uint8_t> bytes, bool clear,
                          std::string waiting_for) override {
        queue_page(batch, address, bytes, kCmdWritePage, clear, std::move(waiting_for));
    }

private:
    // Clears the error flags (unless told not to), sets ADDR, issues the command, waits for READY.
    void queue_command(link::swd::MemoryBatch& batch, uint32_t address, uint16_t command, std::string waiting_for,
                       bool clear_errors = true) {
        if (clear_errors) batch.write32(kStatus, kStatusErrors);
        batch.write32(kAddr, address / 2);
        batch.write32(kCtrlA, kCmdKey | command);
        batch.wait_until(kIntFlag, kIntFlagReady, kIntFlagReady, std::move(waiting_for));
    }

    void queue_page(link::swd::MemoryBatch& batch, uint32_t address, std::span<const uint8_t> bytes, uint16_t command,
                    bool clear, std::string waiting_for) {
        if (clear) {
            batch.write32(kStatus, kStatusErrors);
            batch.write32(kCtrlA, kCmdKey | kCmdPageBufferClear);
            batch.wait_until(kIntFlag, kIntFlagReady, kIntFlagReady, "the page buffer clear (INTFLAG.READY)");
        }
        batch.write_words(address, little_endian_words(bytes));
        queue_command(batch, address, command, std::move(waiting_for), false);
    }
};

}  // namespace

std::unique_ptr<FlashDriver> make_samd21_driver(const DriverContext& context) {
    return std::make_unique<Samd21Flash>(context);
}

}  // namespace mcuflash::protocol::swd
