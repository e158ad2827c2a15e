#include "entry/serial_reset.hpp"

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

}  // namespace mcuflash::entry
