#pragma once
// A board in the STM32 HID bootloader (Serasidis/bootsector, USB 1209:beba), on the shared flash model.
//
// What it does (protocols.md section 6; the bootloader's F1 and F4 sources, read for facts; Klipper's
// hid-flash as the real peer):
// - one HID interface, bcdDevice 3.00, strings "www.serasidis.gr" / "STM32F HID Bootloader";
//   - F1 build (STM32F103, its own USB stack): endpoint 0 of 8 bytes, one interrupt IN endpoint 0x81
//     of 8 bytes, no OUT endpoint: reports arrive as SET_REPORT data on endpoint 0, taken 8 bytes at
//     a time. 2 KiB bootloader (the hid_stm32_16k build: 16 KiB);
//   - F4 build (ST's CustomHID): endpoint 0 of 64 bytes, IN 0x81 of 8 bytes, OUT 0x01 of 64 bytes
//     (the real descriptor declares it isochronous, a slip hidapi skips; modelled as interrupt, the
//     type the class means) and SET_REPORT; 16 KiB bootloader;
// - "BTLDCMD" 0x00 puts the page pointer at the application start; 0x01 reboots: the device leaves
//   the bus (the F4 build first writes a partly filled page);
// - other reports fill a 1 KiB page buffer (2 KiB on F103 high density); a full buffer is written at
//   the page pointer, which then moves on: pages go in order, with no address on the wire. F1 erases
//   each page before writing it; F4 erases a sector when the pointer enters it. Program times are the
//   datasheets' typical ones (off with timing off): the ack comes when the write is done;
// - after each 1 KiB the 8-byte ack "BTLDCMD" 0x02 (0x03 on a 2 KiB-page F103, as Klipper's fork),
//   and the F1 build also acks the reset command; one pending ack only (a second one replaces it);
// - a USB bus reset puts the F1 build's pointer back at the start (its USB_Reset does);
// - the bootloader's own region is protected (refused writes are counted and logged).
// Not from a source, modelled: the F1 build's reply to requests it does not know (it treats
// SET_IDLE as GET_INTERFACE: accepted here); the reboot delay (10 ms F1; F4: 100 ms, HAL_Delay).
#include <optional>

#include "sim/device.hpp"
#include "sim/flash_memory.hpp"
#include "sim/usb/usb_device_model.hpp"
#include "targets/knowledge.hpp"

namespace mcuflash::sim::hid_stm32 {

enum class Build { F1, F4 };

class HidStm32Device : public usb::UsbDeviceModel {
public:
    // `app_offset`: the bootloader's size (the application start - flash base).
    HidStm32Device(const targets::Chip& chip, Build build, uint32_t app_offset, const DeviceOptions& options);

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
    bool attached() const override { return attached_; }
    void tick(Clock::time_point now) override;
    std::string describe() const override;
    FlashMemory& flash() override { return flash_; }

    std::vector<uint8_t> report_descriptor() const;
    Build build() const { return build_; }
    uint32_t app_start() const { return chip_.flash_base + app_offset_; }
    uint32_t buffer_size() const { return buffer_size_; }
    bool started() const { return started_; }  // a reset-pages command came
    bool rebooted() const { return rebooted_; }
    uint64_t pages_written() const { return pages_written_; }

private:
    void take_f1_packet(std::span<const uint8_t> packet, Clock::time_point now);
    void take_f4_report(std::span<const uint8_t> report, Clock::time_point now);
    void write_buffer(Clock::time_point now);
    void queue_ack(uint8_t code, Clock::time_point at);
    void reboot(Clock::time_point now, Clock::duration delay);
    std::optional<uint8_t> command_in(std::span<const uint8_t> report) const;

    const targets::Chip chip_;
    const Build build_;
    const uint32_t app_offset_;
    const uint32_t buffer_size_;  // bytes written at once: the F1 page (1 or 2 KiB), 1 KiB on F4
    FlashMemory flash_;
    bool timing_;
    bool attached_ = true;
    bool started_ = false, rebooted_ = false;
    std::vector<uint8_t> buffer_;
    uint32_t offset_ = 0;   // bytes in the buffer
    uint32_t pointer_ = 0;  // where the next buffer goes
    std::optional<uint32_t> erased_sector_;  // F4: the sector last erased
    uint64_t pages_written_ = 0;
    Clock::time_point busy_until_{};
    std::optional<std::pair<Clock::time_point, uint8_t>> ack_;  // when it is ready, its code
    std::optional<Clock::time_point> leave_at_;
};

// The chips the simulator runs on: those data/bootloaders.toml's hid_stm32 names.
std::vector<std::string> hid_stm32_simulator_chips();
// `options.bootloader`: "" or "hid_stm32" (the chip's usual build), "hid_stm32_16k" (16 KiB on an F103).
// Throws core::Error(Usage) for a chip it cannot simulate, listing those it can.
std::unique_ptr<usb::UsbDeviceModel> make_hid_stm32_device(const std::string& chip, const DeviceOptions& options);

}  // namespace mcuflash::sim::hid_stm32
