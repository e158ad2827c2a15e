#include "link/link.hpp"

#include <fmt/format.h>

#include <thread>

#include "core/error.hpp"
#include "core/interrupt.hpp"

namespace mcuflash::link {

const char* link_kind_name(LinkKind kind) {
    switch (kind) {
        case LinkKind::ByteStream: return "serial port";
        case LinkKind::Usb: return "USB device";
        case LinkKind::Hid: return "USB HID device";
        case LinkKind::Volume: return "card or drive (a file system)";
    }
    return "link";
}

void throw_wrong_link(const Link& link, LinkKind wanted, const std::string& protocol) {
    throw core::Error(core::ErrorKind::Usage,
                      fmt::format("{} is a {}, but the {} protocol runs on a {}", link.describe(),
                                  link_kind_name(link.kind()), protocol, link_kind_name(wanted)));
}

void Link::pause(std::chrono::milliseconds duration) {
    std::this_thread::sleep_for(duration);
    core::throw_if_interrupted();
}

void Link::set_trace(TraceSink sink) {
    trace_ = std::move(sink);
    trace_start_ = core::Clock::now();
}

void Link::set_time_limit(core::Clock::time_point at, std::string what, std::chrono::seconds limit) {
    limit_ = Limit{at, std::move(what), limit};
}

void Link::check_time_limit() const {
    if (limit_ && core::Clock::now() >= limit_->at)
        throw core::TimeLimitExceeded(fmt::format("{} took longer than its time limit of {} s and was stopped",
                                                  limit_->what, limit_->length.count()));
}

void Link::trace(TraceDirection direction, std::span<const uint8_t> bytes, std::string_view note) const {
    if (!trace_) return;
    const double seconds = std::chrono::duration<double>(core::Clock::now() - trace_start_).count();
    const char mark = direction == TraceDirection::ToDevice ? '>' : direction == TraceDirection::FromDevice ? '<' : '*';
    std::string head = fmt::format("+{:.6f} {}", seconds, mark);
    if (!note.empty()) head += fmt::format(" {}", note);
    // 32 bytes a line; the lines after the first are indented under it.
    constexpr size_t kPerLine = 32;
    std::string line = head;
    for (size_t i = 0; i < bytes.size(); ++i) {
        if (i && i % kPerLine == 0) {
            trace_(line);
            line = std::string(head.size(), ' ');
        }
        line += fmt::format(" {:02X}", bytes[i]);
    }
    trace_(line);
}

}  // namespace mcuflash::link
