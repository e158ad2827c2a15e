#pragma once
// Klipper's (and Kalico's) build configuration, the `.config` that `make menuconfig` writes: which
// MCU the firmware was built for and where it was linked to start. What mcuflash checks an image
// against before it touches the board.
#include <cstdint>
#include <optional>
#include <string>

namespace mcuflash::targets {

struct KlipperBuildConfig {
    std::string path;                 // the file it came from, for messages
    std::string mcu;                  // CONFIG_MCU ("stm32f103xe", "atmega2560")
    // CONFIG_FLASH_APPLICATION_ADDRESS: the absolute address the image was linked for. Absent on AVR
    // (the application always starts at 0) and in hand-written files.
    std::optional<uint32_t> application_address;
    std::string interface;            // "USB", "serial", "CAN", "USB to CAN bridge" ("" = not stated)
    std::optional<uint32_t> serial_baud;     // CONFIG_SERIAL_BAUD
    std::optional<uint32_t> canbus_bitrate;  // CONFIG_CANBUS_FREQUENCY
};

// Parses the text of a .config (`name` for messages). Throws core::Error(BadInput) when it is not a
// Klipper build configuration (no CONFIG_MCU) or a value it relies on is malformed.
KlipperBuildConfig parse_klipper_config(const std::string& text, const std::string& name);
KlipperBuildConfig read_klipper_config(const std::string& path);

// The .config of the Klipper tree an image was built in, when the image sits in that tree's out/
// folder (~/klipper/out/klipper.bin -> ~/klipper/.config) and the file exists; else nullopt.
std::optional<std::string> klipper_config_beside(const std::string& image_path);

}  // namespace mcuflash::targets
