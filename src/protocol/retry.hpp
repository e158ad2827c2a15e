#pragma once
// Retrying an exchange with a bootloader after the line lost or damaged it: the one retry rule the
// byte-stream clients share (each brings its own way of getting back in step).
#include <cstdint>
#include <optional>
#include <string>

#include <fmt/format.h>

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

// How many failed exchanges a session may recover from. Retrying each failure a few times in a row
// bounds one step, not the flash: a line that damages a large share of the exchanges would keep a
// whole flash retrying for a very long time. So a session is allowed a fixed number of failures plus
// one per `successes_per_failure` exchanges that worked, and ends with a clear error past that.
class FailureBudget {
public:
    static constexpr int kDefaultAllowance = 32;
    static constexpr int kDefaultSuccessesPerFailure = 8;

    explicit FailureBudget(int allowance = kDefaultAllowance, int successes_per_failure = kDefaultSuccessesPerFailure)
        : allowance_(allowance), successes_per_failure_(successes_per_failure) {}

    void success() { ++successes_; }

    // Counts `failure`; throws it, with the counts and what to do, once the budget is spent.
    void failure(const core::Error& failure, std::optional<uint32_t> at = std::nullopt) {
        if (++failures_ <= allowance_ + successes_ / successes_per_failure_) return;
        core::Error given_up(failure.kind(),
                             fmt::format("{} (gave up: {} exchanges failed, {} worked)", failure.what(), failures_,
                                         successes_),
                             "the line to the board damages too much: try another USB port or cable, or a lower --baud");
        if (at) given_up.at_address(*at);
        throw given_up;
    }

    int failures() const { return failures_; }
    int successes() const { return successes_; }

private:
    int allowance_, successes_per_failure_;
    int failures_ = 0, successes_ = 0;
};

}  // namespace mcuflash::protocol
