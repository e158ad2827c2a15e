#pragma once
// stk500boot_v2, the Arduino Mega 2560 bootloader (avrdude -c wiring), as Debian's
// arduino-core-avr builds it (stk500boot.c read for facts, not copied), on a classic AVR:
// - After a reset it waits about 1 s for a first byte, else starts the application. Once talking, a
//   silence of about 5 s starts the application too, unless the first flash word is erased.
// - Any sequence number is accepted (_FIX_ISSUE_505_) and echoed; a message with a bad checksum is
//   dropped without an answer; unknown commands answer STATUS_CMD_FAILED.
// - SIGN_ON "AVRISP_2"; GET_PARAMETER: hardware 0x0F, software 2.0x0A, anything else 0.
// - CHIP_ERASE_ISP erases nothing, answers FAILED, and sets its erase pointer back to 0.
// - PROGRAM_FLASH_ISP first erases the page at the erase pointer (and moves it one page on) while
//   the pointer is below APP_END = flash end - 2 * 8 KiB (0x3C000 on the atmega2560), then fills the
//   page buffer from the load address (its offset in the page; the rest of the buffer is 0xFF) and
//   writes the page holding the load address. So only writes contiguous from 0 leave correct data.
// - LOAD_ADDRESS takes a word address (all 32 bits, the extended-address flag is shifted away).
// - READ_FLASH_ISP / EEPROM read and PROGRAM_EEPROM_ISP as the code does; fuses and lock bits are
//   read from the chip (the board's fuses); PROGRAM_LOCK_ISP programs boot lock bits only.
// - SPI_MULTI answers the signature (0x30) and the low/high fuse (0x50/0x58), 0 for the rest.
// - LEAVE_PROGMODE_ISP answers, then starts the application about 100 ms later.
// - The monitor: three '!' in a row among the first bytes the bootloader reads after a reset (its
//   16-bit byte counter below 10, so again after each 65536 bytes) start "Arduino explorer", a
//   terminal monitor that ignores STK500v2 until the next reset. An image holding "!!!" at the
//   wrong place in the byte stream hangs an upload this way.
#include "sim/stk500v1/avr_bootloader_device.hpp"
#include "sim/stk500v2/messages.hpp"

namespace mcuflash::sim::stk500v2 {

class Stk500bootDevice : public stk500v1::AvrBootloaderDevice {
public:
    static constexpr uint8_t kHardwareVersion = 0x0F;
    static constexpr uint8_t kSwMajor = 2;
    static constexpr uint8_t kSwMinor = 0x0A;
    static constexpr auto kFirstByteTimeout = std::chrono::seconds(1);
    static constexpr auto kSilenceTimeout = std::chrono::seconds(5);
    static constexpr auto kLeaveDelay = std::chrono::milliseconds(100);
    // The fuses and lock bits the Arduino Mega 2560 leaves the factory with (boards.txt).
    static constexpr uint8_t kLowFuse = 0xFF, kHighFuse = 0xD8, kExtendedFuse = 0xFD, kLockBits = 0xCF;

    Stk500bootDevice(const targets::Chip& chip, const targets::Bootloader& bootloader, const DeviceOptions& options);

    std::string version() const override;
    bool in_monitor() const { return in_monitor_; }
    uint32_t erase_pointer() const { return erase_pointer_; }
    uint32_t app_end() const { return app_end_; }
    uint64_t dropped_messages() const { return dropped_messages_; }

protected:
    size_t command_length(std::span<const uint8_t>) const override { return 0; }
    void execute(std::span<const uint8_t>, Clock::time_point) override {}
    bool take_byte(uint8_t byte, Clock::time_point now) override;
    void start(Clock::time_point now) override;
    bool runs_on_power_up() const override { return true; }
    void watchdog_fired(Clock::time_point now) override;

private:
    void handle(const MessageReader::Message& message, Clock::time_point now);
    std::vector<uint8_t> program(const std::vector<uint8_t>& body, Clock::duration& busy);
    std::vector<uint8_t> read_memory(const std::vector<uint8_t>& body);
    uint8_t fuse_or_lock(uint8_t first, uint8_t second) const;
    void enter_monitor(Clock::time_point now);
    void monitor_byte(uint8_t byte, Clock::time_point now);

    uint32_t app_end_;
    MessageReader reader_{285};
    uint32_t address_ = 0;        // byte address
    uint32_t erase_pointer_ = 0;  // the next page PROGRAM_FLASH_ISP erases
    bool talking_ = false;        // a byte came since the reset
    bool leaving_ = false;
    uint16_t bytes_read_ = 0;     // rcvdCharCntr: 16 bits, wraps
    int exclamations_ = 0;
    bool in_monitor_ = false;
    uint8_t lock_bits_ = kLockBits;
    uint64_t dropped_messages_ = 0;
};

}  // namespace mcuflash::sim::stk500v2
