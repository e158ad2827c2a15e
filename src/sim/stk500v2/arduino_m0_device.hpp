#pragma once
// The Arduino M0's (arduino.org) bootloader: a SAMD21 pretending to be an atmega2560 over STK500v2 on
// its native USB port (avrdude -c stk500v2 -p atmega2560). Facts from its source (Bootloader_D21,
// stk500v2.h and main.c in ArduinoCore-samd/bootloaders/mzero; read, not copied):
// - 16 KiB bootloader, protected by the NVM user row's BOOTPROT; the application starts at 0x4000.
// - It answers the atmega2560's signature 1E 98 01 (READ_SIGNATURE_ISP and SPI_MULTI 0x30; other
//   SPI_MULTI instructions read 0), SIGN_ON "AVRISP_2", hardware 3, software 4.5, build 1/2.
// - LOAD_ADDRESS: word address, shifted left: byte addresses are absolute (the hex is linked at 0x4000).
// - CHIP_ERASE_ISP erases every row from 0x4000 to the end of flash and answers OK.
// - PROGRAM_FLASH_ISP writes halfwords into flash (no erase: programming only clears bits) when the
//   address is at or above 0x4000, and silently skips them below, answering OK either way; then the
//   address moves on and is padded up to the next 256-byte row with 0xFFFF writes.
// - READ_FLASH_ISP reads flash at or above 0x4000 and 0xFF below.
// - ENTER/LEAVE_PROGMODE and SET_PARAMETER answer OK; LEAVE starts the application 500 ms later.
// - Any other command gets an answer with an empty body.
// - 8 s without a message: a system reset, after which the application runs if 0x4000 is programmed.
#include "sim/flash_memory.hpp"
#include "sim/stk500v2/message_device.hpp"
#include "targets/knowledge.hpp"

namespace mcuflash::sim::stk500v2 {

class ArduinoM0Device : public MessageDevice {
public:
    static constexpr auto kIdleReset = std::chrono::seconds(8);
    static constexpr auto kLeaveDelay = std::chrono::milliseconds(500);

    ArduinoM0Device(const targets::Chip& chip, const targets::Bootloader& bootloader, const DeviceOptions& options);

    std::string describe() const override;
    link::SerialSettings line_settings() const override { return {baud_, link::Parity::None}; }
    FlashMemory& flash() override { return flash_; }

protected:
    Answer handle(const std::vector<uint8_t>& body, Clock::time_point now) override;
    bool starts_listening(ResetCause cause, Clock::time_point now) override;
    void timer_fired(Clock::time_point now) override;

private:
    bool application_present() const;
    Clock::duration program(std::span<const uint8_t> data, uint32_t size);

    const targets::Chip chip_;
    uint32_t baud_;
    uint32_t app_start_;  // what the bootloader keeps (data/bootloaders.toml)
    uint32_t row_size_;   // the NVM erase unit (data/chips.toml sam.erase_unit)
    uint32_t address_;
    FlashMemory flash_;
    bool leaving_ = false;
};

}  // namespace mcuflash::sim::stk500v2
