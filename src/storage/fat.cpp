#include "storage/fat.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <cstring>
#include <ctime>
#include <set>

#include "core/error.hpp"

namespace mcuflash::storage {

using core::Error;
using core::ErrorKind;

namespace {

constexpr size_t kEntry = 32;
constexpr uint8_t kAttrReadOnly = 0x01, kAttrVolume = 0x08, kAttrDirectory = 0x10, kAttrArchive = 0x20, kAttrLfn = 0x0F;
constexpr uint8_t kDeleted = 0xE5;
constexpr const char* kFsckHint = "the card's file system is damaged: check it with fsck.fat (or format it again, FAT32)";

uint16_t le16(const uint8_t* b) { return uint16_t(b[0] | b[1] << 8); }
uint32_t le32(const uint8_t* b) { return uint32_t(b[0]) | uint32_t(b[1]) << 8 | uint32_t(b[2]) << 16 | uint32_t(b[3]) << 24; }
void put16(uint8_t* b, uint16_t v) {
    b[0] = uint8_t(v);
    b[1] = uint8_t(v >> 8);
}
void put32(uint8_t* b, uint32_t v) {
    put16(b, uint16_t(v));
    put16(b + 2, uint16_t(v >> 16));
}

char lower(char c) { return c >= 'A' && c <= 'Z' ? char(c - 'A' + 'a') : c; }
char upper(char c) { return c >= 'a' && c <= 'z' ? char(c - 'a' + 'A') : c; }
bool same_name(const std::string& a, const std::string& b) {
    return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) { return lower(x) == lower(y); });
}

std::vector<std::string> split_path(const std::string& path) {
    std::vector<std::string> parts;
    std::string part;
    for (char c : path) {
        if (c == '/' || c == '\\') {
            if (!part.empty()) parts.push_back(part);
            part.clear();
        } else {
            part += c;
        }
    }
    if (!part.empty()) parts.push_back(part);
    if (parts.empty()) throw Error(ErrorKind::Usage, fmt::format("'{}' names no file", path));
    for (const auto& p : parts) check_fat_name(p);
    return parts;
}

bool short_char(char c) {
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
           (c && std::strchr("!#$%&'()-@^_`{}~", c));
}

using RawName = std::array<uint8_t, 11>;

struct ShortName {
    RawName raw{};
    uint8_t case_flags = 0;  // 0x08 base in lower case, 0x10 extension in lower case (as Windows NT writes)
};

// The name as an 8.3 entry by itself, when it is one (with one case per part).
std::optional<ShortName> exact_short_name(const std::string& name) {
    const auto dot = name.find('.');
    const std::string base = name.substr(0, dot);
    const std::string ext = dot == std::string::npos ? "" : name.substr(dot + 1);
    if (base.empty() || base.size() > 8 || ext.size() > 3 || ext.find('.') != std::string::npos) return std::nullopt;
    if (dot != std::string::npos && ext.empty()) return std::nullopt;
    ShortName out;
    out.raw.fill(' ');
    auto part = [&](const std::string& text, size_t at, uint8_t flag) {
        bool has_lower = false, has_upper = false;
        for (size_t i = 0; i < text.size(); ++i) {
            if (!short_char(text[i])) return false;
            has_lower |= text[i] >= 'a' && text[i] <= 'z';
            has_upper |= text[i] >= 'A' && text[i] <= 'Z';
            out.raw[at + i] = uint8_t(upper(text[i]));
        }
        if (has_lower && has_upper) return false;
        if (has_lower) out.case_flags |= flag;
        return true;
    };
    if (!part(base, 0, 0x08) || !part(ext, 8, 0x10)) return std::nullopt;
    return out;
}

// The 8.3 name Windows would give a long name: "Robin_nano.bin" -> ROBIN_~1.BIN, unique in `taken`.
RawName numbered_short_name(const std::string& name, const std::set<RawName>& taken) {
    auto clean = [](const std::string& text) {
        std::string out;
        for (char c : text) {
            if (c == ' ' || c == '.') continue;
            out += short_char(c) ? upper(c) : '_';
        }
        return out;
    };
    const auto dot = name.rfind('.');
    std::string base = clean(dot == std::string::npos || dot == 0 ? name : name.substr(0, dot));
    std::string ext = dot == std::string::npos || dot == 0 ? "" : clean(name.substr(dot + 1)).substr(0, 3);
    if (base.empty()) base.push_back('_');  // not `base = "_"`: GCC 12 warns of a false overlap (-Wrestrict)
    for (uint32_t n = 1; n < 1000000; ++n) {
        const std::string tail = fmt::format("~{}", n);
        const std::string stem = base.substr(0, 8 - tail.size()) + tail;
        RawName raw;
        raw.fill(' ');
        std::copy(stem.begin(), stem.end(), raw.begin());
        std::copy(ext.begin(), ext.end(), raw.begin() + 8);
        if (!taken.count(raw)) return raw;
    }
    throw Error(ErrorKind::Io, fmt::format("no free 8.3 name for {} in its directory", name));
}

uint8_t lfn_checksum(const uint8_t* raw) {
    uint8_t sum = 0;
    for (int i = 0; i < 11; ++i) sum = uint8_t(((sum & 1) << 7) + (sum >> 1) + raw[i]);
    return sum;
}

constexpr std::array<int, 13> kLfnOffsets = {1, 3, 5, 7, 9, 14, 16, 18, 20, 22, 24, 28, 30};

std::string short_name_text(const uint8_t* e) {
    std::string base(reinterpret_cast<const char*>(e), 8), ext(reinterpret_cast<const char*>(e + 8), 3);
    while (!base.empty() && base.back() == ' ') base.pop_back();
    while (!ext.empty() && ext.back() == ' ') ext.pop_back();
    if (!base.empty() && uint8_t(base[0]) == 0x05) base[0] = char(0xE5);
    return ext.empty() ? base : base + "." + ext;
}

// The FAT date and time of now (local time, as cameras and Windows write it).
std::pair<uint16_t, uint16_t> fat_now() {
    std::time_t t = std::time(nullptr);
    std::tm tm{};
    localtime_r(&t, &tm);
    const int year = std::clamp(tm.tm_year + 1900, 1980, 2107);
    const uint16_t date = uint16_t((year - 1980) << 9 | (tm.tm_mon + 1) << 5 | tm.tm_mday);
    const uint16_t time = uint16_t(tm.tm_hour << 11 | tm.tm_min << 5 | tm.tm_sec / 2);
    return {date, time};
}

void stamp(uint8_t* e, bool created) {
    auto [date, time] = fat_now();
    if (created) {
        e[13] = 0;
        put16(e + 14, time);
        put16(e + 16, date);
    }
    put16(e + 18, date);
    put16(e + 22, time);
    put16(e + 24, date);
}

void set_first_cluster(uint8_t* e, uint32_t cluster) {
    put16(e + 20, uint16_t(cluster >> 16));
    put16(e + 26, uint16_t(cluster));
}

std::array<uint8_t, kEntry> short_entry(const RawName& raw, uint8_t attr, uint8_t case_flags, uint32_t cluster,
                                        uint32_t size) {
    std::array<uint8_t, kEntry> e{};
    std::copy(raw.begin(), raw.end(), e.begin());
    e[11] = attr;
    e[12] = case_flags;
    stamp(e.data(), true);
    set_first_cluster(e.data(), cluster);
    put32(e.data() + 28, size);
    return e;
}

// The entries for one name: its long-name entries (last part first), then the 8.3 entry.
std::vector<std::array<uint8_t, kEntry>> entries_for(const std::string& name, const std::set<RawName>& taken,
                                                     uint8_t attr, uint32_t cluster, uint32_t size, RawName* given) {
    std::vector<std::array<uint8_t, kEntry>> out;
    if (auto exact = exact_short_name(name); exact && !taken.count(exact->raw)) {
        out.push_back(short_entry(exact->raw, attr, exact->case_flags, cluster, size));
        if (given) *given = exact->raw;
        return out;
    }
    const RawName raw = numbered_short_name(name, taken);
    const uint8_t sum = lfn_checksum(raw.data());
    const size_t parts = (name.size() + 12) / 13;
    for (size_t k = parts; k >= 1; --k) {
        std::array<uint8_t, kEntry> e{};
        e[0] = uint8_t(k | (k == parts ? 0x40 : 0));
        e[11] = kAttrLfn;
        e[13] = sum;
        for (size_t j = 0; j < 13; ++j) {
            const size_t at = (k - 1) * 13 + j;
            const uint16_t unit = at < name.size() ? uint8_t(name[at]) : at == name.size() ? 0x0000 : 0xFFFF;
            put16(e.data() + kLfnOffsets[j], unit);
        }
        out.push_back(e);
    }
    out.push_back(short_entry(raw, attr, 0, cluster, size));
    if (given) *given = raw;
    return out;
}

}  // namespace

const char* fat_type_name(FatType type) {
    switch (type) {
        case FatType::Fat12: return "FAT12";
        case FatType::Fat16: return "FAT16";
        case FatType::Fat32: return "FAT32";
    }
    return "FAT";
}

void check_fat_name(const std::string& name) {
    if (name.empty() || name == "." || name == "..")
        throw Error(ErrorKind::Usage, fmt::format("'{}' is not a file name", name));
    if (name.size() > 255) throw Error(ErrorKind::Usage, fmt::format("'{}' is longer than FAT allows (255)", name));
    for (char c : name) {
        const auto u = uint8_t(c);
        if (u < 0x20 || u >= 0x80 || std::strchr("\"*/:<>?\\|", c))
            throw Error(ErrorKind::Usage,
                        fmt::format("'{}' has a character a card's file name cannot hold (or that mcuflash does not "
                                    "write: only ASCII)",
                                    name));
    }
    if (name.back() == '.' || name.back() == ' ' || name.front() == ' ')
        throw Error(ErrorKind::Usage, fmt::format("'{}' starts with a space or ends with a dot or space", name));
}

struct FatVolume::Dir {
    uint32_t first_cluster = 0;  // 0: the fixed root of FAT12/16
    std::vector<uint32_t> clusters;
    std::vector<uint64_t> sectors;
    std::vector<uint8_t> bytes;
    std::vector<bool> dirty;
    size_t slots() const { return bytes.size() / kEntry; }
    uint8_t* slot(size_t i) { return bytes.data() + i * kEntry; }
    const uint8_t* slot(size_t i) const { return bytes.data() + i * kEntry; }
    void touch(size_t i) { dirty[i * kEntry / kSectorSize] = true; }
};

struct FatVolume::Slot {
    FileEntry entry;
    size_t first = 0;  // the first of its entries (a long-name part, or the 8.3 entry)
    size_t sfn = 0;
};

FatVolume::FatVolume(BlockDevice& device) : device_(device) {
    std::vector<uint8_t> boot(kSectorSize);
    device.read(0, boot);
    if (!looks_like_fat_boot_sector(boot))
        throw Error(ErrorKind::BadInput, fmt::format("{} holds no FAT file system", device.describe()),
                    "board bootloaders read FAT: format the card FAT32 (mkfs.fat -F 32)");
    const uint8_t* b = boot.data();
    if (le16(b + 11) != kSectorSize)
        throw Error(ErrorKind::Unsupported,
                    fmt::format("{} uses {}-byte sectors; board bootloaders (and mcuflash) read 512-byte sectors",
                                device.describe(), le16(b + 11)),
                    "format the card again with 512-byte sectors (mkfs.fat -S 512)");
    per_cluster_ = b[13];
    reserved_ = le16(b + 14);
    fats_ = b[16];
    root_entries_ = le16(b + 17);
    total_sectors_ = le16(b + 19) ? le16(b + 19) : le32(b + 32);
    fat_sectors_ = le16(b + 22) ? le16(b + 22) : le32(b + 36);
    const bool fat32_layout = le16(b + 22) == 0;
    root_sectors_ = (root_entries_ * kEntry + kSectorSize - 1) / kSectorSize;
    first_root_sector_ = reserved_ + fats_ * fat_sectors_;
    first_data_sector_ = first_root_sector_ + root_sectors_;
    auto damaged = [&](const std::string& what) {
        return Error(ErrorKind::BadInput, fmt::format("{}: the FAT boot sector is damaged ({})", device.describe(), what),
                     kFsckHint);
    };
    if (fat_sectors_ == 0) throw damaged("no FAT");
    if (total_sectors_ > device.sector_count())
        throw damaged(fmt::format("it says {} sectors, the device has {}", total_sectors_, device.sector_count()));
    if (first_data_sector_ >= total_sectors_) throw damaged("no data area");
    clusters_ = uint32_t((total_sectors_ - first_data_sector_) / per_cluster_);
    type_ = clusters_ < 4085 ? FatType::Fat12 : clusters_ < 65525 ? FatType::Fat16 : FatType::Fat32;
    if ((type_ == FatType::Fat32) != fat32_layout)
        throw damaged(fmt::format("{} clusters, but the layout of {}", clusters_, fat32_layout ? "FAT32" : "FAT12/16"));
    const uint64_t bits = type_ == FatType::Fat12 ? 12 : type_ == FatType::Fat16 ? 16 : 32;
    if (uint64_t(fat_sectors_) * kSectorSize * 8 / bits < uint64_t(clusters_) + 2) throw damaged("the FAT is too small");
    if (type_ == FatType::Fat32) {
        root_cluster_ = le32(b + 44);
        fsinfo_sector_ = le16(b + 48);
        if (root_cluster_ < 2 || root_cluster_ >= clusters_ + 2) throw damaged("the root directory's cluster");
        if (fsinfo_sector_ > 0 && fsinfo_sector_ < reserved_) {
            std::vector<uint8_t> fsinfo(kSectorSize);
            device.read(fsinfo_sector_, fsinfo);
            if (le32(fsinfo.data()) == 0x41615252 && le32(fsinfo.data() + 484) == 0x61417272) {
                const uint32_t hint = le32(fsinfo.data() + 492);
                if (hint >= 2 && hint < clusters_ + 2) next_free_hint_ = hint;
            } else {
                fsinfo_sector_ = 0;
            }
        } else {
            fsinfo_sector_ = 0;
        }
    }
    std::string label(reinterpret_cast<const char*>(b + (type_ == FatType::Fat32 ? 71 : 43)), 11);
    while (!label.empty() && label.back() == ' ') label.pop_back();
    label_ = label == "NO NAME" ? "" : label;
}

uint8_t* FatVolume::fat_byte(uint32_t offset, bool for_write) {
    const uint32_t sector = offset / kSectorSize;
    if (sector >= fat_sectors_) throw std::logic_error("FAT access past its end");
    auto it = fat_cache_.find(sector);
    if (it == fat_cache_.end()) {
        CachedSector s;
        s.bytes.resize(kSectorSize);
        device_.read(reserved_ + sector, s.bytes);
        it = fat_cache_.emplace(sector, std::move(s)).first;
    }
    if (for_write) it->second.dirty = true;
    return it->second.bytes.data() + offset % kSectorSize;
}

uint32_t FatVolume::fat_get(uint32_t cluster) {
    switch (type_) {
        case FatType::Fat12: {
            const uint32_t at = cluster + cluster / 2;
            const uint32_t v = *fat_byte(at, false) | uint32_t(*fat_byte(at + 1, false)) << 8;
            return cluster & 1 ? v >> 4 : v & 0xFFF;
        }
        case FatType::Fat16: return le16(fat_byte(cluster * 2, false));
        case FatType::Fat32: return le32(fat_byte(cluster * 4, false)) & 0x0FFFFFFF;
    }
    return 0;
}

void FatVolume::fat_set(uint32_t cluster, uint32_t value) {
    switch (type_) {
        case FatType::Fat12: {
            const uint32_t at = cluster + cluster / 2;
            uint8_t* lo = fat_byte(at, true);
            uint8_t* hi = fat_byte(at + 1, true);
            if (cluster & 1) {
                *lo = uint8_t((*lo & 0x0F) | (value << 4 & 0xF0));
                *hi = uint8_t(value >> 4);
            } else {
                *lo = uint8_t(value);
                *hi = uint8_t((*hi & 0xF0) | (value >> 8 & 0x0F));
            }
            break;
        }
        case FatType::Fat16: put16(fat_byte(cluster * 2, true), uint16_t(value)); break;
        case FatType::Fat32: {
            uint8_t* p = fat_byte(cluster * 4, true);
            put32(p, (le32(p) & 0xF0000000) | (value & 0x0FFFFFFF));
            break;
        }
    }
}

void FatVolume::write_fat() {
    for (auto& [sector, cached] : fat_cache_) {
        if (!cached.dirty) continue;
        for (uint32_t copy = 0; copy < fats_; ++copy) device_.write(reserved_ + copy * fat_sectors_ + sector, cached.bytes);
        cached.dirty = false;
    }
}

uint32_t FatVolume::end_of_chain() const {
    return type_ == FatType::Fat12 ? 0xFFF : type_ == FatType::Fat16 ? 0xFFFF : 0x0FFFFFFF;
}

bool FatVolume::is_end(uint32_t value) const {
    return value >= (type_ == FatType::Fat12 ? 0xFF8u : type_ == FatType::Fat16 ? 0xFFF8u : 0x0FFFFFF8u);
}

std::vector<uint32_t> FatVolume::chain(uint32_t first, uint64_t max_clusters) {
    std::vector<uint32_t> out;
    uint32_t c = first;
    while (true) {
        if (c < 2 || c >= clusters_ + 2 || out.size() >= max_clusters || out.size() >= clusters_)
            throw Error(ErrorKind::BadInput,
                        fmt::format("{}: a cluster chain from {} is damaged (cluster {} after {} clusters)",
                                    device_.describe(), first, c, out.size()),
                        kFsckHint);
        out.push_back(c);
        const uint32_t next = fat_get(c);
        if (is_end(next)) return out;
        c = next;
    }
}

std::vector<uint32_t> FatVolume::allocate(uint32_t count) {
    std::vector<uint32_t> out;
    if (count == 0) return out;
    const uint32_t first = std::clamp<uint32_t>(next_free_hint_, 2, clusters_ + 1);
    uint32_t c = first;
    for (uint32_t seen = 0; seen < clusters_ && out.size() < count; ++seen) {
        if (fat_get(c) == 0) out.push_back(c);
        c = c + 1 >= clusters_ + 2 ? 2 : c + 1;
    }
    if (out.size() < count) {
        const uint64_t cb = uint64_t(per_cluster_) * kSectorSize;
        throw Error(ErrorKind::Io,
                    fmt::format("the card is too full: the file needs {} KiB ({} clusters of {} bytes), {} KiB are "
                                "free; nothing was written, the card's files are as they were",
                                (count * cb + 1023) / 1024, count, cb, (out.size() * cb) / 1024),
                    "delete files from the card (keep FIRMWARE.CUR if you like), or use an empty card");
    }
    return out;
}

uint64_t FatVolume::cluster_sector(uint32_t cluster) const {
    return first_data_sector_ + uint64_t(cluster - 2) * per_cluster_;
}

void FatVolume::write_clusters(const std::vector<uint32_t>& clusters, std::span<const uint8_t> data) {
    const size_t cb = size_t(per_cluster_) * kSectorSize;
    const size_t max_run = std::max<size_t>(1, (1u << 20) / cb);  // up to 1 MiB a write
    for (size_t i = 0; i < clusters.size();) {
        size_t n = 1;
        while (i + n < clusters.size() && n < max_run && clusters[i + n] == clusters[i] + n) ++n;
        std::vector<uint8_t> buffer(n * cb, 0);
        const size_t from = i * cb;
        if (from < data.size()) {
            const size_t take = std::min(buffer.size(), data.size() - from);
            std::memcpy(buffer.data(), data.data() + from, take);
        }
        device_.write(cluster_sector(clusters[i]), buffer);
        i += n;
    }
}

FatVolume::Dir FatVolume::load_dir(uint32_t first_cluster) {
    Dir dir;
    if (first_cluster == 0 && type_ == FatType::Fat32) first_cluster = root_cluster_;
    dir.first_cluster = first_cluster;
    if (first_cluster == 0) {
        for (uint32_t s = 0; s < root_sectors_; ++s) dir.sectors.push_back(first_root_sector_ + s);
    } else {
        const uint64_t cb = uint64_t(per_cluster_) * kSectorSize;
        dir.clusters = chain(first_cluster, 65536 * kEntry / cb + 1);
        for (uint32_t c : dir.clusters)
            for (uint32_t s = 0; s < per_cluster_; ++s) dir.sectors.push_back(cluster_sector(c) + s);
    }
    dir.bytes.resize(dir.sectors.size() * kSectorSize);
    dir.dirty.assign(dir.sectors.size(), false);
    for (size_t i = 0; i < dir.sectors.size();) {
        size_t n = 1;
        while (i + n < dir.sectors.size() && dir.sectors[i + n] == dir.sectors[i] + n) ++n;
        device_.read(dir.sectors[i], std::span(dir.bytes).subspan(i * kSectorSize, n * kSectorSize));
        i += n;
    }
    return dir;
}

void FatVolume::save_dir(Dir& dir) {
    for (size_t i = 0; i < dir.sectors.size(); ++i)
        if (dir.dirty[i]) {
            device_.write(dir.sectors[i], std::span<const uint8_t>(dir.bytes).subspan(i * kSectorSize, kSectorSize));
            dir.dirty[i] = false;
        }
}

std::vector<FatVolume::Slot> FatVolume::scan(const Dir& dir) {
    std::vector<Slot> out;
    std::vector<uint16_t> units;
    int remaining = -1;  // long-name parts still expected; -1: none being read
    uint8_t sum = 0;
    size_t start = 0;
    for (size_t i = 0; i < dir.slots(); ++i) {
        const uint8_t* e = dir.slot(i);
        if (e[0] == 0x00) break;
        if (e[0] == kDeleted) {
            remaining = -1;
            continue;
        }
        if ((e[11] & 0x3F) == kAttrLfn) {
            const int ord = e[0] & 0x1F;
            if (e[0] & 0x40) {
                if (ord == 0 || ord > 20) {
                    remaining = -1;
                    continue;
                }
                units.assign(size_t(ord) * 13, 0xFFFF);
                sum = e[13];
                start = i;
                remaining = ord;
            } else if (remaining != ord || e[13] != sum) {
                remaining = -1;
                continue;
            }
            for (size_t j = 0; j < 13; ++j) units[size_t(ord - 1) * 13 + j] = le16(e + kLfnOffsets[j]);
            remaining = ord - 1;
            continue;
        }
        const bool has_long = remaining == 0 && lfn_checksum(e) == sum;
        const size_t first = has_long ? start : i;
        remaining = -1;
        if (e[11] & kAttrVolume) continue;
        if (e[0] == '.') continue;
        Slot slot;
        slot.first = first;
        slot.sfn = i;
        slot.entry.short_name = short_name_text(e);
        slot.entry.directory = e[11] & kAttrDirectory;
        slot.entry.size = le32(e + 28);
        slot.entry.first_cluster = uint32_t(le16(e + 26)) | (type_ == FatType::Fat32 ? uint32_t(le16(e + 20)) << 16 : 0);
        if (has_long) {
            for (uint16_t u : units) {
                if (u == 0x0000) break;
                if (u < 0x80) slot.entry.name += char(u);
                else if (u < 0x800) {
                    slot.entry.name += char(0xC0 | u >> 6);
                    slot.entry.name += char(0x80 | (u & 0x3F));
                } else {
                    slot.entry.name += char(0xE0 | u >> 12);
                    slot.entry.name += char(0x80 | (u >> 6 & 0x3F));
                    slot.entry.name += char(0x80 | (u & 0x3F));
                }
            }
        } else {
            // The 8.3 name, in the case Windows NT marks (0x08 base, 0x10 extension in lower case).
            std::string base(reinterpret_cast<const char*>(e), 8), ext(reinterpret_cast<const char*>(e + 8), 3);
            slot.entry.name = slot.entry.short_name;
            const auto dot = slot.entry.name.find('.');
            for (size_t k = 0; k < slot.entry.name.size(); ++k) {
                const bool in_ext = dot != std::string::npos && k > dot;
                if ((!in_ext && (e[12] & 0x08)) || (in_ext && (e[12] & 0x10))) slot.entry.name[k] = lower(slot.entry.name[k]);
            }
        }
        out.push_back(std::move(slot));
    }
    return out;
}

std::vector<FileEntry> FatVolume::list(const std::string& directory) {
    std::vector<std::string> parts;
    if (!directory.empty() && directory != "/") parts = split_path(directory);
    Dir dir = walk(parts);
    std::vector<FileEntry> out;
    for (auto& s : scan(dir)) out.push_back(std::move(s.entry));
    return out;
}

FatVolume::Dir FatVolume::walk(const std::vector<std::string>& parts) {
    Dir dir = load_dir(0);
    std::string so_far;
    for (const auto& part : parts) {
        if (!so_far.empty()) so_far += '/';
        so_far += part;
        std::optional<Slot> found;
        for (auto& s : scan(dir))
            if (!found && (same_name(s.entry.name, part) || same_name(s.entry.short_name, part))) found = s;
        if (!found)
            throw Error(ErrorKind::NotFound, fmt::format("{}: there is no folder {}", device_.describe(), so_far));
        if (!found->entry.directory)
            throw Error(ErrorKind::Usage, fmt::format("{}: {} is a file, not a folder", device_.describe(), so_far));
        dir = load_dir(found->entry.first_cluster);
    }
    return dir;
}

std::optional<FileEntry> FatVolume::find(const std::string& path) {
    auto parts = split_path(path);
    const std::string name = parts.back();
    parts.pop_back();
    Dir dir;
    try {
        dir = walk(parts);
    } catch (const Error& e) {
        if (e.kind() == ErrorKind::NotFound) return std::nullopt;
        throw;
    }
    for (auto& s : scan(dir))
        if (same_name(s.entry.name, name) || same_name(s.entry.short_name, name)) return s.entry;
    return std::nullopt;
}

std::vector<uint8_t> FatVolume::read_file(const std::string& path) {
    auto entry = find(path);
    if (!entry) throw Error(ErrorKind::NotFound, fmt::format("{}: there is no file {}", device_.describe(), path));
    if (entry->directory) throw Error(ErrorKind::Usage, fmt::format("{}: {} is a folder", device_.describe(), path));
    std::vector<uint8_t> out;
    if (entry->size == 0) return out;
    const uint64_t cb = uint64_t(per_cluster_) * kSectorSize;
    const uint64_t needed = (entry->size + cb - 1) / cb;
    auto clusters = chain(entry->first_cluster, needed);
    if (clusters.size() < needed)
        throw Error(ErrorKind::BadInput,
                    fmt::format("{}: {} is {} bytes but its clusters hold only {}", device_.describe(), path,
                                entry->size, clusters.size() * cb),
                    kFsckHint);
    out.resize(needed * cb);
    for (size_t i = 0; i < clusters.size();) {
        size_t n = 1;
        while (i + n < clusters.size() && clusters[i + n] == clusters[i] + n && n * cb < (1u << 20)) ++n;
        device_.read(cluster_sector(clusters[i]), std::span(out).subspan(i * cb, n * cb));
        i += n;
    }
    out.resize(entry->size);
    return out;
}

std::vector<uint64_t> FatVolume::file_sectors(const std::string& path) {
    auto entry = find(path);
    if (!entry) throw Error(ErrorKind::NotFound, fmt::format("{}: there is no file {}", device_.describe(), path));
    std::vector<uint64_t> out;
    if (entry->size == 0 || entry->directory) return out;
    const uint64_t cb = uint64_t(per_cluster_) * kSectorSize;
    const uint64_t needed = (entry->size + cb - 1) / cb;
    const uint64_t sectors = (entry->size + kSectorSize - 1) / kSectorSize;
    for (uint32_t c : chain(entry->first_cluster, needed))
        for (uint32_t s = 0; s < per_cluster_ && out.size() < sectors; ++s) out.push_back(cluster_sector(c) + s);
    if (out.size() < sectors)
        throw Error(ErrorKind::BadInput,
                    fmt::format("{}: {} is {} bytes but its clusters hold only {}", device_.describe(), path,
                                entry->size, out.size() * kSectorSize),
                    kFsckHint);
    return out;
}

VolumeInfo FatVolume::info() {
    VolumeInfo v;
    v.type = type_;
    v.cluster_bytes = per_cluster_ * kSectorSize;
    v.clusters = clusters_;
    v.size_bytes = uint64_t(clusters_) * v.cluster_bytes;
    uint64_t free = 0;
    for (uint32_t c = 2; c < clusters_ + 2; ++c)
        if (fat_get(c) == 0) ++free;
    v.free_bytes = free * v.cluster_bytes;
    v.label = label_;
    try {
        Dir root = load_dir(0);
        for (size_t i = 0; i < root.slots(); ++i) {
            const uint8_t* e = root.slot(i);
            if (e[0] == 0) break;
            if (e[0] != kDeleted && (e[11] & 0x3F) != kAttrLfn && (e[11] & kAttrVolume)) {
                std::string label(reinterpret_cast<const char*>(e), 11);
                while (!label.empty() && label.back() == ' ') label.pop_back();
                v.label = label;
                break;
            }
        }
    } catch (const Error&) {
        // the BPB's label stands
    }
    return v;
}

void FatVolume::write_fsinfo(int64_t free_delta, uint32_t next_free) {
    if (type_ != FatType::Fat32 || fsinfo_sector_ == 0) return;
    std::vector<uint8_t> s(kSectorSize);
    device_.read(fsinfo_sector_, s);
    const uint32_t free = le32(s.data() + 488);
    if (free != 0xFFFFFFFF && free <= clusters_)
        put32(s.data() + 488, uint32_t(std::clamp<int64_t>(int64_t(free) + free_delta, 0, clusters_)));
    put32(s.data() + 492, next_free);
    device_.write(fsinfo_sector_, s);
}

FatVolume::WriteResult FatVolume::write_file(const std::string& path, std::span<const uint8_t> data) {
    // The cast: size_t has 32 bits on armhf, where no span can be that large.
    if (uint64_t(data.size()) > 0xFFFFFFFFull) throw Error(ErrorKind::BadInput, "a FAT file holds at most 4 GiB");
    const uint64_t start_bytes = device_.bytes_written();
    auto parts = split_path(path);
    const std::string name = parts.back();
    parts.pop_back();
    const uint64_t cb = uint64_t(per_cluster_) * kSectorSize;

    // Everything is decided before anything is written: the folders there are and those to make, the
    // file to replace, where the entries go, the clusters.
    Dir dir = load_dir(0);
    size_t existing_dirs = 0;
    for (const auto& part : parts) {
        std::optional<Slot> found;
        for (auto& s : scan(dir))
            if (!found && (same_name(s.entry.name, part) || same_name(s.entry.short_name, part))) found = s;
        if (!found) break;
        if (!found->entry.directory)
            throw Error(ErrorKind::Usage, fmt::format("{}: {} is a file, not a folder", device_.describe(), part));
        dir = load_dir(found->entry.first_cluster);
        ++existing_dirs;
    }
    const size_t new_dirs = parts.size() - existing_dirs;
    std::optional<Slot> old;
    if (new_dirs == 0)
        for (auto& s : scan(dir))
            // The first match, as find() and every FAT reader take it (a damaged directory can hold two).
            if (!old && (same_name(s.entry.name, name) || same_name(s.entry.short_name, name))) old = s;
    if (old && old->entry.directory)
        throw Error(ErrorKind::Usage, fmt::format("{}: {} is a folder", device_.describe(), path));

    // The entries that go into `dir` (the file's, or the first new folder's): a run of free slots, or
    // one more cluster on its chain.
    std::set<RawName> taken;
    for (size_t i = 0; i < dir.slots(); ++i) {
        const uint8_t* e = dir.slot(i);
        if (e[0] == 0) break;
        if (e[0] != kDeleted && (e[11] & 0x3F) != kAttrLfn) {
            RawName raw;
            std::copy(e, e + 11, raw.begin());
            taken.insert(raw);
        }
    }
    const std::string entry_name = new_dirs ? parts[existing_dirs] : name;
    auto find_run = [](const Dir& d, size_t count) -> std::optional<size_t> {
        size_t run = 0;
        for (size_t i = 0; i < d.slots(); ++i) {
            const uint8_t first = d.slot(i)[0];
            if (first == 0x00 || first == kDeleted) {
                if (++run == count) return i + 1 - count;
            } else {
                run = 0;
            }
        }
        return std::nullopt;
    };
    const size_t entry_count = old ? 0 : entries_for(entry_name, taken, 0, 0, 0, nullptr).size();
    std::optional<size_t> run = old ? std::nullopt : find_run(dir, entry_count);
    const bool grow_dir = !old && !run;
    if (grow_dir && dir.first_cluster == 0)
        throw Error(ErrorKind::Io,
                    fmt::format("the root folder of {} is full ({} entries); nothing was written", device_.describe(),
                                root_entries_),
                    "delete files from the card, or format it FAT32");
    if (grow_dir && dir.slots() + cb / kEntry > 65536)
        throw Error(ErrorKind::Io, fmt::format("the folder of {} is full (65536 entries)", path));

    const uint32_t data_clusters = uint32_t((data.size() + cb - 1) / cb);
    const uint32_t total = data_clusters + uint32_t(new_dirs) + (grow_dir ? 1 : 0);
    const std::vector<uint32_t> fresh = allocate(total);
    size_t next = 0;
    auto take = [&] { return fresh.at(next++); };

    // Adds entries to a directory: into free slots, or onto a new zeroed cluster linked to its chain.
    auto add_entries = [&](Dir& target, const std::vector<std::array<uint8_t, kEntry>>& entries) {
        auto at = find_run(target, entries.size());
        if (!at) {
            const uint32_t c = take();
            write_clusters({c}, {});
            fat_set(target.clusters.back(), c);
            fat_set(c, end_of_chain());
            write_fat();
            target.clusters.push_back(c);
            for (uint32_t s = 0; s < per_cluster_; ++s) target.sectors.push_back(cluster_sector(c) + s);
            target.bytes.resize(target.sectors.size() * kSectorSize, 0);
            target.dirty.resize(target.sectors.size(), false);
            at = find_run(target, entries.size());  // from the free slots that end the old chain on
            if (!at) throw std::logic_error("no room in a grown directory");
        }
        for (size_t k = 0; k < entries.size(); ++k) {
            std::memcpy(target.slot(*at + k), entries[k].data(), kEntry);
            target.touch(*at + k);
        }
        save_dir(target);
    };

    // The folders that are missing, each a zeroed cluster with "." and "..".
    for (size_t k = existing_dirs; k < parts.size(); ++k) {
        const uint32_t c = take();
        std::vector<uint8_t> cluster(cb, 0);
        RawName dot, dotdot;
        dot.fill(' ');
        dotdot.fill(' ');
        dot[0] = '.';
        dotdot[0] = dotdot[1] = '.';
        const uint32_t parent = dir.first_cluster == root_cluster_ && type_ == FatType::Fat32 ? 0 : dir.first_cluster;
        auto e1 = short_entry(dot, kAttrDirectory, 0, c, 0);
        auto e2 = short_entry(dotdot, kAttrDirectory, 0, parent, 0);
        std::memcpy(cluster.data(), e1.data(), kEntry);
        std::memcpy(cluster.data() + kEntry, e2.data(), kEntry);
        write_clusters({c}, cluster);
        fat_set(c, end_of_chain());
        write_fat();
        add_entries(dir, entries_for(parts[k], taken, kAttrDirectory, c, 0, nullptr));
        dir = load_dir(c);
        taken.clear();
    }

    // The file's clusters, then its chain in every FAT copy.
    std::vector<uint32_t> clusters(fresh.begin() + long(next), fresh.begin() + long(next) + data_clusters);
    next += data_clusters;
    write_clusters(clusters, data);
    for (size_t i = 0; i < clusters.size(); ++i) fat_set(clusters[i], i + 1 < clusters.size() ? clusters[i + 1] : end_of_chain());
    write_fat();

    WriteResult result;
    result.clusters = data_clusters;
    const uint32_t first = clusters.empty() ? 0 : clusters.front();
    if (old) {
        // The entry in place, in one sector write: the card holds the old file or the new one.
        uint8_t* e = dir.slot(old->sfn);
        set_first_cluster(e, first);
        put32(e + 28, uint32_t(data.size()));
        e[11] = uint8_t((e[11] | kAttrArchive) & ~kAttrReadOnly);
        stamp(e, false);
        dir.touch(old->sfn);
        save_dir(dir);
        result.replaced = true;
        result.short_name = old->entry.short_name;
    } else {
        RawName given;
        add_entries(dir, entries_for(name, taken, kAttrArchive, first, uint32_t(data.size()), &given));
        std::array<uint8_t, kEntry> tmp{};
        std::copy(given.begin(), given.end(), tmp.begin());
        result.short_name = short_name_text(tmp.data());
    }
    int64_t freed = 0;
    if (old && old->entry.first_cluster != 0) {
        const uint64_t limit = std::max<uint64_t>((old->entry.size + cb - 1) / cb, 1);
        std::vector<uint32_t> old_chain;
        try {
            old_chain = chain(old->entry.first_cluster, limit);
        } catch (const Error&) {
            // a damaged old chain is left for fsck.fat: the new file is in place
        }
        for (uint32_t c : old_chain) fat_set(c, 0);
        freed = int64_t(old_chain.size());
        write_fat();
    }
    next_free_hint_ = fresh.empty() ? next_free_hint_ : (fresh.back() + 1 >= clusters_ + 2 ? 2 : fresh.back() + 1);
    write_fsinfo(freed - int64_t(fresh.size()), next_free_hint_);
    device_.flush();
    result.device_bytes = device_.bytes_written() - start_bytes;
    return result;
}

bool FatVolume::remove(const std::string& path) {
    auto parts = split_path(path);
    const std::string name = parts.back();
    parts.pop_back();
    Dir dir = walk(parts);
    for (auto& s : scan(dir)) {
        if (!(same_name(s.entry.name, name) || same_name(s.entry.short_name, name))) continue;
        if (s.entry.directory) throw Error(ErrorKind::Usage, fmt::format("{}: {} is a folder", device_.describe(), path));
        for (size_t i = s.first; i <= s.sfn; ++i) {
            dir.slot(i)[0] = kDeleted;
            dir.touch(i);
        }
        save_dir(dir);
        int64_t freed = 0;
        if (s.entry.first_cluster) {
            const uint64_t cb = uint64_t(per_cluster_) * kSectorSize;
            for (uint32_t c : chain(s.entry.first_cluster, std::max<uint64_t>((s.entry.size + cb - 1) / cb, 1))) {
                fat_set(c, 0);
                ++freed;
            }
            write_fat();
        }
        write_fsinfo(freed, next_free_hint_);
        device_.flush();
        return true;
    }
    return false;
}

void format_fat(BlockDevice& device, const FatFormat& format) {
    const uint64_t total = device.sector_count();
    const uint32_t per_cluster = format.cluster_bytes / kSectorSize;
    if (per_cluster == 0 || per_cluster > 64 || (per_cluster & (per_cluster - 1)))
        throw Error(ErrorKind::Usage, fmt::format("a FAT cluster of {} bytes: give a power of two from 512 to 32768",
                                                  format.cluster_bytes));
    if (total > 0xFFFFFFFFull) throw Error(ErrorKind::Usage, "a FAT volume holds at most 2^32 sectors");
    // The type follows from the cluster count, which depends on the FAT's size: settle both together.
    FatType type = FatType::Fat12;
    uint32_t reserved = 1, root_sectors = 0, fat_sectors = 1, clusters = 0;
    for (FatType candidate : {FatType::Fat12, FatType::Fat16, FatType::Fat32}) {
        const bool fat32 = candidate == FatType::Fat32;
        reserved = fat32 ? 32 : 1;
        root_sectors = fat32 ? 0 : (format.root_entries * uint32_t(kEntry) + kSectorSize - 1) / kSectorSize;
        const uint64_t bits = candidate == FatType::Fat12 ? 12 : candidate == FatType::Fat16 ? 16 : 32;
        fat_sectors = 1;
        for (int round = 0; round < 8; ++round) {
            const uint64_t meta = reserved + 2ull * fat_sectors + root_sectors;
            if (meta >= total) throw Error(ErrorKind::Usage, fmt::format("{} sectors are too few for FAT", total));
            clusters = uint32_t((total - meta) / per_cluster);
            fat_sectors = uint32_t(((clusters + 2ull) * bits / 8 + kSectorSize - 1) / kSectorSize);
        }
        const uint64_t meta = reserved + 2ull * fat_sectors + root_sectors;
        clusters = uint32_t((total - meta) / per_cluster);
        type = candidate;
        if (candidate == FatType::Fat12 && clusters < 4085) break;
        if (candidate == FatType::Fat16 && clusters >= 4085 && clusters < 65525) break;
        if (fat32 && clusters < 65525)
            throw Error(ErrorKind::Usage, fmt::format("{} sectors with {}-byte clusters fit no FAT type: use smaller "
                                                      "clusters", total, format.cluster_bytes));
    }
    std::vector<uint8_t> boot(kSectorSize, 0);
    uint8_t* b = boot.data();
    b[0] = 0xEB, b[1] = type == FatType::Fat32 ? 0x58 : 0x3C, b[2] = 0x90;
    std::memcpy(b + 3, "MCUFLASH", 8);
    put16(b + 11, kSectorSize);
    b[13] = uint8_t(per_cluster);
    put16(b + 14, uint16_t(reserved));
    b[16] = 2;
    put16(b + 17, type == FatType::Fat32 ? 0 : uint16_t(format.root_entries));
    put16(b + 19, total < 65536 ? uint16_t(total) : 0);
    b[21] = format.media;
    put16(b + 22, type == FatType::Fat32 ? 0 : uint16_t(fat_sectors));
    put16(b + 24, 63);  // sectors per track and heads: only for CHS, which nothing uses now
    put16(b + 26, 255);
    put32(b + 28, format.hidden_sectors);
    put32(b + 32, total < 65536 ? 0 : uint32_t(total));
    std::string label = format.label.substr(0, 11);
    for (auto& c : label) c = upper(c);
    label.resize(11, ' ');
    const size_t ext = type == FatType::Fat32 ? 64 : 36;  // the extended BPB's place
    if (type == FatType::Fat32) {
        put32(b + 36, fat_sectors);
        put32(b + 44, 2);  // the root directory's cluster
        put16(b + 48, 1);  // FSInfo
        put16(b + 50, 6);  // the backup boot sector
    }
    b[ext] = 0x80;
    b[ext + 2] = 0x29;
    put32(b + ext + 3, format.serial);
    std::memcpy(b + ext + 7, label.data(), 11);
    std::memcpy(b + ext + 18, type == FatType::Fat12 ? "FAT12   " : type == FatType::Fat16 ? "FAT16   " : "FAT32   ", 8);
    b[510] = 0x55, b[511] = 0xAA;

    const std::vector<uint8_t> zero(kSectorSize, 0);
    for (uint64_t s = 0; s < uint64_t(reserved) + 2ull * fat_sectors + root_sectors; ++s) device.write(s, zero);
    device.write(0, boot);
    std::vector<uint8_t> fat(kSectorSize, 0);
    if (type == FatType::Fat12) {
        fat[0] = format.media, fat[1] = 0xFF, fat[2] = 0xFF;
    } else if (type == FatType::Fat16) {
        put16(fat.data(), uint16_t(0xFF00 | format.media));
        put16(fat.data() + 2, 0xFFFF);
    } else {
        put32(fat.data(), 0x0FFFFF00 | format.media);
        put32(fat.data() + 4, 0x0FFFFFFF);
        put32(fat.data() + 8, 0x0FFFFFFF);  // the root directory's one cluster
    }
    for (uint32_t copy = 0; copy < 2; ++copy) device.write(reserved + uint64_t(copy) * fat_sectors, fat);
    std::vector<uint8_t> root(kSectorSize, 0);
    if (format.label != "NO NAME" && !format.label.empty()) {
        std::memcpy(root.data(), label.data(), 11);
        root[11] = kAttrVolume;
    }
    if (type == FatType::Fat32) {
        const uint64_t data_start = reserved + 2ull * fat_sectors;
        for (uint32_t s = 0; s < per_cluster; ++s) device.write(data_start + s, zero);
        device.write(data_start, root);
        std::vector<uint8_t> info(kSectorSize, 0);
        put32(info.data(), 0x41615252);
        put32(info.data() + 484, 0x61417272);
        put32(info.data() + 488, clusters - 1);
        put32(info.data() + 492, 3);
        info[510] = 0x55, info[511] = 0xAA;
        device.write(1, info);
        device.write(6, boot);
        device.write(7, info);
    } else {
        device.write(reserved + 2ull * fat_sectors, root);
    }
    device.flush();
}

}  // namespace mcuflash::storage
