#include "sim/cmsis_dap/cmsis_dap_probe.hpp"

#include <algorithm>

#include <fmt/format.h>

namespace mcuflash::sim::cmsis_dap {

namespace {

using namespace std::chrono_literals;

constexpr uint8_t kStringManufacturer = 1, kStringProduct = 2, kStringSerial = 3, kStringInterface = 4;
constexpr uint8_t kSetReport = 0x09, kSetIdle = 0x0A, kGetReport = 0x01;
constexpr uint8_t kHidDescriptor = 0x21, kReportDescriptor = 0x22;
constexpr const char* kSerial = "MCUFLASHSIM0001";

}  // namespace

CmsisDapProbe::CmsisDapProbe(std::unique_ptr<swd::DebugTarget> target, ProbeVersion version, bool timing,
                             std::string target_vendor, std::string target_name)
    : target_(std::move(target)),
      version_(version),
      timing_(timing),
      processor_(*target_,
                 ProbeIdentity{"mcuflash-sim", string_descriptor(kStringProduct), kSerial, "2.1.0", "1.0.0",
                               std::move(target_vendor), std::move(target_name), kPacketCount, kPacketSize},
                 timing) {}

std::string CmsisDapProbe::describe() const {
    return fmt::format("simulated CMSIS-DAP {} probe ({:04x}:{:04x}) with {}",
                       version_ == ProbeVersion::V2Bulk ? "v2 (bulk)" : "v1 (HID)", kVendorId, kProductId,
                       target_->describe());
}

std::vector<uint8_t> CmsisDapProbe::device_descriptor() const {
    return usb::device_descriptor_bytes(kVendorId, kProductId, 0x0100, kStringManufacturer, kStringProduct,
                                        kStringSerial, 64);
}

std::string CmsisDapProbe::string_descriptor(uint8_t index) const {
    const bool v2 = version_ == ProbeVersion::V2Bulk;
    switch (index) {
        case kStringManufacturer: return "mcuflash-sim";
        // Both contain "CMSIS-DAP": v1 probes are recognised by the product string, v2 interfaces by theirs.
        case kStringProduct: return "Simulated DAPLink CMSIS-DAP";
        case kStringSerial: return kSerial;
        case kStringInterface: return v2 ? "CMSIS-DAP v2" : "CMSIS-DAP v1";
        default: return "";
    }
}

std::vector<uint8_t> CmsisDapProbe::report_descriptor() const {
    // Vendor page 0xFF00: a 64-byte input and a 64-byte output report, no report ids.
    return {0x06, 0x00, 0xFF, 0x09, 0x01, 0xA1, 0x01,  // usage page, usage, application collection
            0x15, 0x00, 0x26, 0xFF, 0x00, 0x75, 0x08,  // logical 0..255, 8-bit fields
            0x95, 0x40, 0x09, 0x01, 0x81, 0x02,        // input: 64 bytes
            0x95, 0x40, 0x09, 0x01, 0x91, 0x02,        // output: 64 bytes
            0xC0};
}

std::vector<uint8_t> CmsisDapProbe::configuration_descriptor() const {
    std::vector<uint8_t> out{9, 2, 0, 0, 1, 1, 0, 0x80, 50};  // one interface, bus powered, 100 mA
    const uint8_t size_lo = kPacketSize & 0xFF, size_hi = kPacketSize >> 8;
    if (version_ == ProbeVersion::V2Bulk) {
        for (uint8_t b : {9, 4, 0, 0, 2, 0xFF, 0x00, 0x00, int{kStringInterface}}) out.push_back(b);
        for (uint8_t b : {7, 5, int{kOutEndpoint}, 0x02, int{size_lo}, int{size_hi}, 0}) out.push_back(b);
        for (uint8_t b : {7, 5, int{kInEndpoint}, 0x02, int{size_lo}, int{size_hi}, 0}) out.push_back(b);
    } else {
        const auto report = static_cast<uint8_t>(report_descriptor().size());
        for (uint8_t b : {9, 4, 0, 0, 2, 0x03, 0x00, 0x00, int{kStringInterface}}) out.push_back(b);
        for (uint8_t b : {9, int{kHidDescriptor}, 0x11, 0x01, 0, 1, int{kReportDescriptor}, int{report}, 0})
            out.push_back(b);
        // Interrupt IN then OUT, 64 bytes, every frame (bInterval 1).
        for (uint8_t b : {7, 5, int{kInEndpoint}, 0x03, int{size_lo}, int{size_hi}, 1}) out.push_back(b);
        for (uint8_t b : {7, 5, int{kOutEndpoint}, 0x03, int{size_lo}, int{size_hi}, 1}) out.push_back(b);
    }
    out[2] = static_cast<uint8_t>(out.size());
    return out;
}

std::vector<uint8_t> CmsisDapProbe::other_descriptor(uint8_t type, uint8_t, uint16_t w_index) const {
    if (version_ != ProbeVersion::V1Hid || w_index != 0) return {};
    if (type == kReportDescriptor) return report_descriptor();
    if (type == kHidDescriptor)
        return {9, kHidDescriptor, 0x11, 0x01, 0, 1, kReportDescriptor,
                static_cast<uint8_t>(report_descriptor().size()), 0};
    return {};
}

usb::ControlResult CmsisDapProbe::class_request(const link::UsbSetup& setup, std::span<const uint8_t> data_out,
                                                Clock::time_point now) {
    if (version_ == ProbeVersion::V1Hid && setup.request_type == 0x21) {
        if (setup.request == kSetIdle) return usb::ControlResult::ok();
        if (setup.request == kSetReport && (setup.value >> 8) == 2) {  // an output report on endpoint 0
            take_command(data_out, now);
            return usb::ControlResult::ok();
        }
    }
    if (version_ == ProbeVersion::V1Hid && setup.request_type == 0xA1 && setup.request == kGetReport &&
        (setup.value >> 8) == 1) {
        // An input report through endpoint 0: the next response when one is ready.
        if (!responses_.empty() && responses_.front().ready_at <= now) {
            auto report = std::move(responses_.front().response);
            responses_.pop_front();
            return usb::ControlResult::ok(std::move(report));
        }
    }
    trace(fmt::format("class request {:02x} {:02x} {:04x}: stalled", setup.request_type, setup.request, setup.value));
    return usb::ControlResult::stalled();
}

bool CmsisDapProbe::has_endpoint(uint8_t address) const {
    return address == kOutEndpoint || address == kInEndpoint;
}

bool CmsisDapProbe::bulk_out(uint8_t address, std::span<const uint8_t> data, Clock::time_point now) {
    if (address != kOutEndpoint) return false;
    take_command(data, now);
    return true;
}

void CmsisDapProbe::take_command(std::span<const uint8_t> command, Clock::time_point now) {
    ++commands_;
    if (responses_.size() >= kPacketCount)
        trace(fmt::format("a command while {} responses wait: more than the {} packets DAP_Info allows",
                          responses_.size(), kPacketCount));
    DapAnswer answer = processor_.execute(command, now);
    if (!answer.has_response) return;
    Clock::time_point ready = now;
    if (timing_) {
        ready = std::max(answer.done_at, now + 1ms);
        if (version_ == ProbeVersion::V1Hid) ready = std::max(ready, last_ready_ + 1ms);  // one report a frame
    }
    last_ready_ = ready;
    if (version_ == ProbeVersion::V1Hid) answer.response.resize(std::max<size_t>(answer.response.size(), kPacketSize), 0);
    responses_.push_back({std::move(answer.response), ready});
}

usb::EndpointIn CmsisDapProbe::bulk_in(uint8_t address, size_t, Clock::time_point now) {
    if (address != kInEndpoint) return usb::EndpointIn::stalled();
    if (responses_.empty() || responses_.front().ready_at > now) return usb::EndpointIn::nak();
    auto response = std::move(responses_.front().response);
    responses_.pop_front();
    return usb::EndpointIn::ok(std::move(response));
}

void CmsisDapProbe::bus_reset(Clock::time_point) { responses_.clear(); }

void CmsisDapProbe::tick(Clock::time_point now) { processor_.tick(now); }

std::optional<Clock::time_point> CmsisDapProbe::next_event() const {
    if (responses_.empty()) return std::nullopt;
    return responses_.front().ready_at;
}

}  // namespace mcuflash::sim::cmsis_dap
