#include "storage/volume_link.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>

#include <fmt/format.h>

#include "core/error.hpp"

namespace mcuflash::storage {

using core::Error;
using core::ErrorKind;
namespace fs = std::filesystem;

namespace {

bool same_name(const std::string& a, const std::string& b) {
    return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
               return std::tolower(uint8_t(x)) == std::tolower(uint8_t(y));
           });
}

// A mounted volume: `name` as it is spelled there (FAT is case-insensitive, a test directory may not be).
fs::path on_volume(const fs::path& root, const std::string& name) {
    fs::path at = root;
    fs::path rel(name);
    for (const auto& part : rel) {
        if (part.empty() || part == "/") continue;
        fs::path next = at / part;
        std::error_code ec;
        if (!fs::exists(next, ec) && fs::is_directory(at, ec))
            for (const auto& entry : fs::directory_iterator(at, ec))
                if (same_name(entry.path().filename().string(), part.string())) next = entry.path();
        at = next;
    }
    return at;
}

[[noreturn]] void fail(const std::string& what, const fs::path& p, int err) {
    throw Error(err == EACCES || err == EPERM || err == EROFS ? ErrorKind::Permission : ErrorKind::Io,
                fmt::format("{} {}: {}", what, p.string(), std::strerror(err)),
                err == ENOSPC ? "the card is full: delete files from it" : "is the card still mounted, and writable?");
}

}  // namespace

std::unique_ptr<VolumeLink> VolumeLink::open_unmounted(const std::string& path) {
    if (auto where = mounted_at(path); !where.empty())
        throw Error(ErrorKind::Usage,
                    fmt::format("{} is mounted at {}: mcuflash writes an unmounted card itself, or a mounted one "
                                "through its file system",
                                path, where),
                    fmt::format("use -d dir:{} (or unmount it first: udisksctl unmount -b {})", where, path));
    std::unique_ptr<VolumeLink> link(new VolumeLink());
    link->path_ = path;
    link->file_ = std::make_unique<FileBlockDevice>(path, true);
    const auto where = locate_fat_volume(*link->file_);
    BlockDevice* volume = link->file_.get();
    if (where.partition) {
        link->partition_ = std::make_unique<PartitionDevice>(*link->file_, where.first_sector, where.sector_count,
                                                             where.partition);
        volume = link->partition_.get();
    }
    link->partition_number_ = where.partition;
    link->fat_ = std::make_unique<FatVolume>(*volume);
    link->description_ = fmt::format("{} {}{} ({}, unmounted)", link->file_->is_block_device() ? "card" : "card image",
                                     path, where.partition ? fmt::format(" partition {}", where.partition) : "",
                                     fat_type_name(link->fat_->type()));
    return link;
}

std::unique_ptr<VolumeLink> VolumeLink::open_directory(const std::string& path) {
    std::error_code ec;
    if (!fs::is_directory(path, ec))
        throw Error(ErrorKind::NotFound, fmt::format("{} is not a folder (a mounted card or drive)", path),
                    "mount the card (or plug the drive in) and give where it is mounted: -d dir:/media/$USER/NAME");
    std::unique_ptr<VolumeLink> link(new VolumeLink());
    link->path_ = path;
    link->description_ = fmt::format("mounted volume {}", path);
    return link;
}

CardSummary VolumeLink::summary() {
    CardSummary s;
    if (fat_) {
        auto info = fat_->info();
        s.file_system = fat_type_name(info.type);
        s.label = info.label;
        s.size_bytes = info.size_bytes;
        s.free_bytes = info.free_bytes;
        s.partition = partition_number_;
        return s;
    }
    struct statvfs v {};
    if (::statvfs(path_.c_str(), &v) == 0) {
        s.size_bytes = uint64_t(v.f_blocks) * v.f_frsize;
        s.free_bytes = uint64_t(v.f_bavail) * v.f_frsize;
    }
    s.file_system = "mounted";
    return s;
}

uint64_t VolumeLink::write_file(const std::string& name, std::span<const uint8_t> bytes) {
    check_time_limit();
    trace(link::TraceDirection::Note, {}, fmt::format("write {} ({} bytes)", name, bytes.size()));
    if (fat_) return fat_->write_file(name, bytes).device_bytes;
    const fs::path target = on_volume(path_, name);
    std::error_code ec;
    fs::create_directories(target.parent_path(), ec);
    int fd = ::open(target.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) fail("cannot create", target, errno);
    size_t done = 0;
    while (done < bytes.size()) {
        ssize_t n = ::write(fd, bytes.data() + done, bytes.size() - done);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) {
            int err = n < 0 ? errno : EIO;
            ::close(fd);
            fail("cannot write", target, err);
        }
        done += size_t(n);
    }
    if (::fsync(fd) != 0) {
        int err = errno;
        ::close(fd);
        fail("cannot flush", target, err);
    }
    ::posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);
    ::close(fd);
    int dir = ::open(target.parent_path().c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dir >= 0) {
        ::fsync(dir);
        ::close(dir);
    }
    return bytes.size();
}

std::vector<uint8_t> VolumeLink::read_file(const std::string& name) {
    check_time_limit();
    if (fat_) return fat_->read_file(name);
    const fs::path target = on_volume(path_, name);
    int fd = ::open(target.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) fail("cannot open", target, errno);
    ::posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);  // from the card, not from what the kernel kept
    std::vector<uint8_t> out;
    uint8_t buf[65536];
    while (true) {
        ssize_t n = ::read(fd, buf, sizeof buf);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) {
            int err = errno;
            ::close(fd);
            fail("cannot read", target, err);
        }
        if (n == 0) break;
        out.insert(out.end(), buf, buf + n);
    }
    ::close(fd);
    return out;
}

std::optional<CardFile> VolumeLink::find(const std::string& name) {
    if (fat_) {
        auto e = fat_->find(name);
        if (!e) return std::nullopt;
        return CardFile{e->name, e->size, e->directory};
    }
    const fs::path target = on_volume(path_, name);
    std::error_code ec;
    if (!fs::exists(target, ec)) return std::nullopt;
    const bool dir = fs::is_directory(target, ec);
    return CardFile{target.filename().string(), dir ? 0 : uint64_t(fs::file_size(target, ec)), dir};
}

std::vector<CardFile> VolumeLink::list(const std::string& folder) {
    std::vector<CardFile> out;
    if (fat_) {
        std::vector<FileEntry> entries;
        try {
            entries = fat_->list(folder);
        } catch (const Error& e) {
            if (e.kind() == ErrorKind::NotFound) return out;
            throw;
        }
        for (const auto& e : entries) out.push_back({e.name, e.size, e.directory});
        return out;
    }
    std::error_code ec;
    for (const auto& entry : fs::directory_iterator(on_volume(path_, folder), ec)) {
        const bool dir = entry.is_directory(ec);
        out.push_back({entry.path().filename().string(), dir ? 0 : uint64_t(entry.file_size(ec)), dir});
    }
    return out;
}

bool VolumeLink::remove(const std::string& name) {
    if (fat_) return fat_->remove(name);
    std::error_code ec;
    const bool removed = fs::remove(on_volume(path_, name), ec);
    ::sync();
    return removed;
}

}  // namespace mcuflash::storage
