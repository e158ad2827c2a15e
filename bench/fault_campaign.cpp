// fault-campaign: many randomized, fault-injected flashes per protocol against the in-process
// simulators, each in a child process of its own, classified by what the simulated flash holds
// afterwards (not by what the client believes). Prints a table per protocol, the share of runs with
// a single fault that still ended in a good flash, and one reproduction line per finding: silent
// corruption, a changed bootloader, a crash or a hang (exit status 1 when there is one, and when a
// run could not be set up: a run that never flashed tested nothing).
//
// Every choice of a run (chip, bootloader, image, old flash contents, faults) comes from one 32-bit
// seed, which is also the fault injector's seed: `--protocols P --replay SEED` runs it again in this
// process and says what happened.
//
// With --interrupt, a run has no line faults: its flash is stopped before a random one of the writes
// it makes (a Ctrl-C, a SIGKILL, a closed laptop), at any write, mid-page or mid-command sequence, and
// the same flash is then run again by a new client, as a second `mcuflash flash` would, on the device
// in whatever state the first left it. Every rerun must end with exit 0 and the image in flash.
#include <fmt/format.h>
#include <fmt/ranges.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <cxxabi.h>
#include <algorithm>
#include <array>
#include <chrono>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <random>
#include <span>
#include <string>
#include <typeinfo>
#include <vector>

#include "core/error.hpp"
#include "core/interrupt.hpp"
#include "image/image.hpp"
#include "link/usb_hid_device.hpp"
#include "plan/flash_plan.hpp"
#include "protocol/bootloader.hpp"
#include "sim/dfu/simulator.hpp"
#include "sim/fault_injector.hpp"
#include "sim/flash_memory.hpp"
#include "sim/in_process_link.hpp"
#include "sim/open.hpp"
#include "sim/registry.hpp"
#include "sim/usb/in_process_usb.hpp"
#include "sim/usb/usb_registry.hpp"
#include "targets/knowledge.hpp"

using namespace mcuflash;
namespace fs = std::filesystem;

namespace {

using SteadyClock = std::chrono::steady_clock;

// ---- what a run is --------------------------------------------------------------------------

struct Target {
    std::string chip, bootloader;
};

// The USB simulators the campaign drives: bootloaders that take an application (not the drives,
// the probes or the CAN adapter, which have campaigns of their own to come).
bool is_usb(const std::string& protocol) {
    return protocol == "dfu" || protocol == "halfkay" || protocol == "hid-stm32" || protocol == "picoboot";
}

// Every (chip, bootloader) the protocol's simulator can run.
std::vector<Target> targets_of(const std::string& protocol) {
    std::vector<Target> out;
    if (protocol == "dfu") {
        for (const auto& entry : sim::dfu::dfu_simulator_chips()) out.push_back({entry.chip, entry.bootloader});
        return out;
    }
    if (is_usb(protocol)) {
        for (const auto& simulator : sim::usb::usb_simulators())
            if (simulator.protocol == protocol)
                for (const auto& chip : simulator.chips) out.push_back({chip, ""});
        return out;
    }
    for (const auto& personality : sim::find_simulator(protocol).personalities)
        for (const auto& chip : sim::chips_for(personality)) out.push_back({chip, personality.bootloader});
    return out;
}

// All the dice of one run, from its seed.
class Dice {
public:
    explicit Dice(uint32_t seed) : random_(seed) {}
    uint64_t between(uint64_t lo, uint64_t hi) { return std::uniform_int_distribution<uint64_t>(lo, hi)(random_); }
    bool coin() { return between(0, 1) == 1; }
    double log_uniform(double lo, double hi) {
        return std::exp(std::uniform_real_distribution<double>(std::log(lo), std::log(hi))(random_));
    }
    std::vector<uint8_t> bytes(size_t count) {
        std::vector<uint8_t> out(count);
        for (auto& b : out) b = static_cast<uint8_t>(random_());
        return out;
    }

private:
    std::mt19937 random_;
};

// What every run of a campaign shares.
struct RunSettings {
    uint32_t max_image = 64 * 1024;
    uint32_t max_old_firmware = 128 * 1024;
    bool inject_faults = true;  // off: the same runs on a clean line, a check of the campaign itself
    bool interrupt = false;     // stop each flash at a random write, then run it again (no line faults)
};

// One fault rule as the recovery table counts it.
struct FaultKind {
    std::string name;     // "rx drop", "usb stall"
    std::string trigger;  // "byte", "rate", "xfer"
};

struct Faults {
    std::string spec;              // what the simulator gets
    std::vector<FaultKind> kinds;  // one per rule
};

// Serial faults: 1 to 3 rules (half the runs one, which the recovery table counts), each at a byte
// offset inside the traffic a flash of `image_size` makes (writing it, reading it back) or at a low rate.
Faults serial_faults(Dice& dice, uint32_t seed, uint32_t image_size) {
    static const char* const kActions[] = {"drop", "corrupt", "delay", "disconnect", "reset"};
    const uint64_t traffic = image_size + image_size / 8 + 1024;
    const uint64_t roll = dice.between(1, 10);
    const int rules = roll <= 5 ? 1 : roll <= 8 ? 2 : 3;
    Faults faults{fmt::format("seed={}", seed), {}};
    for (int i = 0; i < rules; ++i) {
        const std::string action = kActions[dice.between(0, 4)];
        const std::string direction = dice.coin() ? "tx" : "rx";
        const bool at_byte = dice.coin();
        std::string rule = fmt::format("{}:{}@", direction, action);
        rule += at_byte ? fmt::format("byte={}", dice.between(0, traffic))
                        : fmt::format("rate={:.2e}", dice.log_uniform(1e-5, 3e-3));
        if (action == "corrupt" && dice.coin()) rule += fmt::format(":mask=0x{:02x}", 1u << dice.between(0, 7));
        if (action == "delay") rule += fmt::format(":ms={}", dice.between(50, 1500));
        if (action == "disconnect") rule += fmt::format(":ms={}", dice.between(100, 3000));
        if (action == "reset") rule += dice.coin() ? ":cause=pin" : ":cause=power";
        faults.spec += "," + rule;
        faults.kinds.push_back({direction + " " + action, at_byte ? "byte" : "rate"});
    }
    sim::FaultSpec::parse(faults.spec);  // a campaign bug, not a finding: fail loudly
    return faults;
}

// USB faults: 1 to 3 of stall, timeout, vanish at the Nth transfer, control or interrupt (a DFU
// download block takes a DNLOAD and GETSTATUS or two, an upload block one transfer; a HID bootloader
// sends a block of 64-byte reports, each a transfer).
Faults usb_faults(Dice& dice, uint32_t image_size, uint32_t block_size) {
    const uint64_t transfers = 5 * ((image_size + block_size - 1) / block_size) + 40;
    const uint64_t roll = dice.between(1, 10);
    const int rules = roll <= 5 ? 1 : roll <= 8 ? 2 : 3;
    Faults faults;
    bool vanishes = false;
    for (int i = 0; i < rules; ++i) {
        std::string action = std::array{"stall", "timeout", "vanish"}[dice.between(0, 2)];
        if (action == "vanish" && std::exchange(vanishes, true)) action = "stall";  // the bus has one vanish
        faults.spec += fmt::format("{}{}@{}", faults.spec.empty() ? "" : ",", action, dice.between(0, transfers));
        faults.kinds.push_back({"usb " + action, "xfer"});
    }
    sim::usb::UsbFaults::parse(faults.spec);
    return faults;
}

// ---- what a child reports --------------------------------------------------------------------

enum class Outcome : uint8_t {
    Ok,          // no exception
    Failed,      // core::Error: an honest failure
    Unexpected,  // another exception type escaped: counted as a crash
    Setup,       // the campaign could not set the run up (a fault-free connect or plan failed)
    Crash,       // the child died on a signal or without a result
    Hang,        // the child was killed at the bound
};

const char* outcome_name(Outcome outcome) {
    switch (outcome) {
        case Outcome::Ok: return "ok";
        case Outcome::Failed: return "failed";
        case Outcome::Unexpected: return "unexpected-exception";
        case Outcome::Setup: return "setup-error";
        case Outcome::Crash: return "crash";
        case Outcome::Hang: return "hang";
    }
    return "?";
}

template <size_t N>
void copy_text(char (&to)[N], const std::string& from) {
    std::snprintf(to, N, "%s", from.c_str());
}

// Written whole to the pipe (smaller than PIPE_BUF, so never interleaved): a Plan record as soon as
// the run is chosen, so that a crash or a hang can still be reproduced, then a Result record.
struct Record {
    enum class Type : uint8_t { Plan, Result } type = Type::Plan;
    // Plan
    char chip[40]{}, bootloader[40]{}, faults[400]{};
    char single_kind[24]{}, single_trigger[8]{};  // empty unless the run has exactly one rule
    uint32_t image_address = 0, image_size = 0;
    uint32_t old_address = 0, old_size = 0;  // old_size 0: the simulator's erased flash
    uint32_t stop_before = 0, writes = 0;    // --interrupt: stopped before write stop_before of `writes`
    // Result
    Outcome outcome = Outcome::Ok;
    int8_t error_kind = -1;  // core::ErrorKind with Outcome::Failed
    bool image_held = false;
    bool stopped = false;  // --interrupt: the first flash ended at the stop (and nothing else ended it)
    bool bootloader_intact = true;
    uint64_t violations = 0;          // refused erases/programs in protected ranges
    uint64_t outside_changed = 0;     // bytes outside what the image may change that changed
    uint32_t first_outside = 0;
    uint64_t outside_by_faults = 0;   // of those, bytes the same flash without faults leaves as they were
    uint32_t first_by_faults = 0;
    uint64_t image_bytes_wrong = 0;
    uint32_t first_wrong = 0;
    char message[1200]{};
};
static_assert(sizeof(Record) < PIPE_BUF);
static_assert(std::is_trivially_copyable_v<Record>);

// ---- one run ---------------------------------------------------------------------------------

// The simulated USB device under a link the simulators opened: the device itself, or under the HID
// link its client is given.
sim::usb::InProcessUsb& usb_of(link::Link& link) {
    if (link.kind() == link::LinkKind::Hid)
        return static_cast<sim::usb::InProcessUsb&>(static_cast<link::UsbHidDevice&>(link).usb());
    return static_cast<sim::usb::InProcessUsb&>(link);
}

sim::FlashMemory& flash_of(link::Link& link) {
    if (link.kind() != link::LinkKind::ByteStream) return usb_of(link).model().flash();
    return static_cast<sim::InProcessLink&>(link).flash();
}

sim::SimulatedOptions simulated_options(const std::string& protocol, const Target& target, const std::string& faults) {
    const auto& proto = protocol::find_protocol(protocol);
    sim::SimulatedOptions options;
    options.chip = target.chip;
    options.bootloader = target.bootloader;
    options.faults = faults;
    options.timing = false;  // fast: waits are skipped in simulated time
    options.settings = proto.serial;
    // The device listens at its bootloader's usual rate (ATmegaBOOT: 57600), as the CLI finds it.
    if (const auto* bl = targets::Knowledge::builtin().find_bootloader(target.bootloader); bl && bl->baud)
        options.settings.baud = bl->baud;
    return options;
}

// The addresses a flash of [address, address + size) may change: the erase units it touches where
// the device erases in units, else the write units.
std::pair<uint64_t, uint64_t> may_change(const protocol::Capabilities& caps, uint32_t address, uint32_t size) {
    const uint64_t end = uint64_t(address) + size;
    if (!caps.erase_units.empty()) {
        uint64_t lo = address, hi = end;
        for (const auto& unit : caps.erase_units)
            if (unit.address < end && unit.end() > address) {
                lo = std::min<uint64_t>(lo, unit.address);
                hi = std::max<uint64_t>(hi, unit.end());
            }
        return {lo, hi};
    }
    const uint64_t unit = std::max<uint32_t>(caps.write_unit, 1);
    return {address / unit * unit, (end + unit - 1) / unit * unit};
}

// Where the image goes and how large it may be: at the application start (above a ROM bootloader's
// boot area), on an erase-unit boundary, and ending where a whole erase unit still fits.
std::pair<uint32_t, uint32_t> image_window(const protocol::DeviceInfo& info, const protocol::Capabilities& caps) {
    uint64_t start = std::max<uint64_t>(info.app_start, info.boot_area_end.value_or(0));
    uint64_t limit = info.app_end;
    if (!caps.erase_units.empty()) {
        std::optional<uint64_t> first, last_end;
        for (const auto& unit : caps.erase_units) {
            if (unit.address < start || unit.end() > info.app_end) continue;
            if (!first) first = unit.address;
            last_end = std::max<uint64_t>(last_end.value_or(0), unit.end());
        }
        if (!first) throw core::Error(core::ErrorKind::Internal, "no whole erase unit in the application region");
        start = *first;
        limit = *last_end;
    }
    return {static_cast<uint32_t>(start), static_cast<uint32_t>(limit - start)};
}

// Random bytes that start as a real application does, so that the plan's link-address check takes
// them for what they are: an AVR's `jmp __ctors_end`, a Cortex-M vector table pointing into itself.
std::vector<uint8_t> plausible_application(Dice& dice, const std::string& chip, uint32_t address, uint32_t size) {
    auto bytes = dice.bytes(size);
    if (size < 8) return bytes;
    auto put32 = [&](size_t at, uint32_t value) {
        for (int i = 0; i < 4; ++i) bytes[at + i] = static_cast<uint8_t>(value >> (8 * i));
    };
    if (targets::Knowledge::builtin().chip(chip).family == "avr") {
        put32(0, 0x0034940C);
    } else {
        // The initial stack pointer, then the reset handler and the other system exception handlers
        // (entries 1 to 15) in the image, as in linked firmware: a random word there could point
        // outside it, and the plan would rightly take the image for one linked for another start.
        put32(0, 0x20002000);
        for (size_t entry = 1; entry < 16 && (entry + 1) * 4 <= size; ++entry)
            put32(entry * 4, (address + static_cast<uint32_t>(dice.between(8, size - 2))) | 1);
    }
    return bytes;
}

// Puts an older application in place as a factory programmer would, bypassing the protocol, and
// leaves the simulated bootloader's placeholder alone.
void load_around_bootloader(sim::FlashMemory& flash, uint32_t address, std::span<const uint8_t> bytes) {
    auto loadable = [&](uint64_t at) {
        if (at > UINT32_MAX || !flash.contains(static_cast<uint32_t>(at), 1)) return false;
        return std::none_of(flash.protected_ranges().begin(), flash.protected_ranges().end(),
                            [&](const sim::ProtectedRange& r) { return at >= r.address && at < r.end(); });
    };
    for (size_t i = 0; i < bytes.size();) {
        if (!loadable(uint64_t(address) + i)) {
            ++i;
            continue;
        }
        size_t end = i;
        while (end < bytes.size() && loadable(uint64_t(address) + end)) ++end;
        flash.load(address + static_cast<uint32_t>(i), bytes.subspan(i, end - i));
        i = end;
    }
}

// "std::out_of_range" rather than "St12out_of_range".
std::string type_name(const std::type_info& type) {
    int status = 0;
    std::unique_ptr<char, void (*)(void*)> name(abi::__cxa_demangle(type.name(), nullptr, nullptr, &status), std::free);
    return status == 0 && name ? name.get() : type.name();
}

// Whether a line of a link's trace opens something the host sends: a serial write, a USB request or
// transfer out, a HID report ("+1.234567 > ..."; a long one goes on in indented lines). These are the
// points at which --interrupt stops a flash, as a signal stops mcuflash between two of them.
bool is_host_write(const std::string& line) {
    const size_t space = line.find(' ');
    return !line.empty() && line[0] == '+' && space != std::string::npos && space + 1 < line.size() &&
           line[space + 1] == '>';
}

struct RunDetails {  // what a replay prints beyond the record
    std::vector<std::string> fault_log, warnings, device_trace;
    std::string hint;
    plan::FlashReport report;
    image::Image image;
    std::vector<uint8_t> before, after;
    uint32_t flash_base = 0;
};

// Chooses and runs one flash; `send` gets the Plan record, then the Result record.
void run_one(const std::string& protocol, uint32_t seed, const RunSettings& settings,
             const std::function<void(const Record&)>& send, RunDetails* details = nullptr) {
    Record record;
    Dice dice(seed);
    const auto targets = targets_of(protocol);
    const Target target = targets.at(dice.between(0, targets.size() - 1));
    copy_text(record.chip, target.chip);
    copy_text(record.bootloader, target.bootloader);
    const auto& proto = protocol::find_protocol(protocol);

    bool plan_sent = false;
    auto setup_failed = [&](const std::string& what) {
        if (!plan_sent) send(record);  // the chip and the image, for the report's line
        record.type = Record::Type::Result;
        record.outcome = Outcome::Setup;
        copy_text(record.message, what);
        send(record);
    };

    // A fault-free connect on a simulator of its own tells where the application goes; the same
    // flash without faults then shows what the device changes by design (a plain DFU bootloader
    // erases whole sectors), so that what the faults changed stands apart.
    protocol::DeviceInfo info;
    protocol::Capabilities caps;
    std::unique_ptr<link::Link> clean;
    std::unique_ptr<protocol::Bootloader> clean_client;
    uint32_t clean_writes = 0;
    try {
        clean = sim::open_simulated(protocol, simulated_options(protocol, target, ""));
        if (settings.interrupt) clean->set_trace([&](const std::string& line) { clean_writes += is_host_write(line); });
        clean_client = proto.make(*clean, protocol::ConnectOptions{});
        info = clean_client->connect();
        caps = clean_client->capabilities();
    } catch (const std::exception& e) {
        return setup_failed(fmt::format("fault-free connect: {}", e.what()));
    }

    const auto [window_start, window_size] = image_window(info, caps);
    const uint32_t image_size = static_cast<uint32_t>(
        dice.between(std::min<uint32_t>(256, window_size), std::min(window_size, settings.max_image)));
    image::Image img;
    img.add(window_start, plausible_application(dice, target.chip, window_start, image_size), "campaign");
    record.image_address = window_start;
    record.image_size = image_size;

    // Half the runs start on erased flash, half over an older application of random bytes.
    std::vector<uint8_t> old_firmware;
    if (dice.coin()) {
        const uint32_t region = info.app_end - info.app_start;
        old_firmware = dice.bytes(dice.between(std::min<uint32_t>(256, region), std::min(region, settings.max_old_firmware)));
        record.old_address = info.app_start;
        record.old_size = static_cast<uint32_t>(old_firmware.size());
    }

    std::vector<uint8_t> clean_after;
    try {
        load_around_bootloader(flash_of(*clean), info.app_start, old_firmware);
        plan::execute(*clean_client, plan::make_plan(img, info, caps, {}), {}, core::Progress());
        const auto contents = flash_of(*clean).contents();
        clean_after.assign(contents.begin(), contents.end());
    } catch (const std::exception& e) {
        return setup_failed(fmt::format("fault-free flash: {}", e.what()));
    }
    clean_client.reset();
    clean.reset();

    const uint32_t transfer_block = sim::simulated_link_kind(protocol) == link::LinkKind::Hid
                                        ? 64 : std::max<uint32_t>(caps.write_unit, 64);
    Faults faults = is_usb(protocol) ? usb_faults(dice, image_size, transfer_block)
                                     : serial_faults(dice, seed, image_size);
    if (!settings.inject_faults || settings.interrupt) faults = {};
    if (settings.interrupt) {
        // The same writes as the fault-free flash, so any one of them but the first can be the stop.
        if (clean_writes < 2) return setup_failed(fmt::format("the flash makes {} writes, too few to stop", clean_writes));
        record.writes = clean_writes;
        record.stop_before = static_cast<uint32_t>(dice.between(1, clean_writes - 1));
    }
    copy_text(record.faults, faults.spec);
    if (faults.kinds.size() == 1) {
        copy_text(record.single_kind, faults.kinds.front().name);
        copy_text(record.single_trigger, faults.kinds.front().trigger);
    }
    send(record);
    plan_sent = true;

    std::unique_ptr<link::Link> link;
    try {
        link = sim::open_simulated(protocol, simulated_options(protocol, target, faults.spec));
    } catch (const core::Error& e) {
        if (faults.spec.empty()) return setup_failed(fmt::format("opening the simulator: {}", e.what()));
        // A fault in the opening itself (a USB device that vanishes at its first transfer): mcuflash
        // found no device and never touched the flash, an honest failure.
        record.type = Record::Type::Result;
        record.outcome = Outcome::Failed;
        record.error_kind = static_cast<int8_t>(e.kind());
        copy_text(record.message, e.full_message());
        record.image_bytes_wrong = image_size;  // nothing of the image was written
        return send(record);
    } catch (const std::exception& e) {
        return setup_failed(fmt::format("opening the simulator: {}", e.what()));
    }
    sim::FlashMemory& flash = flash_of(*link);
    load_around_bootloader(flash, info.app_start, old_firmware);
    const std::vector<uint8_t> before(flash.contents().begin(), flash.contents().end());
    if (details && link->kind() == link::LinkKind::ByteStream)
        static_cast<sim::InProcessLink&>(*link).device().set_trace(
            [details](const std::string& line) { details->device_trace.push_back(line); });

    record.type = Record::Type::Result;
    protocol::ConnectOptions connect;
    connect.warn = [details](const std::string& w) {
        if (details) details->warnings.push_back(w);
    };
    if (settings.interrupt) {
        // The first flash, stopped before write `stop_before`: that write and every later one throw,
        // so the device hears nothing more from this client, as from a killed process.
        uint32_t writes_seen = 0;
        link->set_trace([&writes_seen, stop = record.stop_before](const std::string& line) {
            if (!is_host_write(line)) return;
            if (writes_seen >= stop) throw core::Interrupted(SIGKILL, "stopped by the campaign");
            ++writes_seen;
        });
        try {
            auto client = proto.make(*link, connect);
            auto device = client->connect();
            plan::execute(*client, plan::make_plan(img, device, client->capabilities(), {}), {}, core::Progress());
            copy_text(record.message, "the first flash was not stopped: it ended with exit 0");
        } catch (const core::Interrupted&) {
            record.stopped = true;
        } catch (const std::exception& e) {
            copy_text(record.message, fmt::format("the first flash ended before its stop: {}", e.what()));
        }
        link->set_trace({});
        if (details)
            details->fault_log.push_back(fmt::format("the first flash was stopped before write {} of {}{}",
                                                     record.stop_before, record.writes,
                                                     record.stopped ? "" : " (it did not get there)"));
        // The second `mcuflash flash` opens the port again (an Arduino's auto-reset pulses its RESET);
        // a USB device is opened where it is, in whatever state the first left it.
        if (link->kind() == link::LinkKind::ByteStream) static_cast<sim::InProcessLink&>(*link).reopen();
    }
    plan::FlashReport report;
    try {
        auto client = proto.make(*link, connect);
        auto device = client->connect();
        auto flash_plan = plan::make_plan(img, device, client->capabilities(), {});
        plan::execute(*client, flash_plan, {}, core::Progress(), report);
        record.outcome = Outcome::Ok;
    } catch (const core::Error& e) {
        record.outcome = Outcome::Failed;
        record.error_kind = static_cast<int8_t>(e.kind());
        copy_text(record.message, e.full_message());
        if (details) details->hint = e.hint();
    } catch (const std::exception& e) {
        record.outcome = Outcome::Unexpected;
        copy_text(record.message, fmt::format("{}: {}", type_name(typeid(e)), e.what()));
    }

    // What the flash holds now, whatever the client believes.
    const auto [lo, hi] = may_change(caps, window_start, image_size);
    const auto& bytes = img.runs().begin()->second;
    for (uint32_t i = 0; i < image_size; ++i)
        // A byte past the simulated chip's flash (a client that took it for a larger chip) is wrong too.
        if ((!flash.contains(window_start + i, 1) || flash.at(window_start + i) != bytes[i]) &&
            record.image_bytes_wrong++ == 0)
            record.first_wrong = window_start + i;
    record.image_held = record.image_bytes_wrong == 0;
    record.bootloader_intact = flash.protected_ranges_intact();
    record.violations = flash.counters().violations;
    const auto after = flash.contents();
    for (size_t i = 0; i < after.size(); ++i) {
        const uint64_t at = uint64_t(flash.base()) + i;
        if ((at >= lo && at < hi) || after[i] == before[i]) continue;
        if (record.outside_changed++ == 0) record.first_outside = static_cast<uint32_t>(at);
        if (after[i] != clean_after[i] && record.outside_by_faults++ == 0) record.first_by_faults = static_cast<uint32_t>(at);
    }
    if (details) {
        if (link->kind() == link::LinkKind::ByteStream)
            details->fault_log = static_cast<sim::InProcessLink&>(*link).faults().log();
        else
            details->fault_log.push_back(
                fmt::format("{} USB transfers", usb_of(*link).transfers()));
        for (const auto& v : flash.violations()) details->fault_log.push_back("flash: " + v);
        details->report = report;
        details->image = img;
        details->before = before;
        details->after.assign(after.begin(), after.end());
        details->flash_base = flash.base();
    }
    send(record);
}

// ---- the campaign: children, bounds, tallies ---------------------------------------------------

struct Job {
    std::string protocol;
    uint32_t seed = 0;
};

struct Finished {
    Job job;
    std::optional<Record> plan;  // nullopt when the child died before choosing
    Record result;               // outcome Crash/Hang filled in by the parent
    double seconds = 0;
    int signal = 0;  // Crash: the signal, 0 for an exit without a result
};

struct Child {
    pid_t pid = -1;
    int fd = -1;
    Job job;
    SteadyClock::time_point started;
    std::vector<char> buffer;
    std::optional<Record> plan, result;
};

Child spawn(const Job& job, const RunSettings& settings) {
    int fds[2];
    if (pipe(fds) != 0) throw std::runtime_error(fmt::format("pipe: {}", std::strerror(errno)));
    std::fflush(stdout);
    std::fflush(stderr);
    const pid_t pid = fork();
    if (pid < 0) throw std::runtime_error(fmt::format("fork: {}", std::strerror(errno)));
    if (pid == 0) {
        close(fds[0]);
        auto send = [fd = fds[1]](const Record& r) {
            if (write(fd, &r, sizeof r) != static_cast<ssize_t>(sizeof r)) _exit(3);
        };
        try {
            run_one(job.protocol, job.seed, settings, send);
        } catch (const std::exception& e) {
            // Escaped from the campaign's own set-up: report it as that, not as the client's crash.
            Record r;
            r.type = Record::Type::Result;
            r.outcome = Outcome::Setup;
            copy_text(r.message, fmt::format("campaign: {}", e.what()));
            send(r);
        }
        _exit(0);  // no atexit handlers, no flushing of the parent's buffers twice
    }
    close(fds[1]);
    Child child;
    child.pid = pid;
    child.fd = fds[0];
    child.job = job;
    child.started = SteadyClock::now();
    return child;
}

// Takes whole records out of what the child wrote so far.
void take_records(Child& child) {
    while (child.buffer.size() >= sizeof(Record)) {
        Record r;
        std::memcpy(&r, child.buffer.data(), sizeof r);
        child.buffer.erase(child.buffer.begin(), child.buffer.begin() + sizeof r);
        (r.type == Record::Type::Plan ? child.plan : child.result) = r;
    }
}

Finished reap(Child& child, bool killed) {
    if (killed) kill(child.pid, SIGKILL);
    int status = 0;
    waitpid(child.pid, &status, 0);
    close(child.fd);
    Finished done;
    done.job = child.job;
    done.plan = child.plan;
    done.seconds = std::chrono::duration<double>(SteadyClock::now() - child.started).count();
    if (child.result) done.result = *child.result;
    if (killed) {
        done.result.outcome = Outcome::Hang;
    } else if (WIFSIGNALED(status)) {
        done.result.outcome = Outcome::Crash;
        done.signal = WTERMSIG(status);
    } else if (!child.result) {
        done.result.outcome = Outcome::Crash;
        copy_text(done.result.message, fmt::format("exited with {} and no result", WEXITSTATUS(status)));
    }
    return done;
}

// Runs every job in a child of its own, `jobs` at a time, each killed after `bound`.
void run_children(const std::vector<Job>& queue, int jobs, std::chrono::seconds bound, const RunSettings& settings,
                  const std::function<void(const Finished&)>& on_finished) {
    std::vector<Child> active;
    size_t next = 0;
    while (next < queue.size() || !active.empty()) {
        while (next < queue.size() && active.size() < static_cast<size_t>(jobs)) active.push_back(spawn(queue[next++], settings));
        std::vector<pollfd> fds;
        for (const auto& c : active) fds.push_back({c.fd, POLLIN, 0});
        poll(fds.data(), fds.size(), 100);
        for (size_t i = 0; i < active.size();) {
            Child& c = active[i];
            bool eof = false;
            if (fds[i].revents & (POLLIN | POLLHUP | POLLERR)) {
                char chunk[8192];
                const ssize_t n = read(c.fd, chunk, sizeof chunk);
                if (n > 0) c.buffer.insert(c.buffer.end(), chunk, chunk + n);
                else if (n == 0 || errno != EINTR) eof = true;
                take_records(c);
            }
            const bool over = SteadyClock::now() - c.started > bound;
            if (eof || over) {
                on_finished(reap(c, !eof));
                active.erase(active.begin() + static_cast<long>(i));
                fds.erase(fds.begin() + static_cast<long>(i));
            } else {
                ++i;
            }
        }
    }
}

struct Tally {
    int runs = 0, ok = 0, failed = 0, silent = 0, bootloader_changed = 0, refused_runs = 0, outside_runs = 0,
        outside_ok_runs = 0, outside_design_runs = 0, hangs = 0, crashes = 0, setup = 0, stopped = 0;
    double seconds = 0, max_seconds = 0;
    std::map<std::string, int> errors;  // error kind -> runs
};

struct Recovery {
    int runs = 0, ok = 0;
};

// The findings a CI run fails on.
bool silent_corruption(const Record& r) { return r.outcome == Outcome::Ok && !r.image_held; }
bool bootloader_changed(const Record& r) { return !r.bootloader_intact; }
bool crashed(const Record& r) { return r.outcome == Outcome::Crash || r.outcome == Outcome::Unexpected; }
// --interrupt: the flash run again after the stop must end with exit 0 (no line faults), and the
// first must have ended at the stop.
bool rerun_failed(const Record& r, const RunSettings& settings) {
    return settings.interrupt && (r.outcome == Outcome::Failed || !r.stopped);
}
// Exit 0 while the faults changed flash outside the units the image touches: listed, but not a CI
// failure (the brief's four are).
bool silent_outside_damage(const Record& r) { return r.outcome == Outcome::Ok && r.outside_by_faults > 0; }
// Outside changes a fault-free flash makes too: the device's design (a plain DFU bootloader erases
// whole sectors where its capabilities speak of blocks).
bool outside_by_design(const Record& r) { return r.outside_changed > r.outside_by_faults; }

std::string finding_kinds(const Record& r, const RunSettings& settings) {
    std::vector<std::string> kinds;
    if (rerun_failed(r, settings)) kinds.push_back(r.stopped ? "RERUN-FAILED" : "NOT-STOPPED");
    if (silent_corruption(r)) kinds.push_back("SILENT-CORRUPTION");
    if (bootloader_changed(r)) kinds.push_back("BOOTLOADER-CHANGED");
    if (crashed(r)) kinds.push_back("CRASH");
    if (r.outcome == Outcome::Hang) kinds.push_back("HANG");
    return fmt::format("{}", fmt::join(kinds, "+"));
}

// What a replay needs besides the protocol and the seed: the settings that shape a run.
std::string replay_options(const RunSettings& settings) {
    std::string out;
    if (settings.max_image != RunSettings{}.max_image) out += fmt::format(" --max-image-kib {}", settings.max_image / 1024);
    if (!settings.inject_faults) out += " --no-faults";
    if (settings.interrupt) out += " --interrupt";
    return out;
}

std::string reproduction(const Finished& f, const RunSettings& settings) {
    std::string out = fmt::format("protocol={} seed={}", f.job.protocol, f.job.seed);
    if (f.plan) {
        const Record& p = *f.plan;
        out += fmt::format(" chip={} bootloader={} faults='{}' image=0x{:08x}+{} start={}", p.chip, p.bootloader,
                           p.faults, p.image_address, p.image_size,
                           p.old_size ? fmt::format("old-firmware@0x{:08x}+{}", p.old_address, p.old_size) : "erased");
        if (p.writes) out += fmt::format(" stopped-before-write={}/{}", p.stop_before, p.writes);
    }
    const Record& r = f.result;
    out += fmt::format(" -> {}", outcome_name(r.outcome));
    if (r.outcome == Outcome::Failed) out += fmt::format(" ({})", core::kind_name(static_cast<core::ErrorKind>(r.error_kind)));
    if (f.signal) out += fmt::format(" (signal {}: {})", f.signal, strsignal(f.signal));
    if (r.outcome == Outcome::Ok || r.outcome == Outcome::Failed || r.outcome == Outcome::Unexpected) {
        if (!r.image_held) out += fmt::format("; {} image bytes wrong, first at 0x{:08x}", r.image_bytes_wrong, r.first_wrong);
        if (r.outside_changed)
            out += fmt::format("; {} bytes outside the image's units changed, first at 0x{:08x} ({} of them not by a "
                               "fault-free flash{})",
                               r.outside_changed, r.first_outside, r.outside_by_faults,
                               r.outside_by_faults ? fmt::format(", first at 0x{:08x}", r.first_by_faults) : "");
        if (!r.bootloader_intact) out += "; bootloader region changed";
        if (r.violations) out += fmt::format("; {} refused writes into the bootloader", r.violations);
    }
    if (r.message[0]) out += fmt::format("; \"{}\"", r.message);
    out += fmt::format("  [replay: fault-campaign --protocols {} --replay {}{}]", f.job.protocol, f.job.seed,
                       replay_options(settings));
    return out;
}

std::string csv_field(std::string text) {
    if (text.find_first_of(",\"\n") == std::string::npos) return text;
    std::string out = "\"";
    for (char c : text) out += c == '"' ? std::string("\"\"") : std::string(1, c);
    return out + "\"";
}

uint32_t run_seed(uint32_t campaign_seed, const std::string& protocol, int index) {
    // splitmix64 over (campaign seed, protocol, index): independent-looking seeds, stable across builds
    uint64_t x = campaign_seed;
    for (char c : protocol) x = x * 131 + static_cast<uint8_t>(c);
    x += 0x9E3779B97F4A7C15ull * static_cast<uint64_t>(index + 1);
    x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
    x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
    return static_cast<uint32_t>(x ^ (x >> 31));
}

void write_file(const fs::path& path, std::span<const uint8_t> bytes) {
    std::ofstream out(path, std::ios::binary);
    out.write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
}

// One run in this process, told in words; with `keep`, its image and the flash before and after.
int replay(const std::string& protocol, uint32_t seed, const RunSettings& settings, const std::optional<fs::path>& keep,
           bool trace) {
    RunDetails details;
    std::optional<Record> plan, result;
    run_one(protocol, seed, settings,
            [&](const Record& r) { (r.type == Record::Type::Plan ? plan : result) = r; }, &details);
    Finished f{{protocol, seed}, plan, *result, 0, 0};
    fmt::print("{}\n", reproduction(f, settings));
    if (!details.hint.empty()) fmt::print("hint: {}\n", details.hint);
    for (const auto& w : details.warnings) fmt::print("warning: {}\n", w);
    for (const auto& line : details.fault_log) fmt::print("fault: {}\n", line);
    if (trace)
        for (const auto& line : details.device_trace) fmt::print("device: {}\n", line);
    const auto& rep = details.report;
    fmt::print("report: erased {} written {} pages {} rewritten {} verified {} outside_checked {} started {}\n",
               rep.bytes_erased, rep.bytes_written, rep.pages_written, rep.pages_rewritten, rep.verified,
               rep.outside_checked, rep.started);
    if (keep && result->outcome != Outcome::Setup) {
        fs::create_directories(*keep);
        const auto& run = details.image.runs().begin()->second;
        write_file(*keep / "image.bin", run);
        write_file(*keep / "flash-before.bin", details.before);
        write_file(*keep / "flash-after.bin", details.after);
        std::ofstream(*keep / "run.txt") << reproduction(f, settings) << fmt::format("\nflash base 0x{:08x}\n", details.flash_base);
        fmt::print("kept image.bin, flash-before.bin, flash-after.bin (from 0x{:08x}) in {}\n", details.flash_base,
                   keep->string());
    }
    const Record& r = *result;
    const bool finding = silent_corruption(r) || bootloader_changed(r) || crashed(r) ||
                         (r.outcome != Outcome::Setup && rerun_failed(r, settings));
    return finding ? 1 : 0;
}

std::vector<std::string> split_list(const std::string& text) {
    std::vector<std::string> out;
    size_t start = 0;
    while (start <= text.size()) {
        size_t end = text.find(',', start);
        if (end == std::string::npos) end = text.size();
        if (end > start) out.push_back(text.substr(start, end - start));
        start = end + 1;
    }
    return out;
}

}  // namespace

int main(int argc, char** argv) {
    CLI::App app{"Randomized fault-injected flashes against the in-process simulators, one child process per run"};
    int runs_per_protocol = 200;
    std::string protocol_list;
    uint32_t campaign_seed = 1;
    int jobs = 1;
    int bound_seconds = 120;
    std::string csv_path;
    std::optional<uint32_t> replay_seed;
    std::string keep_dir;
    bool trace = false;
    RunSettings settings;
    uint32_t max_image_kib = settings.max_image / 1024;
    app.add_option("--runs-per-protocol", runs_per_protocol, "runs for each protocol")->check(CLI::PositiveNumber);
    app.add_option("--protocols", protocol_list, "comma-separated protocols (default: all)");
    app.add_option("--seed", campaign_seed, "campaign seed: each run's seed derives from it");
    app.add_option("--jobs", jobs, "children at once")->check(CLI::Range(1, 64));
    app.add_option("--bound-seconds", bound_seconds, "wall time after which a run counts as a hang")->check(CLI::PositiveNumber);
    app.add_option("--csv", csv_path, "one line per run");
    app.add_option("--max-image-kib", max_image_kib, "largest image, KiB")->check(CLI::Range(1, 4096));
    app.add_option("--replay", replay_seed, "run the one run with this seed (one protocol) here, verbosely");
    app.add_option("--keep", keep_dir, "with --replay: write image.bin and the flash before and after here");
    app.add_flag("!--no-faults", settings.inject_faults, "the same runs without faults (every one must end ok)");
    app.add_flag("--trace", trace, "with --replay: the simulated device's events");
    app.add_flag("--interrupt", settings.interrupt,
                 "no line faults: stop each flash before a random one of its writes, then run it again; the "
                 "second must end with exit 0 and the image in flash");
    CLI11_PARSE(app, argc, argv);
    settings.max_image = max_image_kib * 1024;

    std::vector<std::string> protocols;
    if (protocol_list.empty()) {
        // Every protocol with a simulator this campaign can drive: the byte-stream ones and the USB
        // bootloaders (not yet the drives, cards, probes and CAN).
        for (const auto& p : protocol::protocols()) {
            const auto kind = sim::simulated_link_kind(p.name);
            if (kind && (*kind == link::LinkKind::ByteStream || is_usb(p.name))) protocols.push_back(p.name);
            else fmt::print(stderr, "fault-campaign: {} is not in the campaign yet\n", p.name);
        }
    } else {
        protocols = split_list(protocol_list);
    }
    for (const auto& p : protocols) {
        try {
            protocol::find_protocol(p);
            const auto kind = sim::simulated_link_kind(p);
            if (!kind || (*kind != link::LinkKind::ByteStream && !is_usb(p)))
                throw core::Error(core::ErrorKind::Usage, "the campaign cannot drive a simulated " + p + " yet");
        } catch (const core::Error& e) {
            fmt::print(stderr, "fault-campaign: {}\n", e.what());
            return 2;
        }
    }

    if (replay_seed) {
        if (protocols.size() != 1) {
            fmt::print(stderr, "fault-campaign: --replay needs exactly one protocol in --protocols\n");
            return 2;
        }
        return replay(protocols.front(), *replay_seed, settings,
                      keep_dir.empty() ? std::nullopt : std::optional<fs::path>(keep_dir), trace);
    }

    std::vector<Job> queue;
    for (const auto& p : protocols)
        for (int i = 0; i < runs_per_protocol; ++i) queue.push_back({p, run_seed(campaign_seed, p, i)});

    std::ofstream csv;
    if (!csv_path.empty()) {
        csv.open(csv_path);
        csv << "protocol,seed,chip,bootloader,image_address,image_size,old_address,old_size,faults,outcome,error_kind,"
               "image_held,image_bytes_wrong,bootloader_intact,violations,outside_changed,first_outside,outside_by_faults,"
               "first_by_faults,stop_before,writes,stopped,seconds,message\n";
    }

    std::map<std::string, Tally> tallies;
    std::map<std::pair<std::string, std::string>, std::map<std::string, Recovery>> recovery;  // (kind, trigger) -> protocol
    std::vector<std::string> findings;
    std::vector<std::string> setup_errors;
    std::vector<std::string> outside_notes;  // exit 0, image right, bytes outside its units changed
    size_t done_count = 0;
    const auto campaign_start = SteadyClock::now();
    run_children(queue, jobs, std::chrono::seconds(bound_seconds), settings, [&](const Finished& f) {
        const Record& r = f.result;
        Tally& t = tallies[f.job.protocol];
        ++t.runs;
        switch (r.outcome) {
            case Outcome::Ok: ++t.ok; break;
            case Outcome::Failed:
                ++t.failed;
                ++t.errors[core::kind_name(static_cast<core::ErrorKind>(r.error_kind))];
                break;
            case Outcome::Unexpected:
            case Outcome::Crash: ++t.crashes; break;
            case Outcome::Hang: ++t.hangs; break;
            case Outcome::Setup: ++t.setup; break;
        }
        const bool examined = r.outcome == Outcome::Ok || r.outcome == Outcome::Failed || r.outcome == Outcome::Unexpected;
        if (examined) {
            t.silent += silent_corruption(r);
            t.bootloader_changed += bootloader_changed(r);
            t.refused_runs += r.violations > 0;
            t.outside_runs += r.outside_changed > 0;
            t.outside_ok_runs += silent_outside_damage(r);
            t.outside_design_runs += outside_by_design(r);
        }
        if (r.outcome != Outcome::Hang) {
            t.seconds += f.seconds;
            t.max_seconds = std::max(t.max_seconds, f.seconds);
        }
        if (f.plan && f.plan->single_kind[0] && r.outcome != Outcome::Setup) {
            auto& cell = recovery[{f.plan->single_kind, f.plan->single_trigger}][f.job.protocol];
            ++cell.runs;
            cell.ok += r.outcome == Outcome::Ok && r.image_held;
        }
        t.stopped += r.stopped;
        const bool finding = (examined && (silent_corruption(r) || bootloader_changed(r) || rerun_failed(r, settings))) ||
                             crashed(r) || r.outcome == Outcome::Hang;
        if (finding) {
            findings.push_back(fmt::format("{}: {}", finding_kinds(r, settings), reproduction(f, settings)));
            fmt::print(stderr, "finding: {}\n", findings.back());
        } else if (examined && silent_outside_damage(r)) {
            outside_notes.push_back(reproduction(f, settings));
        }
        if (r.outcome == Outcome::Setup) {
            setup_errors.push_back(reproduction(f, settings));
            fmt::print(stderr, "setup error: {}\n", setup_errors.back());
        }
        if (csv.is_open()) {
            const Record p = f.plan.value_or(Record{});
            csv << fmt::format("{},{},{},{},0x{:08x},{},0x{:08x},{},{},{},{},{},{},{},{},{},0x{:08x},{},0x{:08x},{},{},{},{:.3f},{}\n",
                               f.job.protocol, f.job.seed, p.chip, p.bootloader, p.image_address, p.image_size,
                               p.old_address, p.old_size, csv_field(p.faults), outcome_name(r.outcome),
                               r.outcome == Outcome::Failed ? core::kind_name(static_cast<core::ErrorKind>(r.error_kind)) : "",
                               r.image_held, r.image_bytes_wrong, r.bootloader_intact, r.violations, r.outside_changed,
                               r.first_outside, r.outside_by_faults, r.first_by_faults, p.stop_before, p.writes,
                               r.stopped, f.seconds, csv_field(r.message));
            csv.flush();
        }
        if (++done_count % 25 == 0 || done_count == queue.size())
            fmt::print(stderr, "[{}/{}] {:.0f} s\n", done_count, queue.size(),
                       std::chrono::duration<double>(SteadyClock::now() - campaign_start).count());
    });

    // Two header lines, then a row per protocol and one for all of them.
    constexpr auto kRow = "{:<11} {:>5} {:>6} {:>8} {:>10} {:>8} {:>8} {:>8} {:>8} {:>6} {:>8} {:>6} {:>6}\n";
    fmt::print(kRow, "", "", "exit", "silent", "bootloader", "refused", "outside", "outside", "outside", "", "", "mean",
               "max");
    fmt::print(kRow, "protocol", "runs", "0", "corrupt", "touched", "writes", "touched", "design", "faults+0", "hangs",
               "crashes", "s/run", "s/run");
    auto row = [&](const std::string& name, const Tally& t) {
        const int timed = t.runs - t.hangs;
        fmt::print(kRow, name, t.runs, t.ok, t.silent, t.bootloader_changed, t.refused_runs, t.outside_runs,
                   t.outside_design_runs, t.outside_ok_runs, t.hangs, t.crashes,
                   fmt::format("{:.2f}", timed ? t.seconds / timed : 0.0), fmt::format("{:.2f}", t.max_seconds));
    };
    Tally total;
    for (const auto& p : protocols) {
        const Tally& t = tallies[p];
        row(p, t);
        total.runs += t.runs, total.ok += t.ok, total.silent += t.silent, total.bootloader_changed += t.bootloader_changed;
        total.refused_runs += t.refused_runs, total.outside_runs += t.outside_runs;
        total.outside_design_runs += t.outside_design_runs, total.outside_ok_runs += t.outside_ok_runs;
        total.hangs += t.hangs, total.crashes += t.crashes, total.setup += t.setup, total.seconds += t.seconds;
        total.stopped += t.stopped;
        total.max_seconds = std::max(total.max_seconds, t.max_seconds);
    }
    row("all", total);
    fmt::print("(refused writes, outside touched/design/faults+0: runs. outside touched: bytes outside the units the "
               "image touches changed; design: some of them a fault-free flash changes too; faults+0: exit 0 and the "
               "faults changed some)\n");
    if (settings.interrupt)
        fmt::print("--interrupt: {} of {} first flashes stopped at their chosen write; \"exit 0\" counts the flashes "
                   "run again after them\n", total.stopped, total.runs);

    fmt::print("\nhonest failures by error kind:\n");
    for (const auto& p : protocols) {
        std::vector<std::string> parts;
        for (const auto& [kind, n] : tallies[p].errors) parts.push_back(fmt::format("{} {}", kind, n));
        fmt::print("  {:<11} {}{}\n", p, parts.empty() ? "-" : fmt::format("{}", fmt::join(parts, ", ")),
                   tallies[p].setup ? fmt::format(" (+{} setup errors)", tallies[p].setup) : "");
    }

    if (!recovery.empty()) {  // none under --interrupt or --no-faults
        fmt::print("\nrecovery with a single fault rule (exit 0 and the image in flash / runs):\n");
        fmt::print("{:<17} {:<5}", "fault", "at");
        for (const auto& p : protocols) fmt::print(" {:>11}", p);
        fmt::print(" {:>13}\n", "all");
    }
    for (const auto& [kind, by_protocol] : recovery) {
        fmt::print("{:<17} {:<5}", kind.first, kind.second);
        Recovery all;
        for (const auto& p : protocols) {
            auto it = by_protocol.find(p);
            if (it == by_protocol.end()) {
                fmt::print(" {:>11}", "");
                continue;
            }
            fmt::print(" {:>11}", fmt::format("{}/{}", it->second.ok, it->second.runs));
            all.runs += it->second.runs, all.ok += it->second.ok;
        }
        fmt::print(" {:>13}\n", fmt::format("{}/{} {:3.0f}%", all.ok, all.runs, 100.0 * all.ok / all.runs));
    }

    fmt::print("\nfindings ({}):\n", findings.size());
    for (const auto& line : findings) fmt::print("  {}\n", line);
    if (!outside_notes.empty()) {
        fmt::print("\nexit 0 with bytes outside the image's units changed ({}; not counted as findings):\n",
                   outside_notes.size());
        for (const auto& line : outside_notes) fmt::print("  {}\n", line);
    }
    if (!setup_errors.empty()) {
        fmt::print("\nruns the campaign could not set up ({}):\n", setup_errors.size());
        for (const auto& line : setup_errors) fmt::print("  {}\n", line);
    }
    fmt::print("\n{} runs in {:.0f} s (seed {}, {} job(s), bound {} s)\n", queue.size(),
               std::chrono::duration<double>(SteadyClock::now() - campaign_start).count(), campaign_seed, jobs,
               bound_seconds);
    return findings.empty() && setup_errors.empty() ? 0 : 1;
}
