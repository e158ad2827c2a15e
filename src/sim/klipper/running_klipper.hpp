#pragma once
// A board running Klipper, seen from the host, until it is asked to reboot into its bootloader: a
// pty behind a by-id style name (usb-Klipper_<mcu>_<serial>-if00). It answers the two requests
// Klipper's firmware honours (src/generic/usb_cdc.c, serial_irq.c): the port set to 1200 baud (a pty
// has no DTR, so the baud rate alone stands for "1200 baud with DTR clear"), or the 32-byte UART
// request string. With a data dictionary it also answers a host that asks what runs (identify,
// uptime, clock: mcu_responder.hpp), as klippy and `mcuflash identify` do. Then the port disappears, as a rebooting board leaves the USB bus, and
// serve_running_klipper() returns so the caller can bring up the bootloader's simulator.
#include <chrono>
#include <filesystem>
#include <functional>
#include <string>
#include <vector>

namespace mcuflash::sim::klipper {

struct RunningKlipperOptions {
    std::filesystem::path link_path;  // where the port's symlink goes
    std::function<void(const std::string&)> log;
    std::vector<uint8_t> identify_data;  // the compressed data dictionary; empty: identify unanswered
};

enum class KlipperOutcome { BootloaderRequested, Stopped };

// Serves the port until a bootloader request (the symlink is removed then) or SIGINT/SIGTERM.
// Throws core::Error(Usage) if link_path exists and is not a symlink, core::Error(Io) if no pty.
KlipperOutcome serve_running_klipper(const RunningKlipperOptions& options);

// The by-id name a board's bootloader port gets: Katapult's "usb-katapult_<mcu>_<serial>-if00" (its
// USB strings), else "usb-<bootloader>_<mcu>_<serial>-if00".
std::string bootloader_port_name(const std::string& bootloader, const std::string& mcu, const std::string& serial);

}  // namespace mcuflash::sim::klipper
