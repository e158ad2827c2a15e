// SAM3X / SAM4 Enhanced Embedded Flash Controller (datasheets "EEFC"; BOSSA EefcFlash). Pages are
// written by loading the controller's page latch (writes to the page's flash addresses, done by the
// word-copy applet) and then "erase and write page" (EWP): no separate erase. A chip with two planes
// (SAM3X8: two 256 KiB halves) has a controller per plane, 0x200 apart, and numbers pages per plane.
// GPNVM bit 1 selects booting from flash instead of the ROM monitor; bit 0 is the security bit,
// which this driver never sets (it locks out every debug and programming access until a full erase).
#include <fmt/format.h>

#include "core/error.hpp"
#include "core/hexdump.hpp"
#include "protocol/samba/flash_controller.hpp"

namespace mcuflash::protocol::samba {

using core::Error;
using core::ErrorKind;
using core::hex_address;

namespace {

constexpr uint32_t kEefc0 = 0x400E0A00;
constexpr uint32_t kPlaneStride = 0x200;
constexpr uint32_t kFmr = 0x0, kFcr = 0x4, kFsr = 0x8, kFrr = 0xC;
constexpr uint32_t kKey = 0x5Au << 24;
constexpr uint8_t kCmdEraseWritePage = 0x03;  // EWP
constexpr uint8_t kCmdSetGpnvm = 0x0B;        // SGPB
constexpr uint8_t kCmdGetGpnvm = 0x0D;        // GGPB
constexpr uint32_t kFsrReady = 1u << 0;
constexpr uint32_t kFsrCommandError = 1u << 1;
constexpr uint32_t kFsrLockError = 1u << 2;
constexpr uint32_t kBootFromFlashBit = 1;
// Flash wait states BOSSA sets first (SAM3 errata: FWS must be 6 for programming).
constexpr uint32_t kFmrWaitStates = 6u << 8;
constexpr uint32_t kResetKeyProcessorAndPeripherals = 0xA500000D;
constexpr int kReadyPolls = 5000;

class Eefc : public FlashController {
public:
    Eefc(Monitor& monitor, const FlashGeometry& geometry, std::string family, uint32_t reset_controller,
         bool rom_reads_flash_as_zero)
        : monitor_(monitor),
          geometry_(geometry),
          family_(std::move(family)),
          reset_controller_(reset_controller),
          rom_reads_zero_(rom_reads_flash_as_zero) {}

    std::string name() const override { return family_ + " EEFC"; }
    uint32_t erase_unit() const override { return 0; }

    void erase(uint32_t address, uint32_t) override {
        throw Error(ErrorKind::Usage,
                    fmt::format("the {} erases each page as it writes it (EWP); no separate erase of {}", name(),
                                hex_address(address)));
    }

    void program_pages(uint32_t flash, uint32_t sram, uint32_t length, WordCopyApplet& applet) override {
        set_wait_states();
        for (uint32_t offset = 0; offset < length; offset += geometry_.page_size) {
            const uint32_t at = flash + offset;
            const std::string what = fmt::format("writing the page at {}", hex_address(at));
            const uint32_t page = (at - geometry_.flash_base) / geometry_.page_size;
            const uint32_t per_plane = geometry_.flash_size / geometry_.page_size / geometry_.planes;
            const uint32_t plane = page / per_plane;
            wait_ready(what);
            applet.copy(at, sram + offset, geometry_.page_size / 4);
            command(plane, kCmdEraseWritePage, page % per_plane);
            wait_ready(what);
        }
    }

    bool monitor_reads_flash() const override { return !rom_reads_zero_; }

    bool set_boot_from_flash() override {
        if (gpnvm() & (1u << kBootFromFlashBit)) return false;
        command(0, kCmdSetGpnvm, kBootFromFlashBit);
        wait_ready("setting GPNVM bit 1 (boot from flash)");
        if (!(gpnvm() & (1u << kBootFromFlashBit)))
            throw Error(ErrorKind::Protocol, "GPNVM bit 1 (boot from flash) is still clear after SGPB",
                        "the chip keeps starting the ROM monitor; try again, or set it with bossac -b");
        return true;
    }

    void reset() override { monitor_.write_word(reset_controller_, kResetKeyProcessorAndPeripherals); }

    std::vector<std::pair<std::string, std::string>> details() override {
        uint32_t bits = gpnvm();
        return {{"GPNVM", fmt::format("0x{:X} (security {}, boot from {})", bits, bits & 1 ? "SET" : "clear",
                                      bits & 2 ? "flash" : "ROM")}};
    }

private:
    uint32_t reg(uint32_t plane, uint32_t offset) const { return kEefc0 + plane * kPlaneStride + offset; }

    void set_wait_states() {
        if (wait_states_set_) return;
        for (uint32_t plane = 0; plane < geometry_.planes; ++plane) monitor_.write_word(reg(plane, kFmr), kFmrWaitStates);
        wait_states_set_ = true;
    }

    uint32_t gpnvm() {
        wait_ready("reading the GPNVM bits");
        command(0, kCmdGetGpnvm, 0);
        wait_ready("reading the GPNVM bits");
        return monitor_.read_word(reg(0, kFrr));
    }

    void command(uint32_t plane, uint8_t code, uint32_t argument) {
        monitor_.write_word(reg(plane, kFcr), kKey | (argument & 0xFFFF) << 8 | code);
    }

    // Every plane ready; FSR's error bits (cleared by reading) name a refused command.
    void wait_ready(const std::string& what) {
        for (uint32_t plane = 0; plane < geometry_.planes; ++plane) {
            for (int poll = 0;; ++poll) {
                if (poll >= kReadyPolls)
                    throw Error(ErrorKind::Timeout, fmt::format("{}: EEFC{} stays busy (FSR.FRDY never set)", what, plane));
                uint32_t fsr = monitor_.read_word(reg(plane, kFsr));
                if (fsr & kFsrCommandError)
                    throw Error(ErrorKind::Protocol, fmt::format("{}: EEFC{} refused the command (FSR.FCMDE)", what, plane));
                if (fsr & kFsrLockError)
                    throw Error(ErrorKind::Protocol,
                                fmt::format("{}: the page is in a locked region (EEFC{} FSR.FLOCKE)", what, plane),
                                "clear the lock bits first (bossac --unlock), or erase the chip (Arduino Due: "
                                "press ERASE)");
                if (fsr & kFsrReady) break;
            }
        }
    }

    Monitor& monitor_;
    FlashGeometry geometry_;
    std::string family_;
    uint32_t reset_controller_;
    bool rom_reads_zero_;
    bool wait_states_set_ = false;
};

}  // namespace

std::unique_ptr<FlashController> make_eefc(Monitor& monitor, const FlashGeometry& geometry, std::string family,
                                           uint32_t reset_controller, bool rom_reads_flash_as_zero) {
    return std::make_unique<Eefc>(monitor, geometry, std::move(family), reset_controller, rom_reads_flash_as_zero);
}

}  // namespace mcuflash::protocol::samba
