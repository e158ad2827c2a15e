#pragma once
#include <CLI/CLI.hpp>

#include <functional>

namespace mcuflash::cli {

class Reporter;

struct GlobalOptions {
    bool json = false;
    bool quiet = false;
    bool trace = false;      // every byte or packet on the link, to stderr
    std::string trace_file;  // ... or to this file
    int exit_code = 0;  // set by the sub-command that ran
    std::string command_line;  // as typed (shell-quoted where needed), for "run it again" hints
};

void register_commands(CLI::App& app, GlobalOptions& global);
// `bootloader install` and `fuses read|write` (avr_isp_commands.cpp).
void register_avr_isp_commands(CLI::App& app, GlobalOptions& global);
void register_usb_commands(CLI::App& app, GlobalOptions& global);
// `boards` and `guide` (board_commands.cpp).
void register_board_commands(CLI::App& app, GlobalOptions& global);
// `identify` (klipper_commands.cpp).
void register_klipper_commands(CLI::App& app, GlobalOptions& global);
// `printer init` and `printer build`, on the `printer` subcommand (printer_build_commands.cpp).
void register_printer_build_commands(CLI::App& printer, GlobalOptions& global);
// `printer flash` (printer_flash_commands.cpp), under `printer`.
void register_printer_flash_commands(CLI::App& printer, GlobalOptions& global);
// `openocd config|run` (openocd_commands.cpp).
void register_openocd_commands(CLI::App& app, GlobalOptions& global);

// `generate man|bash|zsh|fish` (reference_commands.cpp), hidden: the man page and completions from `app`.
void register_reference_commands(CLI::App& app, const std::string& version);

// Runs a command body with a Reporter, turning errors into messages and the exit code.
void run(GlobalOptions& global, const std::function<void(Reporter&)>& body);

}  // namespace mcuflash::cli
