#pragma once
// A UF2 bootloader's drive (github.com/microsoft/uf2): a virtual FAT16 disk with INFO_UF2.TXT and
// INDEX.HTM; every sector written anywhere on it that is a valid UF2 block for this bootloader is
// programmed at the block's target address; once every block of the file (numBlocks of them) has
// arrived, the board resets into its application (it leaves the bus).
//
// Two personalities (--chip), each as the real one's sources describe it:
// - rp2040: the RP2040 boot ROM's RPI-RP2 drive (2e8a:0003; the ROM's PICOBOOT interface is left
//   out here, the `picoboot` simulator has it): 128 MiB with an MBR (one FAT16 partition from sector
//   1), 4 KiB clusters, label RPI-RP2, INFO_UF2.TXT "UF2 Bootloader v3.0 / Model: Raspberry Pi RP2 /
//   Board-ID: RPI-RP2", no CURRENT.UF2. A block counts only with the family-ID flag and the RP2040's
//   family (0xE48BFF56), without the not-main-flash flag, with a 256-byte payload at a 256-aligned
//   flash address (blocks for SRAM are ignored here: running code from RAM is not simulated). A new
//   numBlocks starts a new transfer; each 4 KiB sector is erased before its first block; duplicates
//   are ignored; the reset comes 1 s after the last block. The ROM is mask ROM: no flash is protected.
// - samd51j19a: Adafruit's uf2-samdx1 bootloader on a Feather M4 Express (239a:0022, label
//   FEATHERBOOT, INFO_UF2.TXT with "Board-ID: SAMD51J19A-Feather-v0"), a 4 MiB FAT16 volume without
//   a partition table, and CURRENT.UF2: the whole flash as UF2 blocks, read from the flash model each
//   time it is read. A block counts with no family flag or the SAMD51's family (0x55114460); one for
//   the bootloader's own 16 KiB (below 0x4000), with the no-flash flag or another payload size is
//   not written but counted toward numBlocks (as uf2-samdx1 does, so that copying CURRENT.UF2 back
//   resets the board); the reset comes 30 ms after the last block.
// The sectors the host writes are kept (the real ones drop whatever is not a UF2 block, which a
// host does not see before the reset since it caches what it wrote).
#include <memory>
#include <optional>
#include <set>
#include <vector>

#include "sim/device.hpp"
#include "sim/flash_memory.hpp"
#include "sim/msc/bulk_only_device.hpp"
#include "sim/msc/flash_writer.hpp"
#include "sim/msc/sparse_disk.hpp"
#include "storage/block_device.hpp"
#include "targets/knowledge.hpp"

namespace mcuflash::sim::msc {

// What differs between UF2 bootloaders.
struct Uf2Personality {
    std::string chip;  // data/chips.toml
    DriveIdentity identity;
    std::string label, info_text, index_html;
    uint64_t disk_sectors = 0;
    bool partition_table = false;
    uint32_t cluster_bytes = 4096;
    uint32_t family_id = 0;
    bool family_required = true;     // RP2040: the family flag must be there
    uint32_t app_start = 0;          // blocks below are not written (the bootloader's region)
    bool current_uf2 = false;        // CURRENT.UF2 shows the flash
    Clock::duration reset_delay{};
    uint32_t erase_unit = 4096, write_unit = 256;
    FlashTiming timing;
};
const std::vector<Uf2Personality>& uf2_personalities();

class Uf2BootloaderDevice : public BulkOnlyDevice {
public:
    Uf2BootloaderDevice(const targets::Chip& chip, Uf2Personality personality, const DeviceOptions& options);

    bool attached() const override { return attached_; }
    void tick(Clock::time_point now) override;
    std::string describe() const override;
    FlashMemory& flash() override { return flash_; }

    struct Uf2Counters {
        uint64_t programmed = 0;  // blocks written into the flash
        uint64_t counted = 0;     // blocks of the transfer seen (programmed or not)
        uint64_t refused = 0;     // valid UF2 blocks for this family not written (bootloader region, flags)
        uint64_t foreign = 0;     // UF2 blocks of another family (or without one where it is required)
        uint64_t duplicates = 0;
    };
    const Uf2Counters& uf2_counters() const { return uf2_counters_; }
    uint32_t blocks_expected() const { return num_blocks_; }
    bool resetting() const { return leave_at_.has_value() || !attached_; }

protected:
    uint64_t medium_sectors() const override { return disk_.sector_count(); }
    void medium_read(uint64_t lba, std::span<uint8_t> out, Clock::time_point now) override;
    MediumWrite medium_write(uint64_t lba, std::span<const uint8_t> data, Clock::time_point now) override;

private:
    void take_block(std::span<const uint8_t> block, Clock::duration& busy, Clock::time_point now);
    void current_uf2_block(uint64_t index, std::span<uint8_t> out) const;

    const targets::Chip chip_;
    const Uf2Personality personality_;
    FlashMemory flash_;
    FlashWriter writer_;
    bool timing_;
    SparseDisk disk_;
    std::unique_ptr<storage::PartitionDevice> volume_;
    std::map<uint64_t, uint64_t> current_uf2_sectors_;  // disk sector -> CURRENT.UF2 block
    uint32_t num_blocks_ = 0;                           // the transfer under way (0: none)
    std::set<uint32_t> seen_blocks_;
    bool attached_ = true;
    std::optional<Clock::time_point> leave_at_;
    Uf2Counters uf2_counters_;
};

std::unique_ptr<usb::UsbDeviceModel> make_uf2_bootloader(const std::string& chip, const DeviceOptions& options);
std::vector<std::string> uf2_bootloader_chips();

}  // namespace mcuflash::sim::msc
