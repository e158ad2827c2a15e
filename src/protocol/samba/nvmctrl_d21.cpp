// SAMD21 NVMCTRL (datasheet "NVMCTRL"; BOSSA D2xNvmFlash): 64-byte pages, rows of 4 pages, the
// erase unit. Commands go to CTRLA with the 0xA5 key; ADDR takes a halfword address.
#include <fmt/format.h>

#include "protocol/sam_nvmctrl.hpp"
#include "protocol/samba/nvmctrl.hpp"

namespace mcuflash::protocol::samba {

namespace {

using namespace nvmctrl::d21;
using nvmctrl::kUserRow;
constexpr uint32_t kStatusClear = kStatusErrors | kStatusLoad;  // as BOSSA clears them (write 1 to clear)
constexpr int kReadyPolls = 2000;

NvmctrlFamily d21_family() {
    return {.name = "SAMD21 NVMCTRL", .unit = "row", .ready = "INTFLAG.READY", .ready_polls = kReadyPolls,
            .command_register = kCtrlA, .address_register = kAddr, .address_shift = 1, .address_mask = 0x3FFFFF,
            .erase_unit_command = kCmdEraseRow, .write_page_command = kCmdWritePage,
            .page_buffer_clear_command = kCmdPageBufferClear};
}

class NvmctrlD21 : public NvmctrlFlash {
public:
    NvmctrlD21(Monitor& monitor, const FlashGeometry& geometry) : NvmctrlFlash(monitor, geometry, d21_family()) {}

    // NVM user row word 0, BOOTPROT (bits 2:0): 7 protects nothing, 6 the first 512 bytes, each step
    // down twice as much (0: 32 KiB).
    std::optional<uint32_t> boot_protection() override {
        const uint32_t bootprot = monitor_.read_word(kUserRow) & 0x7;
        return bootprot == 7 ? 0u : 512u << (6 - bootprot);
    }

protected:
    bool ready() override { return monitor_.read_word(kIntFlag) & kIntFlagReady; }

    void prepare_page_writes() override {
        // Manual page write: the page buffer is written only when we say WP (not when its last word
        // is loaded), and no cache in the way.
        monitor_.write_word(kCtrlB, monitor_.read_word(kCtrlB) | kCtrlBManualWrite | kCtrlBCacheDisable);
    }

    void before_erase(const std::string& what) override {
        wait_ready(what);
        // Clear error bits a previous command may have left (write 1 to clear), as BOSSA does.
        monitor_.write_word(kStatus, kStatusClear);
    }

    std::optional<Refusal> refusal() override {
        if (!(monitor_.read_word(kIntFlag) & kIntFlagError)) return std::nullopt;
        const uint32_t status = monitor_.read_word(kStatus) & 0xFFFF;
        monitor_.write_word(kIntFlag, kIntFlagError);
        Refusal refused;
        refused.why = status & kStatusLockE   ? "the region is locked (LOCKE)"
                      : status & kStatusProgE ? "programming error (PROGE)"
                      : status & kStatusNvmE  ? "NVM error (NVME)"
                                              : fmt::format("STATUS 0x{:04X}", status);
        if (status & kStatusLockE)
            refused.hint = "the flash region is locked (NVM user row LOCK bits or BOOTPROT); unlock it with the "
                           "vendor tools before writing there";
        return refused;
    }
};

}  // namespace

std::unique_ptr<FlashController> make_nvmctrl_d21(Monitor& monitor, const FlashGeometry& geometry) {
    return std::make_unique<NvmctrlD21>(monitor, geometry);
}

}  // namespace mcuflash::protocol::samba
