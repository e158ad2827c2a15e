#pragma once
#include <CLI/CLI.hpp>

namespace mcuflash::cli {

struct GlobalOptions {
    bool json = false;
    bool quiet = false;
    int exit_code = 0;  // set by the sub-command that ran
};

void register_commands(CLI::App& app, GlobalOptions& global);

}  // namespace mcuflash::cli
