#pragma once
// Block devices a FAT volume lives on: an image file of a card, a block device (/dev/sdX,
// /dev/mmcblk0p1), a partition of either (a window on another device), or memory (tests). Sectors
// are 512 bytes. Every write is counted, so a caller can say exactly what reached the card.
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

namespace mcuflash::storage {

constexpr uint32_t kSectorSize = 512;

class BlockDevice {
public:
    virtual ~BlockDevice() = default;
    virtual uint64_t sector_count() const = 0;
    // Whole sectors; throw core::Error(Io) naming the sector on failure.
    virtual void read(uint64_t sector, std::span<uint8_t> out) = 0;
    virtual void write(uint64_t sector, std::span<const uint8_t> data) = 0;
    // Everything written reaches the medium (fsync); then later reads come from the medium, not a cache.
    virtual void flush() = 0;
    virtual std::string describe() const = 0;

    uint64_t bytes_written() const { return bytes_written_; }
    uint64_t sectors_written() const { return bytes_written_ / kSectorSize; }

protected:
    void count_written(size_t bytes) { bytes_written_ += bytes; }
    // Throws core::Error(Usage) when [sector, sector + bytes/512) is not whole sectors on the device.
    void check_range(uint64_t sector, size_t bytes) const;

private:
    uint64_t bytes_written_ = 0;
};

// A file or a block device, opened read-write (read-only with `writable` false).
class FileBlockDevice : public BlockDevice {
public:
    FileBlockDevice(const std::string& path, bool writable);
    ~FileBlockDevice() override;
    FileBlockDevice(const FileBlockDevice&) = delete;
    FileBlockDevice& operator=(const FileBlockDevice&) = delete;

    uint64_t sector_count() const override { return sectors_; }
    void read(uint64_t sector, std::span<uint8_t> out) override;
    void write(uint64_t sector, std::span<const uint8_t> data) override;
    void flush() override;
    std::string describe() const override { return path_; }
    bool is_block_device() const { return block_device_; }

private:
    std::string path_;
    int fd_ = -1;
    uint64_t sectors_ = 0;
    bool block_device_ = false;
};

// Sectors [first, first + count) of another device: a partition.
class PartitionDevice : public BlockDevice {
public:
    PartitionDevice(BlockDevice& whole, uint64_t first, uint64_t count, int number);
    uint64_t sector_count() const override { return count_; }
    void read(uint64_t sector, std::span<uint8_t> out) override;
    void write(uint64_t sector, std::span<const uint8_t> data) override;
    void flush() override { whole_.flush(); }
    std::string describe() const override;
    uint64_t first_sector() const { return first_; }

private:
    BlockDevice& whole_;
    uint64_t first_, count_;
    int number_;
};

// Sectors in memory, with faults for tests: a write error on one sector, or the device gone after
// some number of sector writes.
class MemoryBlockDevice : public BlockDevice {
public:
    explicit MemoryBlockDevice(std::vector<uint8_t> bytes) : bytes_(std::move(bytes)) {}
    uint64_t sector_count() const override { return bytes_.size() / kSectorSize; }
    void read(uint64_t sector, std::span<uint8_t> out) override;
    void write(uint64_t sector, std::span<const uint8_t> data) override;
    void flush() override;
    std::string describe() const override { return "memory"; }
    const std::vector<uint8_t>& bytes() const { return bytes_; }

    std::optional<uint64_t> fail_writes_to;       // a write touching this sector fails
    std::optional<uint64_t> vanish_after_writes;  // after this many sector writes every access fails
    std::vector<uint64_t> written_sectors;        // each sector written, in order

private:
    void check_present() const;
    std::vector<uint8_t> bytes_;
    uint64_t writes_ = 0;
    bool gone_ = false;
};

// One entry of an MBR partition table.
struct Partition {
    int number = 0;  // 1-4
    uint8_t type = 0;
    uint64_t first_sector = 0;
    uint64_t sector_count = 0;
    bool is_fat() const;  // types 0x01, 0x04, 0x06, 0x0B, 0x0C, 0x0E
};

// True when the sector is a FAT boot sector (a BIOS parameter block that makes sense).
bool looks_like_fat_boot_sector(std::span<const uint8_t> sector);
// The MBR's partitions (empty when sector 0 is not an MBR, or is a FAT boot sector itself).
std::vector<Partition> read_partition_table(BlockDevice& device);

// Where the FAT volume of a card is: the whole device (a card formatted without a partition table,
// or a partition given directly), else its first FAT partition. Throws core::Error(BadInput) in words
// when there is none (a GPT card, an ext4 card).
struct VolumeLocation {
    uint64_t first_sector = 0;
    uint64_t sector_count = 0;
    int partition = 0;  // 0: the whole device
};
VolumeLocation locate_fat_volume(BlockDevice& device);

// The mount point of a block device or of any of its partitions ("" when none is mounted), from
// /proc/self/mounts.
std::string mounted_at(const std::string& device_path);

}  // namespace mcuflash::storage
