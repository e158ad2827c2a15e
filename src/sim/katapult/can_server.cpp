#include "sim/katapult/can_server.hpp"

#include <fmt/format.h>
#include <sys/prctl.h>

#include <algorithm>
#include <atomic>
#include <csignal>

namespace mcuflash::sim::katapult {

namespace {

std::atomic<bool> stop_requested{false};
extern "C" void on_stop_signal(int) { stop_requested = true; }

CanNodeOptions node_options(const CanServerOptions& o) {
    CanNodeOptions options;
    options.uuid = o.uuid;
    options.start_as_klipper = o.start_as_klipper;
    options.line_timing = o.timing;  // no CAN bit timing on a real interface: the device's UART time stands in
    options.reboot_time = o.reboot_time;
    options.identify_data = o.identify_data;
    options.log = o.log;
    return options;
}

}  // namespace

SocketNodeBus::SocketNodeBus(const std::string& interface) : socket_(interface) { socket_.take_only({}); }

void SocketNodeBus::send(const link::CanFrame& frame, Clock::time_point) { socket_.send(frame); }

std::optional<link::CanFrame> SocketNodeBus::receive(Clock::time_point) {
    if (waiting_) return std::exchange(waiting_, std::nullopt);
    return socket_.receive(core::Deadline::after_ms(0));
}

void SocketNodeBus::wait(const core::Deadline& deadline) {
    if (!waiting_) waiting_ = socket_.receive(deadline);
}

CanServer::CanServer(Device& device, FaultInjector faults, CanServerOptions options)
    : options_(std::move(options)), bus_(options_.interface), node_(device, std::move(faults), node_options(options_), bus_) {
    struct sigaction action {};
    action.sa_handler = on_stop_signal;
    sigemptyset(&action.sa_mask);
    ::sigaction(SIGINT, &action, nullptr);
    ::sigaction(SIGTERM, &action, nullptr);
}

CanServer::~CanServer() {
    ::signal(SIGINT, SIG_DFL);
    ::signal(SIGTERM, SIG_DFL);
}

void CanServer::run() {
    ::prctl(PR_SET_TIMERSLACK, 1UL, 0, 0, 0);
    stop_requested = false;
    while (!stop_requested) {
        node_.step(Clock::now());
        Clock::time_point wake = Clock::now() + std::chrono::milliseconds(50);  // also how soon a signal is noticed
        if (auto next = node_.next_event()) wake = std::min(wake, *next);
        bus_.wait(core::Deadline(std::max(wake - Clock::now(), Clock::duration::zero())));
    }
    if (options_.log) options_.log("stopped: " + node_.summary());
}

}  // namespace mcuflash::sim::katapult
