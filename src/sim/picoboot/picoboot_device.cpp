#include "sim/picoboot/picoboot_device.hpp"

#include <algorithm>
#include <cstring>

#include <fmt/format.h>

#include "core/error.hpp"

namespace mcuflash::sim::picoboot {

namespace {

using namespace std::chrono_literals;

// The device side's own constants, from the datasheet and picoboot.h.
constexpr uint32_t kMagic = 0x431FD10B;
constexpr uint8_t kExclusiveAccess = 0x01, kReboot = 0x02, kFlashErase = 0x03, kRead = 0x84, kWrite = 0x05,
                  kExitXip = 0x06, kEnterCmdXip = 0x07, kExec = 0x08, kVectorizeFlash = 0x09, kReboot2 = 0x0A;
constexpr uint8_t kInterfaceReset = 0x41, kCommandStatus = 0x42;
enum : uint32_t {
    kOk = 0,
    kUnknownCommand = 1,
    kInvalidCommandLength = 2,
    kInvalidTransferLength = 3,
    kInvalidAddress = 4,
    kBadAlignment = 5,
    kUnknownError = 8,
};
constexpr uint32_t kSectorSize = 4096, kPageSize = 256;
constexpr uint32_t kSramBase = 0x20000000, kSramSize = 0x42000;  // 264 KiB
// W25Q16JV typical times (datasheet, AC characteristics): sector erase 45 ms, page program 0.7-0.8 ms.
constexpr Clock::duration kSectorErase = 45ms, kPageProgram = 800us;
constexpr const char* kSerial = "E0C912D24340";  // the ROM derives it from the flash's unique id

uint32_t get32(std::span<const uint8_t> b, size_t at) {
    return uint32_t{b[at]} | (uint32_t{b[at + 1]} << 8) | (uint32_t{b[at + 2]} << 16) | (uint32_t{b[at + 3]} << 24);
}

// The arguments each command takes (bCmdSize), and whether dTransferLength must equal its dSize.
struct CommandShape {
    uint8_t id;
    uint8_t args;
    bool transfer;
};
constexpr CommandShape kShapes[] = {
    {kExclusiveAccess, 1, false}, {kReboot, 12, false},  {kFlashErase, 8, false},
    {kRead, 8, true},             {kWrite, 8, true},     {kExitXip, 0, false},
    {kEnterCmdXip, 0, false},     {kExec, 4, false},     {kVectorizeFlash, 4, false},
    {kReboot2, 16, false},
};

}  // namespace

PicobootDevice::PicobootDevice(const targets::Chip& chip, const DeviceOptions& options)
    : chip_(chip),
      flash_(FlashLayout::uniform(chip.flash_base, chip.flash_size, kSectorSize, kPageSize),
             options.timing ? FlashTiming{kSectorErase, {}, kPageProgram} : FlashTiming{}),
      sram_(kSramSize, 0),
      timing_(options.timing) {
    // Nothing to protect: the boot ROM is mask ROM, not in flash.
    if (options.flash_file) flash_.attach_file(*options.flash_file);
}

std::string PicobootDevice::describe() const {
    return fmt::format("{} boot ROM (PICOBOOT) on the {}", rp2350() ? "RP2350" : "RP2040", chip_.name);
}

std::vector<uint8_t> PicobootDevice::device_descriptor() const {
    auto d = usb::device_descriptor_bytes(0x2E8A, rp2350() ? 0x000F : 0x0003, 0x0100, 1, 2, 3, 64);
    d[2] = 0x10, d[3] = 0x01;  // bcdUSB 1.10: a full-speed device
    return d;
}

std::vector<uint8_t> PicobootDevice::configuration_descriptor() const {
    return {9, 2, 32, 0, 1, 1, 0, 0x80, 0xFA,  // one interface; bus powered, 500 mA
            9, 4, 0, 0, 2, 0xFF, 0, 0, 0,     // interface 0: vendor class, two endpoints
            7, 5, kOutEndpoint, 2, 64, 0, 0,  // bulk OUT
            7, 5, kInEndpoint, 2, 64, 0, 0};  // bulk IN
}

std::string PicobootDevice::string_descriptor(uint8_t index) const {
    switch (index) {
        case 1: return "Raspberry Pi";
        case 2: return "RP2 Boot";
        case 3: return kSerial;
        default: return "";
    }
}

bool PicobootDevice::in_sram(uint32_t address, uint64_t length) const {
    return address >= kSramBase && uint64_t(address) + length <= uint64_t{kSramBase} + kSramSize;
}

void PicobootDevice::refuse(uint32_t status, const std::string& why) {
    status_code_ = status;
    out_halted_ = in_halted_ = true;
    phase_ = Phase::Command;
    data_.clear();
    trace(fmt::format("{}: endpoints halted (status {})", why, status));
}

usb::ControlResult PicobootDevice::class_request(const link::UsbSetup& setup, std::span<const uint8_t>,
                                                 Clock::time_point now) {
    const bool vendor_to_interface = ((setup.request_type >> 5) & 3) == 2 && (setup.request_type & 0x1F) == 1;
    if (vendor_to_interface && setup.index == 0) {
        if (!setup.is_in() && setup.request == kInterfaceReset) {
            bus_reset(now);
            trace("INTERFACE_RESET");
            return usb::ControlResult::ok();
        }
        if (setup.is_in() && setup.request == kCommandStatus && setup.length == 16) {
            std::vector<uint8_t> out(16, 0);
            for (int i = 0; i < 4; ++i) {
                out[i] = static_cast<uint8_t>(token_ >> (8 * i));
                out[4 + i] = static_cast<uint8_t>(status_code_ >> (8 * i));
            }
            out[8] = command_id_;
            out[9] = phase_ == Phase::DataOut || phase_ == Phase::DataIn ? 1 : 0;
            return usb::ControlResult::ok(std::move(out));
        }
    }
    trace(fmt::format("control request {:02x} {:02x}: stalled", setup.request_type, setup.request));
    return usb::ControlResult::stalled();
}

void PicobootDevice::start(std::span<const uint8_t> c, Clock::time_point now) {
    ++commands_;
    if (c.size() != 32 || get32(c, 0) != kMagic) {
        // The ROM leaves the last status as it was here.
        out_halted_ = in_halted_ = true;
        trace(fmt::format("a {}-byte OUT transfer that is no command (magic or size): endpoints halted", c.size()));
        return;
    }
    token_ = get32(c, 4);
    command_id_ = c[8];
    const uint8_t args = c[9];
    const uint32_t transfer = get32(c, 12);
    status_code_ = kUnknownCommand;
    const CommandShape* shape = nullptr;
    for (const auto& s : kShapes)
        if (s.id == command_id_) shape = &s;
    // Each ROM reboots by its own command: REBOOT on the RP2040, REBOOT2 on the RP2350.
    if (!shape || (command_id_ == kReboot2 && !rp2350()) || (command_id_ == kReboot && rp2350()))
        return refuse(kUnknownCommand, fmt::format("command 0x{:02X} unknown to the {}", command_id_, chip_.name));
    if (args != shape->args)
        return refuse(kInvalidCommandLength,
                      fmt::format("command 0x{:02X} with bCmdSize {} (takes {})", command_id_, args, shape->args));
    const uint32_t address = get32(c, 16), size = get32(c, 20);
    if (transfer != (shape->transfer ? size : 0))
        return refuse(kInvalidTransferLength,
                      fmt::format("command 0x{:02X} with dTransferLength {}", command_id_, transfer));
    status_code_ = kOk;
    address_ = address;
    data_.clear();
    switch (command_id_) {
        case kExclusiveAccess:
            exclusive_ = c[16];
            break;
        case kReboot: {
            const uint32_t delay_ms = get32(c, 24);
            reboot_at_ = now + std::chrono::milliseconds(delay_ms);
            trace(fmt::format("REBOOT pc 0x{:08X} sp 0x{:08X} in {} ms", address, get32(c, 20), delay_ms));
            break;
        }
        case kReboot2: {
            // dFlags (the reboot type in bits 0-3: 0 a normal boot, the only one simulated), dDelayMS.
            const uint32_t flags = get32(c, 16), delay_ms = get32(c, 20);
            if ((flags & 0x0F) != 0)
                return refuse(kUnknownError, fmt::format("REBOOT2 type {}: only a normal boot is simulated", flags & 0x0F));
            reboot_at_ = now + std::chrono::milliseconds(delay_ms);
            trace(fmt::format("REBOOT2 flags 0x{:X} in {} ms", flags, delay_ms));
            break;
        }
        case kFlashErase: {
            if (address % kSectorSize || size % kSectorSize)
                return refuse(kBadAlignment, fmt::format("FLASH_ERASE 0x{:08X}+{}: not whole 4 KiB sectors", address, size));
            if (!in_flash(address, size))
                return refuse(kInvalidAddress, fmt::format("FLASH_ERASE 0x{:08X}+{}: outside the flash", address, size));
            auto outcome = flash_.erase(address, size);
            if (!outcome.ok()) return refuse(kUnknownError, fmt::format("FLASH_ERASE: {}", flash_status_name(outcome.status)));
            busy_until_ = now + (timing_ ? outcome.busy : Clock::duration{});
            trace(fmt::format("FLASH_ERASE 0x{:08X}+{}", address, size));
            break;
        }
        case kRead:
            if (in_flash(address, size)) {
                data_.resize(size);
                flash_.read(address, data_);
            } else if (in_sram(address, size)) {
                data_.assign(sram_.begin() + (address - kSramBase), sram_.begin() + (address - kSramBase + size));
            } else {
                return refuse(kInvalidAddress, fmt::format("READ 0x{:08X}+{}: not flash or SRAM", address, size));
            }
            if (size) {
                phase_ = Phase::DataIn;
                return;
            }
            break;
        case kWrite:
            if (in_flash(address, size)) {
                if (address % kPageSize || size % kPageSize)
                    return refuse(kBadAlignment, fmt::format("WRITE 0x{:08X}+{}: not whole 256-byte pages", address, size));
            } else if (!in_sram(address, size)) {
                return refuse(kInvalidAddress, fmt::format("WRITE 0x{:08X}+{}: not flash or SRAM", address, size));
            }
            expected_ = size;
            if (size) {
                phase_ = Phase::DataOut;
                return;
            }
            break;
        case kExitXip:
            xip_exited_ = true;
            break;
        case kEnterCmdXip:
            xip_exited_ = false;
            break;
        case kExec:
            // Running the host's code would need a simulated core: refused rather than pretended.
            return refuse(kUnknownError, fmt::format("EXEC 0x{:08X}: not simulated", address));
        case kVectorizeFlash:
            break;
    }
    phase_ = command_id_ & 0x80 ? Phase::StatusOut : Phase::StatusIn;
}

void PicobootDevice::finish_write(Clock::time_point now) {
    if (in_sram(address_, expected_)) {
        std::copy(data_.begin(), data_.end(), sram_.begin() + (address_ - kSramBase));
    } else {
        // NOR flash: programming only clears bits; FlashMemory ANDs, as the chip does.
        auto outcome = flash_.program(address_, data_);
        if (!outcome.ok()) return refuse(kUnknownError, fmt::format("WRITE: {}", flash_status_name(outcome.status)));
        busy_until_ = now + (timing_ ? outcome.busy : Clock::duration{});
        trace(fmt::format("WRITE 0x{:08X}+{}", address_, expected_));
    }
    data_.clear();
    phase_ = Phase::StatusIn;
}

bool PicobootDevice::bulk_out(uint8_t address, std::span<const uint8_t> data, Clock::time_point now) {
    tick(now);
    if (address != kOutEndpoint || out_halted_) return false;
    switch (phase_) {
        case Phase::Command:
            start(data, now);
            return true;
        case Phase::DataOut:
            if (data_.size() + data.size() > expected_) {
                refuse(kInvalidTransferLength, "WRITE: more data than dTransferLength");
                return false;
            }
            data_.insert(data_.end(), data.begin(), data.end());
            if (data_.size() == expected_) finish_write(now);
            return true;
        case Phase::StatusOut:
            phase_ = Phase::Command;  // the host's status packet (rp2040_flash sends one byte)
            return true;
        case Phase::DataIn:
        case Phase::StatusIn:
            trace("an OUT transfer while the ROM sends: stalled");
            return false;
    }
    return false;
}

usb::EndpointIn PicobootDevice::bulk_in(uint8_t address, size_t max_length, Clock::time_point now) {
    tick(now);
    if (address != kInEndpoint || in_halted_) return usb::EndpointIn::stalled();
    if (now < busy_until_) return usb::EndpointIn::nak();  // the flash is still busy
    if (phase_ == Phase::DataIn) {
        const size_t n = std::min(max_length, data_.size());
        std::vector<uint8_t> out(data_.begin(), data_.begin() + static_cast<std::ptrdiff_t>(n));
        data_.erase(data_.begin(), data_.begin() + static_cast<std::ptrdiff_t>(n));
        if (data_.empty()) phase_ = Phase::StatusOut;
        return usb::EndpointIn::ok(std::move(out));
    }
    if (phase_ == Phase::StatusIn) {
        phase_ = Phase::Command;
        return usb::EndpointIn::ok({});
    }
    return usb::EndpointIn::nak();
}

void PicobootDevice::clear_halt(uint8_t address, Clock::time_point) {
    if (address == kOutEndpoint) out_halted_ = false;
    if (address == kInEndpoint) in_halted_ = false;
}

void PicobootDevice::bus_reset(Clock::time_point) {
    // The ROM resets the interface on a (re)configuration as on INTERFACE_RESET: halts cleared, the
    // command state and its status zeroed, exclusive access given up.
    out_halted_ = in_halted_ = false;
    phase_ = Phase::Command;
    data_.clear();
    token_ = status_code_ = 0;
    command_id_ = 0;
    exclusive_ = 0;
}

void PicobootDevice::tick(Clock::time_point now) {
    if (reboot_at_ && now >= *reboot_at_) {
        reboot_at_.reset();
        attached_ = false;
        trace(fmt::format("{}: rebooted: the device leaves the bus", describe()));
    }
}

std::unique_ptr<usb::UsbDeviceModel> make_picoboot_device(const std::string& chip_name, const DeviceOptions& options) {
    const std::string wanted = chip_name.empty() ? "rp2040" : chip_name;
    const targets::Chip* chip = targets::Knowledge::builtin().find_chip(wanted);
    if (!chip || (chip->family != "rp2040" && chip->family != "rp2350"))
        throw core::Error(core::ErrorKind::Usage,
                          fmt::format("no PICOBOOT simulator for '{}' (chips: rp2040, rp2350)", wanted));
    auto device = std::make_unique<PicobootDevice>(*chip, options);
    if (options.trace) device->set_trace(options.trace);
    return device;
}

}  // namespace mcuflash::sim::picoboot
