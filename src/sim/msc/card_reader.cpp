#include "sim/msc/card_reader.hpp"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include "core/error.hpp"
#include "sim/msc/flash_writer.hpp"
#include "storage/fat.hpp"
#include "targets/knowledge.hpp"

namespace mcuflash::sim::msc {

namespace {

DriveIdentity reader_identity() {
    DriveIdentity id;
    id.vendor = 0x05E3;
    id.product = 0x0751;
    id.bcd_device = 0x1414;
    id.manufacturer = "Generic";
    id.product_name = "USB Storage";
    id.serial = "000000001414";
    id.scsi_vendor = "Generic";
    id.scsi_product = "STORAGE DEVICE";
    id.scsi_revision = "1414";
    id.removable = true;
    return id;
}

}  // namespace

CardReaderDevice::CardReaderDevice(const std::string& card_image)
    : BulkOnlyDevice(reader_identity()),
      path_(card_image),
      card_(card_image, true),
      no_flash_(FlashLayout::uniform(0, 256, 256, 1)) {}

std::string CardReaderDevice::describe() const { return fmt::format("USB SD-card reader with the card {}", path_); }

void CardReaderDevice::medium_read(uint64_t lba, std::span<uint8_t> out, Clock::time_point) { card_.read(lba, out); }

MediumWrite CardReaderDevice::medium_write(uint64_t lba, std::span<const uint8_t> data, Clock::time_point now) {
    try {
        card_.write(lba, data);
    } catch (const core::Error& e) {
        trace(e.what());
        return {false, now};
    }
    return {true, now};
}

void CardReaderDevice::medium_synchronize(Clock::time_point) { card_.flush(); }

std::unique_ptr<usb::UsbDeviceModel> make_card_reader(const std::string& card_image, const DeviceOptions& options) {
    if (card_image.empty())
        throw core::Error(core::ErrorKind::Usage, "the card reader needs its card: --card-image FILE (an SD-card image)");
    auto device = std::make_unique<CardReaderDevice>(card_image);
    if (options.trace) device->set_trace(options.trace);
    return device;
}

SdBootResult sd_boot(const std::string& card_image, const std::string& chip_name, const std::string& bootloader_name,
                     const DeviceOptions& options, const std::function<void(const std::string&)>& log) {
    const auto& kb = targets::Knowledge::builtin();
    const auto& chip = kb.chip(chip_name);
    const targets::Bootloader* bootloader = nullptr;
    if (!bootloader_name.empty()) {
        bootloader = kb.find_bootloader(bootloader_name);
    } else {
        const auto found = kb.bootloaders_for("sdcard", chip.name);
        if (found.size() == 1) bootloader = found.front();
    }
    const auto size = bootloader ? bootloader->size_on(chip.name) : std::nullopt;
    if (!bootloader || bootloader->protocol != "sdcard" || !size)
        throw core::Error(core::ErrorKind::Usage,
                          fmt::format("no SD-card bootloader{} on a {} in data/bootloaders.toml",
                                      bootloader_name.empty() ? "" : " " + bootloader_name, chip.name),
                          "give --bootloader (an sdcard one, such as lpc176x_sd) that exists on the chip");
    FlashMemory flash(FlashLayout::of_chip(chip, chip.page_size ? std::min<uint32_t>(chip.page_size, 256) : 256));
    flash.protect({chip.flash_base, *size, bootloader->name});
    flash.fill_protected_with_placeholder();
    if (options.flash_file) flash.attach_file(*options.flash_file);

    storage::FileBlockDevice card(card_image, true);
    const auto where = storage::locate_fat_volume(card);
    std::unique_ptr<storage::PartitionDevice> partition;
    storage::BlockDevice* volume = &card;
    if (where.partition) {
        partition = std::make_unique<storage::PartitionDevice>(card, where.first_sector, where.sector_count, where.partition);
        volume = partition.get();
    }
    storage::FatVolume fat(*volume);
    SdBootResult result;
    const uint32_t app_start = chip.flash_base + *size;
    result.address = app_start;
    const auto entry = fat.find("firmware.bin");
    if (!entry || entry->directory) {
        log(fmt::format("{} ({}): no firmware.bin on the card: the application starts as it is", chip.name,
                        bootloader->name));
        return result;
    }
    result.file = entry->name;
    auto bytes = fat.read_file(entry->name);
    result.bytes = bytes.size();
    if (bytes.size() > chip.flash_size - *size) {
        result.outcome = SdBootResult::Outcome::TooLarge;
        log(fmt::format("{} is {} bytes, larger than the {} bytes after the bootloader: left on the card, not installed",
                        entry->name, bytes.size(), chip.flash_size - *size));
        return result;
    }
    const uint32_t unit = flash.layout().write_unit;
    std::vector<uint8_t> padded(bytes);
    padded.resize((padded.size() + unit - 1) / unit * unit, 0xFF);
    FlashWriter writer(flash);
    Clock::duration busy{};
    if (!writer.write(app_start, padded, busy))
        throw core::Error(core::ErrorKind::Io, fmt::format("the simulated flash refused {} at 0x{:08X}", entry->name, app_start));
    fat.write_file("FIRMWARE.CUR", bytes);
    fat.remove(entry->name);
    card.flush();
    result.outcome = SdBootResult::Outcome::Installed;
    log(fmt::format("{} ({}): {} ({} bytes) written at 0x{:08X}, renamed FIRMWARE.CUR", chip.name, bootloader->name,
                    entry->name, bytes.size(), app_start));
    return result;
}

}  // namespace mcuflash::sim::msc
