#pragma once
// Optiboot 8.0 as built for classic ATmegas (read from optiboot.c, not copied):
// - GET_PARAMETER: 0x81 -> 8, 0x82 -> 0, anything else -> 0x03.
// - SET_DEVICE (20 bytes), SET_DEVICE_EXT (always 5 bytes), ENTER_PROGMODE, CHIP_ERASE, GET_SYNC and
//   unknown commands: read and answered INSYNC OK, nothing else.
// - LOAD_ADDRESS takes a word address (for flash and EEPROM alike); on parts with RAMPZ (flash above
//   64 KiB) its bit 15 goes to RAMPZ bit 0, and UNIVERSAL 4D 00 xx 00 (load extended address) puts xx
//   in RAMPZ bits 1..7, which is how avrdude reaches beyond 128 KiB on the atmega2560. Other UNIVERSAL
//   commands answer 0x00.
// - PROG_PAGE 'F' (any type but 'E'): answers INSYNC once the command is in, erases the page holding
//   the address, fills it from its RAM page buffer (starting at the address's offset in the page,
//   wrapping; bytes not sent keep what the buffer held before), writes it, then answers OK.
//   'E': writes the bytes to EEPROM one by one (this build has EEPROM support).
// - READ_PAGE 'F' reads with ELPM Z+, which carries into RAMPZ: reading the last bytes of a 64 KiB
//   segment leaves RAMPZ pointing at the next one (a real optiboot quirk kept on purpose).
// - The length of PROG_PAGE/READ_PAGE is 16-bit on parts with 256-byte pages, else only the low byte
//   counts (0 meaning 256).
// - LEAVE_PROGMODE arms a 16 ms watchdog (still kicked by incoming bytes); a command whose last byte
//   is not 0x20 arms it without kicks and stops reading: the application starts 16 ms later.
// - The 1 s watchdog runs from reset and is kicked by every byte read; when it fires, or on a power-on
//   reset, the application runs and the bootloader stays silent until the RESET pin is pulsed.
#include "sim/stk500v1/avr_bootloader_device.hpp"

namespace mcuflash::sim::stk500v1 {

class OptibootDevice : public AvrBootloaderDevice {
public:
    static constexpr uint8_t kMajor = 8;
    static constexpr uint8_t kMinor = 0;
    static constexpr auto kWatchdog = std::chrono::seconds(1);
    static constexpr auto kShortWatchdog = std::chrono::milliseconds(16);

    using AvrBootloaderDevice::AvrBootloaderDevice;

    std::string version() const override;
    uint8_t rampz() const { return rampz_; }

protected:
    size_t command_length(std::span<const uint8_t> frame) const override;
    void execute(std::span<const uint8_t> frame, Clock::time_point now) override;
    void start(Clock::time_point now) override;
    bool runs_on_power_up() const override { return false; }

private:
    bool has_rampz() const { return chip_.flash_size > 0x10000; }
    uint32_t flash_address() const { return (uint32_t{rampz_} << 16) | address_; }
    uint32_t block_length(uint8_t high, uint8_t low) const;
    void program_page(uint8_t memory, std::span<const uint8_t> data, Clock::time_point now);
    std::vector<uint8_t> read_page(uint8_t memory, uint32_t length);

    uint16_t address_ = 0;  // byte address within the current 64 KiB segment (Z register)
    uint8_t rampz_ = 0;
    std::vector<uint8_t> page_buffer_;  // RAM buffer: survives between commands
};

}  // namespace mcuflash::sim::stk500v1
