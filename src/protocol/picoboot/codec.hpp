#pragma once
// PICOBOOT, the RP2040 boot ROM's USB vendor interface (2e8a:0003 in BOOTSEL mode), as bytes (no I/O).
// Facts: RP2040 datasheet section 2.8.5 and pico-sdk's boot/picoboot.h (layouts and numbers only).
//
// A vendor-class interface (0xFF) with one bulk OUT and one bulk IN endpoint, found by direction and
// type (the datasheet says not to rely on their numbers). Every command is a 32-byte little-endian
// struct on bulk OUT:
//   dMagic 0x431fd10b, dToken, bCmdId (bit 7: the data phase is IN), bCmdSize (bytes of args used),
//   2 reserved, dTransferLength, 16 bytes of args;
// then dTransferLength bytes on bulk OUT or IN, then a zero-length status transfer the other way.
// An error halts (STALLs) both endpoints; GET_COMMAND_STATUS (control IN 0xC1/0x42, 16 bytes) says
// why, and INTERFACE_RESET (control OUT 0x41/0x41) clears the halts and the command state.
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <vector>

namespace mcuflash::protocol::picoboot {

constexpr uint16_t kVendor = 0x2E8A, kProduct = 0x0003;  // the RP2040 boot ROM
constexpr uint16_t kProductRp2350 = 0x000F;             // the RP2350 boot ROM
constexpr uint32_t kMagic = 0x431FD10B;
constexpr size_t kCommandSize = 32, kStatusSize = 16, kArgsSize = 16;

enum class Command : uint8_t {
    ExclusiveAccess = 0x01,
    Reboot = 0x02,
    FlashErase = 0x03,
    Read = 0x84,  // bit 7: data phase IN
    Write = 0x05,
    ExitXip = 0x06,
    EnterCmdXip = 0x07,
    Exec = 0x08,
    VectorizeFlash = 0x09,
    Reboot2 = 0x0A,  // the RP2350's (REBOOT is the RP2040's)
};
constexpr bool data_is_in(Command c) { return static_cast<uint8_t>(c) & 0x80; }
// "FLASH_ERASE", or "command 0x1A" for an id this table lacks.
std::string command_name(uint8_t id);

// Control requests to the PICOBOOT interface (wIndex: its number).
constexpr uint8_t kInterfaceResetRequestType = 0x41, kInterfaceReset = 0x41;
constexpr uint8_t kCommandStatusRequestType = 0xC1, kGetCommandStatus = 0x42;

// EXCLUSIVE_ACCESS's argument: EXCLUSIVE locks the UF2 drive out while we flash.
enum class Exclusive : uint8_t { NotExclusive = 0, Exclusive = 1, ExclusiveAndEject = 2 };

// The RP2040's memory as PICOBOOT sees it.
constexpr uint32_t kFlashBase = 0x10000000;  // XIP: the external QSPI flash
constexpr uint32_t kFlashWindow = 0x01000000;  // up to 16 MiB addressable
constexpr uint32_t kSectorSize = 4096;  // FLASH_ERASE's unit
constexpr uint32_t kPageSize = 256;     // WRITE's unit on flash
constexpr uint32_t kSramBase = 0x20000000, kSramEnd = 0x20042000;

// The status codes of GET_COMMAND_STATUS (picoboot.h's enum picoboot_status).
enum class Status : uint32_t {
    Ok = 0,
    UnknownCommand = 1,
    InvalidCommandLength = 2,
    InvalidTransferLength = 3,
    InvalidAddress = 4,
    BadAlignment = 5,
    InterleavedWrite = 6,
    Rebooting = 7,
    UnknownError = 8,
};
// "bad address alignment"; "status 12" for a code this table lacks (RP2350 codes).
std::string status_words(uint32_t code);

struct CommandStatus {
    uint32_t token = 0;
    uint32_t code = 0;
    uint8_t command = 0;
    bool in_progress = false;
};
// nullopt unless exactly 16 bytes.
std::optional<CommandStatus> decode_status(std::span<const uint8_t> bytes);

// One command: args are at most 16 bytes (bCmdSize = args.size()).
std::vector<uint8_t> encode_command(uint32_t token, Command command, std::span<const uint8_t> args,
                                    uint32_t transfer_length);
std::vector<uint8_t> exclusive_access(uint32_t token, Exclusive mode);
// pc = 0 (and sp = 0): a normal boot from flash, after delay_ms.
std::vector<uint8_t> reboot(uint32_t token, uint32_t pc, uint32_t sp, uint32_t delay_ms);
// REBOOT2 (RP2350): flags (0: a normal boot), the delay, and two parameters of the reboot type.
std::vector<uint8_t> reboot2(uint32_t token, uint32_t flags, uint32_t delay_ms, uint32_t param0 = 0, uint32_t param1 = 0);
std::vector<uint8_t> flash_erase(uint32_t token, uint32_t address, uint32_t length);
std::vector<uint8_t> read(uint32_t token, uint32_t address, uint32_t length);
std::vector<uint8_t> write(uint32_t token, uint32_t address, uint32_t length);
std::vector<uint8_t> exit_xip(uint32_t token);

// The PICOBOOT interface in a configuration descriptor: vendor class, a bulk OUT and a bulk IN.
struct Interface {
    uint8_t number = 0;
    uint8_t out_endpoint = 0;  // without 0x80
    uint8_t in_endpoint = 0;   // with 0x80
};
std::optional<Interface> find_interface(std::span<const uint8_t> configuration);

}  // namespace mcuflash::protocol::picoboot
