#pragma once
// Retrying an exchange with a bootloader after the line lost or damaged it: the one retry rule the
// byte-stream clients share (each brings its own way of getting back in step).
#include <string>

#include "core/error.hpp"

namespace mcuflash::protocol {

// A lost or damaged exchange (no answer, or one that makes no sense), as opposed to the device
// refusing a command or the link failing: worth trying again once back in step.
inline bool transmission_problem(const core::Error& e) {
    return e.kind() == core::ErrorKind::Timeout || e.kind() == core::ErrorKind::Protocol;
}

// Runs `step(attempt)` (attempt 0, 1, ...) and returns what it returns. After a transmission problem
// it calls `resynchronise(error)` and tries again, up to `retries` more times; any other error, or the
// last one, is thrown saying during what (`what`).
template <typename Step, typename Resynchronise>
auto with_retries(const std::string& what, int retries, Step step, Resynchronise resynchronise) {
    for (int attempt = 0;; ++attempt) {
        try {
            return step(attempt);
        } catch (const core::Error& e) {
            if (!transmission_problem(e) || attempt >= retries) {
                core::Error failure = e;
                throw failure.during(what);
            }
            resynchronise(e);
        }
    }
}

}  // namespace mcuflash::protocol
