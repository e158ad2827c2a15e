#pragma once
// Errors carry what was being done, where, the device's own words and a hint.
// The CLI maps ErrorKind to a sysexits-style exit code; the library never prints.
#include <cstdint>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>

namespace mcuflash::core {

enum class ErrorKind {
    Usage,           // 64: bad command line or unknown chip/protocol
    BadInput,        // 65: malformed or unsuitable firmware file
    NotFound,        // 69: device not found / not answering at all
    Io,              // 74: link or device failure mid-operation
    Timeout,         // 75: the device stopped answering
    Permission,      // 77: cannot open a device for lack of rights
    VerifyMismatch,  // 1: flash read back differs from the image
    Unsafe,          // 65: refused because it would damage the board
    Protocol,        // 74: the device answered something the protocol does not allow
    Unsupported,     // 69: the device is there, but it is a chip or bootloader mcuflash does not support
    Internal,        // 70: a bug in mcuflash
    Interrupted,     // 130: stopped by Ctrl-C (SIGINT)
    Terminated,      // 143: stopped by SIGTERM
};

int exit_code(ErrorKind kind);
const char* kind_name(ErrorKind kind);
// The kind kind_name() names (what another mcuflash's JSON error says); Internal for a word it never gives.
ErrorKind kind_by_name(std::string_view name);

class Error : public std::runtime_error {
public:
    Error(ErrorKind kind, std::string message, std::string hint = {})
        : std::runtime_error(std::move(message)), kind_(kind), hint_(std::move(hint)) {}

    ErrorKind kind() const { return kind_; }
    const std::string& hint() const { return hint_; }
    const std::optional<uint32_t>& address() const { return address_; }
    const std::string& operation() const { return operation_; }

    Error& at_address(uint32_t address) { address_ = address; return *this; }
    Error& during(std::string operation) { operation_ = std::move(operation); return *this; }
    Error& with_hint(std::string hint) { hint_ = std::move(hint); return *this; }
    // The message with what was being done: "writing 256 bytes at 0x1000: no answer ...".
    std::string full_message() const;

private:
    ErrorKind kind_;
    std::string hint_;
    std::optional<uint32_t> address_;
    std::string operation_;
};

}  // namespace mcuflash::core
