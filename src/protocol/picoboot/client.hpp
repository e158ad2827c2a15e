#pragma once
// The RP2040 and RP2350 boot ROMs' PICOBOOT interface (USB 2e8a:0003 and 2e8a:000f, BOOTSEL mode),
// natively: what Klipper's rp2040_flash and picotool do, through libusb (codec.hpp has the wire format).
//
// connect(): checks the VID:PID, finds the vendor interface and its two bulk endpoints in the
// configuration descriptor, claims it, clears both halts and resets the interface (INTERFACE_RESET),
// takes EXCLUSIVE_ACCESS (the UF2 drive, where the ROM shows one, is locked out meanwhile) and leaves
// XIP (EXIT_XIP) so the flash takes commands. The chip is the rp2040 or the rp2350, told by the
// product id (the ROM does not say more).
//
// write(): the plan hands 256-byte pages in address order. Flash erases in 4 KiB sectors, so the
// first page into a sector reads that sector, erases it (unless it is blank already), and every page
// of it the plan does not write gets its old content back: only the sectors the image touches are
// erased, and bytes outside the image in those sectors are kept (page by page; the plan fills the
// gaps of a partly used page with 0xFF, as for every protocol). read() is READ in 4 KiB pieces.
// start_application(): REBOOT with pc = 0, sp = 0 (the ROM's normal boot from flash) after 500 ms;
// on the RP2350, REBOOT2 with the normal reboot type, as rp2040_flash does.
//
// A command the ROM refuses halts its endpoints: the error gives GET_COMMAND_STATUS's code in words,
// and the interface is reset (INTERFACE_RESET, clear halts) so the next command can go.
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "link/usb_device.hpp"
#include "protocol/bootloader.hpp"
#include "protocol/picoboot/codec.hpp"

namespace mcuflash::protocol::picoboot {

constexpr unsigned kCommandTimeoutMs = 3000;
constexpr unsigned kTransferTimeoutMs = 10000;
constexpr unsigned kEraseMsPerSector = 400;  // the W25Q16's worst sector erase (typical 45 ms)
constexpr uint32_t kReadChunk = 4096;
constexpr uint32_t kRebootDelayMs = 500;

class Client : public Bootloader {
public:
    Client(link::UsbDevice& usb, ConnectOptions options);
    ~Client() override;

    DeviceInfo connect() override;
    Capabilities capabilities() const override;
    // The plan's next writes: sectors they cover whole are erased without being read first.
    void will_write(std::span<const EraseUnit> ranges) override { coming_.assign(ranges.begin(), ranges.end()); }
    void write(uint32_t address, std::span<const uint8_t> data) override;
    std::vector<uint8_t> read(uint32_t address, uint32_t length) override;
    void start_application() override;

    uint64_t sectors_erased() const { return sectors_erased_; }
    uint64_t pages_restored() const { return pages_restored_; }

private:
    // One command with its data phase and status phase; a refusal becomes an Error with the ROM's
    // status in words (the interface is reset afterwards).
    std::vector<uint8_t> run(const std::vector<uint8_t>& command, std::span<const uint8_t> data_out,
                             unsigned timeout_ms, const std::string& what, std::optional<uint32_t> address);
    void reset_interface();
    std::optional<CommandStatus> command_status();
    void erase_sector(uint32_t address);
    void program_page(uint32_t address, std::span<const uint8_t> page, const char* what);
    // The sector being written: its content before the erase, and the next page the plan may write.
    struct OpenSector {
        uint32_t address = 0;
        std::vector<uint8_t> before;
        uint32_t next_page = 0;
        // Pages taken but not sent yet: one WRITE carries a run of them (fewer USB round trips).
        uint32_t pending_at = 0;
        std::vector<uint8_t> pending;
    };
    void flush_pending();
    void open_sector(uint32_t address);
    void restore_pages(uint32_t from, uint32_t to);  // [from, to) of the open sector: their old content
    void close_sector();

    link::UsbDevice& usb_;
    ConnectOptions options_;
    Interface interface_;
    bool connected_ = false;
    bool rp2350_ = false;  // the RP2350's ROM: REBOOT2 instead of REBOOT
    uint32_t next_token_ = 1;
    uint32_t flash_base_ = kFlashBase, flash_end_ = kFlashBase;
    std::optional<OpenSector> open_;
    std::vector<EraseUnit> coming_;  // what the plan said it will write
    uint64_t sectors_erased_ = 0, pages_restored_ = 0;
};

ProtocolInfo protocol_info();

}  // namespace mcuflash::protocol::picoboot
