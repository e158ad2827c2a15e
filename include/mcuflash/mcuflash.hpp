#pragma once
// mcuflash as a library: what `mcuflash flash|verify|read|info|list` do, for programs (and the Python
// module) that would otherwise run the command and read its --json output. Each call does exactly
// what the command does: the same checks against the board, the same refusals, the same verify; its
// result is the object `mcuflash --json COMMAND` prints as its result. Nothing is printed: messages
// and progress go to the callbacks in Options. Failures throw mcuflash::Error.
//
//   #include <mcuflash/mcuflash.hpp>
//   mcuflash::Options options;
//   options.device = "sim:stk500v1:atmega1284p";
//   auto result = mcuflash::flash("klipper.hex", options);
//   // result.json: {"command":"flash","bytes_written":...,"verified":true,...}
//
// Link with `find_package(mcuflash)` and target mcuflash::mcuflash, or `pkg-config mcuflash`.
#include <cstdint>
#include <functional>
#include <optional>
#include <stdexcept>
#include <string>

namespace mcuflash {

// "0.1.0 (git v0.1.0-12-gabcdef)": what `mcuflash --version` says.
std::string version();

// What went wrong, in the words the command would print, and what to do about it.
class Error : public std::runtime_error {
public:
    Error(std::string kind, int exit_code, const std::string& message, std::string hint,
          std::optional<uint32_t> address);
    // "usage", "bad_input", "not_found", "io", "timeout", "permission", "verify_mismatch", "unsafe",
    // "protocol", "unsupported", "internal", "interrupted", "terminated": as `--json` errors name them.
    const std::string& kind() const { return kind_; }
    // The exit code the command would end with (64 usage, 65 bad input or unsafe, 69 not found, ...).
    int exit_code() const { return exit_code_; }
    const std::string& hint() const { return hint_; }
    // The flash address the failure concerns, when there is one.
    const std::optional<uint32_t>& address() const { return address_; }

private:
    std::string kind_;
    int exit_code_;
    std::string hint_;
    std::optional<uint32_t> address_;
};

struct ProgressEvent {
    std::string event;    // "started", "advanced", "finished", "note"
    std::string stage;    // "connect", "erase", "write", "verify", "read", "start"
    uint64_t done = 0;    // bytes (or steps) done in this stage
    uint64_t total = 0;   // 0 when not known
    std::string message;  // for notes
};

struct Options {
    // The command's options, with the command line's names.
    std::string device;          // -d: a serial port, usb:VID:PID, sim:NAME[:CHIP], can:IFACE:UUID, ...;
                                 // "" = the one bootloader or serial port found
    std::string protocol;        // -p ("" = what the device is known to speak)
    std::string board;           // --board: an ID, name or alias (`mcuflash boards`)
    std::string chip;            // --chip
    std::string bootloader;      // --bootloader
    std::string klipper_config;  // --klipper-config ("" = the .config beside a Klipper build; "none")
    std::optional<uint32_t> baud;          // -b
    std::optional<uint32_t> address;       // --address: where a raw .bin goes
    std::string format;                    // --format: the image's ("" = detect); for read(), the output
                                           // file's, as --output-format (hex, srec, bin; "" = its extension)
    bool no_reset = false;                 // --no-reset
    bool verify = true;                    // false: --no-verify
    bool start = true;                     // false: --no-start
    bool rewrite_unchanged = false;        // --rewrite-unchanged
    std::optional<unsigned> time_limit_seconds;  // --time-limit
    bool sim_fast = false;                 // --sim-fast
    std::string sim_faults;                // --sim-faults

    // Called for each progress event (may be empty).
    std::function<void(const ProgressEvent&)> on_progress;
    // Called for each message the command would print on stderr: level "info" or "warning".
    std::function<void(const std::string& level, const std::string& text)> on_message;
};

struct Result {
    std::string json;   // the command's result object, as `mcuflash --json` prints it
    std::string text;   // the result as the command prints it for people
};

// `mcuflash flash FILE`: writes, verifies (by the strongest check the bootloader allows: read-back or
// a hash; a write-only bootloader's result says "verified": false and why) and starts the application.
Result flash(const std::string& image_file, const Options& options);
// `mcuflash verify FILE`: throws Error with kind "verify_mismatch" when the device differs.
Result verify(const std::string& image_file, const Options& options);
// `mcuflash read -o FILE [--address A] [--length N]`; the format from the file's extension.
Result read(const std::string& out_file, const Options& options, std::optional<uint32_t> address = {},
            std::optional<uint32_t> length = {});
// `mcuflash info`: the chip, bootloader and flash layout.
Result info(const Options& options);
// `mcuflash list`: serial ports, USB devices and debug probes present, and what mcuflash knows them as.
Result list();

}  // namespace mcuflash
