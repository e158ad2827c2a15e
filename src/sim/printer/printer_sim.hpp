#pragma once
// `mcuflash-sim printer`: a simulated printer, one simulated MCU per [mcu] / [mcu NAME] section of
// Klipper's printer.cfg, each where printer.cfg says it is and each the board the manifest
// (mcuflash.toml) says it is, running Klipper and rebooting into that board's bootloader when asked:
//
// - serial: /dev/serial/by-id/usb-Klipper_<mcu>_<serial>-if00: Klipper's CDC-ACM device over USB/IP,
//   rebooting into the board's USB bootloader simulator, back as Klipper after an update
//   (klipper_usb_board.hpp); served in this process, one USB/IP server (port) per USB device;
// - serial: anything else (a UART): `mcuflash-sim klipper --pty PATH` as a child process, its
//   bootloader on the same path (a UART's bootloader talks on the same wire);
// - canbus_uuid, with one MCU the manifest calls the USB-to-CAN bridge: the gs_usb bridge over
//   USB/IP with that MCU's UUID, answering identify itself, and the other CAN MCUs as Klipper nodes
//   behind it (Katapult on request); without a bridge: `mcuflash-sim katapult --can IFACE --klipper`
//   per node, as child processes, on printer.cfg's canbus_interface.
//
// Each MCU's flash is a file, FLASH_DIR/<name>.bin (kept current); --firmware MCU=FILE puts a Klipper
// build (.bin/.elf/.hex; a klipper.dict only answers identify) at the board's application start
// first. What an MCU runs is what its flash holds.
#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace mcuflash::sim::printer {

struct PrinterSimOptions {
    std::string config;    // printer.cfg
    std::string manifest;  // mcuflash.toml ("" = beside printer.cfg)
    std::map<std::string, std::string> firmware;  // MCU name -> a Klipper build it runs
    std::optional<uint16_t> usbip_port;           // the first USB/IP port; nullopt: any free (one USB device)
    std::string flash_dir;                        // "" = sim-flash/ beside the manifest
    bool timing = true;
    bool verbose = false;
    std::string self = "/proc/self/exe";  // the mcuflash-sim that serves the child simulators
};

enum class McuPlace {
    UsbKlipper,     // Klipper's USB serial over USB/IP
    Uart,           // Klipper on a UART (a pty)
    CanBridge,      // the USB-to-CAN bridge board over USB/IP
    CanBehindBridge,
    CanInterface,   // a CAN node on a SocketCAN interface
};

struct SimulatedMcu {
    std::string name;  // printer.cfg's: "mcu", "ebb"
    McuPlace place = McuPlace::Uart;
    std::string board, chip, bootloader;  // data/boards.toml id, data/chips.toml name, data/bootloaders.toml name
    std::string bootloader_protocol;
    uint32_t application_start = 0;  // absolute address
    std::string flash_file;
    std::string firmware;  // "" = none given: what the flash file holds runs
    std::string serial_path;  // Uart, UsbKlipper: printer.cfg's serial
    uint32_t baud = 250000;
    std::string usb_mcu, usb_serial;  // UsbKlipper: the strings in its by-id name
    std::optional<uint16_t> usbip_port;  // UsbKlipper, CanBridge (nullopt: any free port)
    uint64_t uuid = 0;                   // CAN MCUs
    std::string can_interface;           // CanInterface
    std::string bridge;                  // CanBehindBridge: the bridge MCU's name
};

// From printer.cfg and the manifest: what to simulate. Throws core::Error (BadInput, naming the MCU
// and the file) for an MCU without a board, an unknown board or bootloader, a bootloader without a
// simulator for where the MCU is, two bridges, two USB devices without --usbip, or --firmware for an
// MCU printer.cfg lacks.
std::vector<SimulatedMcu> plan_printer(const PrinterSimOptions& options);

// Puts the MCU's --firmware at its application start in its flash file (created at the chip's size
// if missing). Throws core::Error(BadInput) for a build that is not Klipper or does not fit.
void seed_flash(const SimulatedMcu& mcu, bool timing);

// Starts every MCU, prints one "ready ..." line per MCU on stdout as each is ready and then
// "printer ready: N MCUs", and serves until SIGINT or SIGTERM. Returns the exit code.
int run_printer(const std::vector<SimulatedMcu>& mcus, const PrinterSimOptions& options,
                const std::function<void(const std::string&)>& log);

// The "ready" line of an MCU (`port`: its USB/IP port once known).
std::string ready_line(const SimulatedMcu& mcu, uint16_t port = 0);

}  // namespace mcuflash::sim::printer
