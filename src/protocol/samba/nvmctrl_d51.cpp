// SAMD51 NVMCTRL (datasheet "NVMCTRL"; BOSSA D5xNvmFlash): 512-byte pages, blocks of 16 pages
// (8 KiB), the erase unit. Commands go to CTRLB with the 0xA5 key; ADDR takes a byte address.
// INTFLAG and STATUS are 16-bit registers: read byte by byte, as BOSSA does.
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
constexpr uint32_t kUserPage = 0x00804000;
constexpr uint32_t kCtrlA = kBase + 0x00;
constexpr uint32_t kCtrlB = kBase + 0x04;
constexpr uint32_t kIntFlag = kBase + 0x10;
constexpr uint32_t kStatus = kBase + 0x12;
constexpr uint32_t kAddr = kBase + 0x14;
constexpr uint32_t kCmdExKey = 0xA500;
constexpr uint16_t kStatusReady = 1u << 0;
constexpr uint16_t kIntFlagErrors = 0xCE;  // ADDRE, PROGE, LOCKE, ECCSE/NVME
constexpr uint8_t kCmdEraseBlock = 0x01;
constexpr uint8_t kCmdWritePage = 0x03;
constexpr uint8_t kCmdPageBufferClear = 0x15;
constexpr int kReadyPolls = 5000;

class NvmctrlD51 : public FlashController {
public:
    NvmctrlD51(Monitor& monitor, const FlashGeometry& geometry) : monitor_(monitor), geometry_(geometry) {}

    std::string name() const override { return "SAMD51 NVMCTRL"; }
    uint32_t erase_unit() const override { return geometry_.erase_unit; }

    void erase(uint32_t address, uint32_t length) override {
        const uint32_t block = erase_unit();
        for (uint32_t at = address / block * block; at < address + length; at += block) {
            const std::string what = fmt::format("erasing the block at {}", hex_address(at));
            set_address(at);
            run(kCmdEraseBlock, what);
        }
    }

    void program_pages(uint32_t flash, uint32_t sram, uint32_t length, WordCopyApplet& applet) override {
        if (!manual_write_) {
            // CTRLA.WMODE = manual (bits 5:4 = 0), caches off (bits 15:14), as BOSSA sets them.
            uint16_t ctrla = read_u16(kCtrlA);
            write_u16(kCtrlA, static_cast<uint16_t>((ctrla | 0xC000) & 0xFFCF));
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

    // NVM user page word 0, BOOTPROT (bits 29:26): the first (15 - BOOTPROT) x 8 KiB are protected.
    std::optional<uint32_t> boot_protection() override {
        const uint32_t bootprot = monitor_.read_word(kUserPage) >> 26 & 0xF;
        return (15 - bootprot) * 8192u;
    }

private:
    uint16_t read_u16(uint32_t address) {
        return static_cast<uint16_t>(monitor_.read_byte(address) | monitor_.read_byte(address + 1) << 8);
    }
    void write_u16(uint32_t address, uint16_t value) {
        monitor_.write_byte(address, static_cast<uint8_t>(value));
        monitor_.write_byte(address + 1, static_cast<uint8_t>(value >> 8));
    }

    // Read back before use: a corrupted address must never reach an erase (see nvmctrl_d21.cpp).
    void set_address(uint32_t address) {
        monitor_.write_word(kAddr, address);
        uint32_t back = monitor_.read_word(kAddr) & 0xFFFFFF;
        if (back != address)
            throw Error(ErrorKind::Protocol,
                        fmt::format("NVMCTRL ADDR reads back 0x{:06X}, not {}: the command was not sent", back,
                                    hex_address(address)));
    }

    void wait_ready(const std::string& what) {
        for (int poll = 0; poll < kReadyPolls; ++poll)
            if (monitor_.read_byte(kStatus) & kStatusReady) return;
        throw Error(ErrorKind::Timeout, fmt::format("{}: NVMCTRL stays busy (STATUS.READY never set)", what));
    }

    void run(uint8_t command, const std::string& what) {
        wait_ready(what);
        monitor_.write_word(kCtrlB, kCmdExKey | command);
        wait_ready(what);
        uint16_t flags = read_u16(kIntFlag);
        if (flags & kIntFlagErrors) {
            write_u16(kIntFlag, kIntFlagErrors);
            std::string why = flags & 0x08 ? "the region is locked (LOCKE)"
                            : flags & 0x04 ? "programming error (PROGE)"
                            : flags & 0x02 ? "address error (ADDRE)"
                                           : fmt::format("INTFLAG 0x{:04X}", flags);
            throw Error(ErrorKind::Protocol, fmt::format("{}: NVMCTRL refused the command: {}", what, why),
                        flags & 0x08 ? "the flash region is locked (NVM user page LOCK bits or BOOTPROT)" : std::string{});
        }
    }

    Monitor& monitor_;
    FlashGeometry geometry_;
    bool manual_write_ = false;
};

}  // namespace

std::unique_ptr<FlashController> make_nvmctrl_d51(Monitor& monitor, const FlashGeometry& geometry) {
    return std::make_unique<NvmctrlD51>(monitor, geometry);
}

}  // namespace mcuflash::protocol::samba
