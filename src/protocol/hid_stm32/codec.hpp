#pragma once
// The STM32 HID bootloader (Serasidis/bootsector, USB 1209:beba; Klipper's lib/hidflash is its
// host tool), as bytes (no I/O). Facts: protocols.md section 6 and the bootloader's F1/F4 sources.
//
// The host sends 64-byte output reports (no report id): a command is "BTLDCMD", the command byte and
// zeros (0x00: reset the page pointer to the application start; 0x01: reboot into the application);
// anything else is firmware. Firmware goes in 1024-byte pages of 16 reports, from the application
// start up, in order: the bootloader keeps only a page pointer and cannot read flash back. After each
// page it sends an 8-byte input report "BTLDCMD" + 0x02 (a forked F103 high-density build sends
// 0x03: it writes 2 KiB pages, so the host must send an even number of 1 KiB pages).
#include <cstdint>
#include <optional>
#include <span>
#include <vector>

namespace mcuflash::protocol::hid_stm32 {

constexpr uint16_t kVendor = 0x1209, kProduct = 0xBEBA;
// hid-flash refuses bootloaders older than 3.00 (bcdDevice): their acknowledgements differ.
constexpr uint16_t kFirstSupportedRelease = 0x0300;
constexpr uint32_t kReportSize = 64, kPageSize = 1024, kReportsPerPage = kPageSize / kReportSize;
constexpr uint32_t kAckSize = 8;

enum class Command : uint8_t { ResetPages = 0x00, Reboot = 0x01 };

// The 64-byte report carrying `command`.
std::vector<uint8_t> command_report(Command command);
// The command byte a report carries, when it is "BTLDCMD" + byte + zeros to 64 bytes.
std::optional<uint8_t> decode_command(std::span<const uint8_t> report);

// The 16 reports of one page: `page` (at most 1024 bytes) filled up to 1024 with `fill`.
std::vector<std::vector<uint8_t>> page_reports(std::span<const uint8_t> page, uint8_t fill = 0xFF);

struct PageAck {
    bool wants_double_pages = false;  // 0x03: the device writes 2 KiB pages (F103 high density fork)
};
// An input report that acknowledges a page (byte 7 is 0x02 or 0x03, as hid-flash tests it); nullopt
// for anything else, a short report included.
std::optional<PageAck> decode_ack(std::span<const uint8_t> input);

}  // namespace mcuflash::protocol::hid_stm32
