#pragma once
// ATmegaBOOT_168 as Arduino built it for the Diecimila, Duemilanove, old Nano and Mega 1280 (read from
// ATmegaBOOT_168.c, not copied). Where it differs from optiboot:
// - GET_PARAMETER: 0x80 -> 2, 0x81 -> 1, 0x82 -> 0x10 (version 1.16), 0x98 -> 3, others -> 0.
// - No watchdog: waiting for a byte times out after about 1 s and starts the application. It also
//   runs on power-up (built without WATCHDOG_MODS), and LEAVE_PROGMODE ('Q') only answers.
// - A command not ending in 0x20 gets no answer and counts as an error; an unknown command byte counts
//   as an error on its own. The 5th error starts the application. READ_PAGE with a bad end is ignored.
// - LOAD_ADDRESS is a word address; PROG_PAGE and READ_PAGE turn it into a byte address in place and
//   READ_PAGE advances it (the register is global). Parts above 64 KiB reach the upper half when bit 15
//   of the word address is set; there is no extended addressing beyond 128 KiB.
// - PROG_PAGE writes any length, page after page (odd lengths rounded up to whole words; the rest of a
//   last partial page is 0xFF), and answers INSYNC OK only when done. EEPROM ('E') is byte-addressed
//   from the doubled address.
// - Extras: '1' answers "AVR ISP"; UNIVERSAL 0x30 reads a signature byte; 'v' (oscillator calibration)
//   answers 0.
#include "sim/stk500v1/avr_bootloader_device.hpp"

namespace mcuflash::sim::stk500v1 {

class AtmegabootDevice : public AvrBootloaderDevice {
public:
    static constexpr uint8_t kHwVersion = 0x02;
    static constexpr uint8_t kMajor = 0x01;
    static constexpr uint8_t kMinor = 0x10;
    static constexpr auto kReceiveTimeout = std::chrono::seconds(1);
    static constexpr int kMaxErrors = 5;

    using AvrBootloaderDevice::AvrBootloaderDevice;

    std::string version() const override;

protected:
    size_t command_length(std::span<const uint8_t> frame) const override;
    void execute(std::span<const uint8_t> frame, Clock::time_point now) override;
    void start(Clock::time_point now) override;
    bool runs_on_power_up() const override { return true; }

private:
    void count_error(Clock::time_point now);
    bool upper_half() const { return chip_.flash_size > 0x10000 && address_ > 0x7FFF; }
    void program(uint8_t memory, std::span<const uint8_t> data, Clock::time_point now);
    std::vector<uint8_t> read(uint8_t memory, uint32_t length);

    uint16_t address_ = 0;
    int errors_ = 0;
};

}  // namespace mcuflash::sim::stk500v1
