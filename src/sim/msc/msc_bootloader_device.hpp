#pragma once
// An MSC bootloader ("copy klipper.bin to the drive that appears"): the board shows a small FAT12
// drive; a firmware file copied onto it is written into the flash at the application offset, and
// the board then starts its application (it leaves the bus).
//
// When the file is complete (what a real one has to decide too, since a host writes data, FAT and
// directory entry in any order and never says "done"): a .bin file in the root directory whose
// entry gives its size, whose cluster chain is as long as that size needs, and every sector of which
// was written since the drive appeared; then either a SYNCHRONIZE CACHE or a quiet moment (no
// write for 1 s; 200 ms with timing off) with that still true. A file too large for the
// application region is refused (logged) and the drive stays. The bootloader's own region is
// protected in the flash model (never written, filled with a placeholder).
//
// The drive is 0483:5720 (ST's USB mass-storage example id, which such bootloaders built on ST's
// library keep), SCSI "STM32   " "MSC Bootloader", a 4 MiB FAT12 volume "MSC-BOOT" without a
// partition table. The board and its chip come from --chip (default stm32f103xb) and its
// bootloader's size from data/bootloaders.toml (stm32_msc: 8 KiB).
#include <memory>
#include <optional>
#include <vector>

#include "sim/device.hpp"
#include "sim/flash_memory.hpp"
#include "sim/msc/bulk_only_device.hpp"
#include "sim/msc/sparse_disk.hpp"
#include "targets/knowledge.hpp"

namespace mcuflash::sim::msc {

class MscBootloaderDevice : public BulkOnlyDevice {
public:
    MscBootloaderDevice(const targets::Chip& chip, uint32_t app_offset, const DeviceOptions& options);

    bool attached() const override { return attached_; }
    void tick(Clock::time_point now) override;
    std::string describe() const override;
    FlashMemory& flash() override { return flash_; }

    uint32_t app_start() const { return flash_.base() + app_offset_; }
    // The file it installed ("" until then), and a file it refused and why.
    const std::string& installed_file() const { return installed_; }
    const std::string& refusal() const { return refusal_; }
    storage::BlockDevice& disk() { return disk_; }

protected:
    uint64_t medium_sectors() const override { return disk_.sector_count(); }
    void medium_read(uint64_t lba, std::span<uint8_t> out, Clock::time_point now) override;
    MediumWrite medium_write(uint64_t lba, std::span<const uint8_t> data, Clock::time_point now) override;
    void medium_synchronize(Clock::time_point now) override;

private:
    // The complete firmware file on the drive, if there is one now.
    struct Firmware {
        std::string name;
        std::vector<uint8_t> bytes;
    };
    std::optional<Firmware> complete_file();
    void install(const Firmware& firmware, Clock::time_point now);

    const targets::Chip chip_;
    const uint32_t app_offset_;
    FlashMemory flash_;
    bool timing_;
    SparseDisk disk_;
    std::vector<bool> written_;  // by sector: written since the drive appeared
    std::optional<Clock::time_point> last_write_;
    bool attached_ = true;
    std::optional<Clock::time_point> leave_at_;
    std::string installed_, refusal_;
};

std::unique_ptr<usb::UsbDeviceModel> make_msc_bootloader(const std::string& chip, const DeviceOptions& options);
std::vector<std::string> msc_bootloader_chips();

}  // namespace mcuflash::sim::msc
