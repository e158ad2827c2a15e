#pragma once
// A byte stream to a device: a serial port, a pty, or an in-process simulator. What only serial
// lines have (modem lines, reopening, line settings) is the SerialLine facet.
#include <cstdint>
#include <span>
#include <string>

#include "core/deadline.hpp"
#include "link/link.hpp"

namespace mcuflash::link {

enum class Parity { None, Even };

struct SerialSettings {
    uint32_t baud = 115200;
    Parity parity = Parity::None;
};

// What a serial line has beyond a byte stream.
class SerialLine {
public:
    virtual ~SerialLine() = default;
    // Modem control lines (true = asserted).
    virtual void set_dtr_rts(bool dtr, bool rts) = 0;
    // False where DTR/RTS do not exist (a pty): resetting a board then takes a reopen.
    virtual bool has_modem_lines() const = 0;
    // Closes and opens the line again (an Arduino resets when its port is opened).
    virtual void reopen() = 0;
    virtual void configure(const SerialSettings& settings) = 0;
};

class ByteLink : public Link {
public:
    static constexpr LinkKind kKind = LinkKind::ByteStream;
    LinkKind kind() const override { return kKind; }

    // Each checks the time limit and traces what crosses.
    void write(std::span<const uint8_t> bytes);
    // Reads up to buffer.size() bytes; returns what arrived (possibly fewer) once at least one byte
    // is there, or 0 when the deadline passes with nothing.
    size_t read_some(std::span<uint8_t> buffer, const core::Deadline& deadline);
    // Discards whatever the device sent that nobody read yet.
    void drain_input();
    // Reads exactly buffer.size() bytes or throws core::Error(Timeout) naming `what`.
    void read_exact(std::span<uint8_t> buffer, const core::Deadline& deadline, const char* what);

    // The line's speed and framing (for a USB CDC port, what the host set: the wire ignores it).
    virtual SerialSettings settings() const = 0;
    // Bytes a second the line carries (10 or 11 bits a byte).
    uint32_t bytes_per_second() const override;
    // The serial facet; nullptr for a byte stream without one.
    virtual SerialLine* serial_line() { return nullptr; }

protected:
    virtual void do_write(std::span<const uint8_t> bytes) = 0;
    virtual size_t do_read_some(std::span<uint8_t> buffer, const core::Deadline& deadline) = 0;
    // Returns what it dropped (for the trace).
    virtual size_t do_drain_input() = 0;
};

}  // namespace mcuflash::link
