// SAMD21 NVMCTRL (datasheet "NVMCTRL"; BOSSA D2xNvmFlash): 64-byte pages, rows of 4 pages, the
// erase unit. Commands go to CTRLA with the 0xA5 key; ADDR takes a halfword address.
#include <fmt/format.h>

#include "core/error.hpp"
#include "core/hexdump.hpp"
#include "protocol/samba/flash_controller.hpp"

namespace mcuflash::protocol::samba {

using core::Error;
using core::ErrorKind;
using core::hex_address;

namespace {

constexpr uint32_t kBase = 0x41004000;
constexpr uint32_t kCtrlA = kBase + 0x00;
constexpr uint32_t kCtrlB = kBase + 0x04;
constexpr uint32_t kIntFlag = kBase + 0x14;
constexpr uint32_t kStatus = kBase + 0x18;
constexpr uint32_t kAddr = kBase + 0x1C;
constexpr uint32_t kCmdExKey = 0xA500;
constexpr uint32_t kUserRow = 0x00804000;
constexpr uint32_t kIntFlagReady = 1u << 0;
constexpr uint32_t kIntFlagError = 1u << 1;
constexpr uint32_t kStatusErrors = 0x1E;  // PROGE, LOCKE, NVME (write 1 to clear), LOAD
constexpr uint32_t kCtrlBManualWrite = 1u << 7;
constexpr uint32_t kCtrlBCacheDisable = 1u << 18;
constexpr uint8_t kCmdEraseRow = 0x02;
constexpr uint8_t kCmdWritePage = 0x04;
constexpr uint8_t kCmdPageBufferClear = 0x44;
constexpr int kReadyPolls = 2000;

class NvmctrlD21 : public FlashController {
public:
    NvmctrlD21(Monitor& monitor, const FlashGeometry& geometry) : monitor_(monitor), geometry_(geometry) {}

    std::string name() const override { return "SAMD21 NVMCTRL"; }
    uint32_t erase_unit() const override { return geometry_.erase_unit; }

    void erase(uint32_t address, uint32_t length) override {
        const uint32_t row = erase_unit();
        for (uint32_t at = address / row * row; at < address + length; at += row) {
            wait_ready(fmt::format("erasing the row at {}", hex_address(at)));
            // Clear error bits a previous command may have left (write 1 to clear), as BOSSA does.
            monitor_.write_word(kStatus, kStatusErrors);
            set_address(at);
            run(kCmdEraseRow, fmt::format("erasing the row at {}", hex_address(at)));
        }
    }

    void program_pages(uint32_t flash, uint32_t sram, uint32_t length, WordCopyApplet& applet) override {
        if (!manual_write_) {
            // Manual page write: the page buffer is written only when we say WP (not when its last
            // word is loaded), and no cache in the way.
            monitor_.write_word(kCtrlB, monitor_.read_word(kCtrlB) | kCtrlBManualWrite | kCtrlBCacheDisable);
            manual_write_ = true;
        }
        for (uint32_t offset = 0; offset < length; offset += geometry_.page_size) {
            const uint32_t at = flash + offset;
            const std::string what = fmt::format("writing the page at {}", hex_address(at));
            run(kCmdPageBufferClear, what + " (page buffer clear)");
            applet.copy(at, sram + offset, geometry_.page_size / 4);
            wait_ready(what);
            set_address(at);
            run(kCmdWritePage, what);
        }
    }

    void reset() override { monitor_.write_word(0xE000ED0C, 0x05FA0004); }  // AIRCR SYSRESETREQ

    // NVM user row word 0, BOOTPROT (bits 2:0): 7 protects nothing, 6 the first 512 bytes, each step
    // down twice as much (0: 32 KiB).
    std::optional<uint32_t> boot_protection() override {
        const uint32_t bootprot = monitor_.read_word(kUserRow) & 0x7;
        return bootprot == 7 ? 0u : 512u << (6 - bootprot);
    }

private:
    // ADDR is read back before a command uses it: on a link that can corrupt bytes, a wrong row
    // number must never reach an erase (it could be the bootloader's row).
    void set_address(uint32_t byte_address) {
        const uint32_t halfword = byte_address / 2;
        monitor_.write_word(kAddr, halfword);
        uint32_t back = monitor_.read_word(kAddr) & 0x3FFFFF;
        if (back != halfword)
            throw Error(ErrorKind::Protocol,
                        fmt::format("NVMCTRL ADDR reads back 0x{:06X}, not 0x{:06X} ({}): the command was not sent",
                                    back, halfword, hex_address(byte_address)));
    }

    void wait_ready(const std::string& what) {
        for (int poll = 0; poll < kReadyPolls; ++poll)
            if (monitor_.read_word(kIntFlag) & kIntFlagReady) return;
        throw Error(ErrorKind::Timeout, fmt::format("{}: NVMCTRL stays busy (INTFLAG.READY never set)", what));
    }

    void run(uint8_t command, const std::string& what) {
        wait_ready(what);
        monitor_.write_word(kCtrlA, kCmdExKey | command);
        wait_ready(what);
        uint32_t flags = monitor_.read_word(kIntFlag);
        if (flags & kIntFlagError) {
            uint32_t status = monitor_.read_word(kStatus) & 0xFFFF;
            monitor_.write_word(kIntFlag, kIntFlagError);
            std::string why = status & 0x08 ? "the region is locked (LOCKE)"
                            : status & 0x04 ? "programming error (PROGE)"
                            : status & 0x10 ? "NVM error (NVME)"
                                            : fmt::format("STATUS 0x{:04X}", status);
            throw Error(ErrorKind::Protocol, fmt::format("{}: NVMCTRL refused the command: {}", what, why),
                        status & 0x08 ? "the flash region is locked (NVM user row LOCK bits or BOOTPROT); unlock "
                                        "it with the vendor tools before writing there"
                                      : std::string{});
        }
    }

    Monitor& monitor_;
    FlashGeometry geometry_;
    bool manual_write_ = false;
};

}  // namespace

std::unique_ptr<FlashController> make_nvmctrl_d21(Monitor& monitor, const FlashGeometry& geometry) {
    return std::make_unique<NvmctrlD21>(monitor, geometry);
}

}  // namespace mcuflash::protocol::samba
