#pragma once
// mcuflash.toml: which firmware each MCU of a printer gets (docs/printer.md). printer.cfg says where
// each MCU is (serial port, CAN UUID); the manifest says what it is (its board), how its firmware is
// built (Klipper's .config for it) and which image goes on it. Written first by `mcuflash printer
// init`, read by `printer build` and `printer flash`; kept beside printer.cfg by default.
//
//   [printer]
//   config = "printer.cfg"        # Klipper's printer.cfg, relative to this file
//   klipper = "~/klipper"         # the Klipper (or Kalico) checkout `printer build` runs make in
//   out = "mcuflash"              # where builds go: OUT/<mcu name>/klipper.bin, relative to this file
//
//   [mcu.mcu]                     # printer.cfg's [mcu]; [mcu.ebb] is its [mcu ebb]
//   board = "btt-octopus-v1.1"    # data/boards.toml id (mcuflash boards)
//   kconfig = "mcuflash/mcu.config"  # Klipper's .config for this MCU, relative to this file
//   image = "..."                 # optional: the image to flash (default OUT/<name>/klipper.bin)
//   device = "..."                # optional: where to flash it, when not printer.cfg's serial/canbus_uuid
//   bootloader = "katapult"       # optional: the board's bootloader, when not the board's first
//   can_bridge = true             # optional: this MCU is the USB-to-CAN bridge (default: its .config says)
//   skip = true                   # optional: leave this MCU out of build and flash
//
// Relative paths are relative to the manifest's folder; "~/" is the user's home.
#include <optional>
#include <string>
#include <vector>

namespace mcuflash::targets {

struct ManifestMcu {
    std::string name;        // printer.cfg's MCU name: "mcu", "ebb"
    std::string board;       // a data/boards.toml id ("" = not known)
    std::string kconfig;     // absolute path of its Klipper .config ("" = none given)
    std::string image;       // absolute path of the image `printer flash` writes
    std::string device;      // "" = printer.cfg's serial or can:IFACE:UUID
    std::string bootloader;  // "" = the board's first
    std::optional<bool> can_bridge;
    bool skip = false;
    std::string where;  // "mcuflash.toml:12", for messages
};

struct PrinterManifest {
    std::string path;            // the manifest file
    std::string printer_config;  // absolute path of printer.cfg
    std::string klipper_tree;    // absolute path of the Klipper checkout
    std::string out_dir;         // absolute path of the build folder
    std::vector<ManifestMcu> mcus;  // in file order

    const ManifestMcu* find(const std::string& name) const;
};

// Reads a manifest. Throws core::Error: NotFound when `path` does not exist; BadInput with file:line
// for a syntax error, an unknown key or table, a value of the wrong type, or an MCU given twice.
// Board ids are not checked here (the caller has the knowledge base).
PrinterManifest read_printer_manifest(const std::string& path);

// The manifest's text for `manifest` (paths written relative to its folder where they lie under it),
// with a comment per MCU (`comments`, by MCU name: what init found out, or why it could not tell).
std::string printer_manifest_text(const PrinterManifest& manifest,
                                  const std::vector<std::pair<std::string, std::string>>& comments = {});

// mcuflash.toml beside printer.cfg.
std::string default_manifest_path(const std::string& printer_config);

}  // namespace mcuflash::targets
