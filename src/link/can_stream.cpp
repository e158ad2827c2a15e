#include "link/can_stream.hpp"

#include <algorithm>

namespace mcuflash::link {

CanNodeStream::CanNodeStream(std::unique_ptr<CanBus> bus, uint32_t to_node, uint32_t from_node, std::string name,
                             std::string address)
    : bus_(std::move(bus)), to_node_(to_node), from_node_(from_node), name_(std::move(name)), address_(std::move(address)) {
    bus_->take_only({from_node_});
}

void CanNodeStream::do_write(std::span<const uint8_t> bytes) {
    for (const auto& frame : split_into_frames(to_node_, bytes)) bus_->send(frame);
}

size_t CanNodeStream::do_read_some(std::span<uint8_t> buffer, const core::Deadline& deadline) {
    // Frames that were already queued when the filter changed may still be on other ids.
    while (received_.empty()) {
        auto frame = bus_->receive(deadline);
        if (!frame) return 0;
        if (frame->id == from_node_) received_.insert(received_.end(), frame->payload().begin(), frame->payload().end());
    }
    const size_t n = std::min(buffer.size(), received_.size());
    std::copy_n(received_.begin(), n, buffer.begin());
    received_.erase(received_.begin(), received_.begin() + static_cast<long>(n));
    return n;
}

size_t CanNodeStream::do_drain_input() {
    size_t dropped = received_.size();
    received_.clear();
    const auto now = core::Deadline::after_ms(0);
    while (auto frame = bus_->receive(now)) dropped += frame->length;
    return dropped;
}

}  // namespace mcuflash::link
