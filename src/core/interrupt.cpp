#include "core/interrupt.hpp"

#include <csignal>

namespace mcuflash::core {

namespace {
volatile std::sig_atomic_t arrived = 0;

extern "C" void note_signal(int signal) { arrived = signal; }
}  // namespace

void catch_interrupts() {
    struct sigaction action {};
    action.sa_handler = note_signal;
    sigemptyset(&action.sa_mask);
    // The first signal is noted and the operation ends at the next exchange; the handler is then
    // reset, so a second one ends the process the ordinary way. No SA_RESTART: a blocked poll or
    // sleep returns early, and the link checks the note.
    action.sa_flags = SA_RESETHAND;
    sigaction(SIGINT, &action, nullptr);
    sigaction(SIGTERM, &action, nullptr);
}

int interrupt_signal() { return arrived; }

void throw_if_interrupted() {
    if (const int signal = arrived)
        throw Interrupted(signal, signal == SIGINT ? "interrupted (Ctrl-C)" : "stopped (SIGTERM)");
}

}  // namespace mcuflash::core
