#include "entry/touch_1200.hpp"

#include <algorithm>

#include "core/error.hpp"
#include "discover/serial_ports.hpp"
#include "entry/serial_reset.hpp"

namespace mcuflash::entry {

namespace {
constexpr uint32_t kTouchBaud = 1200;
// bossac waits 1 s after closing the port: the application resets and the bootloader enumerates.
constexpr auto kLeaveTime = std::chrono::seconds(1);

std::vector<std::string> port_nodes() {
    std::vector<std::string> nodes;
    for (const auto& c : discover::serial_candidates()) nodes.push_back(c.resolved);
    return nodes;
}
}  // namespace

TouchResult touch_1200_baud(link::ByteLink& link, std::chrono::milliseconds wait) {
    TouchResult result;
    auto* line = link.serial_line();
    if (!line || !line->has_modem_lines()) return result;
    const link::SerialSettings previous = link.settings();
    const std::vector<std::string> before = port_nodes();
    line->configure({kTouchBaud, link::Parity::None});
    line->set_dtr_rts(false, true);  // RTS set, DTR cleared: what the application watches for
    result.touched = true;
    link.pause(kLeaveTime);

    try {
        reopen_when_back(link, wait);
        line->configure(previous);
        line->set_dtr_rts(true, true);
        result.reopened = true;
        return result;
    } catch (const core::Error&) {
        // Not back (or back under another name).
    }
    for (const auto& node : port_nodes())
        if (std::find(before.begin(), before.end(), node) == before.end()) result.new_ports.push_back(node);
    return result;
}

}  // namespace mcuflash::entry
