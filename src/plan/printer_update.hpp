#pragma once
// Updating a whole printer: which MCU is flashed where, and in which order. printer.cfg says where
// each MCU is, the manifest (mcuflash.toml) what goes on it. MCUs on different transports are flashed
// at the same time; what shares a transport waits its turn:
//  - every USB bootloader appears as a new USB device that mcuflash must tell from the others, so MCUs
//    that reboot into one over USB go one at a time ("usb");
//  - the nodes of one CAN bus go one at a time ("can:can0"), and the USB-to-CAN bridge that carries
//    that bus goes after all of them (it reboots, and the bus goes with it);
//  - a UART, an SD card, a simulated device: each its own.
#include <string>
#include <vector>

#include "targets/printer_config.hpp"
#include "targets/printer_manifest.hpp"

namespace mcuflash::plan {

struct PrinterStep {
    std::string mcu;         // printer.cfg's name: "mcu", "ebb"
    std::string board;       // the manifest's board ("" = not given)
    std::string device;      // what `mcuflash flash -d` gets: a port, can:IFACE:UUID, ...
    std::string image;       // the manifest's image
    std::string kconfig;     // Klipper's .config the image was built with: the image folder's (printer
                             // build's completed copy), else the manifest's; "" = none
    std::string bootloader;  // the manifest's bootloader override ("" = the board's)
    uint32_t uart_baud = 0;  // printer.cfg's baud for an MCU on a UART; 0 otherwise
    bool can_bridge = false;
    std::vector<std::string> resources;  // held while it runs; two steps sharing one never overlap
    std::vector<std::string> after;      // MCUs that must have finished (either way) before it starts
    std::string skip_reason;             // not empty: left out, and why (in words)
};

struct PrinterUpdatePlan {
    std::vector<PrinterStep> steps;  // printer.cfg's order ([mcu] first), then MCUs only the manifest names
};

// The plan for the MCUs in `only` (every MCU when empty). Throws core::Error(Usage) for a name in
// `only` that neither file has, BadInput for a manifest MCU printer.cfg lacks that names no device,
// and for two bridges on one CAN bus.
PrinterUpdatePlan plan_printer_update(const targets::PrinterConfig& config, const targets::PrinterManifest& manifest,
                                      const std::vector<std::string>& only = {});

enum class StepState { Waiting, Running, Finished };

// The steps that may start now: waiting, everything they come after finished, and none of their
// resources held by a running step. Earlier steps first; two ready steps never share a resource.
std::vector<size_t> ready_steps(const PrinterUpdatePlan& plan, const std::vector<StepState>& states);

}  // namespace mcuflash::plan
