#pragma once
// The link of a card or drive: files on a FAT volume, either written by mcuflash itself into an
// unmounted card (an image file `img:PATH`, a block device or partition `/dev/sdX[N]`), or through
// the file system of a mounted one (`dir:PATH`). Every write is flushed to the medium and what is
// read afterwards comes from it, not from a cache.
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "link/link.hpp"
#include "storage/block_device.hpp"
#include "storage/fat.hpp"

namespace mcuflash::storage {

struct CardFile {
    std::string name;
    uint64_t size = 0;
    bool directory = false;
};

struct CardSummary {
    std::string file_system;  // "FAT32", or what a mounted volume's statfs says ("vfat")
    std::string label;
    uint64_t size_bytes = 0;
    uint64_t free_bytes = 0;
    int partition = 0;        // the MBR partition mcuflash found the volume in (0: the whole device)
};

class VolumeLink : public link::Link {
public:
    static constexpr link::LinkKind kKind = link::LinkKind::Volume;

    // An image file or a block device (refused while it or a partition of it is mounted).
    static std::unique_ptr<VolumeLink> open_unmounted(const std::string& path);
    // A mounted volume's directory.
    static std::unique_ptr<VolumeLink> open_directory(const std::string& path);

    link::LinkKind kind() const override { return kKind; }
    std::string describe() const override { return description_; }
    uint32_t bytes_per_second() const override { return 2'000'000; }
    bool mounted() const { return !fat_; }
    const std::string& path() const { return path_; }

    CardSummary summary();
    // Writes (replacing a file of that name, making folders), flushes; the bytes the device took.
    uint64_t write_file(const std::string& name, std::span<const uint8_t> bytes);
    std::vector<uint8_t> read_file(const std::string& name);  // from the medium
    std::optional<CardFile> find(const std::string& name);   // case-insensitive, as FAT
    std::vector<CardFile> list(const std::string& folder = "");
    bool remove(const std::string& name);

private:
    VolumeLink() = default;
    std::string path_, description_;
    std::unique_ptr<FileBlockDevice> file_;
    std::unique_ptr<PartitionDevice> partition_;
    std::unique_ptr<FatVolume> fat_;
    int partition_number_ = 0;
};

}  // namespace mcuflash::storage
