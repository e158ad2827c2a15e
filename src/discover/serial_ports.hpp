#pragma once
// Finding serial ports a board may be on, for when no device is named.
#include <string>
#include <vector>

namespace mcuflash::discover {

struct SerialCandidate {
    std::string path;      // the stable name where one exists (/dev/serial/by-id/...)
    std::string resolved;  // the node it points to (/dev/ttyUSB0)
};

// What a by-id name says a port is: Klipper's and Katapult's USB names carry the MCU
// ("usb-Klipper_stm32f446xx_3A0028000851...-if00"); others are adapters, or unknown.
struct PortIdentity {
    enum class Kind { Unknown, Klipper, Katapult } kind = Kind::Unknown;
    std::string mcu;  // Klipper's CONFIG_MCU as its USB name gives it
};
PortIdentity identify_port(const std::string& path);

// False for a name that is still being made: udev (and mcuflash-sim) create a port's link under a
// hidden temporary name (".#usb-...") and rename it into place, and a link taken in that moment is gone
// by the time it is opened.
bool is_settled_port_name(const std::string& path);

// The programs that hold `node` open ("klippy.py (pid 812)"), from /proc; empty when none (or when
// /proc cannot tell: another user's processes). `proc_root` is for tests.
std::vector<std::string> port_holders(const std::string& node, const std::string& proc_root = "/proc");

// USB serial adapters and on-board UARTs that could hold a bootloader (not virtual consoles).
// `dev_root` is for tests.
std::vector<SerialCandidate> serial_candidates(const std::string& dev_root = "/dev");

// True when `path` is a Raspberry Pi's mini UART (ttyS0, also behind /dev/serial0): it has no
// parity, so 8E1 protocols cannot work on it. `model_file` is for tests.
bool is_raspberry_pi_mini_uart(const std::string& path,
                               const std::string& model_file = "/proc/device-tree/model");

}  // namespace mcuflash::discover
