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

// True when `path` is a Raspberry Pi's mini UART (ttyS0, also behind /dev/serial0): it has no
// parity, so 8E1 protocols cannot work on it. `model_file` is for tests.
bool is_raspberry_pi_mini_uart(const std::string& path,
                               const std::string& model_file = "/proc/device-tree/model");

}  // namespace mcuflash::discover
