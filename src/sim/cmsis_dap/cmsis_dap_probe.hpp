#pragma once
// A CMSIS-DAP debug probe on USB with a simulated chip on its SWD port.
//
// The USB side, as ARM's DAPLink presents it (VID:PID 0d28:0204, ARM's "DAPLink CMSIS-DAP"; the
// strings say it is mcuflash-sim's), one interface each:
// - v2 (CMSIS-DAP v2, WinUSB style): interface 0 of class 0xFF, subclass 0, protocol 0, whose
//   interface string contains "CMSIS-DAP" (how OpenOCD 0.12 and pyOCD tell a v2 interface), with a
//   bulk OUT endpoint 0x01 (commands) and a bulk IN endpoint 0x81 (responses), 64 bytes each
//   (full speed). A command is one bulk transfer; its response is one (short) bulk transfer.
// - v1 (CMSIS-DAP v1, HID): a HID interface with 64-byte input and output reports (no report id)
//   on interrupt IN 0x81 and OUT 0x01 (bInterval 1), output reports also as SET_REPORT on endpoint
//   0; the product string contains "CMSIS-DAP" (how v1 probes are found). Responses are padded to
//   the report size.
// Up to `packet_count` (4) commands may be outstanding: they are executed in order and their
// responses wait in order for the host's IN transfers.
//
// Timing (DeviceOptions::timing): a response is ready when the probe's SWD work for its command
// is done (DapProcessor's bit times at the SWJ clock) and no earlier than 1 ms after the command
// came (one full-speed frame per command/response round trip); on v1 the interrupt IN endpoint also
// delivers at most one report per 1 ms frame. With timing off every response is ready at once.
#include <deque>
#include <memory>

#include "sim/cmsis_dap/dap_processor.hpp"
#include "sim/usb/usb_device_model.hpp"

namespace mcuflash::sim::cmsis_dap {

enum class ProbeVersion { V1Hid, V2Bulk };

class CmsisDapProbe : public usb::UsbDeviceModel {
public:
    static constexpr uint16_t kVendorId = 0x0D28, kProductId = 0x0204;  // ARM DAPLink CMSIS-DAP
    static constexpr uint8_t kOutEndpoint = 0x01, kInEndpoint = 0x81;
    static constexpr uint16_t kPacketSize = 64;
    static constexpr uint8_t kPacketCount = 4;

    // `target_vendor`/`target_name`: what DAP_Info tells of the chip ("STMicroelectronics", "stm32f103xb").
    CmsisDapProbe(std::unique_ptr<swd::DebugTarget> target, ProbeVersion version, bool timing,
                  std::string target_vendor = {}, std::string target_name = {});

    std::vector<uint8_t> device_descriptor() const override;
    std::vector<uint8_t> configuration_descriptor() const override;
    std::string string_descriptor(uint8_t index) const override;
    std::vector<uint8_t> other_descriptor(uint8_t type, uint8_t index, uint16_t w_index) const override;
    usb::ControlResult class_request(const link::UsbSetup& setup, std::span<const uint8_t> data_out,
                                     Clock::time_point now) override;
    bool has_endpoint(uint8_t address) const override;
    bool bulk_out(uint8_t address, std::span<const uint8_t> data, Clock::time_point now) override;
    usb::EndpointIn bulk_in(uint8_t address, size_t max_length, Clock::time_point now) override;
    void bus_reset(Clock::time_point now) override;
    void tick(Clock::time_point now) override;
    std::optional<Clock::time_point> next_event() const override;
    std::string describe() const override;
    FlashMemory& flash() override { return target_->flash(); }

    std::vector<uint8_t> report_descriptor() const;
    ProbeVersion version() const { return version_; }
    DapProcessor& processor() { return processor_; }
    swd::DebugTarget& target() { return *target_; }
    uint64_t commands() const { return commands_; }

private:
    void take_command(std::span<const uint8_t> command, Clock::time_point now);

    std::unique_ptr<swd::DebugTarget> target_;
    ProbeVersion version_;
    bool timing_;
    DapProcessor processor_;
    struct Pending {
        std::vector<uint8_t> response;
        Clock::time_point ready_at;
    };
    std::deque<Pending> responses_;
    Clock::time_point last_ready_{};
    uint64_t commands_ = 0;
};

}  // namespace mcuflash::sim::cmsis_dap
