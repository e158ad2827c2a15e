#pragma once
// An RP2040 in BOOTSEL mode, as its boot ROM's PICOBOOT interface (USB 2e8a:0003), on the shared
// flash model: a 2 MiB W25Q16 at 0x10000000 (XIP), 4 KiB erase sectors, 256-byte program pages.
//
// Only the PICOBOOT interface is exposed. The real ROM normally shows a mass-storage interface too
// (the RPI-RP2 UF2 drive) and PICOBOOT as interface 1; started with the drive disabled
// (reset_usb_boot's interface mask, bit 0) it shows PICOBOOT alone as interface 0, which is what this
// simulator is. Serving a mass-storage interface it does not implement would make a guest kernel's
// usb-storage driver bind to it and fail.
//
// What it does (RP2040 datasheet 2.8.5, pico-sdk's boot/picoboot.h; Klipper's rp2040_flash and
// picotool as the peers), written from those descriptions, not from the client's codec:
// - a vendor interface with bulk OUT 0x03 and bulk IN 0x84 (the ROM's numbers), 64-byte packets;
// - a command is one 32-byte OUT transfer: a wrong size or magic, an unknown command id, a bCmdSize
//   or dTransferLength the command does not take, an unaligned or out-of-range address halts both
//   endpoints with the status code set (GET_COMMAND_STATUS tells it); INTERFACE_RESET clears all;
// - then the data phase (WRITE: OUT, READ: IN), then the status phase the other way (a zero-length
//   IN for commands without IN data; any short OUT packet, as rp2040_flash sends one byte, else);
// - FLASH_ERASE needs 4 KiB-aligned address and size, WRITE to flash 256-byte pages; writing
//   without erasing ANDs bits as NOR flash does (FlashMemory); times: 45 ms a sector, 0.8 ms a page
//   (W25Q16 typical), during which the status phase NAKs; none with timing off;
// - READ and WRITE also reach the 264 KiB of SRAM at 0x20000000; EXEC (running code the host sent)
//   is not simulated: it is refused with "unknown error"; VECTORIZE_FLASH, EXCLUSIVE_ACCESS,
//   EXIT_XIP and ENTER_CMD_XIP are accepted (their state is kept, not otherwise modelled);
// - REBOOT: the status phase completes, then after dDelayMS the chip resets and leaves the bus.
// - --chip rp2350: the RP2350's ROM (2e8a:000f), the same commands, but it reboots by REBOOT2 (0x0A:
//   dFlags, dDelayMS, two parameters; only the normal reboot type is simulated) and refuses REBOOT,
//   as Klipper's rp2040_flash and picotool use REBOOT2 there. Its other new commands (GET_INFO, OTP)
//   are not simulated; its 520 KiB of SRAM are not either (the RP2040's 264 KiB stand for it).
#include <optional>

#include "sim/device.hpp"
#include "sim/flash_memory.hpp"
#include "sim/usb/usb_device_model.hpp"
#include "targets/knowledge.hpp"

namespace mcuflash::sim::picoboot {

class PicobootDevice : public usb::UsbDeviceModel {
public:
    static constexpr uint8_t kOutEndpoint = 0x03, kInEndpoint = 0x84;

    PicobootDevice(const targets::Chip& chip, const DeviceOptions& options);

    std::vector<uint8_t> device_descriptor() const override;
    std::vector<uint8_t> configuration_descriptor() const override;
    std::string string_descriptor(uint8_t index) const override;
    usb::ControlResult class_request(const link::UsbSetup& setup, std::span<const uint8_t> data_out,
                                     Clock::time_point now) override;
    bool has_endpoint(uint8_t address) const override { return address == kOutEndpoint || address == kInEndpoint; }
    bool bulk_out(uint8_t address, std::span<const uint8_t> data, Clock::time_point now) override;
    usb::EndpointIn bulk_in(uint8_t address, size_t max_length, Clock::time_point now) override;
    void clear_halt(uint8_t address, Clock::time_point now) override;
    void bus_reset(Clock::time_point now) override;
    bool attached() const override { return attached_; }
    void tick(Clock::time_point now) override;
    std::string describe() const override;
    FlashMemory& flash() override { return flash_; }

    uint32_t last_status() const { return status_code_; }
    bool exclusive() const { return exclusive_ != 0; }
    bool xip_exited() const { return xip_exited_; }
    bool rebooted() const { return reboot_at_.has_value() || !attached_; }
    uint64_t commands() const { return commands_; }

private:
    enum class Phase { Command, DataOut, DataIn, StatusIn, StatusOut };
    void start(std::span<const uint8_t> command, Clock::time_point now);
    void refuse(uint32_t status, const std::string& why);  // halts both endpoints
    void finish_write(Clock::time_point now);
    bool in_flash(uint32_t address, uint64_t length) const { return flash_.contains(address, length); }
    bool in_sram(uint32_t address, uint64_t length) const;

    bool rp2350() const { return chip_.family == "rp2350"; }  // its ROM: 2e8a:000f, REBOOT2 only
    const targets::Chip chip_;
    FlashMemory flash_;
    std::vector<uint8_t> sram_;
    bool timing_;
    bool attached_ = true;
    Phase phase_ = Phase::Command;
    bool out_halted_ = false, in_halted_ = false;
    // The current command (GET_COMMAND_STATUS reports it).
    uint32_t token_ = 0, status_code_ = 0;
    uint8_t command_id_ = 0;
    uint32_t address_ = 0;
    std::vector<uint8_t> data_;  // WRITE: what came so far; READ: what is still to send
    uint32_t expected_ = 0;      // WRITE: bytes the data phase carries
    uint8_t exclusive_ = 0;
    bool xip_exited_ = false;
    uint64_t commands_ = 0;
    Clock::time_point busy_until_{};
    std::optional<Clock::time_point> reboot_at_;
};

// Throws core::Error(Usage) for a chip other than the rp2040 and the rp2350.
std::unique_ptr<usb::UsbDeviceModel> make_picoboot_device(const std::string& chip, const DeviceOptions& options);

}  // namespace mcuflash::sim::picoboot
