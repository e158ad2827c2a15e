#pragma once
// A Klipper (or Kalico) printer.cfg, read as Klipper reads it, for what mcuflash needs: the MCUs,
// each [mcu] and [mcu NAME] section's serial, canbus_uuid, canbus_interface, baud and restart_method.
//
// Klipper's rules (klippy/configfile.py): '#' starts a comment anywhere on a line, ';' after
// whitespace; "key: value" or "key = value", option names without case; a line that starts with
// whitespace continues the value above; a section given twice is one section (later values win);
// [include PATH] reads another file (relative to the including file, shell wildcards allowed; a
// pattern without wildcards must exist). The SAVE_CONFIG block (#*# lines) is a comment here.
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace mcuflash::targets {

struct PrinterMcu {
    std::string name;              // "mcu" for [mcu], "ebb" for [mcu ebb]
    std::string serial;            // "" when the MCU is on CAN
    std::string canbus_uuid;       // "" when it is on a serial port
    std::string canbus_interface;  // "can0" unless set
    uint32_t baud = 250000;        // Klipper's default for a serial MCU
    std::string restart_method;    // "" = Klipper's default for the MCU
    std::string file;              // the file that defined the section, for messages
};

struct PrinterConfig {
    std::string path;
    std::vector<std::string> files;  // every file read, the included ones too
    std::vector<PrinterMcu> mcus;    // [mcu] first, then the others in the order they first appear
};

// Reads `path` and its includes. Throws core::Error(BadInput) naming the file and line for a line
// Klipper would refuse, a missing include, an include loop, or an [mcu] section with neither serial
// nor canbus_uuid; NotFound when `path` does not exist.
PrinterConfig read_printer_config(const std::string& path);

// The usual places of printer.cfg: ~/printer_data/config/printer.cfg, then ~/printer.cfg (empty: none).
std::string default_printer_config();

}  // namespace mcuflash::targets
