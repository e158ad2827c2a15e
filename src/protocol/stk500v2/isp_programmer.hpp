#pragma once
// The ISP role of STK500v2: a serial programmer (AVRISP mkII type, avrdude -c stk500v2 / avrispv2)
// that programs an AVR through its SPI programming interface. This is how a bootloader is installed,
// and how fuses and lock bits are read and written.
#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "core/progress.hpp"
#include "link/byte_link.hpp"
#include "protocol/programmer.hpp"
#include "protocol/stk500v2/client.hpp"
#include "targets/avr_fuses.hpp"
#include "targets/knowledge.hpp"

namespace mcuflash::protocol::stk500v2 {

ProgrammerInfo programmer_info();

class IspProgrammer : public AvrProgrammer {
public:
    // `chip`: the target the user says is connected; its signature is checked on enter_programming(),
    // and another one is named from `knowledge`.
    IspProgrammer(link::ByteLink& link, const targets::Chip& chip, const targets::Knowledge& knowledge,
                  link::WarningSink warn);

    // Signs on; returns the programmer's name ("AVRISP_2", "STK500_2"). Throws core::Error(NotFound)
    // when nothing STK500v2-like answers.
    std::string sign_on() override;
    // Puts the target in programming mode and checks its signature against the chip. Throws
    // core::Error(NotFound) when the target does not answer (with what to check), core::Error(Usage)
    // when it is another chip.
    void enter_programming() override;
    void leave_programming() override;

    std::vector<uint8_t> read_signature() override;
    // Erases flash (and EEPROM unless EESAVE is programmed) and unprograms the lock bits.
    void chip_erase() override;

    uint8_t read(targets::FuseByte fuse) override;
    // Writes one fuse or lock byte. Does not read it back: callers verify (see plan/avr_install).
    void write(targets::FuseByte fuse, uint8_t value) override;

    // Programs whole pages (address and size multiples of the page size) of erased flash; pages that
    // are all 0xFF are skipped (a chip erase left them so).
    void write_flash(uint32_t address, std::span<const uint8_t> data, const core::Progress& progress) override;
    std::vector<uint8_t> read_flash(uint32_t address, uint32_t length, const core::Progress& progress) override;

    const std::string& programmer_name() const { return name_; }

    static constexpr uint32_t kReadBlock = 256;

private:
    void load_address(uint32_t byte_address);
    // Sends a flash command that works at the programmer's address register (`length` bytes from
    // `at`), loading the address first; retried, with the address loaded again, after transmission
    // problems: a lost answer leaves the register moved or not, nobody knows.
    Frame at_address(uint32_t at, uint32_t length, const Bytes& body, const std::string& what, size_t answer_size);

    link::ByteLink& link_;
    const targets::Chip& chip_;
    const targets::Knowledge& knowledge_;
    link::WarningSink warn_;
    Session session_;
    std::string name_;
    bool extended_addressing_ = false;
    // The programmer's address register (flash word address as a byte address); nullopt = unknown.
    std::optional<uint32_t> address_;
};

}  // namespace mcuflash::protocol::stk500v2
