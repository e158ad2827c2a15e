#pragma once
// A Teensy in PJRC's HalfKay bootloader (USB 16c0:0478), on the shared flash model.
//
// What it does (protocols.md section 7; teensy_loader_cli 2.2 as the real peer):
// - one HID interface; every block arrives as a SET_REPORT (0x21, 9, wValue 0x0200) control transfer of
//   exactly the chip's report size (258 bytes on the at90usb1286: address bits 8-23, then 256 bytes);
//   a report of another size is stalled;
// - the first block after the bootloader starts erases the application area page by page (the AT90USB's
//   SPM page erase, about 4 ms a page: about 2 s on the at90usb1286), then writes the block; later
//   blocks are only programmed (4 ms a page). The device NAKs the status stage while it works
//   (ControlResult::done_at), as the real one keeps the host waiting;
// - the bootloader's own block (the top 1 KiB on the at90usb1286) is protected: writes there are refused
//   (and counted by the flash model);
// - a report whose address bytes are all 0xFF starts the application: the Teensy leaves the bus.
// Not known from a source and modelled here: bcdDevice, the HID report descriptor's usage page/usage
// (vendor 0xFF9C), the interrupt IN endpoint, no string descriptors; SET_IDLE is accepted.
#include <optional>

#include "sim/device.hpp"
#include "sim/flash_memory.hpp"
#include "sim/usb/usb_device_model.hpp"
#include "targets/knowledge.hpp"

namespace mcuflash::sim::halfkay {

// What a Teensy's HalfKay is on one chip (the device side's own table, written from
// teensy_loader_cli's MCU list: not the client's codec).
struct HalfKayChip {
    std::string mcu, board;
    uint32_t code_size = 0, block_size = 0;
    enum class Address { Low16, Bits8To23, Low24Header64 } address = Address::Low16;
    uint32_t header() const { return address == Address::Low24Header64 ? 64 : 2; }
    uint32_t report_size() const { return header() + block_size; }
};
const std::vector<HalfKayChip>& halfkay_chips();

class HalfKayDevice : public usb::UsbDeviceModel {
public:
    HalfKayDevice(const targets::Chip& chip, HalfKayChip teensy, const DeviceOptions& options);

    std::vector<uint8_t> device_descriptor() const override;
    std::vector<uint8_t> configuration_descriptor() const override;
    std::string string_descriptor(uint8_t) const override { return {}; }
    std::vector<uint8_t> other_descriptor(uint8_t type, uint8_t index, uint16_t w_index) const override;
    usb::ControlResult class_request(const link::UsbSetup& setup, std::span<const uint8_t> data_out,
                                     Clock::time_point now) override;
    void bus_reset(Clock::time_point now) override;
    bool attached() const override { return attached_; }
    void tick(Clock::time_point now) override;
    std::string describe() const override;
    FlashMemory& flash() override { return flash_; }

    std::vector<uint8_t> report_descriptor() const;
    bool erased() const { return erased_; }
    bool booted() const { return booted_; }
    uint64_t blocks_written() const { return blocks_; }

private:
    usb::ControlResult set_report(std::span<const uint8_t> report, Clock::time_point now);

    const targets::Chip chip_;
    const HalfKayChip teensy_;
    FlashMemory flash_;
    bool timing_;
    bool attached_ = true;
    bool erased_ = false;  // the first block came (this bootloader session)
    bool booted_ = false;
    uint64_t blocks_ = 0;
    Clock::time_point busy_until_{};
    std::optional<Clock::time_point> leave_at_;
};

// The chips the simulator runs on: those of halfkay_chips() the knowledge base knows.
std::vector<std::string> halfkay_simulator_chips();
// Throws core::Error(Usage) for a chip it cannot simulate, listing those it can.
std::unique_ptr<usb::UsbDeviceModel> make_halfkay_device(const std::string& chip, const DeviceOptions& options);

}  // namespace mcuflash::sim::halfkay
