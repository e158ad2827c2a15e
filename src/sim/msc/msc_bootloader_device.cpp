#include "sim/msc/msc_bootloader_device.hpp"

#include <algorithm>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include "core/error.hpp"
#include "sim/msc/flash_writer.hpp"
#include "storage/fat.hpp"

namespace mcuflash::sim::msc {

namespace {

using namespace std::chrono_literals;

constexpr uint64_t kDiskSectors = 8192;  // 4 MiB
constexpr const char* kBootloader = "stm32_msc";

bool is_firmware_name(const std::string& name) {
    if (name.size() < 5) return false;
    std::string ext = name.substr(name.size() - 4);
    std::transform(ext.begin(), ext.end(), ext.begin(), [](unsigned char c) { return char(std::tolower(c)); });
    return ext == ".bin";
}

DriveIdentity msc_identity() {
    DriveIdentity id;
    id.vendor = 0x0483;
    id.product = 0x5720;
    id.bcd_device = 0x0200;
    id.manufacturer = "STMicroelectronics";
    id.product_name = "MSC Bootloader";
    id.serial = "MSC000000001";
    id.scsi_vendor = "STM32";
    id.scsi_product = "MSC Bootloader";
    id.scsi_revision = "1.0";
    id.removable = true;
    return id;
}

}  // namespace

MscBootloaderDevice::MscBootloaderDevice(const targets::Chip& chip, uint32_t app_offset, const DeviceOptions& options)
    : BulkOnlyDevice(msc_identity()),
      chip_(chip),
      app_offset_(app_offset),
      flash_(FlashLayout::of_chip(chip, 2),
             // STM32F1: about 20 ms a page erase, 50 us a half-word (datasheet typicals).
             options.timing ? FlashTiming{20ms, {}, 50us} : FlashTiming{}),
      timing_(options.timing),
      disk_(kDiskSectors, "MSC-BOOT drive"),
      written_(kDiskSectors, false) {
    flash_.protect({flash_.base(), app_offset_, kBootloader});
    flash_.fill_protected_with_placeholder();
    if (options.flash_file) flash_.attach_file(*options.flash_file);
    storage::FatFormat format;
    format.label = "MSC-BOOT";
    format.cluster_bytes = 2048;
    format.media = 0xF0;
    storage::format_fat(disk_, format);
}

std::string MscBootloaderDevice::describe() const {
    return fmt::format("MSC bootloader on a {} (application at 0x{:08X})", chip_.name, app_start());
}

void MscBootloaderDevice::medium_read(uint64_t lba, std::span<uint8_t> out, Clock::time_point) { disk_.read(lba, out); }

MediumWrite MscBootloaderDevice::medium_write(uint64_t lba, std::span<const uint8_t> data, Clock::time_point now) {
    disk_.write(lba, data);
    for (uint64_t s = lba; s < lba + data.size() / kSector; ++s) written_[s] = true;
    last_write_ = now;
    return {true, now};
}

std::optional<MscBootloaderDevice::Firmware> MscBootloaderDevice::complete_file() {
    try {
        storage::FatVolume fat(disk_);  // afresh: the host changed the FAT and directory behind any cache
        for (const auto& entry : fat.list()) {
            if (entry.directory || entry.size == 0 || !is_firmware_name(entry.name)) continue;
            const auto sectors = fat.file_sectors(entry.name);
            if (!std::all_of(sectors.begin(), sectors.end(), [&](uint64_t s) { return s < written_.size() && written_[s]; }))
                continue;
            return Firmware{entry.name, fat.read_file(entry.name)};
        }
    } catch (const core::Error&) {
        // a FAT the host is half way through changing: not complete yet
    }
    return std::nullopt;
}

void MscBootloaderDevice::install(const Firmware& firmware, Clock::time_point now) {
    const uint64_t room = uint64_t(flash_.size()) - app_offset_;
    if (firmware.bytes.size() > room) {
        refusal_ = fmt::format("{} is {} bytes; the application region holds {}: not installed", firmware.name,
                               firmware.bytes.size(), room);
        trace(refusal_);
        return;
    }
    std::vector<uint8_t> padded(firmware.bytes);
    const uint32_t unit = flash_.layout().write_unit;
    padded.resize((padded.size() + unit - 1) / unit * unit, 0xFF);
    FlashWriter writer(flash_);
    Clock::duration busy{};
    if (!writer.write(app_start(), padded, busy)) {
        refusal_ = fmt::format("{}: the flash refused the write", firmware.name);
        trace(refusal_);
        return;
    }
    installed_ = firmware.name;
    trace(fmt::format("{} ({} bytes) written at 0x{:08X}; starting the application", firmware.name,
                      firmware.bytes.size(), app_start()));
    // The CSW of the command that completed it still goes out; then the board resets.
    leave_at_ = now + (timing_ ? busy : Clock::duration{}) + 20ms;
}

void MscBootloaderDevice::medium_synchronize(Clock::time_point now) {
    if (leave_at_ || !refusal_.empty()) return;
    if (auto firmware = complete_file()) install(*firmware, now);
}

void MscBootloaderDevice::tick(Clock::time_point now) {
    if (!attached_) return;
    if (leave_at_) {
        if (now >= *leave_at_) {
            attached_ = false;
            trace(describe() + ": the application starts: the drive leaves the bus");
        }
        return;
    }
    const auto quiet = timing_ ? Clock::duration(1s) : Clock::duration(200ms);
    if (last_write_ && now - *last_write_ >= quiet) {
        last_write_.reset();  // looked at once per burst of writes
        if (auto firmware = complete_file()) install(*firmware, now);
    }
}

std::vector<std::string> msc_bootloader_chips() {
    const auto& kb = targets::Knowledge::builtin();
    std::vector<std::string> out;
    if (const auto* bl = kb.find_bootloader(kBootloader))
        for (const auto& [chip, size] : bl->sizes) out.push_back(chip);
    return out;
}

std::unique_ptr<usb::UsbDeviceModel> make_msc_bootloader(const std::string& chip_name, const DeviceOptions& options) {
    const auto& kb = targets::Knowledge::builtin();
    const std::string wanted = chip_name.empty() ? "stm32f103xb" : chip_name;
    const auto* bl = kb.find_bootloader(kBootloader);
    const targets::Chip* chip = kb.find_chip(wanted);
    const auto size = chip && bl ? bl->size_on(chip->name) : std::nullopt;
    if (!size)
        throw core::Error(core::ErrorKind::Usage, fmt::format("no MSC bootloader simulator for '{}' (chips: {})", wanted,
                                                              fmt::join(msc_bootloader_chips(), ", ")));
    auto device = std::make_unique<MscBootloaderDevice>(*chip, *size, options);
    if (options.trace) device->set_trace(options.trace);
    return device;
}

}  // namespace mcuflash::sim::msc
