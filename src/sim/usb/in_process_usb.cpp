#include "sim/usb/in_process_usb.hpp"

#include <fmt/format.h>

#include "core/error.hpp"

namespace mcuflash::sim::usb {

using core::Error;
using core::ErrorKind;

UsbFaults UsbFaults::parse(const std::string& text) {
    UsbFaults faults;
    size_t start = 0;
    while (start < text.size()) {
        size_t end = text.find(',', start);
        std::string item = text.substr(start, end == std::string::npos ? std::string::npos : end - start);
        start = end == std::string::npos ? text.size() : end + 1;
        if (item.empty()) continue;
        auto at = item.find('@');
        if (at == std::string::npos)
            throw Error(ErrorKind::Usage, fmt::format("USB fault '{}': expected ACTION@N (stall, timeout, vanish)", item));
        std::string action = item.substr(0, at);
        uint64_t n = 0;
        try {
            n = std::stoull(item.substr(at + 1), nullptr, 0);
        } catch (const std::exception&) {
            throw Error(ErrorKind::Usage, fmt::format("USB fault '{}': N must be a number", item));
        }
        if (action == "stall") faults.stall_at.insert(n);
        else if (action == "timeout") faults.timeout_at.insert(n);
        else if (action == "vanish") faults.vanish_at = n;
        else throw Error(ErrorKind::Usage, fmt::format("USB fault '{}': unknown action (stall, timeout, vanish)", item));
    }
    return faults;
}

InProcessUsb::InProcessUsb(std::unique_ptr<UsbDeviceModel> model, bool timing, UsbFaults faults)
    : model_(std::move(model)), clock_(timing), faults_(std::move(faults)) {
    model_->bus_reset(clock_.now());
}

std::string InProcessUsb::describe() const {
    auto id = model_->identity();
    return fmt::format("simulated USB device {:04x}:{:04x} ({})", id.vendor, id.product, model_->describe());
}

bool InProcessUsb::present() {
    model_->tick(clock_.now());
    return !vanished_ && model_->attached();
}

void InProcessUsb::pause(std::chrono::milliseconds duration) { clock_.wait_until(clock_.now() + duration); }

// Counts the transfer and applies the fault planned for it (vanish, timeout or stall throw).
void InProcessUsb::begin_transfer(const std::string& what, unsigned timeout_ms) {
    const uint64_t n = transfers_++;
    if (faults_.vanish_at && n >= *faults_.vanish_at) vanished_ = true;
    if (!present()) throw Error(ErrorKind::Io, fmt::format("{} is no longer on the bus", describe()));
    if (faults_.timeout_at.count(n)) {
        pause(std::chrono::milliseconds(timeout_ms));
        throw Error(ErrorKind::Timeout, fmt::format("{} (transfer {}) timed out after {} ms", what, n, timeout_ms));
    }
    if (faults_.stall_at.count(n)) throw Error(ErrorKind::Protocol, fmt::format("{} stalled", what));
}

ControlResult InProcessUsb::transfer(const link::UsbSetup& setup, std::span<const uint8_t> data, unsigned timeout_ms) {
    begin_transfer(fmt::format("control request 0x{:02x}", setup.request), timeout_ms);
    const uint64_t n = transfers_ - 1;
    ControlResult result = model_->control(setup, data, clock_.now());
    if (result.gone) throw Error(ErrorKind::Io, fmt::format("{} dropped off the bus", describe()));
    if (result.done_at > clock_.now()) {  // the device NAKs until it is done
        if (result.done_at - clock_.now() > std::chrono::milliseconds(timeout_ms)) {
            pause(std::chrono::milliseconds(timeout_ms));
            throw Error(ErrorKind::Timeout, fmt::format("control transfer {} timed out after {} ms (the device is busy)",
                                                        n, timeout_ms));
        }
        clock_.wait_until(result.done_at);
    }
    if (result.stall) throw Error(ErrorKind::Protocol, fmt::format("control request 0x{:02x} stalled", setup.request));
    return result;
}

std::vector<uint8_t> InProcessUsb::do_control_in(const link::UsbSetup& setup, unsigned timeout_ms) {
    ControlResult result = transfer(setup, {}, timeout_ms);
    if (result.data.size() > setup.length) result.data.resize(setup.length);
    return std::move(result.data);
}

void InProcessUsb::do_control_out(const link::UsbSetup& setup, std::span<const uint8_t> data, unsigned timeout_ms) {
    transfer(setup, data, timeout_ms);
}

std::vector<uint8_t> InProcessUsb::do_endpoint_in(uint8_t endpoint, size_t max_length, unsigned timeout_ms) {
    const std::string what = fmt::format("IN transfer on endpoint {:02X}", endpoint);
    begin_transfer(what, timeout_ms);
    if (!model_->has_endpoint(endpoint)) throw Error(ErrorKind::Protocol, what + " stalled (no such endpoint)");
    const auto deadline = clock_.now() + std::chrono::milliseconds(timeout_ms);
    for (;;) {
        EndpointIn answer = model_->bulk_in(endpoint, max_length, clock_.now());
        if (!model_->attached()) throw Error(ErrorKind::Io, fmt::format("{} dropped off the bus", describe()));
        if (answer.state == EndpointIn::State::Stall) throw Error(ErrorKind::Protocol, what + " stalled");
        if (answer.state == EndpointIn::State::Data) {
            if (answer.data.size() > max_length) answer.data.resize(max_length);
            return std::move(answer.data);
        }
        // NAK: the host controller asks again in the next frame.
        if (clock_.now() >= deadline) throw Error(ErrorKind::Timeout, fmt::format("{} timed out after {} ms", what, timeout_ms));
        clock_.wait_until(clock_.now() + std::chrono::milliseconds(1));
        model_->tick(clock_.now());
    }
}

void InProcessUsb::do_endpoint_out(uint8_t endpoint, std::span<const uint8_t> data, unsigned timeout_ms) {
    const std::string what = fmt::format("OUT transfer on endpoint {:02X}", endpoint);
    begin_transfer(what, timeout_ms);
    if (!model_->has_endpoint(endpoint)) throw Error(ErrorKind::Protocol, what + " stalled (no such endpoint)");
    model_->tick(clock_.now());
    if (!model_->bulk_out(endpoint, data, clock_.now())) throw Error(ErrorKind::Protocol, what + " stalled");
    if (!model_->attached()) throw Error(ErrorKind::Io, fmt::format("{} dropped off the bus", describe()));
}

void InProcessUsb::clear_halt(uint8_t endpoint) {
    link::UsbSetup setup{0x02, 0x01, 0, endpoint, 0};  // CLEAR_FEATURE(ENDPOINT_HALT)
    transfer(setup, {}, 1000);
}

void InProcessUsb::claim_interface(uint8_t) {
    if (!present()) throw Error(ErrorKind::Io, fmt::format("{} is no longer on the bus", describe()));
}

void InProcessUsb::set_alt_setting(uint8_t interface, uint8_t alt) {
    link::UsbSetup setup{0x01, link::usb::kSetInterface, alt, interface, 0};
    transfer(setup, {}, 1000);
}

void InProcessUsb::reset_port() {
    if (!present()) return;
    model_->bus_reset(clock_.now());
}

}  // namespace mcuflash::sim::usb
