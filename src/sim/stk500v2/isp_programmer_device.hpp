#pragma once
// An STK500v2 ISP programmer on a serial port (the AVRISP mkII-style clones avrdude drives with
// -c stk500v2 / -c avrispv2) with an AvrTarget on its ISP cable. It does what AVR068 says the
// programmer does with each ISP command: runs the target's serial programming instructions, keeps
// the address counter (flash: words, EEPROM: bytes; LOAD_ADDRESS bit 31 sends Load Extended Address,
// and the extended byte is not advanced when the counter wraps at 64 K words), answers checksum
// errors with ANSWER_CKSUM_ERROR and unknown commands with STATUS_CMD_UNKNOWN.
// SIGN_ON answers "AVRISP_2".
#include <map>

#include "sim/stk500v2/avr_target.hpp"
#include "sim/stk500v2/message_device.hpp"

namespace mcuflash::sim::stk500v2 {

class IspProgrammerDevice : public MessageDevice {
public:
    static constexpr uint32_t kBaud = 115200;

    IspProgrammerDevice(const targets::Chip& chip, const DeviceOptions& options);

    std::string describe() const override;
    link::SerialSettings line_settings() const override { return {baud_, link::Parity::None}; }
    FlashMemory& flash() override { return target_.flash(); }
    AvrTarget& target() { return target_; }

protected:
    Answer handle(const std::vector<uint8_t>& body, Clock::time_point now) override;
    Answer bad_checksum(const MessageReader::Message& message) override;
    bool starts_listening(ResetCause cause, Clock::time_point now) override;
    void timer_fired(Clock::time_point) override {}

private:
    // Runs the 4-byte instruction in `body` at `offset` and returns the byte `answer_index` (1-based) of its answer.
    uint8_t run(const std::vector<uint8_t>& body, size_t offset, uint8_t answer_index, Clock::duration& busy);
    Answer program_memory(const std::vector<uint8_t>& body, bool flash);
    Answer read_memory(const std::vector<uint8_t>& body, bool flash);
    Clock::duration spi_time(size_t bytes) const;

    uint32_t baud_;
    bool timing_;
    AvrTarget target_;
    uint32_t address_ = 0;  // flash: word address; EEPROM: byte address
    std::map<uint8_t, uint8_t> parameters_;
};

}  // namespace mcuflash::sim::stk500v2
