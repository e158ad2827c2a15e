#include "entry/serial_reset.hpp"

#include <stdexcept>

#include "core/error.hpp"

namespace mcuflash::entry {

void pulse_reset(link::ByteLink& link) {
    auto* line = link.serial_line();
    if (!line) return;  // a byte stream without modem lines or a port to reopen: nothing to pulse
    if (!line->has_modem_lines()) {
        line->reopen();
        link.drain_input();
        return;
    }
    line->set_dtr_rts(false, false);
    // Long enough for the reset capacitor to recharge so the next edge makes a full pulse.
    link.pause(std::chrono::milliseconds(100));
    line->set_dtr_rts(true, true);
    link.pause(std::chrono::milliseconds(1));
    link.drain_input();
}

void reopen_when_back(link::ByteLink& link, std::chrono::milliseconds wait) {
    auto* line = link.serial_line();
    if (!line) throw std::logic_error("reopen_when_back on a link that is no serial port");
    const auto give_up = std::chrono::steady_clock::now() + wait;
    for (;;) {
        try {
            line->reopen();
            return;
        } catch (const core::Error&) {
            if (std::chrono::steady_clock::now() >= give_up) throw;  // not back (or back under another name)
        }
        link.pause(std::chrono::milliseconds(250));
    }
}

}  // namespace mcuflash::entry
