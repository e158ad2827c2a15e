#pragma once
// A USB SD-card reader holding a card (an image file, written through: the file is the card), and
// the board's SD-card bootloader taking the file from that card when the board is reset.
//
// The reader: 05e3:0751 (a Genesys Logic card reader's id), SCSI "Generic " "STORAGE DEVICE",
// removable media. It has no flash; flash() is an empty stand-in.
//
// sd_boot(): what an LPC176x SD bootloader (and the BTT/MKS STM32 ones built like it) does at
// power-on: it looks for firmware.bin in the card's root (case-insensitive, as FAT is), writes it
// into flash after itself (the bootloader's size on the chip from data/bootloaders.toml; its own
// region is protected and never touched), then renames it FIRMWARE.CUR (an older FIRMWARE.CUR is
// replaced). The rename is done as a copy under the new name and the removal of the old one, through
// mcuflash's FAT code (src/storage): the card then holds what the real bootloader leaves.
#include <functional>
#include <memory>
#include <string>

#include "sim/device.hpp"
#include "sim/flash_memory.hpp"
#include "sim/msc/bulk_only_device.hpp"
#include "storage/block_device.hpp"

namespace mcuflash::sim::msc {

class CardReaderDevice : public BulkOnlyDevice {
public:
    explicit CardReaderDevice(const std::string& card_image);

    std::string describe() const override;
    FlashMemory& flash() override { return no_flash_; }

protected:
    uint64_t medium_sectors() const override { return card_.sector_count(); }
    void medium_read(uint64_t lba, std::span<uint8_t> out, Clock::time_point now) override;
    MediumWrite medium_write(uint64_t lba, std::span<const uint8_t> data, Clock::time_point now) override;
    void medium_synchronize(Clock::time_point now) override;

private:
    std::string path_;
    storage::FileBlockDevice card_;
    FlashMemory no_flash_;
};

std::unique_ptr<usb::UsbDeviceModel> make_card_reader(const std::string& card_image, const DeviceOptions& options);

struct SdBootResult {
    enum class Outcome { Installed, NoFile, TooLarge } outcome = Outcome::NoFile;
    std::string file;  // the name it found
    uint64_t bytes = 0;
    uint32_t address = 0;
};
// One power-on of the board with the card in: throws core::Error(Usage) for a chip without an SD
// bootloader in data/bootloaders.toml, (BadInput) for a card without FAT.
SdBootResult sd_boot(const std::string& card_image, const std::string& chip, const std::string& bootloader,
                     const DeviceOptions& options, const std::function<void(const std::string&)>& log);

}  // namespace mcuflash::sim::msc
