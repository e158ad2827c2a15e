// SAMD51 NVMCTRL (datasheet "NVMCTRL"; BOSSA D5xNvmFlash): 512-byte pages, blocks of 16 pages
// (8 KiB), the erase unit. Commands go to CTRLB with the 0xA5 key; ADDR takes a byte address.
// INTFLAG and STATUS are 16-bit registers: read byte by byte, as BOSSA does.
#include <fmt/format.h>

#include "protocol/sam_nvmctrl.hpp"
#include "protocol/samba/nvmctrl.hpp"

namespace mcuflash::protocol::samba {

namespace {

using namespace nvmctrl::d51;
using nvmctrl::kUserRow;
constexpr uint16_t kIntFlagChecked = kIntFlagErrors | kIntFlagSusp;  // the flags BOSSA takes for errors
constexpr int kReadyPolls = 5000;

NvmctrlFamily d51_family() {
    return {.name = "SAMD51 NVMCTRL", .unit = "block", .ready = "STATUS.READY", .ready_polls = kReadyPolls,
            .command_register = kCtrlB, .address_register = kAddr, .address_shift = 0, .address_mask = 0xFFFFFF,
            .erase_unit_command = kCmdEraseBlock, .write_page_command = kCmdWritePage,
            .page_buffer_clear_command = kCmdPageBufferClear};
}

class NvmctrlD51 : public NvmctrlFlash {
public:
    NvmctrlD51(Monitor& monitor, const FlashGeometry& geometry) : NvmctrlFlash(monitor, geometry, d51_family()) {}

    // NVM user page word 0, BOOTPROT (bits 29:26): the first (15 - BOOTPROT) x 8 KiB are protected.
    std::optional<uint32_t> boot_protection() override {
        const uint32_t bootprot = monitor_.read_word(kUserRow) >> 26 & 0xF;
        return (15 - bootprot) * 8192u;
    }

protected:
    bool ready() override { return monitor_.read_byte(kStatus) & kStatusReady; }

    void prepare_page_writes() override {
        // CTRLA.WMODE = manual (bits 5:4 = 0), caches off (bits 15:14), as BOSSA sets them.
        const uint16_t ctrla = read_u16(kCtrlA);
        write_u16(kCtrlA, static_cast<uint16_t>((ctrla | 0xC000) & ~kCtrlAWriteMode));
    }

    std::optional<Refusal> refusal() override {
        const uint16_t flags = read_u16(kIntFlag);
        if (!(flags & kIntFlagChecked)) return std::nullopt;
        write_u16(kIntFlag, kIntFlagChecked);
        Refusal refused;
        refused.why = flags & kIntFlagLockE   ? "the region is locked (LOCKE)"
                      : flags & kIntFlagProgE ? "programming error (PROGE)"
                      : flags & kIntFlagAddrE ? "address error (ADDRE)"
                                              : fmt::format("INTFLAG 0x{:04X}", flags);
        if (flags & kIntFlagLockE) refused.hint = "the flash region is locked (NVM user page LOCK bits or BOOTPROT)";
        return refused;
    }

private:
    uint16_t read_u16(uint32_t address) {
        return static_cast<uint16_t>(monitor_.read_byte(address) | monitor_.read_byte(address + 1) << 8);
    }
    void write_u16(uint32_t address, uint16_t value) {
        monitor_.write_byte(address, static_cast<uint8_t>(value));
        monitor_.write_byte(address + 1, static_cast<uint8_t>(value >> 8));
    }
};

}  // namespace

std::unique_ptr<FlashController> make_nvmctrl_d51(Monitor& monitor, const FlashGeometry& geometry) {
    return std::make_unique<NvmctrlD51>(monitor, geometry);
}

}  // namespace mcuflash::protocol::samba
