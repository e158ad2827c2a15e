#pragma once
// What every transport's link shares: a description, the pauses a protocol makes, a trace of what
// crosses it, and the time limit of the whole operation. Byte streams (byte_link.hpp), USB devices
// (usb_device.hpp) and the transports to come (CAN frames, HID reports, files on a volume) derive
// from it, so each gets --trace and the time limit from here.
#include <chrono>
#include <cstdint>
#include <functional>
#include <optional>
#include <span>
#include <string>
#include <string_view>

#include "core/deadline.hpp"

namespace mcuflash::link {

// Warnings (e.g. "pty has no parity") go to a sink the CLI provides; the library never prints.
using WarningSink = std::function<void(const std::string&)>;

// One line of the trace: "+1.234567 > 1B 01 00 01 0E 01 14" (> host to device, < device to host,
// * a note such as a USB SETUP or a reset).
using TraceSink = std::function<void(const std::string&)>;

enum class TraceDirection { ToDevice, FromDevice, Note };

// What a link carries; protocols declare which they run on (ProtocolInfo::runs_on).
enum class LinkKind { ByteStream, Usb, Hid, Volume };
const char* link_kind_name(LinkKind kind);  // "serial port", "USB device"

class Link {
public:
    virtual ~Link() = default;
    virtual LinkKind kind() const = 0;
    virtual std::string describe() const = 0;
    // Roughly what the link carries a second, for bounding how long an operation may take.
    virtual uint32_t bytes_per_second() const = 0;

    // Waits as a protocol asks (a bootloader's start-up, a USB packet gap). A simulated device with
    // its timing off lets its own clock pass instead of sleeping.
    virtual void pause(std::chrono::milliseconds duration);

    // Every byte or packet that crosses the link from now on, with its direction and time.
    void set_trace(TraceSink sink);
    // Every transfer after `at` throws core::TimeLimitExceeded naming `what` and the limit.
    void set_time_limit(core::Clock::time_point at, std::string what, std::chrono::seconds limit);
    void clear_time_limit() { limit_.reset(); }

protected:
    void check_time_limit() const;
    bool tracing() const { return static_cast<bool>(trace_); }
    void trace(TraceDirection direction, std::span<const uint8_t> bytes, std::string_view note = {}) const;

private:
    TraceSink trace_;
    core::Clock::time_point trace_start_{};
    struct Limit {
        core::Clock::time_point at;
        std::string what;
        std::chrono::seconds length;
    };
    std::optional<Limit> limit_;
};

// The link as the kind a protocol needs (ByteLink, UsbDevice: each names its kKind); throws
// core::Error(Usage) naming `protocol` when the link is another kind.
template <typename LinkType>
LinkType& link_as(Link& link, const std::string& protocol);
[[noreturn]] void throw_wrong_link(const Link& link, LinkKind wanted, const std::string& protocol);

template <typename LinkType>
LinkType& link_as(Link& link, const std::string& protocol) {
    if (link.kind() != LinkType::kKind) throw_wrong_link(link, LinkType::kKind, protocol);
    return static_cast<LinkType&>(link);
}

}  // namespace mcuflash::link
