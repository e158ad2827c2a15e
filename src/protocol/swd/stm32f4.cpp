// STM32F4 flash over SWD (RM0090 "Embedded Flash memory interface"): the controller at 0x40023C00.
// Sectors of 16, 64 and 128 KiB are erased one by one (SER with SNB); programming is by word
// (PSIZE x32, for a 2.7-3.6 V supply), each word write stalling the bus while the one before is
// programmed. Readout protection is the RDP byte of FLASH_OPTCR.
#include <fmt/format.h>

#include "core/error.hpp"
#include "core/hexdump.hpp"
#include "protocol/swd/stm32_flash.hpp"

namespace mcuflash::protocol::swd {

using core::Error;
using core::ErrorKind;
using core::hex_address;

namespace {

constexpr uint32_t kBase = 0x40023C00;
constexpr uint32_t kKeyr = kBase + 0x04, kOptKeyr = kBase + 0x08, kSr = kBase + 0x0C, kCr = kBase + 0x10,
                   kOptCr = kBase + 0x14;
constexpr uint32_t kOptKey1 = 0x08192A3B, kOptKey2 = 0x4C5D6E7F;
constexpr uint32_t kSrEop = 1u << 0, kSrOpErr = 1u << 1, kSrWrpErr = 1u << 4, kSrPgaErr = 1u << 5, kSrPgpErr = 1u << 6,
                   kSrPgsErr = 1u << 7, kSrRdErr = 1u << 8, kSrBsy = 1u << 16;
constexpr uint32_t kSrErrors = kSrOpErr | kSrWrpErr | kSrPgaErr | kSrPgpErr | kSrPgsErr | kSrRdErr;
constexpr uint32_t kCrPg = 1u << 0, kCrSer = 1u << 1, kCrMer = 1u << 2, kCrPsize32 = 2u << 8, kCrStrt = 1u << 16,
                   kCrLock = 1u << 31;
constexpr uint32_t kOptCrLock = 1u << 0, kOptCrStart = 1u << 1;
constexpr uint32_t kRdpLevel0 = 0xAA, kRdpLevel2 = 0xCC;
// RM0090 / datasheet: 128 KiB sector erase up to 4 s, mass erase up to 32 s (x32).
constexpr auto kSectorEraseTimeout = std::chrono::milliseconds(8000);
constexpr auto kMassEraseTimeout = std::chrono::milliseconds(40000);
constexpr uint32_t kProgramBatch = 8192;

Stm32FlashFamily stm32f4_family() {
    return {.keyr = kKeyr, .sr = kSr, .cr = kCr, .cr_lock = kCrLock, .cr_start = kCrStrt,
            .cr_mass_erase = kCrMer | kCrPsize32, .sr_busy = kSrBsy, .sr_clear = kSrErrors | kSrEop,
            .sr_write_protect = kSrWrpErr,
            .sr_errors = {{kSrWrpErr, "WRPERR: the sector is write-protected"},
                          {kSrPgaErr, "PGAERR: misaligned programming"},
                          {kSrPgpErr, "PGPERR: programming width does not match PSIZE"},
                          {kSrPgsErr, "PGSERR: programming sequence error"},
                          {kSrOpErr, "OPERR: operation error"},
                          {kSrRdErr, "RDERR: read of a protected sector"}},
            .write_protect_hint = "the option bytes write-protect that sector; remove the protection with the vendor "
                                  "tools (STM32CubeProgrammer)",
            .mass_erase_timeout = kMassEraseTimeout};
}

class Stm32f4Flash : public Stm32Flash {
public:
    explicit Stm32f4Flash(const DriverContext& context)
        : Stm32Flash(context, stm32f4_family()), layout_(targets::erase_layout(c_.chip, c_.flash_size)) {}

    std::string name() const override { return "STM32F4 flash controller"; }
    uint32_t write_unit() const override { return 4; }
    std::vector<targets::EraseUnitRange> layout() const override { return layout_; }

    void erase(std::span<const targets::EraseUnitRange> units, const ProgramProgress& progress) override {
        unlock();
        uint64_t done = 0;
        for (const auto& unit : units) {
            const uint32_t sector = sector_number(unit.address);
            const std::string what = fmt::format("erasing sector {} at {}", sector, hex_address(unit.address));
            auto batch = c_.dap.batch();
            batch.wait_until(kSr, kSrBsy, 0, "the flash controller to be idle (FLASH_SR.BSY)");
            batch.write32(kSr, kSrErrors | kSrEop);
            batch.write32(kCr, kCrSer | kCrPsize32 | sector << 3);
            batch.write32(kCr, kCrSer | kCrPsize32 | sector << 3 | kCrStrt);
            batch.run(what);
            wait_for(c_.dap, kSr, kSrBsy, 0, kSectorEraseTimeout, what, "the sector erase to finish (FLASH_SR.BSY)");
            check(c_.dap.read32(kSr), what, unit.address);
            done += unit.size;
            if (progress) progress(done);
        }
        c_.dap.write32(kCr, 0);
    }

    void program(uint32_t address, std::span<const uint8_t> data, const ProgramProgress& progress) override {
        unlock();
        for (size_t offset = 0; offset < data.size(); offset += kProgramBatch) {
            const size_t length = std::min<size_t>(kProgramBatch, data.size() - offset);
            const uint32_t at = address + static_cast<uint32_t>(offset);
            std::vector<uint32_t> words(length / 4);
            for (size_t i = 0; i < words.size(); ++i) {
                const size_t b = offset + 4 * i;
                words[i] = static_cast<uint32_t>(data[b] | data[b + 1] << 8 | data[b + 2] << 16) |
                           static_cast<uint32_t>(data[b + 3]) << 24;
            }
            auto batch = c_.dap.batch();
            batch.write32(kSr, kSrErrors | kSrEop);
            batch.write32(kCr, kCrPg | kCrPsize32);
            batch.write_words(at, words);
            batch.wait_until(kSr, kSrBsy, 0, "the flash controller to finish programming (FLASH_SR.BSY)");
            const size_t status = batch.read32(kSr);
            batch.write32(kCr, 0);
            const std::string what = fmt::format("writing {} bytes at {}", length, hex_address(at));
            check(batch.run(what)[status], what, at);
            if (progress) progress(offset + length);
        }
    }

    ReadoutProtection readout_protection() override {
        ReadoutProtection protection;
        const uint32_t optcr = c_.dap.read32(kOptCr);
        const uint32_t rdp = optcr >> 8 & 0xFF;
        protection.active = rdp != kRdpLevel0;
        if (rdp == kRdpLevel2) {
            protection.detail = fmt::format("readout protection level 2 (FLASH_OPTCR 0x{:08X}): permanent", optcr);
            protection.way_out = "level 2 cannot be removed: debug access to the chip is closed for good";
        } else if (protection.active) {
            protection.detail = fmt::format("readout protection level 1 (FLASH_OPTCR 0x{:08X}, RDP 0x{:02X})", optcr, rdp);
            protection.way_out =
                "setting RDP back to 0xAA (level 0) makes the chip erase its whole flash (bootloader included); "
                "mcuflash does that when asked to remove the protection";
        }
        return protection;
    }

    void remove_readout_protection() override {
        auto batch = c_.dap.batch();
        batch.write32(kOptKeyr, kOptKey1);
        batch.write32(kOptKeyr, kOptKey2);
        batch.run("unlocking the option bytes");
        uint32_t optcr = c_.dap.read32(kOptCr);
        if (optcr & kOptCrLock)
            throw Error(ErrorKind::Protocol, "the option bytes stay locked after the unlock keys (FLASH_OPTCR.OPTLOCK)");
        optcr = (optcr & ~0xFF00u) | kRdpLevel0 << 8;
        c_.dap.write32(kOptCr, optcr);
        c_.dap.write32(kOptCr, optcr | kOptCrStart);
        wait_for(c_.dap, kSr, kSrBsy, 0, kMassEraseTimeout, "setting readout protection level 0",
                 "the option byte change and mass erase to finish (FLASH_SR.BSY)");
        c_.dap.write32(kOptCr, optcr | kOptCrLock);
    }

private:
    uint32_t sector_number(uint32_t address) const {
        for (size_t i = 0; i < layout_.size(); ++i)
            if (layout_[i].address == address) return static_cast<uint32_t>(i < 12 ? i : i + 4);  // bank 2: SNB 16..
        throw Error(ErrorKind::Internal, fmt::format("{} starts no sector", hex_address(address)));
    }

    std::vector<targets::EraseUnitRange> layout_;
};

}  // namespace

std::unique_ptr<FlashDriver> make_stm32f4_driver(const DriverContext& context) {
    return std::make_unique<Stm32f4Flash>(context);
}

}  // namespace mcuflash::protocol::swd
