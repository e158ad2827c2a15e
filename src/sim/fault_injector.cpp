#include "sim/fault_injector.hpp"

#include <fmt/format.h>

#include <charconv>
#include <limits>
#include <utility>

#include "core/error.hpp"

namespace mcuflash::sim {

using core::Error;
using core::ErrorKind;

const char* direction_name(Direction direction) { return direction == Direction::Rx ? "rx" : "tx"; }

namespace {

struct ActionName {
    FaultAction action;
    const char* name;
};
constexpr ActionName kActions[] = {
    {FaultAction::Drop, "drop"},       {FaultAction::Corrupt, "corrupt"}, {FaultAction::Delay, "delay"},
    {FaultAction::Disconnect, "disconnect"}, {FaultAction::Reset, "reset"},
};

const char* action_name(FaultAction action) {
    for (const auto& a : kActions)
        if (a.action == action) return a.name;
    return "?";
}

std::vector<std::string_view> split(std::string_view text, char separator) {
    std::vector<std::string_view> parts;
    for (;;) {
        size_t at = text.find(separator);
        parts.push_back(text.substr(0, at));
        if (at == std::string_view::npos) return parts;
        text.remove_prefix(at + 1);
    }
}

// Parses one rule or seed item; `fail` builds the error that names the item.
class ItemParser {
public:
    explicit ItemParser(std::string_view item) : item_(item) {}

    [[noreturn]] void fail(const std::string& problem) const {
        throw Error(ErrorKind::Usage, fmt::format("fault spec item '{}': {}", item_, problem),
                    "see `mcuflash-sim --help` for the fault spec grammar");
    }

    uint64_t number(std::string_view text, const char* what, uint64_t max) const {
        int base = 10;
        if (text.size() > 2 && text[0] == '0' && (text[1] == 'x' || text[1] == 'X')) {
            text.remove_prefix(2);
            base = 16;
        }
        uint64_t value = 0;
        auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value, base);
        if (ec != std::errc{} || end != text.data() + text.size() || text.empty())
            fail(fmt::format("{} '{}' is not a whole number", what, text));
        if (value > max) fail(fmt::format("{} {} is larger than {}", what, value, max));
        return value;
    }

    double probability(std::string_view text) const {
        double value = 0;
        auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
        if (ec != std::errc{} || end != text.data() + text.size() || text.empty())
            fail(fmt::format("rate '{}' is not a number", text));
        if (!(value > 0.0 && value <= 1.0)) fail(fmt::format("rate {} is not in (0, 1]", text));
        return value;
    }

    FaultRule rule() const {
        FaultRule rule;
        std::string_view rest = item_;
        if (rest.substr(0, 3) == "rx:" || rest.substr(0, 3) == "tx:") {
            rule.direction = rest[0] == 'r' ? Direction::Rx : Direction::Tx;
            rest.remove_prefix(3);
        }
        size_t at = rest.find('@');
        if (at == std::string_view::npos)
            fail("expected [rx:|tx:]ACTION@TRIGGER, e.g. rx:drop@rate=0.01 or tx:corrupt@byte=100");
        std::string_view action = rest.substr(0, at);
        const ActionName* known = nullptr;
        for (const auto& a : kActions)
            if (action == a.name) known = &a;
        if (!known) fail(fmt::format("unknown action '{}' (drop, corrupt, delay, disconnect, reset)", action));
        rule.action = known->action;

        auto fields = split(rest.substr(at + 1), ':');
        trigger(fields[0], rule);
        bool has_ms = false, has_mask = false, has_cause = false;
        for (size_t i = 1; i < fields.size(); ++i) {
            auto [key, value] = key_value(fields[i]);
            if (key == "ms") {
                if (rule.action != FaultAction::Delay && rule.action != FaultAction::Disconnect)
                    fail("ms= applies to delay and disconnect only");
                if (std::exchange(has_ms, true)) fail("ms= given twice");
                rule.ms = static_cast<uint32_t>(number(value, "ms", 3'600'000));
            } else if (key == "mask") {
                if (rule.action != FaultAction::Corrupt) fail("mask= applies to corrupt only");
                if (std::exchange(has_mask, true)) fail("mask= given twice");
                rule.mask = static_cast<uint8_t>(number(value, "mask", 255));
                if (*rule.mask == 0) fail("mask=0 would change nothing");
            } else if (key == "cause") {
                if (rule.action != FaultAction::Reset) fail("cause= applies to reset only");
                if (std::exchange(has_cause, true)) fail("cause= given twice");
                if (value == "pin") rule.cause = ResetCause::Pin;
                else if (value == "power") rule.cause = ResetCause::PowerOn;
                else fail(fmt::format("cause '{}' is neither pin nor power", value));
            } else {
                fail(fmt::format("unknown parameter '{}' (ms, mask, cause)", key));
            }
        }
        if (rule.action == FaultAction::Delay && rule.ms == 0) fail("delay needs :ms=N (N > 0)");
        return rule;
    }

    uint32_t seed() const {
        return static_cast<uint32_t>(number(item_.substr(5), "seed", std::numeric_limits<uint32_t>::max()));
    }

private:
    std::pair<std::string_view, std::string_view> key_value(std::string_view field) const {
        size_t eq = field.find('=');
        if (eq == std::string_view::npos) fail(fmt::format("'{}' should be KEY=VALUE", field));
        return {field.substr(0, eq), field.substr(eq + 1)};
    }

    void trigger(std::string_view field, FaultRule& rule) const {
        auto [key, value] = key_value(field);
        if (key == "rate") rule.rate = probability(value);
        else if (key == "byte") rule.at_byte = number(value, "byte", std::numeric_limits<uint64_t>::max());
        else fail(fmt::format("unknown trigger '{}' (rate=P or byte=N)", key));
    }

    std::string_view item_;
};

}  // namespace

FaultSpec FaultSpec::parse(std::string_view text) {
    FaultSpec spec;
    if (text.empty()) return spec;
    bool seeded = false;
    for (std::string_view item : split(text, ',')) {
        ItemParser parser(item);
        if (item.empty()) parser.fail("empty item (stray comma?)");
        if (item.substr(0, 5) == "seed=") {
            if (std::exchange(seeded, true)) parser.fail("seed given twice");
            spec.seed = parser.seed();
        } else {
            spec.rules.push_back(parser.rule());
        }
    }
    return spec;
}

std::string FaultSpec::to_string() const {
    std::string out = fmt::format("seed={}", seed);
    for (const auto& r : rules) {
        out += fmt::format(",{}:{}@", direction_name(r.direction), action_name(r.action));
        out += r.rate ? fmt::format("rate={}", *r.rate) : fmt::format("byte={}", r.at_byte.value_or(0));
        if (r.ms) out += fmt::format(":ms={}", r.ms);
        if (r.mask) out += fmt::format(":mask=0x{:02x}", *r.mask);
        if (r.action == FaultAction::Reset) out += fmt::format(":cause={}", reset_cause_name(r.cause));
    }
    return out;
}

const char* fault_spec_help() {
    return "Fault spec: comma-separated items, applied between the wire and the device.\n"
           "  seed=N                      random seed (default 1); the same seed replays the same faults\n"
           "  [rx:|tx:]ACTION@TRIGGER[:PARAM...]\n"
           "    rx = host -> device (default), tx = device -> host\n"
           "    ACTION  drop | corrupt[:mask=N] | delay:ms=N | disconnect[:ms=N] | reset[:cause=pin|power]\n"
           "            delay stalls the line N ms before the byte; disconnect kills the link (for N ms,\n"
           "            else for good: the pty closes); reset replaces the byte by a reset (pin = RESET\n"
           "            pulsed -> bootloader; power = power cycle -> what the bootloader does on power-up)\n"
           "    TRIGGER rate=P (each byte with probability P) | byte=N (0-based offset in that direction,\n"
           "            counted since the simulator started)\n"
           "  e.g. seed=7,rx:drop@rate=0.001,tx:corrupt@byte=1500,rx:delay@byte=300:ms=2000,\n"
           "       rx:reset@byte=9000,disconnect@byte=20000\n";
}

FaultInjector::FaultInjector(FaultSpec spec) : spec_(std::move(spec)) {
    for (Direction d : {Direction::Rx, Direction::Tx}) {
        std::seed_seq seq{spec_.seed, static_cast<uint32_t>(d)};
        state(d).random.seed(seq);
    }
}

FaultVerdict FaultInjector::next(Direction direction, uint8_t value) {
    DirectionState& s = state(direction);
    uint64_t offset = s.offset++;
    FaultVerdict verdict;
    verdict.value = value;
    for (const auto& rule : spec_.rules) {
        if (rule.direction != direction) continue;
        bool hit = rule.at_byte ? *rule.at_byte == offset
                                // Drawn for every byte, hit or not, so the sequence depends only on the history.
                                : static_cast<double>(s.random()) / 4294967296.0 < *rule.rate;
        if (!hit) continue;
        std::string what;
        switch (rule.action) {
            case FaultAction::Drop:
                verdict.drop = true;
                what = "dropped";
                break;
            case FaultAction::Corrupt: {
                uint8_t mask = rule.mask ? *rule.mask : static_cast<uint8_t>(1 + s.random() % 255);
                verdict.value ^= mask;
                what = fmt::format("corrupted 0x{:02x} -> 0x{:02x}", value, verdict.value);
                break;
            }
            case FaultAction::Delay:
                verdict.stall += std::chrono::milliseconds(rule.ms);
                what = fmt::format("delayed {} ms", rule.ms);
                break;
            case FaultAction::Disconnect:
                verdict.disconnect = true;
                if (rule.ms) verdict.dead_for = std::chrono::milliseconds(rule.ms);
                what = rule.ms ? fmt::format("disconnect for {} ms", rule.ms) : std::string("disconnect");
                break;
            case FaultAction::Reset:
                verdict.reset = rule.cause;
                what = fmt::format("reset (cause {})", reset_cause_name(rule.cause));
                break;
        }
        log_.push_back(fmt::format("{} byte {}: {}", direction_name(direction), offset, what));
    }
    return verdict;
}

}  // namespace mcuflash::sim
