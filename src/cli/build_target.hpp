#pragma once
// What the firmware is for, as the user said it: a board (--board), Klipper's build configuration
// (--klipper-config, or the .config of the Klipper tree the image was built in) and --chip. They are
// checked against each other before the device is touched, and against the device once connected:
// a build for another chip, or linked for another bootloader offset, is refused before it is written
// (a board that does not start afterwards is the commonest failed update).
#include <optional>
#include <string>
#include <vector>

#include "device/device.hpp"
#include "targets/boards.hpp"
#include "targets/klipper_config.hpp"

namespace mcuflash::cli {

class Reporter;

struct TargetOptions {
    std::string board;           // an ID, name or alias of data/boards.toml
    std::string klipper_config;  // a .config path; "none": do not look for one beside the image
};

struct BuildTarget {
    const targets::Board* board = nullptr;
    std::optional<targets::KlipperBuildConfig> config;
    std::vector<const targets::Chip*> chips;  // the chips the firmware may go on (empty: not known)
    std::optional<uint32_t> app_address;      // where the application is linked to start
    std::string app_address_source;           // in words: "Klipper's build config ~/klipper/.config"
};

// The one board a name means; else a usage error listing the candidates or the nearest names.
const targets::Board& one_board(const targets::Knowledge& knowledge, const std::string& pattern);

// Resolves the options (and, with `image_file`, the .config beside it) into a BuildTarget; refuses
// when they contradict each other. Fills `device.chip` and, for a board on a serial port,
// `device.protocol` where the user left them open.
BuildTarget resolve_build_target(const TargetOptions& options, const std::string& image_file,
                                 device::DeviceOptions& device, Reporter& reporter);

// Refuses a device whose chip is not one the firmware is for, or whose bootloader starts the
// application elsewhere than where the firmware is linked.
void check_device(const BuildTarget& target, const protocol::DeviceInfo& info, Reporter& reporter);

// Before anything is flashed (a whole printer's update): an image against its board, with no device
// to ask: the chip its .config (`kconfig`, "" = the one beside the image) and its Klipper build name,
// and where it is linked against where the board's bootloader (`bootloader`, "" = the board's first)
// starts the application. Returns the Klipper version the image holds ("" = not a Klipper build).
// Throws what check_device throws.
std::string check_image_for_board(const std::string& image_file, const std::string& board, const std::string& kconfig,
                                  const std::string& bootloader, Reporter& reporter);

}  // namespace mcuflash::cli
