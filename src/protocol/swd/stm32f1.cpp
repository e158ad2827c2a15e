// STM32F1 flash over SWD (RM0008 "Embedded Flash memory", PM0075 "STM32F10xxx Flash memory
// microcontrollers"): the FPEC at 0x40022000. Pages are erased one by one (PER), the chip at once
// (MER); programming is by halfword with PG set, each halfword write stalling the bus until the
// FPEC is done with the one before (the probe retries the WAITs), so a page goes as one stream.
#include <fmt/format.h>

#include "core/error.hpp"
#include "core/hexdump.hpp"
#include "protocol/swd/stm32_flash.hpp"

namespace mcuflash::protocol::swd {

using core::Error;
using core::ErrorKind;
using core::hex_address;

namespace {

constexpr uint32_t kBase = 0x40022000;
constexpr uint32_t kKeyr = kBase + 0x04, kOptKeyr = kBase + 0x08, kSr = kBase + 0x0C, kCr = kBase + 0x10,
                   kAr = kBase + 0x14, kObr = kBase + 0x1C, kWrpr = kBase + 0x20;
constexpr uint32_t kKey1 = 0x45670123, kKey2 = 0xCDEF89AB;  // OPTKEYR takes KEYR's two keys
constexpr uint32_t kSrBsy = 1u << 0, kSrPgErr = 1u << 2, kSrWrprtErr = 1u << 4, kSrEop = 1u << 5;
constexpr uint32_t kSrClear = kSrPgErr | kSrWrprtErr | kSrEop;
constexpr uint32_t kCrPg = 1u << 0, kCrPer = 1u << 1, kCrMer = 1u << 2, kCrOptPg = 1u << 4, kCrOptEr = 1u << 5,
                   kCrStrt = 1u << 6, kCrLock = 1u << 7, kCrOptWre = 1u << 9;
constexpr uint32_t kObrRdprt = 1u << 1;
constexpr uint32_t kOptionBytes = 0x1FFFF800;
constexpr uint16_t kRdpUnprotected = 0x00A5;  // RDP byte 0xA5 with its complement 0x5A in the high byte
constexpr auto kPageEraseTimeout = std::chrono::milliseconds(500);   // 40 ms max (datasheet tERASE)
constexpr auto kMassEraseTimeout = std::chrono::milliseconds(5000);  // 40 ms max (tME); generous
constexpr uint32_t kProgramBatch = 4096;                              // bytes between progress reports

Stm32FlashFamily stm32f1_family() {
    return {.keyr = kKeyr, .sr = kSr, .cr = kCr, .cr_lock = kCrLock, .cr_start = kCrStrt, .cr_mass_erase = kCrMer,
            .sr_busy = kSrBsy, .sr_clear = kSrClear, .sr_write_protect = kSrWrprtErr,
            .sr_errors = {{kSrPgErr, "PGERR: the flash there was not erased"},
                          {kSrWrprtErr, "WRPRTERR: the page is write-protected (option bytes WRP)"}},
            .sr_digits = 2,
            .write_protect_hint = "the option bytes write-protect that page; remove the protection with the vendor "
                                  "tools (STM32CubeProgrammer) or a chip erase",
            .mass_erase_timeout = kMassEraseTimeout};
}

class Stm32f1Flash : public Stm32Flash {
public:
    explicit Stm32f1Flash(const DriverContext& context) : Stm32Flash(context, stm32f1_family()) {}

    std::string name() const override { return "STM32F1 flash controller (FPEC)"; }
    uint32_t write_unit() const override { return 2; }
    std::vector<targets::EraseUnitRange> layout() const override { return targets::erase_layout(c_.chip, c_.flash_size); }

    void erase(std::span<const targets::EraseUnitRange> units, const ProgramProgress& progress) override {
        unlock();
        // Every page in one queue: the probe waits for BSY to clear after each by value match.
        auto batch = c_.dap.batch();
        std::vector<size_t> status;
        for (const auto& unit : units) {
            batch.write32(kSr, kSrClear);
            batch.write32(kCr, kCrPer);
            batch.write32(kAr, unit.address);
            batch.write32(kCr, kCrPer | kCrStrt);
            batch.wait_until(kSr, kSrBsy, 0, fmt::format("the erase of the page at {} to finish (FLASH_SR.BSY)",
                                                         hex_address(unit.address)));
            status.push_back(batch.read32(kSr));
        }
        batch.write32(kCr, 0);
        auto reads = batch.run(fmt::format("erasing {} pages from {}", units.size(), hex_address(units.front().address)));
        uint64_t done = 0;
        for (size_t i = 0; i < units.size(); ++i) {
            check(reads[status[i]], fmt::format("erasing the page at {}", hex_address(units[i].address)), units[i].address);
            done += units[i].size;
        }
        if (progress) progress(done);
    }

    void program(uint32_t address, std::span<const uint8_t> data, const ProgramProgress& progress) override {
        unlock();
        for (size_t offset = 0; offset < data.size(); offset += kProgramBatch) {
            const size_t length = std::min<size_t>(kProgramBatch, data.size() - offset);
            const uint32_t at = address + static_cast<uint32_t>(offset);
            auto batch = c_.dap.batch();
            batch.write32(kSr, kSrClear);
            batch.write32(kCr, kCrPg);
            std::vector<std::pair<uint32_t, size_t>> status;  // (page start, read index)
            const uint32_t page = c_.chip.page_size ? c_.chip.page_size : 1024;
            for (size_t piece = 0; piece < length;) {
                const uint32_t piece_at = at + static_cast<uint32_t>(piece);
                const size_t piece_length = std::min<size_t>(length - piece, page - piece_at % page);
                std::vector<uint16_t> halfwords(piece_length / 2);
                for (size_t i = 0; i < halfwords.size(); ++i)
                    halfwords[i] = static_cast<uint16_t>(data[offset + piece + 2 * i] | data[offset + piece + 2 * i + 1] << 8);
                batch.write_halfwords(piece_at, halfwords);
                batch.wait_until(kSr, kSrBsy, 0, "the flash controller to finish programming (FLASH_SR.BSY)");
                status.emplace_back(piece_at, batch.read32(kSr));
                piece += piece_length;
            }
            batch.write32(kCr, 0);
            auto reads = batch.run(fmt::format("writing {} bytes at {}", length, hex_address(at)));
            for (const auto& [piece_at, index] : status)
                check(reads[index], fmt::format("writing the page at {}", hex_address(piece_at)), piece_at);
            if (progress) progress(offset + length);
        }
    }

    ReadoutProtection readout_protection() override {
        ReadoutProtection protection;
        const uint32_t obr = c_.dap.read32(kObr);
        protection.active = obr & kObrRdprt;
        if (protection.active) {
            protection.detail = fmt::format("readout protection is on (FLASH_OBR 0x{:08X}: RDPRT set)", obr);
            protection.way_out =
                "removing it rewrites the option bytes with RDP 0xA5, and the chip then erases its whole flash "
                "(bootloader included); mcuflash does that when asked to remove the protection";
        } else {
            const uint32_t wrpr = c_.dap.read32(kWrpr);
            if (wrpr != 0xFFFFFFFF) protection.detail = fmt::format("some pages are write-protected (FLASH_WRPR 0x{:08X})", wrpr);
        }
        return protection;
    }

    void remove_readout_protection() override {
        unlock();
        auto batch = c_.dap.batch();
        batch.write32(kOptKeyr, kKey1);
        batch.write32(kOptKeyr, kKey2);
        batch.run("unlocking the option bytes");
        if (!(c_.dap.read32(kCr) & kCrOptWre))
            throw Error(ErrorKind::Protocol, "the option bytes stay locked after the unlock keys (FLASH_CR.OPTWRE clear)");
        c_.dap.write32(kSr, kSrClear);
        c_.dap.write32(kCr, kCrOptEr | kCrOptWre);
        c_.dap.write32(kCr, kCrOptEr | kCrOptWre | kCrStrt);
        wait_for(c_.dap, kSr, kSrBsy, 0, kMassEraseTimeout, "erasing the option bytes", "the option byte erase (FLASH_SR.BSY)");
        c_.dap.write32(kCr, kCrOptPg | kCrOptWre);
        c_.dap.write16(kOptionBytes, kRdpUnprotected);
        wait_for(c_.dap, kSr, kSrBsy, 0, kMassEraseTimeout, "writing the option bytes", "the option byte write (FLASH_SR.BSY)");
        const uint32_t sr = c_.dap.read32(kSr);
        c_.dap.write32(kCr, 0);
        check(sr, "writing the readout protection option byte", kOptionBytes);
    }
};

}  // namespace

std::unique_ptr<FlashDriver> make_stm32f1_driver(const DriverContext& context) {
    return std::make_unique<Stm32f1Flash>(context);
}

}  // namespace mcuflash::protocol::swd
