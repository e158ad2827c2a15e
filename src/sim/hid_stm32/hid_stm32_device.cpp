#include "sim/hid_stm32/hid_stm32_device.hpp"

#include <algorithm>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include "core/error.hpp"

namespace mcuflash::sim::hid_stm32 {

namespace {

using namespace std::chrono_literals;

// The device side's own constants (not shared with protocol/hid_stm32).
constexpr uint8_t kSignature[7] = {'B', 'T', 'L', 'D', 'C', 'M', 'D'};
constexpr uint32_t kCommandBytes = 64;
constexpr uint32_t kAckEvery = 1024;  // an ack after each 1 KiB, whatever the page size
constexpr uint8_t kAckWritten = 0x02, kAckDoublePage = 0x03;
constexpr uint8_t kSetReport = 0x09, kSetIdle = 0x0A;

// STM32F10x datasheet: page erase 20 ms, half-word program 52 us (typical).
FlashTiming f1_timing() { return {20ms, {}, 52us}; }
// STM32F4 reference: sector erase about 400 ms for 16 KiB, 1.1 s for 64 KiB, 2 s for 128 KiB (x32);
// word program 16 us.
FlashTiming f4_timing() { return {150ms, 14ms, 16us}; }

}  // namespace

HidStm32Device::HidStm32Device(const targets::Chip& chip, Build build, uint32_t app_offset, const DeviceOptions& options)
    : chip_(chip),
      build_(build),
      app_offset_(app_offset),
      buffer_size_(build == Build::F1 ? chip.page_size : 1024),
      flash_(build == Build::F1 ? FlashLayout::uniform(chip.flash_base, chip.flash_size, chip.page_size, 2)
                                : FlashLayout::of_chip(chip, 4),
             options.timing ? (build == Build::F1 ? f1_timing() : f4_timing()) : FlashTiming{}),
      timing_(options.timing),
      buffer_(buffer_size_, 0xFF),
      pointer_(chip.flash_base + app_offset) {
    flash_.protect({chip.flash_base, app_offset, "hid-stm32"});
    flash_.fill_protected_with_placeholder();
    if (options.flash_file) flash_.attach_file(*options.flash_file);
}

std::string HidStm32Device::describe() const {
    return fmt::format("STM32 HID bootloader ({} build, {} KiB) on an {}", build_ == Build::F1 ? "F1" : "F4",
                       app_offset_ / 1024, chip_.name);
}

std::vector<uint8_t> HidStm32Device::device_descriptor() const {
    auto d = usb::device_descriptor_bytes(0x1209, 0xBEBA, 0x0300, 1, 2, build_ == Build::F4 ? 3 : 0,
                                          build_ == Build::F1 ? 8 : 64);
    if (build_ == Build::F1) d[2] = 0x10, d[3] = 0x01;  // the F1 build says USB 1.10
    return d;
}

std::string HidStm32Device::string_descriptor(uint8_t index) const {
    switch (index) {
        case 1: return "www.serasidis.gr";
        case 2: return build_ == Build::F1 ? "STM32F HID Bootloader" : "STM32 HID bootloader";
        case 3: return build_ == Build::F4 ? "1234567890" : "";
        default: return "";
    }
}

std::vector<uint8_t> HidStm32Device::report_descriptor() const {
    // Vendor page 0xFF00: an 8-byte input report and a 64-byte output report, no report ids.
    return {0x06, 0x00, 0xFF, 0x09, 0x01, 0xA1, 0x01,
            0x09, 0x02, 0x15, 0x00, 0x25, 0xFF, 0x75, 0x08, 0x95, 0x08, 0x81, 0x02,   // input: 8 bytes
            0x09, 0x03, 0x15, 0x00, 0x25, 0xFF, 0x75, 0x08, 0x95, 0x40, 0x91, 0x02,   // output: 64 bytes
            0xC0};
}

std::vector<uint8_t> HidStm32Device::configuration_descriptor() const {
    const auto report = static_cast<uint8_t>(report_descriptor().size());
    const uint8_t endpoints = build_ == Build::F1 ? 1 : 2;
    std::vector<uint8_t> out{9, 2, 0, 0, 1, 1, 0, 0xC0, 0x32,
                             9, 4, 0, 0, endpoints, 0x03, 0x00, 0x00, 0,
                             9, 0x21, 0x11, 0x01, 0, 1, 0x22, report, 0,
                             // interrupt IN 0x81, 8 bytes (every 5 ms on F1, 32 ms on F4)
                             7, 5, 0x81, 0x03, 8, 0, static_cast<uint8_t>(build_ == Build::F1 ? 5 : 0x20)};
    if (build_ == Build::F4)  // interrupt OUT 0x01, 64 bytes
        for (uint8_t b : {7, 5, 0x01, 0x03, 64, 0, 0x20}) out.push_back(b);
    out[2] = static_cast<uint8_t>(out.size());
    return out;
}

std::vector<uint8_t> HidStm32Device::other_descriptor(uint8_t type, uint8_t, uint16_t w_index) const {
    if (type == 0x22 && w_index == 0) return report_descriptor();
    if (type == 0x21 && w_index == 0)
        return {9, 0x21, 0x11, 0x01, 0, 1, 0x22, static_cast<uint8_t>(report_descriptor().size()), 0};
    return {};
}

bool HidStm32Device::has_endpoint(uint8_t address) const {
    return address == 0x81 || (build_ == Build::F4 && address == 0x01);
}

usb::ControlResult HidStm32Device::class_request(const link::UsbSetup& setup, std::span<const uint8_t> data_out,
                                                 Clock::time_point now) {
    if (setup.request_type == 0x21 && setup.request == kSetIdle) return usb::ControlResult::ok();
    if (setup.request_type == 0x21 && setup.request == kSetReport && (setup.value >> 8) == 2) {
        if (build_ == Build::F1) {
            // The F1 build takes endpoint 0's OUT data as it comes, 8-byte packet by packet.
            for (size_t at = 0; at < data_out.size() && !rebooted_; at += 8)
                take_f1_packet(data_out.subspan(at, std::min<size_t>(8, data_out.size() - at)), now);
        } else {
            if (data_out.size() != kCommandBytes) {
                trace(fmt::format("a {}-byte report, not 64: stalled", data_out.size()));
                return usb::ControlResult::stalled();
            }
            take_f4_report(data_out, now);
        }
        auto result = usb::ControlResult::ok();
        // The F1 build writes flash inside its USB interrupt: the status stage waits for it.
        if (build_ == Build::F1 && timing_) result.done_at = std::max(now, busy_until_);
        return result;
    }
    trace(fmt::format("class request {:02x} {:02x} {:04x}: stalled", setup.request_type, setup.request, setup.value));
    return usb::ControlResult::stalled();
}

bool HidStm32Device::bulk_out(uint8_t address, std::span<const uint8_t> data, Clock::time_point now) {
    if (build_ != Build::F4 || address != 0x01) return false;
    if (data.size() != kCommandBytes) {
        trace(fmt::format("a {}-byte report on endpoint 01, not 64: ignored", data.size()));
        return true;
    }
    take_f4_report(data, now);
    return true;
}

usb::EndpointIn HidStm32Device::bulk_in(uint8_t address, size_t, Clock::time_point now) {
    if (address != 0x81) return usb::EndpointIn::stalled();
    if (!ack_ || now < ack_->first) return usb::EndpointIn::nak();
    std::vector<uint8_t> ack(std::begin(kSignature), std::end(kSignature));
    ack.push_back(ack_->second);
    ack_.reset();
    return usb::EndpointIn::ok(std::move(ack));
}

std::optional<uint8_t> HidStm32Device::command_in(std::span<const uint8_t> report) const {
    if (report.size() < kCommandBytes || !std::equal(std::begin(kSignature), std::end(kSignature), report.begin()))
        return std::nullopt;
    // The F1 build wants zeros after the command byte; the F4 build looks at the signature only.
    if (build_ == Build::F1 &&
        std::any_of(report.begin() + 8, report.begin() + kCommandBytes, [](uint8_t b) { return b != 0; }))
        return std::nullopt;
    return report[7];
}

void HidStm32Device::queue_ack(uint8_t code, Clock::time_point at) { ack_ = std::make_pair(at, code); }

void HidStm32Device::take_f1_packet(std::span<const uint8_t> packet, Clock::time_point now) {
    if (offset_ + packet.size() > buffer_.size()) offset_ = 0;  // cannot happen with 8-byte packets
    std::copy(packet.begin(), packet.end(), buffer_.begin() + offset_);
    offset_ += static_cast<uint32_t>(packet.size());
    if (offset_ == kCommandBytes) {
        // The first 64 bytes of every page buffer are looked at as a command.
        const auto command = command_in(std::span<const uint8_t>(buffer_).first(kCommandBytes));
        if (command == 0x00) {
            started_ = true;
            pointer_ = app_start();
            offset_ = 0;
            trace(fmt::format("{}: reset pages: the next page goes to 0x{:08X}", describe(), pointer_));
        } else if (command == 0x01) {
            trace(fmt::format("{}: reboot", describe()));
            reboot(std::max(now, busy_until_), 10ms);
            return;
        }
    } else if (offset_ >= buffer_size_) {
        write_buffer(now);
        offset_ = 0;
    }
    if (offset_ == 0 || offset_ == kAckEvery)
        queue_ack(buffer_size_ == 2048 ? kAckDoublePage : kAckWritten, std::max(now, busy_until_));
}

void HidStm32Device::take_f4_report(std::span<const uint8_t> report, Clock::time_point now) {
    if (rebooted_) return;
    if (auto command = command_in(report)) {
        if (*command == 0x00) {
            started_ = true;
            pointer_ = app_start();
            offset_ = 0;
            erased_sector_.reset();
            trace(fmt::format("{}: reset pages: the next page goes to 0x{:08X}", describe(), pointer_));
        } else if (*command == 0x01) {
            trace(fmt::format("{}: reboot", describe()));
            if (offset_ > 0) write_buffer(now);  // a partly filled page is written first
            reboot(std::max(now, busy_until_), 100ms);
        }
        return;
    }
    std::copy(report.begin(), report.end(), buffer_.begin() + offset_);
    offset_ += kCommandBytes;
    if (offset_ == buffer_size_) {
        write_buffer(now);
        offset_ = 0;
        queue_ack(kAckWritten, busy_until_);
    }
}

void HidStm32Device::write_buffer(Clock::time_point now) {
    const Clock::time_point start = std::max(now, busy_until_);
    Clock::duration busy{};
    const uint32_t address = pointer_;
    pointer_ += buffer_size_;
    if (!flash_.contains(address, buffer_size_)) {
        trace(fmt::format("{}: page at 0x{:08X} is past the end of the flash: dropped", describe(), address));
        return;
    }
    if (build_ == Build::F1) {
        busy += flash_.erase(address, buffer_size_).busy;  // FLASH_WritePage erases the page first
    } else if (auto unit = flash_.erase_unit_at(address); unit && unit->address == address && erased_sector_ != address) {
        auto outcome = flash_.erase(unit->address, unit->size);  // entering a sector: erase it
        erased_sector_ = address;
        busy += outcome.busy;
        trace(fmt::format("{}: erasing the sector at 0x{:08X} ({} KiB)", describe(), unit->address, unit->size / 1024));
    }
    auto outcome = flash_.program(address, buffer_);
    if (outcome.ok()) ++pages_written_;
    else trace(fmt::format("page at 0x{:08X}: {}", address, flash_status_name(outcome.status)));
    busy += outcome.busy;
    busy_until_ = start + (timing_ ? busy : Clock::duration{});
    trace(fmt::format("{}: page 0x{:08X} written", describe(), address));
}

void HidStm32Device::reboot(Clock::time_point now, Clock::duration delay) {
    rebooted_ = true;
    leave_at_ = now + (timing_ ? delay : Clock::duration{});
}

void HidStm32Device::bus_reset(Clock::time_point) {
    // The F1 build's USB_Reset puts its page pointer back; the F4 build's pointer lives in main().
    if (build_ == Build::F1) {
        pointer_ = app_start();
        offset_ = 0;
    }
}

void HidStm32Device::tick(Clock::time_point now) {
    if (leave_at_ && now >= *leave_at_) {
        leave_at_.reset();
        attached_ = false;
        trace(fmt::format("{}: the application runs: the device leaves the bus", describe()));
    }
}

std::vector<std::string> hid_stm32_simulator_chips() {
    std::vector<std::string> out;
    const auto& kb = targets::Knowledge::builtin();
    if (const auto* b = kb.find_bootloader("hid_stm32"))
        for (const auto& [chip, size] : b->sizes)
            if (kb.find_chip(chip)) out.push_back(chip);
    return out;
}

std::unique_ptr<usb::UsbDeviceModel> make_hid_stm32_device(const std::string& chip_name, const DeviceOptions& options) {
    const std::string wanted = chip_name.empty() ? "stm32f103xb" : chip_name;
    const std::string bootloader_name = options.bootloader.empty() ? "hid_stm32" : options.bootloader;
    const auto& kb = targets::Knowledge::builtin();
    const targets::Chip* chip = kb.find_chip(wanted);
    const targets::Bootloader* bootloader = kb.find_bootloader(bootloader_name);
    if (!bootloader || bootloader->protocol != "hid-stm32")
        throw core::Error(core::ErrorKind::Usage,
                          fmt::format("no STM32 HID bootloader '{}' (hid_stm32, hid_stm32_16k)", bootloader_name));
    const auto size = chip ? bootloader->size_on(chip->name) : std::nullopt;
    if (!chip || !size || !(chip->family == "stm32f1" || chip->family == "stm32f4"))
        throw core::Error(core::ErrorKind::Usage,
                          fmt::format("no STM32 HID bootloader simulator ({}) for '{}' (chips: {})", bootloader_name,
                                      wanted, fmt::join(hid_stm32_simulator_chips(), ", ")));
    auto device = std::make_unique<HidStm32Device>(*chip, chip->family == "stm32f1" ? Build::F1 : Build::F4, *size, options);
    if (options.trace) device->set_trace(options.trace);
    return device;
}

}  // namespace mcuflash::sim::hid_stm32
