#pragma once
// ST's USART system-memory bootloader (application note AN3155) as the ROM runs it with BOOT0 held
// high: every reset starts it, waiting for the 0x7F the host sends to let it measure the baud rate.
// After that it takes commands (`cmd, cmd^0xFF`), each step answered by ACK or NACK.
//
// What is modelled: Get, Get Version, Get ID, Read Memory (flash, the flash-size register, an SRAM
// window), Write Memory (into flash with AND semantics, or SRAM), Erase 0x43 (F1 ROMs v2.2) or
// Extended Erase 0x44 (F0/F4 ROMs v3.1), Go (the device leaves the bootloader), Write Protect and
// Write Unprotect (per erase unit), Readout Protect and Readout Unprotect (which mass-erases); the
// last four reset the device, which then needs 0x7F again. Erase and program answers come after the
// chip's busy time. Readout protection and write protection live in the option bytes: they survive
// resets but not the simulator.
#include <cstdint>
#include <deque>
#include <optional>
#include <set>
#include <span>
#include <string>
#include <vector>

#include "sim/device.hpp"
#include "sim/flash_memory.hpp"
#include "targets/knowledge.hpp"

namespace mcuflash::sim::stm32uart {

// AN3155 bytes, written here from the protocol description rather than shared with the client in
// protocol/stm32uart, so that a mistake there cannot hide behind the same mistake here.
namespace bytes {
constexpr uint8_t kSync = 0x7F;  // autobaud: the ROM measures the rate on this byte
constexpr uint8_t kAck = 0x79;
constexpr uint8_t kNack = 0x1F;

constexpr uint8_t kGet = 0x00;
constexpr uint8_t kGetVersion = 0x01;
constexpr uint8_t kGetId = 0x02;
constexpr uint8_t kReadMemory = 0x11;
constexpr uint8_t kGo = 0x21;
constexpr uint8_t kWriteMemory = 0x31;
constexpr uint8_t kErase = 0x43;
constexpr uint8_t kExtendedErase = 0x44;
constexpr uint8_t kWriteProtect = 0x63;
constexpr uint8_t kWriteUnprotect = 0x73;
constexpr uint8_t kReadoutProtect = 0x82;
constexpr uint8_t kReadoutUnprotect = 0x92;

constexpr uint8_t kGlobalErase = 0xFF;             // Erase: N = 0xFF, then checksum 0x00
constexpr uint16_t kExtendedMassErase = 0xFFFF;    // Extended Erase: FF FF, then checksum 0x00
constexpr uint16_t kExtendedSpecialFirst = 0xFFF0;  // 0xFFF0..0xFFFF are special codes, not counts
}  // namespace bytes

// Where the ROM keeps its own variables does not matter to a host; the window is small enough for
// every part in data/chips.toml (the smallest, the F042, has 6 KiB).
constexpr uint32_t kSramBase = 0x20000000;
constexpr uint32_t kSramSize = 4096;
constexpr size_t kMaxBlock = 256;

struct Stm32RomStats {
    uint64_t commands = 0;     // command bytes with a correct complement
    uint64_t nacks = 0;
    uint64_t overruns = 0;     // bytes lost because they arrived while the ROM was busy and the USART was full
    uint64_t self_resets = 0;  // after Write Unprotect, Readout Protect/Unprotect, Write Protect
};

class Stm32RomDevice : public Device {
public:
    Stm32RomDevice(const targets::Chip& chip, const targets::Bootloader& bootloader, const DeviceOptions& options);

    void receive(uint8_t byte, Clock::time_point now) override;
    void tick(Clock::time_point now) override;
    std::optional<Clock::time_point> next_deadline() const override { return busy_until_; }
    void reset(ResetCause cause, Clock::time_point now) override;
    bool in_bootloader() const override { return mode_ != Mode::Application; }
    std::string describe() const override;
    link::SerialSettings line_settings() const override { return {baud_, link::Parity::Even}; }
    FlashMemory& flash() override { return flash_; }

    const targets::Chip& chip() const { return chip_; }
    const Stm32RomStats& stats() const { return stats_; }
    uint8_t version() const { return version_; }
    const std::vector<uint8_t>& command_list() const { return commands_; }
    bool uses_extended_erase() const { return extended_erase_; }
    bool synchronised() const { return mode_ == Mode::Commands; }
    bool readout_protected() const { return readout_protected_; }
    const std::set<size_t>& write_protected_units() const { return write_protected_; }
    // Where the last Go jumped to (nullopt: no Go since the simulator started).
    std::optional<uint32_t> jumped_to() const { return jumped_to_; }
    std::span<const uint8_t> sram() const { return sram_; }

private:
    enum class Mode { AwaitingSync, Commands, Application };
    // What the bytes being collected belong to.
    enum class Stage {
        Command,            // a command byte and its complement
        ReadAddress,        // 4 address bytes + XOR
        ReadCount,          // N-1 and its complement
        GoAddress,
        WriteAddress,
        WriteData,          // N-1, N data bytes, XOR
        ErasePages,         // FF 00, or N-1, N page bytes, XOR
        ExtendedErasePages, // FF FF 00 (and other specials), or N-1 (2 bytes), N 2-byte numbers, XOR
        WriteProtectUnits,  // N-1, N unit bytes, XOR
    };
    enum class Then { Nothing, SelfReset };

    void consume(uint8_t byte, Clock::time_point now);
    size_t bytes_needed() const;  // the size of the current stage's frame, given what has arrived
    void handle_frame(std::span<const uint8_t> frame, Clock::time_point now);
    void handle_command(uint8_t code, Clock::time_point now);
    void handle_read(uint8_t count_minus_one, Clock::time_point now);
    void handle_go(uint32_t address, Clock::time_point now);
    void handle_write(std::span<const uint8_t> frame, Clock::time_point now);
    void handle_erase(std::span<const uint8_t> frame, Clock::time_point now);
    void handle_extended_erase(std::span<const uint8_t> frame, Clock::time_point now);
    void handle_write_protect(std::span<const uint8_t> frame, Clock::time_point now);

    void ack(Clock::time_point now) { send(bytes::kAck, now); }
    void nack(Clock::time_point now, const std::string& why);
    // The ROM is busy for `busy` (erasing, programming), then sends `answer`, then maybe resets.
    void answer_after(Clock::duration busy, std::vector<uint8_t> answer, Clock::time_point now, Then then = Then::Nothing);
    void finish_busy(Clock::time_point now);
    void self_reset(Clock::time_point now, const std::string& why);
    void await_command();

    // Erases the listed erase units (all checked first); NACK for a bad number or a protected unit.
    void erase_units(const std::vector<size_t>& units, Clock::time_point now);
    void mass_erase(Clock::time_point now);

    bool readable(uint32_t address, uint32_t length) const;
    bool writable(uint32_t address, uint32_t length) const;
    bool in_flash(uint32_t address, uint32_t length) const;
    bool in_sram(uint32_t address, uint32_t length) const;
    bool in_flash_size_register(uint32_t address, uint32_t length) const;
    uint8_t byte_at(uint32_t address) const;
    std::optional<size_t> unit_index_at(uint32_t address) const;

    const targets::Chip chip_;
    const std::string bootloader_name_;
    uint32_t baud_;
    std::vector<targets::EraseUnitRange> units_;
    uint32_t write_unit_;
    FlashMemory flash_;
    std::vector<uint8_t> sram_;
    uint8_t version_;
    bool extended_erase_;
    bool timing_;
    std::vector<uint8_t> commands_;
    Stm32RomStats stats_;

    Mode mode_ = Mode::AwaitingSync;
    Stage stage_ = Stage::Command;
    std::vector<uint8_t> frame_;
    uint32_t address_ = 0;  // from the address step of Read/Write Memory

    std::optional<Clock::time_point> busy_until_;
    std::vector<uint8_t> answer_after_busy_;
    Then then_ = Then::Nothing;
    std::deque<uint8_t> usart_;  // what the USART holds while the ROM is busy

    // Option bytes: kept across resets.
    bool readout_protected_ = false;
    std::set<size_t> write_protected_;

    std::optional<uint32_t> jumped_to_;
};

}  // namespace mcuflash::sim::stm32uart
