#pragma once
// Finding serial ports a board may be on, for when no device is named.
#include <string>
#include <vector>

namespace mcuflash::discover {

struct SerialCandidate {
    std::string path;      // the stable name where one exists (/dev/serial/by-id/...)
    std::string resolved;  // the node it points to (/dev/ttyUSB0)
};

// USB serial adapters and on-board UARTs that could hold a bootloader (not virtual consoles).
// `dev_root` is for tests.
std::vector<SerialCandidate> serial_candidates(const std::string& dev_root = "/dev");

}  // namespace mcuflash::discover
