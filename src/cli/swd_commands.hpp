#pragma once
// `flash`, `read`, `info` and `bootloader install` through an SWD debug probe (--probe).
#include <CLI/CLI.hpp>

#include <optional>
#include <string>

#include "cli/commands.hpp"
#include "cli/operations.hpp"
#include "image/loader.hpp"

namespace mcuflash::cli {

struct ProbeOptions {
    std::string probe;       // --probe: cmsis-dap[:...] or sim:cmsis-dap[:CHIP]
    std::string board, chip, bootloader;
    bool reset_line = false;  // reset through nRESET rather than AIRCR
    bool under_reset = false; // connect with nRESET held (cold plugging)
    bool allow_protected = false;
    std::string sim_faults;
    bool sim_fast = false;
};

void add_probe_options(CLI::App* cmd, ProbeOptions& options);

void swd_info_command(GlobalOptions& global, const ProbeOptions& options);
void swd_read_command(GlobalOptions& global, const ProbeOptions& options, const std::string& out_file,
                      const std::string& format, std::optional<uint32_t> address, std::optional<uint32_t> length);
// An application after the bootloader; `erase_chip` (a board without one): erase all and clear BOOTPROT
// first. `force`: write an image linked above the application start anyway. `klipper_config`: as
// --klipper-config (its MCU and application address are checked against what the probe finds).
void swd_flash_command(GlobalOptions& global, const ProbeOptions& options, const std::string& file,
                       const ImageOptions& image_options, const std::string& klipper_config, bool erase_chip,
                       bool verify, bool start, bool force);
// Readout protection off (the chip erases itself whole); needs `erase_everything`.
void swd_unprotect_command(GlobalOptions& global, const ProbeOptions& options, bool erase_everything);
// Erase the chip, write the bootloader at the flash base, protect it (SAMD BOOTPROT), verify, start.
void swd_install_command(GlobalOptions& global, const ProbeOptions& options, const std::string& file,
                         const std::string& backup_file);

}  // namespace mcuflash::cli
