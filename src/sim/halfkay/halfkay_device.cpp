#include "sim/halfkay/halfkay_device.hpp"

#include <algorithm>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include "core/error.hpp"

namespace mcuflash::sim::halfkay {

namespace {

using namespace std::chrono_literals;

// The AT90USB/ATmega32U4 SPM page erase and page write: 3.7-4.5 ms each (datasheet, "Flash write").
constexpr Clock::duration kPageErase = 4ms, kPageWrite = 4ms;
// After the boot report the AVR jumps to the application, which drops the bootloader's USB.
constexpr Clock::duration kBootDelay = 10ms;
constexpr uint16_t kBcdDevice = 0x0100;  // unverified
constexpr uint8_t kSetReport = 0x09, kSetIdle = 0x0A;

}  // namespace

const std::vector<HalfKayChip>& halfkay_chips() {
    using A = HalfKayChip::Address;
    static const std::vector<HalfKayChip> all = {
        {"at90usb162", "Teensy 1.0", 15872, 128, A::Low16},
        {"atmega32u4", "Teensy 2.0", 32256, 128, A::Low16},
        {"at90usb646", "Teensy++ 1.0", 64512, 256, A::Low16},
        {"at90usb1286", "Teensy++ 2.0", 130048, 256, A::Bits8To23},
    };
    return all;
}

HalfKayDevice::HalfKayDevice(const targets::Chip& chip, HalfKayChip teensy, const DeviceOptions& options)
    : chip_(chip),
      teensy_(std::move(teensy)),
      flash_(FlashLayout::uniform(chip.flash_base, chip.flash_size, chip.page_size, chip.page_size),
             options.timing ? FlashTiming{kPageErase, {}, kPageWrite} : FlashTiming{}),
      timing_(options.timing) {
    if (teensy_.code_size < chip.flash_size) {
        flash_.protect({chip.flash_base + teensy_.code_size, chip.flash_size - teensy_.code_size, "halfkay"});
        flash_.fill_protected_with_placeholder();
    }
    if (options.flash_file) flash_.attach_file(*options.flash_file);
}

std::string HalfKayDevice::describe() const { return fmt::format("HalfKay on an {} ({})", teensy_.mcu, teensy_.board); }

std::vector<uint8_t> HalfKayDevice::device_descriptor() const {
    return usb::device_descriptor_bytes(0x16C0, 0x0478, kBcdDevice, 0, 0, 0, 64);
}

std::vector<uint8_t> HalfKayDevice::report_descriptor() const {
    const uint16_t count = static_cast<uint16_t>(teensy_.report_size());
    return {0x06, 0x9C, 0xFF,  // usage page: vendor 0xFF9C
            0x09, 0x1B,        // usage (modelled)
            0xA1, 0x01,        // collection: application
            0x75, 0x08,        // report size: 8 bits
            0x15, 0x00,        // logical minimum 0
            0x26, 0xFF, 0x00,  // logical maximum 255
            0x96, static_cast<uint8_t>(count), static_cast<uint8_t>(count >> 8),  // report count
            0x09, 0x02,        // usage
            0x91, 0x02,        // output: data, variable, absolute
            0xC0};
}

std::vector<uint8_t> HalfKayDevice::configuration_descriptor() const {
    const auto report = report_descriptor();
    std::vector<uint8_t> out{9, 2, 34, 0, 1, 1, 0, 0x80, 50,
                             // interface 0: HID, one endpoint
                             9, 4, 0, 0, 1, 0x03, 0x00, 0x00, 0,
                             // HID 1.11, one report descriptor
                             9, 0x21, 0x11, 0x01, 0, 1, 0x22, static_cast<uint8_t>(report.size()),
                             static_cast<uint8_t>(report.size() >> 8),
                             // endpoint 1 IN, interrupt, 64 bytes, every 1 ms
                             7, 5, 0x81, 0x03, 64, 0, 1};
    return out;
}

std::vector<uint8_t> HalfKayDevice::other_descriptor(uint8_t type, uint8_t, uint16_t w_index) const {
    if (type == 0x22 && w_index == 0) return report_descriptor();
    if (type == 0x21 && w_index == 0) return {9, 0x21, 0x11, 0x01, 0, 1, 0x22, static_cast<uint8_t>(report_descriptor().size()), 0};
    return {};
}

usb::ControlResult HalfKayDevice::class_request(const link::UsbSetup& setup, std::span<const uint8_t> data_out,
                                                Clock::time_point now) {
    if (setup.request_type == 0x21 && setup.request == kSetReport && setup.value == 0x0200 && setup.index == 0)
        return set_report(data_out, now);
    if (setup.request_type == 0x21 && setup.request == kSetIdle) return usb::ControlResult::ok();
    trace(fmt::format("class request {:02x} {:02x} {:04x}: stalled", setup.request_type, setup.request, setup.value));
    return usb::ControlResult::stalled();
}

usb::ControlResult HalfKayDevice::set_report(std::span<const uint8_t> report, Clock::time_point now) {
    if (report.size() != teensy_.report_size()) {
        trace(fmt::format("a {}-byte report, not {}: stalled", report.size(), teensy_.report_size()));
        return usb::ControlResult::stalled();
    }
    uint32_t address = 0;
    bool boot = false;
    switch (teensy_.address) {
        case HalfKayChip::Address::Low16:
            address = uint32_t{report[0]} | (uint32_t{report[1]} << 8);
            boot = address == 0xFFFF;
            break;
        case HalfKayChip::Address::Bits8To23:
            address = (uint32_t{report[0]} << 8) | (uint32_t{report[1]} << 16);
            boot = report[0] == 0xFF && report[1] == 0xFF;
            break;
        case HalfKayChip::Address::Low24Header64:
            address = uint32_t{report[0]} | (uint32_t{report[1]} << 8) | (uint32_t{report[2]} << 16);
            boot = address == 0xFFFFFF;
            break;
    }
    // A report that comes while the device still works waits (NAK) until it is done.
    const Clock::time_point start = std::max(now, busy_until_);
    if (boot) {
        booted_ = true;
        leave_at_ = start + kBootDelay;
        trace(fmt::format("{}: boot report: the application starts", describe()));
        auto result = usb::ControlResult::ok();
        result.done_at = start;
        return result;
    }
    const auto block = report.subspan(teensy_.header());
    if (address % teensy_.block_size != 0 || !flash_.contains(address, block.size())) {
        trace(fmt::format("block at 0x{:X}: not a block of the flash: stalled", address));
        return usb::ControlResult::stalled();
    }
    Clock::duration busy{};
    if (!erased_) {
        erased_ = true;
        auto outcome = flash_.erase(chip_.flash_base, teensy_.code_size);
        busy += outcome.busy;
        trace(fmt::format("{}: first block: erasing the application area 0x0-0x{:X} ({})", describe(),
                          teensy_.code_size - 1, outcome.ok() ? "done" : flash_status_name(outcome.status)));
    }
    auto outcome = flash_.program(address, block);
    if (outcome.ok()) ++blocks_;
    else trace(fmt::format("block at 0x{:X}: {} (ignored)", address, flash_status_name(outcome.status)));
    busy += outcome.busy;
    busy_until_ = start + (timing_ ? busy : Clock::duration{});
    auto result = usb::ControlResult::ok();
    result.done_at = busy_until_;
    return result;
}

void HalfKayDevice::bus_reset(Clock::time_point now) {
    (void)now;  // a USB reset does not restart the AVR: the session (first-block erase) goes on
}

void HalfKayDevice::tick(Clock::time_point now) {
    if (leave_at_ && now >= *leave_at_) {
        leave_at_.reset();
        attached_ = false;
        trace(fmt::format("{}: the application runs: the device leaves the bus", describe()));
    }
}

std::vector<std::string> halfkay_simulator_chips() {
    std::vector<std::string> out;
    const auto& kb = targets::Knowledge::builtin();
    for (const auto& c : halfkay_chips())
        if (kb.find_chip(c.mcu)) out.push_back(c.mcu);
    return out;
}

std::unique_ptr<usb::UsbDeviceModel> make_halfkay_device(const std::string& chip_name, const DeviceOptions& options) {
    const std::string wanted = chip_name.empty() ? "at90usb1286" : chip_name;
    const auto& kb = targets::Knowledge::builtin();
    const targets::Chip* chip = kb.find_chip(wanted);
    for (const auto& c : halfkay_chips()) {
        if (!chip || c.mcu != chip->name) continue;
        auto device = std::make_unique<HalfKayDevice>(*chip, c, options);
        if (options.trace) device->set_trace(options.trace);
        return device;
    }
    throw core::Error(core::ErrorKind::Usage, fmt::format("no HalfKay simulator for '{}' (chips: {})", wanted,
                                                          fmt::join(halfkay_simulator_chips(), ", ")));
}

}  // namespace mcuflash::sim::halfkay
