#include "entry/serial_reset.hpp"

#include <thread>

namespace mcuflash::entry {

void pulse_reset(link::ByteLink& link) {
    if (!link.has_modem_lines()) {
        link.reopen();
        link.drain_input();
        return;
    }
    link.set_dtr_rts(false, false);
    // Long enough for the reset capacitor to recharge so the next edge makes a full pulse.
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    link.set_dtr_rts(true, true);
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
    link.drain_input();
}

}  // namespace mcuflash::entry
