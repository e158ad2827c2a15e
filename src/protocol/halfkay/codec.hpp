#pragma once
// PJRC's HalfKay bootloader (Teensy, USB 16c0:0478): the block reports, as bytes (no I/O).
// Facts: protocols.md section 7 and teensy_loader_cli 2.2 (Debian; PaulStoffregen/teensy_loader_cli).
//
// Every write is one HID SET_REPORT control transfer (bmRequestType 0x21, bRequest 9, wValue 0x0200:
// an output report with no report id, wIndex 0): a block of flash with its address in front. The
// address format depends on the chip (the table below, teensy_loader_cli's MCU list):
//  - Address16: the small AVR Teensies (code below 64 KiB): addr & 0xFF, addr >> 8, then the block;
//  - Address8To23: the at90usb1286 (Teensy++ 2.0): addr >> 8, addr >> 16, then the 256-byte block;
//  - Address24Padded64: Teensy LC/3.x/4.x: addr & 0xFF, >> 8, >> 16, zeros to 64 bytes, then the block.
// The first block written after the bootloader starts erases the chip (its application area): it may
// take seconds. Later blocks that are blank (0xFF) need not be sent. A report whose address bytes are
// all 0xFF (the rest zero) makes the bootloader start the application. HalfKay cannot read flash back.
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <vector>

namespace mcuflash::protocol::halfkay {

constexpr uint16_t kVendor = 0x16C0, kProduct = 0x0478;

enum class BlockFormat { Address16, Address8To23, Address24Padded64 };

struct Teensy {
    std::string mcu;      // teensy_loader_cli's --mcu name (= data/chips.toml's name for the AVR ones)
    std::string board;    // "Teensy++ 2.0"
    uint32_t code_size;   // bytes HalfKay lets the application have (from address 0)
    uint32_t block_size;  // bytes of flash per report
    BlockFormat format;
    uint32_t header_size() const { return format == BlockFormat::Address24Padded64 ? 64 : 2; }
    uint32_t report_size() const { return header_size() + block_size; }
};

// Every Teensy teensy_loader_cli knows (its MCU table), AVR and ARM.
const std::vector<Teensy>& teensies();
// By --mcu name or board name, in any case; nullptr when unknown.
const Teensy* find_teensy(const std::string& name);

// The report that writes `block` (exactly block_size bytes) at `address` (a multiple of block_size).
std::vector<uint8_t> block_report(const Teensy& teensy, uint32_t address, std::span<const uint8_t> block);
// The report that starts the application (report_size bytes).
std::vector<uint8_t> boot_report(const Teensy& teensy);

struct Report {
    bool boot = false;      // the address bytes are all 0xFF
    uint32_t address = 0;   // where the block goes (not boot)
    std::span<const uint8_t> block;
};
// What a report asks for; nullopt when it is not report_size bytes long.
std::optional<Report> decode_report(const Teensy& teensy, std::span<const uint8_t> report);

// From a HID report descriptor: the Report Count in force at its first Output item (the bytes of
// the output report, with 8-bit fields); nullopt when the descriptor has none or uses other sizes.
std::optional<uint32_t> output_report_bytes(std::span<const uint8_t> descriptor);

}  // namespace mcuflash::protocol::halfkay
