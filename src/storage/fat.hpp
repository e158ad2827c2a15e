#pragma once
// A small FAT12/16/32 reader and writer of our own (no FAT library is packaged for C++): enough to put
// one firmware file on an unmounted card and read it back. Directories by path ("update/fmw_tronxy.bin"),
// 8.3 and long (VFAT) names, free clusters found from the allocation hint on, both FAT copies, FSInfo
// on FAT32, an existing file of the same name replaced only once the new one is in place.
//
// What reaches the card, in this order, so that an interruption leaves a volume fsck.fat accepts
// (at worst with lost clusters): the file's clusters; the FAT sectors of its chain (every copy); the
// directory entry (in place when replacing, in one sector write); the old chain freed; FSInfo.
// Nothing else is written, and nothing at all when the card is too full.
#include <cstdint>
#include <map>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "storage/block_device.hpp"

namespace mcuflash::storage {

enum class FatType { Fat12, Fat16, Fat32 };
const char* fat_type_name(FatType type);  // "FAT12"

struct FileEntry {
    std::string name;        // the long name if there is one, else the 8.3 name ("FIRMWARE.CUR")
    std::string short_name;  // "FIRMWARE.CUR", "ROBIN_~1.BIN"
    bool directory = false;
    uint32_t size = 0;
    uint32_t first_cluster = 0;
};

struct VolumeInfo {
    FatType type = FatType::Fat32;
    std::string label;  // "" when it has none
    uint32_t cluster_bytes = 0;
    uint32_t clusters = 0;
    uint64_t size_bytes = 0;  // the data area
    uint64_t free_bytes = 0;
};

class FatVolume {
public:
    // Reads the boot sector; throws core::Error(BadInput) when it is not a FAT volume mcuflash can use.
    explicit FatVolume(BlockDevice& device);

    FatType type() const { return type_; }
    // Counts the free clusters (reads the whole FAT).
    VolumeInfo info();

    // The entries of a directory ("" is the root), "." and ".." left out.
    std::vector<FileEntry> list(const std::string& directory = "");
    // The file or directory at a path, compared as FAT does (case-insensitive, long or 8.3 name).
    std::optional<FileEntry> find(const std::string& path);
    std::vector<uint8_t> read_file(const std::string& path);
    // The device sectors (of this volume) holding a file's bytes, in file order: the clusters of its
    // chain, cut to its size. A simulated drive uses it to tell which sectors make up a file.
    std::vector<uint64_t> file_sectors(const std::string& path);

    struct WriteResult {
        bool replaced = false;       // a file of that name was there and is gone now
        std::string short_name;      // the 8.3 name given to it
        uint32_t clusters = 0;
        uint64_t device_bytes = 0;   // bytes written to the device for this file, FAT and directory included
    };
    // Writes the file (making missing directories), replacing a file of the same name, then flushes.
    // A card without room for it throws core::Error(Io) before anything is written.
    WriteResult write_file(const std::string& path, std::span<const uint8_t> data);
    // Removes a file (not a directory); false when there is none.
    bool remove(const std::string& path);
    void flush() { device_.flush(); }

private:
    struct Dir;
    struct Slot;
    uint32_t fat_get(uint32_t cluster);
    void fat_set(uint32_t cluster, uint32_t value);
    uint8_t* fat_byte(uint32_t offset, bool for_write);
    void write_fat();
    uint32_t end_of_chain() const;
    bool is_end(uint32_t value) const;
    std::vector<uint32_t> chain(uint32_t first, uint64_t max_clusters);
    std::vector<uint32_t> allocate(uint32_t count);  // marks nothing; the clusters to use
    uint64_t cluster_sector(uint32_t cluster) const;
    void write_clusters(const std::vector<uint32_t>& clusters, std::span<const uint8_t> data);
    Dir load_dir(uint32_t first_cluster);  // 0: the root
    void save_dir(Dir& dir);
    std::vector<Slot> scan(const Dir& dir);
    Dir walk(const std::vector<std::string>& parts);
    void write_fsinfo(int64_t free_delta, uint32_t next_free);

    BlockDevice& device_;
    FatType type_ = FatType::Fat32;
    uint32_t per_cluster_ = 1, reserved_ = 1, fats_ = 2, root_entries_ = 0, fat_sectors_ = 0;
    uint32_t root_cluster_ = 0, fsinfo_sector_ = 0, first_root_sector_ = 0, root_sectors_ = 0;
    uint32_t first_data_sector_ = 0, clusters_ = 0;
    uint64_t total_sectors_ = 0;
    std::string label_;
    uint32_t next_free_hint_ = 2;
    struct CachedSector {
        std::vector<uint8_t> bytes;
        bool dirty = false;
    };
    std::map<uint32_t, CachedSector> fat_cache_;  // by sector within the FAT
};

// An empty FAT file system over the whole device (what mkfs.fat does, in the layout the FAT spec
// gives): a simulated drive's disk, a card image for tests. The type follows from the size and the
// cluster size (FAT12 below 4085 clusters, FAT16 below 65525, else FAT32).
struct FatFormat {
    std::string label = "NO NAME";  // up to 11 characters
    uint32_t cluster_bytes = 4096;  // a power of two, 512 to 32768
    uint32_t root_entries = 512;    // FAT12/16's fixed root
    uint8_t media = 0xF8;           // 0xF8 fixed disk, 0xF0 removable
    uint32_t hidden_sectors = 0;    // the partition's first sector when behind an MBR
    uint32_t serial = 0x4D434653;   // the volume serial number
};
void format_fat(BlockDevice& device, const FatFormat& format);

// Checks a name the card will hold (one path component): throws core::Error(Usage) for what FAT
// cannot store.
void check_fat_name(const std::string& name);

}  // namespace mcuflash::storage
