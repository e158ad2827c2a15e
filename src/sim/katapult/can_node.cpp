#include "sim/katapult/can_node.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <vector>

#include "protocol/klipper_mcu/codec.hpp"

namespace mcuflash::sim::katapult {

using namespace can_admin;

CanNode::CanNode(Device& device, FaultInjector faults, CanNodeOptions options, CanNodeBus& bus)
    : device_(device),
      line_(device, std::move(faults), options.line_timing),
      options_(std::move(options)),
      bus_(bus),
      firmware_(options_.start_as_klipper ? Firmware::Klipper : Firmware::Katapult) {
    if (options_.start_as_klipper && !options_.identify_data.empty())
        klipper_ = std::make_unique<klipper::McuResponder>(options_.identify_data);
    line_.set_host_settings(device_.line_settings());  // a CAN node has no baud rate to get wrong
    device_.reset(options_.start_as_klipper ? ResetCause::PowerOn : ResetCause::Pin, Clock::now());
}

void CanNode::log(const std::string& message) const {
    if (options_.log) options_.log(message);
}

bool CanNode::names_us(const link::CanFrame& frame) const {
    if (frame.length < 7) return false;
    uint64_t uuid = 0;
    for (int i = 1; i <= 6; ++i) uuid = uuid << 8 | frame.data[i];
    return uuid == (options_.uuid & 0xFFFFFFFFFFFFull);
}

void CanNode::handle_admin(const link::CanFrame& frame, Clock::time_point now) {
    if (frame.length == 0 || firmware_ == Firmware::Rebooting) return;
    const bool katapult = firmware_ == Firmware::Katapult;
    const uint8_t command = frame.data[0];
    if (command == kQueryUnassigned) {
        if (assigned_id_) return;  // only nodes without an id answer
        std::vector<uint8_t> answer{kNeedNodeId};
        for (int shift = 40; shift >= 0; shift -= 8) answer.push_back(static_cast<uint8_t>(options_.uuid >> shift));
        answer.push_back(katapult ? kSetKatapultNodeId : kSetKlipperNodeId);
        bus_.send(link::CanFrame::with(kAdminReplyId, answer), now);
        ++stats_.queries_answered;
    } else if (command == (katapult ? kSetKatapultNodeId : kSetKlipperNodeId)) {
        if (frame.length < 8) return;
        const uint32_t id = node_id_to_can_id(frame.data[7]);
        if (names_us(frame)) {
            if (id != assigned_id_) {
                assigned_id_ = id;
                ++stats_.assignments;
                log(fmt::format("node id {} assigned: listening on {:#x}, answering on {:#x}", frame.data[7], id, id + 1));
            }
        } else if (id == assigned_id_) {
            log("another node was given our id: id cleared");
            assigned_id_ = 0;
        }
    } else if (katapult && command == kClearKatapultNodeId) {
        if (assigned_id_) log("node id cleared");
        assigned_id_ = 0;
    } else if (!katapult && command == kRequestBootloader && names_us(frame)) {
        log(fmt::format("Klipper's bootloader request: rebooting into Katapult ({} ms)", options_.reboot_time.count()));
        firmware_ = Firmware::Rebooting;
        assigned_id_ = 0;
        katapult_at_ = now + options_.reboot_time;
        ++stats_.reboots;
    }
}

void CanNode::handle(const link::CanFrame& frame, Clock::time_point now) {
    if (frame.id == kAdminId) return handle_admin(frame, now);
    if (!assigned_id_) return;
    if (frame.id == assigned_id_ + 1) {
        // Another node answers on our id: Katapult takes it for a conflict.
        log("another node sends on our answer id: id cleared");
        assigned_id_ = 0;
        return;
    }
    if (frame.id != assigned_id_) return;
    if (firmware_ == Firmware::Klipper && klipper_) {
        ++stats_.frames_in;
        klipper_->set_canbus_node(options_.uuid, static_cast<uint8_t>((assigned_id_ - 0x100) / 2));
        const auto answer = klipper_->receive(frame.payload(), now);
        for (const auto& out : link::split_into_frames(assigned_id_ + 1, answer)) {
            bus_.send(out, now);
            ++stats_.frames_out;
        }
        return;
    }
    if (firmware_ != Firmware::Katapult) return;
    ++stats_.frames_in;
    line_.host_write(frame.payload(), now);
}

void CanNode::send_output(Clock::time_point now) {
    uint8_t buffer[512];
    std::vector<uint8_t> out;
    while (size_t n = line_.host_read(buffer, now)) out.insert(out.end(), buffer, buffer + n);
    // Katapult drops what it has to send while it has no id (canserial_tx_task).
    if (out.empty() || !assigned_id_ || firmware_ != Firmware::Katapult) return;
    for (const auto& frame : link::split_into_frames(assigned_id_ + 1, out)) {
        bus_.send(frame, now);
        ++stats_.frames_out;
    }
}

void CanNode::follow_device(Clock::time_point now) {
    if (firmware_ == Firmware::Rebooting && katapult_at_ && now >= *katapult_at_) {
        katapult_at_.reset();
        line_.discard_host_input(now);
        line_.reset_device(ResetCause::Pin, now);  // the request in RAM keeps Katapult in its bootloader
        firmware_ = Firmware::Katapult;
        log("Katapult runs (no node id yet)");
    }
    if (firmware_ == Firmware::Katapult && !device_.in_bootloader()) {
        // COMPLETE: the application starts, taken to be Klipper.
        firmware_ = Firmware::Klipper;
        assigned_id_ = 0;
        // What runs is what the flash now holds.
        auto found = protocol::klipper_mcu::find_dictionary_in_image(device_.flash().contents());
        klipper_ = found ? std::make_unique<klipper::McuResponder>(*found) : nullptr;
        log(klipper_ ? "the application starts: the node now answers as Klipper " + klipper_->dictionary().version
                     : "the application starts: the node now answers the admin query as Klipper (no Klipper build in "
                       "its flash: identify unanswered)");
    }
}

void CanNode::step(Clock::time_point now) {
    while (auto frame = bus_.receive(now)) handle(*frame, now);
    line_.advance(std::max(now, line_.input_scheduled_until()));
    for (const auto& faults = line_.faults().log(); fault_log_reported_ < faults.size(); ++fault_log_reported_)
        log("fault: " + faults[fault_log_reported_]);
    send_output(now);
    follow_device(now);
}

std::optional<Clock::time_point> CanNode::next_event() const {
    std::optional<Clock::time_point> next = line_.next_event();
    if (katapult_at_ && (!next || *katapult_at_ < *next)) next = katapult_at_;
    return next;
}

std::string CanNode::summary() const {
    return fmt::format("{} queries answered, {} node id assignments, {} reboots into Katapult, {} frames in, {} out",
                       stats_.queries_answered, stats_.assignments, stats_.reboots, stats_.frames_in, stats_.frames_out);
}

}  // namespace mcuflash::sim::katapult
