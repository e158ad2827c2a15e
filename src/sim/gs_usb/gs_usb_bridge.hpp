#pragma once
// A Klipper USB-to-CAN bridge board (Klipper's src/generic/usb_canbus.c: the "gs_usb" protocol of
// candleLight adapters, 1d50:606f, so Linux's gs_usb driver makes it can0) with simulated CAN nodes
// behind it on an in-process bus (simulated_can_bus.hpp), written from usb_canbus.c and the
// kernel's drivers/net/can/usb/gs_usb.c:
//
// - one vendor interface (ff/ff/ff) with bulk IN 0x81 and bulk OUT 0x02, 64-byte packets; strings
//   "Klipper", the MCU name, and the serial number (the chip id in hex, as Klipper's
//   CONFIG_USB_SERIAL_NUMBER_CHIPID fills it);
// - vendor requests to the interface: HOST_FORMAT (read and ignored: little-endian always),
//   DEVICE_CONFIG (one channel, sw 2, hw 1), BT_CONST (Klipper's: no features, 48 MHz, tseg1 1-16,
//   tseg2 1-8, sjw 4, brp 1-1024), BITTIMING (Klipper ignores it; here it sets the bus's bitrate:
//   fclk / (brp x (1 + prop + phase1 + phase2))), MODE (start/reset; Klipper routes frames either
//   way); every other request (BERR, TIMESTAMP, IDENTIFY, ...) stalls, as Klipper's does;
// - gs_host_frame, 20 bytes little-endian: echo_id, can_id (CAN_EFF_FLAG 0x80000000, CAN_RTR_FLAG
//   0x40000000), dlc, channel, flags, reserved, 8 data bytes. A frame from the host goes on the bus
//   and is echoed back with its echo_id once it has been sent (candleLight's order; Klipper echoes
//   as it takes the frame, but then holds further frames while its controller is busy, so the host
//   sees the same pace); frames from the bus reach the host with echo_id 0xFFFFFFFF;
// - the bridge is itself a Klipper node (Klipper's canserial.c): frames to the admin id 0x3F0 are
//   handled locally as well as sent on the bus: the query is answered (to the host only) with the
//   bridge's UUID (Klipper's: fasthash64 of the chip id), [01, uuid, n] gives it a node id, whose
//   frames from the host stay local and whose ids on the bus are not passed to the host; the
//   bootloader request [02, uuid] makes the whole USB device leave the bus (Klipper reboots into
//   its bootloader: can0 vanishes, and every node behind the bridge with it).
//
// With timing on, frames hold the bus for their bit time at the bitrate the host set (stuff bits
// counted), one at a time, and the nodes' flash takes its programming time. next_event() tells the
// USB/IP server when the next frame ends, so it wakes then rather than at its 10 ms tick.
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "sim/gs_usb/simulated_can_bus.hpp"
#include "sim/katapult/can_node.hpp"
#include "sim/usb/usb_device_model.hpp"

namespace mcuflash::sim::gs_usb {

// gs_usb's request numbers (the kernel's enum gs_usb_breq).
namespace breq {
constexpr uint8_t kHostFormat = 0, kBitTiming = 1, kMode = 2, kBerr = 3, kBtConst = 4, kDeviceConfig = 5,
                  kTimestamp = 6, kIdentify = 7;
}
constexpr size_t kHostFrameBytes = 20;  // classic CAN, no hardware timestamp
constexpr uint32_t kEchoIdReceived = 0xFFFFFFFF;
constexpr uint32_t kCanEffFlag = 0x80000000, kCanRtrFlag = 0x40000000, kCanErrFlag = 0x20000000;
constexpr uint32_t kFclkCan = 48'000'000;  // what Klipper's BT_CONST reports

struct GsHostFrame {
    uint32_t echo_id = kEchoIdReceived;
    uint32_t can_id = 0;  // with the CAN_*_FLAG bits
    uint8_t dlc = 0;
    uint8_t channel = 0;
    uint8_t flags = 0;
    std::array<uint8_t, 8> data{};

    std::vector<uint8_t> encode() const;
    // nullopt when shorter than 20 bytes.
    static std::optional<GsHostFrame> decode(std::span<const uint8_t> bytes);
    BusFrame bus_frame() const;
    static GsHostFrame from(const BusFrame& frame, uint32_t echo_id);
};

// Klipper's UUID of a chip id: the first six bytes of fasthash64(chip id, seed 0xA16231A7) in memory
// (little-endian) order, as canserial_set_uuid() copies them.
uint64_t klipper_canbus_uuid(std::span<const uint8_t> chip_id);
uint64_t fasthash64(std::span<const uint8_t> bytes, uint64_t seed);

struct BridgeNodeSpec {
    bool klipper = false;      // starts as a running Klipper (reboots into Katapult on request)
    std::string chip;          // stm32f103xe, rp2040, ...
    std::optional<uint64_t> uuid;  // default: derived from the chip and the node's place
    std::string flash_file;    // "" = none
    // "katapult:CHIP[:UUID[:FLASH_FILE]]" or "klipper:...". core::Error(Usage) otherwise.
    static BridgeNodeSpec parse(const std::string& text);
};

struct GsUsbBridgeOptions {
    std::string chip = "stm32f072xb";     // the bridge board's MCU (its USB product string)
    std::vector<uint8_t> chip_id;         // 12 bytes; empty: one derived from the chip name
    bool timing = true;
    uint32_t default_bitrate = 1'000'000;  // until the host sends BITTIMING
    std::vector<BridgeNodeSpec> nodes;
    std::function<void(const std::string&)> log;  // node and bridge events
    // The bootloader the bridge board reboots into on a bootloader request to its own UUID (a USB
    // simulator: the device that takes its place on the bus); none: it just leaves.
    std::unique_ptr<usb::UsbDeviceModel> bootloader;
    // The bridge's own CAN UUID (printer.cfg's canbus_uuid for it); nullopt: Klipper's, hashed from
    // the chip id.
    std::optional<uint64_t> uuid;
    // The Klipper build the bridge runs (its compressed data dictionary): it then answers identify on
    // its own node id, as Klipper's canserial does; empty: that id takes the admin channel only.
    std::vector<uint8_t> identify_data;
};

class GsUsbBridge : public usb::UsbDeviceModel {
public:
    explicit GsUsbBridge(GsUsbBridgeOptions options);
    ~GsUsbBridge() override;

    std::vector<uint8_t> device_descriptor() const override;
    std::vector<uint8_t> configuration_descriptor() const override;
    std::string string_descriptor(uint8_t index) const override;
    usb::ControlResult class_request(const link::UsbSetup& setup, std::span<const uint8_t> data_out,
                                     Clock::time_point now) override;
    bool has_endpoint(uint8_t address) const override { return address == kBulkIn || address == kBulkOut; }
    bool bulk_out(uint8_t address, std::span<const uint8_t> data, Clock::time_point now) override;
    usb::EndpointIn bulk_in(uint8_t address, size_t max_length, Clock::time_point now) override;
    void bus_reset(Clock::time_point now) override;
    bool attached() const override { return attached_; }
    // The bootloader, once the reboot time after the request has passed (the bridge is off the bus
    // meanwhile, so the host sees it leave before anything new appears).
    UsbDeviceModel* successor() override { return rebooted_ ? options_.bootloader.get() : nullptr; }
    void tick(Clock::time_point now) override;
    std::string describe() const override;
    FlashMemory& flash() override { return flash_; }  // the bridge board's own (Klipper's) flash

    static constexpr uint8_t kBulkIn = 0x81, kBulkOut = 0x02;

    uint64_t uuid() const { return uuid_; }
    const std::string& serial() const { return serial_; }
    uint32_t bitrate() const { return bus_.bitrate(); }
    bool started() const { return started_; }
    SimulatedCanBus& bus() { return bus_; }
    size_t node_count() const { return nodes_.size(); }
    katapult::CanNode& node(size_t i);
    FlashMemory& node_flash(size_t i);
    // Runs the bus and the nodes up to `now` (tick() does this; tests call it with their own times).
    void advance(Clock::time_point now);
    std::optional<Clock::time_point> next_event() const override;
    // Frames waiting for the host on bulk IN.
    size_t frames_for_host() const { return to_host_.size(); }
    // One line per node and the bus: for the closing log.
    std::vector<std::string> summary() const;
    // The board's bootloader started the application again (after an update): the bridge is back on
    // the USB bus as Klipper, without a node id, running `identify_data` (empty: identify unanswered).
    // The nodes behind it keep running.
    void restart_klipper(std::vector<uint8_t> identify_data, Clock::time_point now);

private:
    struct Node;
    void to_host(const GsHostFrame& frame);
    void on_bus_transmitted(const BusFrame& frame, uint64_t echo_id, Clock::time_point end);
    void local_frame(const BusFrame& frame, Clock::time_point now);  // Klipper's canserial on the bridge
    void answer_as_klipper(const BusFrame& frame, Clock::time_point now);  // Klipper's protocol on its id
    void log(const std::string& message) const;

    GsUsbBridgeOptions options_;
    std::string serial_;
    uint64_t uuid_;
    FlashMemory flash_;
    SimulatedCanBus bus_;
    SimulatedCanBus::Station* host_station_;
    std::vector<std::unique_ptr<Node>> nodes_;
    std::deque<std::vector<uint8_t>> to_host_;
    uint32_t assigned_id_ = 0;  // the bridge's own node id (0x100 + 2n); 0: none
    bool started_ = false;
    bool attached_ = true;
    std::optional<Clock::time_point> left_at_;  // the bootloader request to the bridge itself
    bool rebooted_ = false;
    uint64_t host_frames_ = 0, echoes_ = 0, frames_to_host_ = 0;
    std::unique_ptr<klipper::McuResponder> klipper_;  // null: Klipper's protocol unanswered
};

}  // namespace mcuflash::sim::gs_usb
