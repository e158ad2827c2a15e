#pragma once
// The 1200-baud touch (bossac -a, the Arduino IDE's "use_1200bps_touch"): a USB CDC application that
// sees its port set to 1200 baud with DTR dropped resets into its bootloader (Klipper, the Arduino
// cores). The board then leaves the USB bus and comes back as the bootloader, maybe under another
// ttyACM name.
#include <chrono>
#include <string>
#include <vector>

#include "link/byte_link.hpp"

namespace mcuflash::entry {

struct TouchResult {
    bool touched = false;   // false: the link has no modem lines (a pty), nothing was done
    bool reopened = false;  // the same port answered opening again
    // Serial ports that appeared meanwhile (when the board came back under another name).
    std::vector<std::string> new_ports;
};

// Opens at 1200 baud, sets RTS, clears DTR, waits for the board to leave and come back, and reopens
// the link with its previous settings (trying for up to `wait`).
TouchResult touch_1200_baud(link::ByteLink& link, std::chrono::milliseconds wait = std::chrono::seconds(10));

}  // namespace mcuflash::entry
