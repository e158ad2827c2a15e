#pragma once
// A device in DFU mode (USB DFU 1.1, and ST's DfuSe 1.1a extensions), on the shared flash model:
// the DFU state machine (dfuIDLE, DNLOAD-SYNC, DNBUSY, DNLOAD-IDLE, MANIFEST-SYNC, MANIFEST,
// MANIFEST-WAIT-RESET, UPLOAD-IDLE, dfuERROR) with status codes, bwPollTimeout from the flash's
// real busy times, and two ways of placing data:
// - DfuSe (ST's ROM bootloader, 0483:df11): DNLOAD block 0 carries commands (0x21 set address,
//   0x41 erase the page/sector holding an address or, alone, mass erase, 0x92 read unprotect);
//   block n >= 2 writes at address pointer + (n - 2) * wTransferSize; nothing is erased by a write.
//   The memory layout is in each alternate setting's name; a zero-length DNLOAD then GETSTATUS leaves
//   DFU: the device answers MANIFEST once, then drops off the bus and runs the application.
// - Plain DFU (the stm32duino/Maple bootloader, 1eaf:0003): blocks are written one after the other
//   from the alternate setting's base address, each page erased when the first block enters it.
//   After the final zero-length DNLOAD the device is not manifestation tolerant: it waits for a USB
//   reset (MANIFEST-WAIT-RESET). After a reset it stays in DFU for a short window, then starts the
//   application if there is one.
#include <optional>

#include "sim/device.hpp"
#include "sim/flash_memory.hpp"
#include "sim/usb/usb_device_model.hpp"
#include "targets/knowledge.hpp"

namespace mcuflash::sim::dfu {

struct AltSetting {
    std::string name;      // the interface string (DfuSe: the memory layout)
    uint32_t base = 0;     // where it reads and writes (plain DFU: block 0 goes here)
    bool flash = true;     // false: reads as 0xFF, refuses writes (option bytes, RAM alternatives)
};

struct DfuPersonality {
    std::string name;  // "st_rom_dfu", "stm32duino"
    uint16_t vendor = 0, product = 0, bcd_device = 0;
    std::string manufacturer, product_string, serial;
    bool dfuse = false;
    uint8_t attributes = 0;        // bmAttributes of the DFU functional descriptor
    uint16_t transfer_size = 2048;  // wTransferSize
    std::vector<AltSetting> alts;
    uint32_t protected_size = 0;   // bytes at the flash start the bootloader keeps (plain DFU)
    Clock::duration wait_window{};  // plain DFU: how long after a reset it stays in DFU with an application
    Clock::duration erase_unit{}, erase_per_kib{}, program_per_kib{};
    // Quirks of bootloaders that bend DFU 1.1 (the Smoothieboard's, from its dfu.c / sbl_iap.c):
    uint32_t write_buffer = 0;          // data is kept until this many bytes came, then written (a
                                        // final shorter block is never written); 0: each block at once
    bool erases_sector_at_start = false;  // a write starting exactly at a sector erases that sector
    bool answers_busy_first = true;     // the first GETSTATUS after a block says dfuDNBUSY
    uint32_t fixed_poll_ms = 0;         // bwPollTimeout it always reports (0: the real busy time)
    bool upload_fills_request = false;  // UPLOAD returns wLength bytes always: it never ends by itself
    bool manifest_from_any_state = false;  // a zero-length DNLOAD is taken in any state
    bool leaves_after_manifest = false;    // after answering the manifest GETSTATUS it drops off the bus
};

class DfuDevice : public usb::UsbDeviceModel {
public:
    // DFU states and status codes (DFU 1.1 section 6.1.2).
    enum State : uint8_t {
        kAppIdle = 0, kAppDetach = 1, kIdle = 2, kDnloadSync = 3, kDnBusy = 4, kDnloadIdle = 5, kManifestSync = 6,
        kManifest = 7, kManifestWaitReset = 8, kUploadIdle = 9, kError = 10
    };
    enum Status : uint8_t {
        kOk = 0x00, kErrTarget = 0x01, kErrFile = 0x02, kErrWrite = 0x03, kErrErase = 0x04, kErrCheckErased = 0x05,
        kErrProg = 0x06, kErrVerify = 0x07, kErrAddress = 0x08, kErrNotDone = 0x09, kErrFirmware = 0x0A,
        kErrVendor = 0x0B, kErrUsbr = 0x0C, kErrPor = 0x0D, kErrUnknown = 0x0E, kErrStalledPkt = 0x0F
    };

    DfuDevice(const targets::Chip& chip, DfuPersonality personality, const DeviceOptions& options);

    std::vector<uint8_t> device_descriptor() const override;
    std::vector<uint8_t> configuration_descriptor() const override;
    std::string string_descriptor(uint8_t index) const override;
    usb::ControlResult class_request(const link::UsbSetup& setup, std::span<const uint8_t> data_out,
                                     Clock::time_point now) override;
    void bus_reset(Clock::time_point now) override;
    bool attached() const override { return attached_; }
    void tick(Clock::time_point now) override;
    std::string describe() const override;
    FlashMemory& flash() override { return flash_; }

    uint8_t state() const { return state_; }
    // Behaviour switches for tests: start in dfuERROR (a previous session failed); leave by dropping
    // off the bus without answering the GETSTATUS (what many devices do).
    void start_in_error() { state_ = kError; status_ = kErrUnknown; }
    void set_leave_without_answer(bool on) { leave_without_answer_ = on; }

private:
    usb::ControlResult get_status(Clock::time_point now);
    usb::ControlResult download(uint16_t block, std::span<const uint8_t> data, Clock::time_point now);
    usb::ControlResult upload(uint16_t block, uint16_t length);
    // Runs the pending block (DNLOAD-SYNC -> DNBUSY): sets busy_until_ or an error status.
    void execute_pending(Clock::time_point now);
    void dfuse_command(Clock::time_point now);
    void write_block(uint32_t address, std::span<const uint8_t> data, Clock::time_point now);
    Clock::duration erase_unit_at(uint32_t address);
    bool in_flash(uint32_t address, uint64_t length) const;
    void fail(Status status);
    void detach(const std::string& why);

    const targets::Chip chip_;
    DfuPersonality p_;
    FlashMemory flash_;
    bool timing_;
    bool attached_ = true;
    uint8_t state_ = kIdle;
    uint8_t status_ = kOk;
    std::optional<Clock::time_point> busy_until_;
    std::optional<Clock::time_point> leave_at_;
    std::optional<Clock::time_point> window_ends_;
    std::vector<uint8_t> pending_;
    uint16_t pending_block_ = 0;
    uint32_t address_pointer_ = 0;  // DfuSe
    uint32_t plain_offset_ = 0;     // plain DFU: bytes written since the download began
    uint32_t upload_offset_ = 0;    // plain DFU uploads
    std::vector<bool> erased_this_session_;
    bool leave_without_answer_ = false;
    bool activity_ = false;  // a DFU request arrived since the reset (stops the wait window)
    std::vector<uint8_t> write_buffer_;    // write_buffer personalities: bytes not yet written
    uint32_t write_buffer_address_ = 0;
};

// The personalities, with each chip's real layout strings.
DfuPersonality st_rom_dfu(const targets::Chip& chip, const targets::Bootloader& bootloader);
DfuPersonality stm32duino(const targets::Chip& chip, const targets::Bootloader& bootloader);
DfuPersonality smoothie_dfu(const targets::Chip& chip, const targets::Bootloader& bootloader);

}  // namespace mcuflash::sim::dfu
