#pragma once
// The "programmer" role: a device that programs another chip through its programming interface,
// to install a bootloader or write fuses (an AVR ISP programmer now; SWD probes next). Each type
// registers in programmers() (registry.cpp), as protocols do.
#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "core/progress.hpp"
#include "link/byte_link.hpp"
#include "targets/avr_fuses.hpp"
#include "targets/knowledge.hpp"

namespace mcuflash::protocol {

// An AVR in-system programmer with the target chip connected to it.
class AvrProgrammer {
public:
    virtual ~AvrProgrammer() = default;

    // Returns the programmer's name ("AVRISP_2"); throws core::Error(NotFound) when nothing answers.
    virtual std::string sign_on() = 0;
    // Puts the target in programming mode and checks its signature against the chip it was made for.
    virtual void enter_programming() = 0;
    virtual void leave_programming() = 0;
    virtual std::vector<uint8_t> read_signature() = 0;
    // Erases flash (and EEPROM unless EESAVE is programmed) and unprograms the lock bits.
    virtual void chip_erase() = 0;
    virtual uint8_t read(targets::FuseByte fuse) = 0;
    // Writes one fuse or lock byte; callers read it back (plan/avr_install).
    virtual void write(targets::FuseByte fuse, uint8_t value) = 0;
    // Whole pages of erased flash; all-0xFF pages may be skipped.
    virtual void write_flash(uint32_t address, std::span<const uint8_t> data, const core::Progress& progress) = 0;
    virtual std::vector<uint8_t> read_flash(uint32_t address, uint32_t length, const core::Progress& progress) = 0;
};

struct ProgrammerInfo {
    std::string name;         // --programmer
    std::string description;
    std::string simulator;    // its simulated device: sim:SIMULATOR[:CHIP]
    link::LinkKind runs_on = link::LinkKind::ByteStream;
    link::SerialSettings serial;
    // `knowledge`: where a target answering with another signature is looked up.
    std::function<std::unique_ptr<AvrProgrammer>(link::Link&, const targets::Chip&, const targets::Knowledge&,
                                                 link::WarningSink)>
        make;
};

// The registry: one line per programmer type in registry.cpp; the first is the default.
const std::vector<ProgrammerInfo>& programmers();
const ProgrammerInfo& find_programmer(const std::string& name);  // throws Usage listing the known ones

}  // namespace mcuflash::protocol
