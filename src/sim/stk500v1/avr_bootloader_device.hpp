#pragma once
// What every STK500v1 bootloader on a classic AVR shares, whichever bootloader it is: flash whose boot
// section is locked against self-programming (the top `boot size` bytes, protected in the flash
// model), EEPROM, a UART that buffers only a few bytes while the CPU is busy, a watchdog, and busy
// periods while a page is erased and written or a long answer is being transmitted.
// Personalities (optiboot, ATmegaBOOT) supply the command parser and the quirks.
#include <cstdint>
#include <cstddef>
#include <deque>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "sim/device.hpp"
#include "sim/flash_memory.hpp"
#include "sim/wire_model.hpp"
#include "targets/knowledge.hpp"

namespace mcuflash::sim::stk500v1 {

// STK500v1 bytes, written here from the protocol description rather than shared with the client in
// protocol/stk500v1, so that a mistake there cannot hide behind the same mistake here.
namespace bytes {
constexpr uint8_t kInSync = 0x14;
constexpr uint8_t kOk = 0x10;
constexpr uint8_t kEop = 0x20;  // Sync_CRC_EOP: ends every host command
constexpr uint8_t kGetSync = 0x30;
constexpr uint8_t kGetParameter = 0x41;
constexpr uint8_t kSetDevice = 0x42;
constexpr uint8_t kSetDeviceExt = 0x45;
constexpr uint8_t kEnterProgmode = 0x50;
constexpr uint8_t kLeaveProgmode = 0x51;
constexpr uint8_t kChipErase = 0x52;
constexpr uint8_t kLoadAddress = 0x55;
constexpr uint8_t kUniversal = 0x56;
constexpr uint8_t kProgPage = 0x64;
constexpr uint8_t kReadPage = 0x74;
constexpr uint8_t kReadSign = 0x75;
constexpr uint8_t kParamHwVersion = 0x80;
constexpr uint8_t kParamSwMajor = 0x81;
constexpr uint8_t kParamSwMinor = 0x82;
constexpr uint8_t kMemEeprom = 'E';
constexpr uint8_t kOpLoadExtendedAddress = 0x4D;  // AVR ISP instruction, sent through UNIVERSAL
}  // namespace bytes

struct AvrTiming {
    // tWD_FLASH in the ATmega datasheets: page erase and page write each take up to 4.5 ms.
    static constexpr auto kPageErase = std::chrono::microseconds(4500);
    static constexpr auto kPageWrite = std::chrono::microseconds(4500);
    // EEPROM write from the CPU (erase + write of one byte): 3.3 ms.
    static constexpr auto kEepromByte = std::chrono::microseconds(3300);
};

struct AvrStats {
    uint64_t commands = 0;     // complete commands handled
    uint64_t bad_eop = 0;      // commands whose last byte was not 0x20
    uint64_t overruns = 0;     // bytes lost because they arrived while the CPU was busy and the UART was full
    uint64_t watchdog_resets = 0;
};

class AvrBootloaderDevice : public Device {
public:
    AvrBootloaderDevice(const targets::Chip& chip, const targets::Bootloader& bootloader, const DeviceOptions& options);

    void receive(uint8_t byte, Clock::time_point now) override;
    void tick(Clock::time_point now) override;
    std::optional<Clock::time_point> next_deadline() const override;
    void reset(ResetCause cause, Clock::time_point now) override;
    bool in_bootloader() const override { return running_bootloader_; }
    std::string describe() const override;
    link::SerialSettings line_settings() const override { return {baud_, link::Parity::None}; }
    FlashMemory& flash() override { return flash_; }

    FlashMemory& eeprom() { return eeprom_; }
    const targets::Chip& chip() const { return chip_; }
    const ProtectedRange& boot_section() const { return flash_.protected_ranges().front(); }
    const AvrStats& stats() const { return stats_; }
    // "8.0": the version the bootloader reports through GET_PARAMETER.
    virtual std::string version() const = 0;

protected:
    // The number of bytes (0x20 included) of the command that starts with `frame`, or 0 while its
    // first bytes do not tell yet, or kDiscardFrame when the bytes so far cannot start a command (the
    // parser drops them and waits for a new start).
    static constexpr size_t kDiscardFrame = SIZE_MAX;
    virtual size_t command_length(std::span<const uint8_t> frame) const = 0;
    // Sees every byte the bootloader reads before it goes to the command parser; false swallows it
    // (a personality with a second mode of its own, such as stk500boot_v2's monitor).
    virtual bool take_byte(uint8_t byte, Clock::time_point now) {
        (void)byte;
        (void)now;
        return true;
    }
    virtual void execute(std::span<const uint8_t> frame, Clock::time_point now) = 0;
    // Bootloader state after a reset that runs it (address registers, error counters).
    virtual void start(Clock::time_point now) = 0;
    virtual bool runs_on_power_up() const = 0;

    // Sends bytes; while the UART is still transmitting all but the last two, the CPU is stuck in
    // its send loop and reads nothing (the UART keeps a few incoming bytes, then overruns).
    void transmit(std::span<const uint8_t> data, Clock::time_point now);
    void transmit(std::initializer_list<uint8_t> data, Clock::time_point now) {
        transmit(std::span<const uint8_t>(data.begin(), data.size()), now);
    }
    // The CPU is busy (erasing, programming) for `busy`, then sends `then_send`.
    void busy_for(Clock::duration busy, std::vector<uint8_t> then_send, Clock::time_point now);
    // Watchdog (or, for bootloaders without one, the receive timeout): fires `period` after the last
    // byte read, or after `period` flat when `kicked_by_bytes` is false.
    void set_watchdog(Clock::duration period, Clock::time_point now, bool kicked_by_bytes = true);
    // What happens when the watchdog (or receive timeout) fires: by default the application starts.
    virtual void watchdog_fired(Clock::time_point now) { run_application(now, "watchdog reset"); }
    void count_bad_eop() { ++stats_.bad_eop; }
    void run_application(Clock::time_point now, const std::string& why);

    // Erases and programs the page at `page_address` with `image` (one page). Writes into the locked
    // boot section are ignored by the chip (and counted by the flash model). Returns the busy time.
    Clock::duration write_flash_page(uint32_t page_address, std::span<const uint8_t> image);
    Clock::duration write_eeprom(uint32_t address, std::span<const uint8_t> data);
    // Reads wrap around the memory's size, as the address registers do.
    std::vector<uint8_t> read_flash(uint32_t address, uint32_t length) const;
    std::vector<uint8_t> read_eeprom(uint32_t address, uint32_t length) const;

    uint32_t page_size() const { return chip_.page_size; }
    const std::vector<uint8_t>& signature() const { return chip_.signature; }
    std::string trace_prefix() const;

    const targets::Chip chip_;
    const std::string bootloader_name_;

private:
    void consume(uint8_t byte, Clock::time_point now);
    void end_busy(Clock::time_point now);

    static constexpr size_t kUartReceiveBuffer = 3;  // 2-byte FIFO + the shift register

    uint32_t baud_;
    WireModel uart_;
    FlashMemory flash_;
    FlashMemory eeprom_;
    AvrStats stats_;

    bool running_bootloader_ = false;
    std::vector<uint8_t> frame_;
    std::deque<uint8_t> uart_fifo_;
    std::optional<Clock::time_point> busy_until_;
    std::vector<uint8_t> after_busy_;
    Clock::time_point transmitter_free_at_{};
    std::optional<Clock::time_point> watchdog_fires_at_;
    Clock::duration watchdog_period_{};
    bool watchdog_kicked_by_bytes_ = true;
};

}  // namespace mcuflash::sim::stk500v1
