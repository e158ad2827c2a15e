// mcuflash: flash micro-controllers through their bootloaders.
#include <CLI/CLI.hpp>
#include <fmt/format.h>

#include <algorithm>
#include <iostream>
#include <string_view>

#include <nlohmann/json.hpp>

#include "cli/commands.hpp"
#include "cli/reporter.hpp"
#include "core/interrupt.hpp"
#include "core/error.hpp"
#include "device/device.hpp"
#include "protocol/bootloader.hpp"

using namespace mcuflash;

int main(int argc, char** argv) {
    core::catch_interrupts();
    CLI::App app{fmt::format(
        "mcuflash: flash 3D-printer micro-controllers through their bootloaders, natively.\n"
        "Devices (-d): {}\n"
        "(try: mcuflash flash demo.hex -d sim:stk500v1:atmega1284p; `mcuflash list` shows what is connected).\n"
        "Protocols (-p): {}.\n"
        "Exit codes: 0 ok, 1 verify mismatch, 64 usage, 65 bad input or refused as unsafe,\n"
        "69 device not found or not supported, 70 a bug in mcuflash, 74 I/O, 75 timeout, 77 permission,\n"
        "130 stopped by Ctrl-C, 143 by SIGTERM (at the next exchange with the device; a second one stops at once).",
        device::device_syntax(), protocol::protocol_names())};
    app.require_subcommand(1);
    app.fallthrough();  // --json and -q also work after the sub-command
    app.set_version_flag("--version", std::string("mcuflash ") + MCUFLASH_VERSION_TEXT);
    cli::GlobalOptions global;
    global.command_line = "mcuflash";
    for (int i = 1; i < argc; ++i) {
        const std::string arg = argv[i];
        const bool plain = !arg.empty() && arg.find_first_not_of(
            "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_./:=,+@%") == std::string::npos;
        std::string quoted = "'";
        for (char c : arg) quoted += c == '\'' ? std::string("'\\''") : std::string(1, c);
        global.command_line += " " + (plain ? arg : quoted + "'");
    }
    app.add_flag("--json", global.json, "JSON Lines on stdout: progress events, then one result or error object");
    app.add_flag("-q,--quiet", global.quiet, "no progress output (errors and results still print)");
    app.add_flag("--trace", global.trace, "every byte or packet on the link, with its direction and time, on stderr");
    app.add_option("--trace-file", global.trace_file, "... or in this file");

    cli::register_commands(app, global);
    cli::register_reference_commands(app, std::string("mcuflash ") + MCUFLASH_VERSION_TEXT);
    try {
        app.parse(argc, argv);
    } catch (const CLI::ParseError& e) {
        if (e.get_exit_code() == 0) return app.exit(e);  // --help, --version
        // A command-line error, said as every other error is (--json may not have been parsed yet).
        const bool json = std::any_of(argv + 1, argv + argc, [](const char* a) { return std::string_view(a) == "--json"; });
        if (json)
            std::cout << cli::json_line({{"event", "error"}, {"kind", "usage"}, {"message", e.what()}, {"exit_code", 64}})
                      << std::endl;
        else
            fmt::print(stderr, "error: {}\nhint: mcuflash --help, or mcuflash COMMAND --help\n", e.what());
        return 64;
    }
    return global.exit_code;
}
