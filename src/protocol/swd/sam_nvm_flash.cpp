#include "protocol/swd/sam_nvm_flash.hpp"

#include <algorithm>

#include <fmt/format.h>

#include "core/error.hpp"
#include "core/hexdump.hpp"
#include "protocol/sam_nvmctrl.hpp"

namespace mcuflash::protocol::swd {

using core::Error;
using core::ErrorKind;
using core::hex_address;

namespace {

constexpr uint32_t kProgramBatch = 4096;

constexpr uint32_t kDsu = 0x41002000;  // CTRL (byte 0), STATUSA (byte 1), STATUSB (byte 2)
constexpr uint8_t kDsuCe = 1u << 4;
constexpr uint32_t kDsuStatusADone = 1u << 8, kDsuStatusAFail = 1u << 11, kDsuStatusBProt = 1u << 16;
constexpr auto kChipEraseTimeout = std::chrono::milliseconds(30000);

}  // namespace

std::vector<uint32_t> little_endian_words(std::span<const uint8_t> bytes) {
    std::vector<uint32_t> words(bytes.size() / 4);
    for (size_t i = 0; i < words.size(); ++i)
        words[i] = static_cast<uint32_t>(bytes[4 * i] | bytes[4 * i + 1] << 8 | bytes[4 * i + 2] << 16) |
                   static_cast<uint32_t>(bytes[4 * i + 3]) << 24;
    return words;
}

SamNvmFlash::SamNvmFlash(const DriverContext& context, SamNvmFamily family)
    : SamDsuFlash(context.dap),
      c_(context),
      family_(std::move(family)),
      page_(c_.chip.page_size ? c_.chip.page_size : family_.default_page),
      unit_(c_.chip.sam && c_.chip.sam->erase_unit ? c_.chip.sam->erase_unit : family_.pages_per_unit * page_) {}

std::vector<targets::EraseUnitRange> SamNvmFlash::layout() const {
    std::vector<targets::EraseUnitRange> units;
    for (uint32_t at = 0; at < c_.flash_size; at += unit_) units.push_back({c_.flash_base + at, unit_});
    return units;
}

void SamNvmFlash::erase(std::span<const targets::EraseUnitRange> units, const ProgramProgress& progress) {
    prepare();
    auto batch = c_.dap.batch();
    std::vector<size_t> flag_reads;
    for (const auto& unit : units) {
        queue_unit_erase(batch, unit.address,
                         fmt::format("the erase of the {} at {} to finish ({})", family_.unit, hex_address(unit.address),
                                     family_.ready));
        flag_reads.push_back(batch.read32(family_.flags_register));
    }
    auto reads = batch.run(
        fmt::format("erasing {} {}s from {}", units.size(), family_.unit, hex_address(units.front().address)));
    uint64_t done = 0;
    for (size_t i = 0; i < units.size(); ++i) {
        check(reads[flag_reads[i]], fmt::format("erasing the {} at {}", family_.unit, hex_address(units[i].address)),
              units[i].address);
        done += units[i].size;
    }
    if (progress) progress(done);
}

void SamNvmFlash::program(uint32_t address, std::span<const uint8_t> data, const ProgramProgress& progress) {
    prepare();
    for (size_t offset = 0; offset < data.size(); offset += kProgramBatch) {
        const size_t length = std::min<size_t>(kProgramBatch, data.size() - offset);
        const uint32_t at = address + static_cast<uint32_t>(offset);
        auto batch = c_.dap.batch();
        std::vector<std::pair<uint32_t, size_t>> flag_reads;
        for (size_t piece = 0; piece < length; piece += page_) {
            const uint32_t page_at = at + static_cast<uint32_t>(piece);
            // The errors are sticky and every word of each page is written: one page buffer clear per
            // batch, the flags read after each page (the first with an error names it).
            queue_page_write(batch, page_at, data.subspan(offset + piece, page_), piece == 0,
                             fmt::format("the write of the page at {} to finish ({})", hex_address(page_at),
                                         family_.ready));
            flag_reads.emplace_back(page_at, batch.read32(family_.flags_register));
        }
        auto reads = batch.run(fmt::format("writing {} bytes at {}", length, hex_address(at)));
        for (const auto& [page_at, index] : flag_reads)
            check(reads[index], fmt::format("writing the page at {}", hex_address(page_at)), page_at);
        if (progress) progress(offset + length);
    }
}

void SamNvmFlash::prepare() {
    if (prepared_) return;
    prepare_controller();
    prepared_ = true;
}

void SamNvmFlash::check(uint32_t flags, const std::string& what, uint32_t address) const {
    if (flags & family_.error_flags)
        throw Error(ErrorKind::Protocol, fmt::format("the NVM controller refused: {}", family_.flag_words(flags)),
                    flags & family_.lock_error ? "BOOTPROT protects the start of flash: lower it first "
                                                 "(mcuflash does when installing a bootloader)"
                                               : "")
            .during(what)
            .at_address(address);
}

void SamNvmFlash::run_user_row_write(link::swd::MemoryBatch& batch, const std::vector<size_t>& flag_reads,
                                     const std::string& what, const std::vector<uint8_t>& expected) {
    auto reads = batch.run(what);
    for (size_t index : flag_reads) check(reads[index], what, nvmctrl::kUserRow);
    if (c_.dap.read_bytes(nvmctrl::kUserRow, expected.size()) != expected)
        throw Error(ErrorKind::VerifyMismatch, fmt::format("the NVM {} reads back other than written", family_.user_row),
                    "")
            .during(what);
}

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

}  // namespace mcuflash::protocol::swd
