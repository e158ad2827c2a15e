#pragma once
// The bodies of `flash`, `verify`, `read`, `info` and `list`, apart from the command line: the CLI
// runs them with a Reporter that prints, the library (src/api) with one that calls back. Each
// reports its result through Reporter::result and throws core::Error (or what current_error()
// turns into one).
#include <cstdint>
#include <optional>
#include <string>

#include "cli/build_target.hpp"
#include "core/error.hpp"
#include "device/device.hpp"
#include "plan/flash_plan.hpp"

namespace mcuflash::cli {

class Reporter;

struct ImageOptions {
    std::string format;                    // "" = detect
    std::optional<uint32_t> base_address;  // for raw binaries
};

// Loads an image (throws core::Error for a bad --format or file) and tells the user what the parser
// accepted with a remark.
image::Image load_image(const std::string& file, const ImageOptions& options, Reporter& reporter);

// `command_line` is what the user typed, for the "retry" hint after a failure ("" = a command made up
// from the file and the device).
void flash_image(Reporter& reporter, const std::string& file, const ImageOptions& image_options,
                 const TargetOptions& target_options, device::DeviceOptions device_options,
                 const plan::PlanOptions& plan_options, std::optional<unsigned> time_limit_seconds,
                 const std::string& command_line);
void verify_image(Reporter& reporter, const std::string& file, const ImageOptions& image_options,
                  const TargetOptions& target_options, device::DeviceOptions device_options);
void read_flash(Reporter& reporter, const TargetOptions& target_options, device::DeviceOptions device_options,
                const std::string& out_file, const std::string& format, std::optional<uint32_t> address,
                std::optional<uint32_t> length);
void show_info(Reporter& reporter, const TargetOptions& target_options, device::DeviceOptions device_options);
// `can_interface`: also ask the nodes on this CAN bus ("" = not).
void list_devices(Reporter& reporter, const std::string& can_interface);

// Inside a catch block: the exception being handled as the error it means to a user (a time limit, an
// interrupt; anything unexpected is a bug in mcuflash, exit 70).
core::Error current_error();

}  // namespace mcuflash::cli
