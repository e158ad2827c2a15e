#pragma once
// A byte stream to a device: a serial port, a pty, or an in-process simulator.
#include <cstdint>
#include <functional>
#include <span>
#include <string>

#include "core/deadline.hpp"

namespace mcuflash::link {

enum class Parity { None, Even };

struct SerialSettings {
    uint32_t baud = 115200;
    Parity parity = Parity::None;
};

class ByteLink {
public:
    virtual ~ByteLink() = default;

    virtual void write(std::span<const uint8_t> bytes) = 0;
    // Reads up to buffer.size() bytes; returns what arrived (possibly fewer) once at least one byte
    // is there, or 0 when the deadline passes with nothing.
    virtual size_t read_some(std::span<uint8_t> buffer, const core::Deadline& deadline) = 0;
    // Discards whatever the device sent that nobody read yet.
    virtual void drain_input() = 0;
    // Modem control lines (true = asserted). Links without them (ptys) ignore this.
    virtual void set_dtr_rts(bool dtr, bool rts) = 0;
    // False where DTR/RTS do not exist (a pty): resetting a board then takes a reopen.
    virtual bool has_modem_lines() const = 0;
    // Closes and opens the link again (an Arduino resets when its port is opened).
    virtual void reopen() = 0;
    virtual void configure(const SerialSettings& settings) = 0;
    virtual SerialSettings settings() const = 0;
    virtual std::string describe() const = 0;

    // Reads exactly buffer.size() bytes or throws core::Error(Timeout) naming `what`.
    void read_exact(std::span<uint8_t> buffer, const core::Deadline& deadline, const char* what);
};

// Warnings (e.g. "pty has no parity") go to a sink the CLI provides; the library never prints.
using WarningSink = std::function<void(const std::string&)>;

}  // namespace mcuflash::link
