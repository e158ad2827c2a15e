#pragma once
// Ctrl-C (SIGINT) and SIGTERM while a device is being written: the operation stops at the next
// exchange with the device, never inside one, so the bootloader is left between commands and the
// same command run again starts over cleanly. A second signal ends the process at once.
#include <stdexcept>
#include <string>

namespace mcuflash::core {

// Thrown by a link when a signal has arrived. Like TimeLimitExceeded, not a core::Error: no retry
// loop catches it.
class Interrupted : public std::runtime_error {
public:
    Interrupted(int signal, const std::string& what) : std::runtime_error(what), signal_(signal) {}
    int signal() const { return signal_; }

private:
    int signal_;
};

// Installs the SIGINT and SIGTERM handlers (the CLI does, once; libraries never do).
void catch_interrupts();
// The signal that arrived since catch_interrupts(), else 0.
int interrupt_signal();
// Throws Interrupted when a signal has arrived.
void throw_if_interrupted();

}  // namespace mcuflash::core
