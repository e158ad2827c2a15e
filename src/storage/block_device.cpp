#include "storage/block_device.hpp"

#include <fcntl.h>
#include <linux/fs.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>

#include <fmt/format.h>

#include "core/error.hpp"

namespace mcuflash::storage {

using core::Error;
using core::ErrorKind;

namespace {

uint16_t le16(std::span<const uint8_t> b, size_t at) { return uint16_t(b[at] | b[at + 1] << 8); }
uint32_t le32(std::span<const uint8_t> b, size_t at) {
    return uint32_t(b[at]) | uint32_t(b[at + 1]) << 8 | uint32_t(b[at + 2]) << 16 | uint32_t(b[at + 3]) << 24;
}

ErrorKind kind_of(int err) { return err == EACCES || err == EPERM || err == EROFS ? ErrorKind::Permission : ErrorKind::Io; }

}  // namespace

void BlockDevice::check_range(uint64_t sector, size_t bytes) const {
    if (bytes % kSectorSize || sector + bytes / kSectorSize > sector_count())
        throw std::logic_error(fmt::format("sector access {}+{} bytes outside a device of {} sectors", sector, bytes,
                                           sector_count()));
}

FileBlockDevice::FileBlockDevice(const std::string& path, bool writable) : path_(path) {
    fd_ = ::open(path.c_str(), (writable ? O_RDWR : O_RDONLY) | O_CLOEXEC);
    if (fd_ < 0) {
        int err = errno;
        throw Error(err == ENOENT ? ErrorKind::NotFound : kind_of(err),
                    fmt::format("cannot open {}: {}", path, std::strerror(err)),
                    err == ENOENT ? "is the card in the reader? `lsblk` lists the block devices"
                    : kind_of(err) == ErrorKind::Permission
                        ? "add yourself to the disk group (sudo usermod -aG disk $USER, then log in again), or run as root"
                        : "");
    }
    struct stat st {};
    ::fstat(fd_, &st);
    uint64_t bytes = 0;
    if (S_ISBLK(st.st_mode)) {
        block_device_ = true;
        ::ioctl(fd_, BLKGETSIZE64, &bytes);
    } else if (S_ISREG(st.st_mode)) {
        bytes = uint64_t(st.st_size);
    } else {
        ::close(fd_);
        throw Error(ErrorKind::Usage, fmt::format("{} is neither a card image file nor a block device", path));
    }
    sectors_ = bytes / kSectorSize;
}

FileBlockDevice::~FileBlockDevice() {
    if (fd_ >= 0) ::close(fd_);
}

void FileBlockDevice::read(uint64_t sector, std::span<uint8_t> out) {
    check_range(sector, out.size());
    size_t done = 0;
    while (done < out.size()) {
        ssize_t n = ::pread(fd_, out.data() + done, out.size() - done, off_t(sector * kSectorSize + done));
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0)
            throw Error(ErrorKind::Io, fmt::format("reading sector {} of {}: {}", sector + done / kSectorSize, path_,
                                                   n < 0 ? std::strerror(errno) : "the device ended early"),
                        "the card may have been pulled out, or it is failing");
        done += size_t(n);
    }
}

void FileBlockDevice::write(uint64_t sector, std::span<const uint8_t> data) {
    check_range(sector, data.size());
    size_t done = 0;
    while (done < data.size()) {
        ssize_t n = ::pwrite(fd_, data.data() + done, data.size() - done, off_t(sector * kSectorSize + done));
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) {
            int err = errno;
            throw Error(n < 0 ? kind_of(err) : ErrorKind::Io,
                        fmt::format("writing sector {} of {}: {}", sector + done / kSectorSize, path_,
                                    n < 0 ? std::strerror(err) : "nothing was written"),
                        "the card may have been pulled out, be write-protected (the lock switch) or failing");
        }
        done += size_t(n);
        count_written(size_t(n));
    }
}

void FileBlockDevice::flush() {
    if (::fsync(fd_) != 0)
        throw Error(ErrorKind::Io, fmt::format("flushing {} to the card: {}", path_, std::strerror(errno)),
                    "the card may have been pulled out before everything was written");
    // What is read from now on comes from the card, not from what the kernel still holds.
    ::posix_fadvise(fd_, 0, 0, POSIX_FADV_DONTNEED);
    if (block_device_) ::ioctl(fd_, BLKFLSBUF, 0);
}

PartitionDevice::PartitionDevice(BlockDevice& whole, uint64_t first, uint64_t count, int number)
    : whole_(whole), first_(first), count_(count), number_(number) {
    if (first + count > whole.sector_count())
        throw Error(ErrorKind::BadInput,
                    fmt::format("partition {} of {} reaches past the end of the device ({} sectors at {}, the device "
                                "has {})",
                                number, whole.describe(), count, first, whole.sector_count()),
                    "the partition table is damaged: format the card again (FAT32)");
}

void PartitionDevice::read(uint64_t sector, std::span<uint8_t> out) {
    check_range(sector, out.size());
    whole_.read(first_ + sector, out);
}

void PartitionDevice::write(uint64_t sector, std::span<const uint8_t> data) {
    check_range(sector, data.size());
    whole_.write(first_ + sector, data);
    count_written(data.size());
}

std::string PartitionDevice::describe() const { return fmt::format("{} partition {}", whole_.describe(), number_); }

void MemoryBlockDevice::check_present() const {
    if (gone_) throw Error(ErrorKind::Io, "the device is gone (it was unplugged)", "plug the card in again");
}

void MemoryBlockDevice::read(uint64_t sector, std::span<uint8_t> out) {
    check_present();
    check_range(sector, out.size());
    std::memcpy(out.data(), bytes_.data() + sector * kSectorSize, out.size());
}

void MemoryBlockDevice::write(uint64_t sector, std::span<const uint8_t> data) {
    check_present();
    check_range(sector, data.size());
    const uint64_t count = data.size() / kSectorSize;
    for (uint64_t i = 0; i < count; ++i) {
        if (vanish_after_writes && writes_ >= *vanish_after_writes) {
            gone_ = true;
            check_present();
        }
        if (fail_writes_to && *fail_writes_to == sector + i)
            throw Error(ErrorKind::Io, fmt::format("writing sector {}: I/O error", sector + i));
        std::memcpy(bytes_.data() + (sector + i) * kSectorSize, data.data() + i * kSectorSize, kSectorSize);
        written_sectors.push_back(sector + i);
        ++writes_;
        count_written(kSectorSize);
    }
}

void MemoryBlockDevice::flush() { check_present(); }

bool Partition::is_fat() const {
    return type == 0x01 || type == 0x04 || type == 0x06 || type == 0x0B || type == 0x0C || type == 0x0E;
}

bool looks_like_fat_boot_sector(std::span<const uint8_t> s) {
    if (s.size() < kSectorSize || s[510] != 0x55 || s[511] != 0xAA) return false;
    if (!(s[0] == 0xEB || s[0] == 0xE9)) return false;
    const uint16_t bytes_per_sector = le16(s, 11);
    const uint8_t per_cluster = s[13];
    const uint16_t reserved = le16(s, 14);
    const uint8_t fats = s[16];
    if (bytes_per_sector < 512 || bytes_per_sector > 4096 || (bytes_per_sector & (bytes_per_sector - 1))) return false;
    if (per_cluster == 0 || (per_cluster & (per_cluster - 1))) return false;
    if (reserved == 0 || fats == 0 || fats > 2) return false;
    const uint32_t total = le16(s, 19) ? le16(s, 19) : le32(s, 32);
    return total != 0;
}

std::vector<Partition> read_partition_table(BlockDevice& device) {
    std::vector<uint8_t> mbr(kSectorSize);
    if (device.sector_count() == 0) return {};
    device.read(0, mbr);
    if (mbr[510] != 0x55 || mbr[511] != 0xAA || looks_like_fat_boot_sector(mbr)) return {};
    std::vector<Partition> out;
    for (int i = 0; i < 4; ++i) {
        const size_t at = 446 + size_t(i) * 16;
        if (mbr[at] != 0x00 && mbr[at] != 0x80) return {};  // not a partition table
        Partition p;
        p.number = i + 1;
        p.type = mbr[at + 4];
        p.first_sector = le32(mbr, at + 8);
        p.sector_count = le32(mbr, at + 12);
        if (p.type != 0 && p.sector_count != 0) out.push_back(p);
    }
    return out;
}

VolumeLocation locate_fat_volume(BlockDevice& device) {
    std::vector<uint8_t> first(kSectorSize);
    if (device.sector_count() == 0)
        throw Error(ErrorKind::BadInput, fmt::format("{} is empty (0 bytes)", device.describe()),
                    "is the card in the reader?");
    device.read(0, first);
    if (looks_like_fat_boot_sector(first)) return {0, device.sector_count(), 0};
    const auto parts = read_partition_table(device);
    for (const auto& p : parts) {
        if (p.type == 0xEE)
            throw Error(ErrorKind::BadInput,
                        fmt::format("{} has a GPT partition table, which board bootloaders cannot read",
                                    device.describe()),
                        "format the card with an MBR (DOS) partition table and one FAT32 partition");
        if (p.is_fat()) return {p.first_sector, p.sector_count, p.number};
    }
    std::string found;
    for (const auto& p : parts) found += fmt::format("{} partition {} of type 0x{:02X}", found.empty() ? "" : ",", p.number, p.type);
    throw Error(ErrorKind::BadInput,
                fmt::format("{} holds no FAT file system{}", device.describe(),
                            found.empty() ? "" : " (it has " + found + ")"),
                "board bootloaders read FAT (FAT32 for cards up to 32 GB): format the card with one FAT32 partition "
                "(mkfs.fat -F 32), or give the partition that holds FAT");
}

std::string mounted_at(const std::string& device_path) {
    struct stat target {};
    if (::stat(device_path.c_str(), &target) != 0 || !S_ISBLK(target.st_mode)) return {};
    std::ifstream mounts("/proc/self/mounts");
    std::string line;
    while (std::getline(mounts, line)) {
        std::istringstream in(line);
        std::string source, where;
        in >> source >> where;
        struct stat st {};
        if (source.rfind("/dev/", 0) != 0 || ::stat(source.c_str(), &st) != 0 || !S_ISBLK(st.st_mode)) continue;
        if (st.st_rdev == target.st_rdev) return where;
        // A partition of the whole device given: /sys/dev/block/MAJ:MIN/partition's parent.
        const std::string sys = fmt::format("/sys/dev/block/{}:{}/../dev", major(st.st_rdev), minor(st.st_rdev));
        std::ifstream parent(sys);
        std::string id;
        if (parent >> id && id == fmt::format("{}:{}", major(target.st_rdev), minor(target.st_rdev))) return where;
    }
    return {};
}

}  // namespace mcuflash::storage
