// The FAT writer against independent readers: volumes made by mkfs.fat (FAT12, FAT16, FAT32, in an
// MBR partition or not), written by mcuflash, must pass `fsck.fat -n` (dosfstools), and mtools must
// read each file back identical (and mcuflash must read back what mtools wrote).
#include <fmt/format.h>
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <random>

#include "core/error.hpp"
#include "storage/block_device.hpp"
#include "storage/fat.hpp"

namespace fs = std::filesystem;
using namespace mcuflash;
using storage::FatVolume;
using storage::FileBlockDevice;

namespace {

bool have(const char* tool) { return std::system(fmt::format("command -v {} >/dev/null 2>&1", tool).c_str()) == 0; }

// Output and exit status of a shell command.
std::pair<int, std::string> sh(const std::string& command) {
    std::string out;
    FILE* p = popen((command + " 2>&1").c_str(), "r");
    char buf[4096];
    while (size_t n = fread(buf, 1, sizeof buf, p)) out.append(buf, n);
    int status = pclose(p);
    return {WIFEXITED(status) ? WEXITSTATUS(status) : -1, out};
}

std::vector<uint8_t> random_bytes(size_t n, uint32_t seed) {
    std::mt19937 rng(seed);
    std::vector<uint8_t> out(n);
    for (auto& b : out) b = uint8_t(rng());
    return out;
}

std::vector<uint8_t> slurp(const fs::path& p) {
    std::ifstream in(p, std::ios::binary);
    return {std::istreambuf_iterator<char>(in), {}};
}

void spill(const fs::path& p, const std::vector<uint8_t>& bytes) {
    std::ofstream out(p, std::ios::binary);
    out.write(reinterpret_cast<const char*>(bytes.data()), std::streamsize(bytes.size()));
}

struct Layout {
    int bits;
    const char* mkfs;  // arguments after -F
    unsigned kib;
};

class FatTools : public ::testing::TestWithParam<Layout> {
protected:
    void SetUp() override {
        if (!have("mkfs.fat") || !have("fsck.fat") || !have("mcopy"))
            GTEST_SKIP() << "dosfstools and mtools are not installed (scripts/setup.sh installs them)";
        dir = fs::temp_directory_path() / fmt::format("mcuflash-fat-{}-{}", getpid(), GetParam().bits);
        fs::create_directories(dir);
        image = dir / "card.img";
        fs::remove(image);
        auto [rc, out] = sh(fmt::format("mkfs.fat -C -F {} {} -n CARD {} {}", GetParam().bits, GetParam().mkfs,
                                        image.string(), GetParam().kib));
        ASSERT_EQ(rc, 0) << out;
    }
    void TearDown() override {
        if (!dir.empty()) fs::remove_all(dir);
    }

    // fsck.fat -n finds nothing to repair.
    void expect_clean() {
        auto [rc, out] = sh("fsck.fat -n " + image.string());
        EXPECT_EQ(rc, 0) << out;
        EXPECT_EQ(out.find("Free cluster summary"), std::string::npos) << out;
    }
    // mtools reads the file back identical.
    void expect_mtools_reads(const std::string& name, const std::vector<uint8_t>& bytes) {
        const fs::path out = dir / "back.bin";
        fs::remove(out);
        auto [rc, text] = sh(fmt::format("mcopy -n -i '{}' '::{}' '{}'", image.string(), name, out.string()));
        ASSERT_EQ(rc, 0) << text;
        EXPECT_TRUE(slurp(out) == bytes) << name << " read back by mcopy differs";
    }
    void mtools_put(const std::string& name, const std::vector<uint8_t>& bytes) {
        const fs::path in = dir / "put.bin";
        spill(in, bytes);
        auto [rc, text] = sh(fmt::format("mcopy -o -i '{}' '{}' '::{}'", image.string(), in.string(), name));
        ASSERT_EQ(rc, 0) << text;
    }
    FatVolume::WriteResult write(const std::string& name, const std::vector<uint8_t>& bytes) {
        FileBlockDevice dev(image.string(), true);
        FatVolume vol(dev);
        auto r = vol.write_file(name, bytes);
        FileBlockDevice again(image.string(), false);
        FatVolume fresh(again);
        EXPECT_TRUE(fresh.read_file(name) == bytes) << "mcuflash's own read-back of " << name;
        return r;
    }

    fs::path dir, image;
};

TEST_P(FatTools, ShortAndLongNamesPassFsckAndMtoolsReadsThemBack) {
    const auto fw = random_bytes(200 * 1024 + 17, 1);
    auto r = write("firmware.bin", fw);
    EXPECT_EQ(r.short_name, "FIRMWARE.BIN");
    EXPECT_FALSE(r.replaced);
    const auto robin = random_bytes(64 * 1024, 2);
    EXPECT_EQ(write("Robin_nano35.bin", robin).short_name, "ROBIN_~1.BIN");
    const auto longer = random_bytes(3000, 3);
    write("a firmware file with a name of 40 chars.bin", longer);
    write("Robin_nano43.bin", robin);  // a second ~N name from the same stem
    write("empty.txt", {});
    expect_clean();
    expect_mtools_reads("firmware.bin", fw);
    expect_mtools_reads("Robin_nano35.bin", robin);
    expect_mtools_reads("a firmware file with a name of 40 chars.bin", longer);
    expect_mtools_reads("Robin_nano43.bin", robin);
    expect_mtools_reads("empty.txt", {});
    auto [rc, listing] = sh(fmt::format("mdir -i '{}' ::", image.string()));
    EXPECT_NE(listing.find("Robin_nano35.bin"), std::string::npos) << listing;
    EXPECT_NE(listing.find("ROBIN_~2"), std::string::npos) << listing;
}

TEST_P(FatTools, FilesInFoldersThatExistOrAreMade) {
    const auto fw = random_bytes(40000, 4);
    write("STM32F4_UPDATE/firmware.bin", fw);
    write("update/fmw_tronxy.bin", fw);
    write("a/b/c/deep.bin", fw);
    sh(fmt::format("mmd -i '{}' ::user", image.string()));
    write("user/firmware.bin", fw);
    expect_clean();
    expect_mtools_reads("STM32F4_UPDATE/firmware.bin", fw);
    expect_mtools_reads("update/fmw_tronxy.bin", fw);
    expect_mtools_reads("a/b/c/deep.bin", fw);
    expect_mtools_reads("user/firmware.bin", fw);
}

TEST_P(FatTools, AFileOfTheSameNameIsReplaced) {
    mtools_put("FIRMWARE.BIN", random_bytes(100000, 5));
    mtools_put("FIRMWARE.CUR", random_bytes(5000, 6));
    const auto fw = random_bytes(70000, 7);
    auto r = write("firmware.bin", fw);
    EXPECT_TRUE(r.replaced);
    expect_clean();
    expect_mtools_reads("firmware.bin", fw);
    expect_mtools_reads("FIRMWARE.CUR", random_bytes(5000, 6));
    // Replacing a file with a long name keeps one entry for it.
    mtools_put("Robin_nano.bin", random_bytes(9000, 8));
    write("ROBIN_NANO.BIN", fw);
    expect_clean();
    expect_mtools_reads("Robin_nano.bin", fw);
}

TEST_P(FatTools, FragmentedFreeSpace) {
    // Files of a few clusters each, every other one deleted: the free space is all gaps.
    FileBlockDevice probe(image.string(), false);
    const auto info = FatVolume(probe).info();
    const size_t piece = info.cluster_bytes * 3;
    for (int i = 0; i < 40; ++i) mtools_put(fmt::format("F{:02}.DAT", i), random_bytes(piece, 100 + i));
    for (int i = 0; i < 40; i += 2) sh(fmt::format("mdel -i '{}' ::F{:02}.DAT", image.string(), i));
    const auto fw = random_bytes(piece * 12 + 5, 9);
    write("firmware.bin", fw);
    expect_clean();
    expect_mtools_reads("firmware.bin", fw);
    for (int i = 1; i < 40; i += 2) expect_mtools_reads(fmt::format("F{:02}.DAT", i), random_bytes(piece, 100 + i));
    // And mcuflash reads what mtools wrote.
    FileBlockDevice dev(image.string(), false);
    EXPECT_TRUE(FatVolume(dev).read_file("f03.dat") == random_bytes(piece, 103));
}

TEST_P(FatTools, ANearlyFullCardIsRefusedAndLeftAsItWas) {
    FileBlockDevice probe(image.string(), false);
    const auto info = FatVolume(probe).info();
    const size_t filler = info.free_bytes - 4 * info.cluster_bytes;
    mtools_put("BIG.DAT", random_bytes(filler, 10));
    const auto before = slurp(image);
    try {
        write("firmware.bin", random_bytes(8 * info.cluster_bytes, 11));
        FAIL() << "a file larger than the free space was written";
    } catch (const core::Error& e) {
        EXPECT_EQ(e.kind(), core::ErrorKind::Io);
        EXPECT_NE(std::string(e.what()).find("too full"), std::string::npos) << e.what();
    }
    EXPECT_TRUE(slurp(image) == before) << "the card changed";
    expect_clean();
    // What fits still goes in.
    const auto small = random_bytes(3 * info.cluster_bytes, 12);
    write("firmware.bin", small);
    expect_clean();
    expect_mtools_reads("firmware.bin", small);
}

TEST_P(FatTools, ManyNamesGrowTheDirectory) {
    std::vector<std::vector<uint8_t>> files;
    for (int i = 0; i < 40; ++i) {
        files.push_back(random_bytes(100 + i, 200 + i));
        write(fmt::format("sub/a long firmware name {:02}.bin", i), files.back());
    }
    for (int i = 0; i < 30; ++i) write(fmt::format("Root name number {:02}.bin", i), files[i]);
    expect_clean();
    for (int i = 0; i < 40; ++i) expect_mtools_reads(fmt::format("sub/a long firmware name {:02}.bin", i), files[i]);
    for (int i = 0; i < 30; ++i) expect_mtools_reads(fmt::format("Root name number {:02}.bin", i), files[i]);
}

TEST_P(FatTools, WritesOnlyTheFileTheFatAndTheDirectory) {
    FileBlockDevice dev(image.string(), true);
    FatVolume vol(dev);
    const auto cb = vol.info().cluster_bytes;
    const auto fw = random_bytes(256 * 1024, 13);
    auto r = vol.write_file("firmware.bin", fw);
    const uint64_t clusters = (fw.size() + cb - 1) / cb;
    // The file's clusters, the FAT sectors of its chain in both copies, one directory sector, FSInfo.
    const uint64_t fat_bytes = GetParam().bits == 12 ? clusters * 3 / 2 : clusters * GetParam().bits / 8;
    const uint64_t fat_sectors = (fat_bytes + 511) / 512 + 1;
    EXPECT_GE(r.device_bytes, clusters * cb + 2 * 512 + 512);
    EXPECT_LE(r.device_bytes, clusters * cb + 2 * fat_sectors * 512 + 512 + (GetParam().bits == 32 ? 512 : 0));
}

INSTANTIATE_TEST_SUITE_P(Layouts, FatTools,
                         ::testing::Values(Layout{12, "-s 4", 4096}, Layout{16, "-s 4 -r 112", 16384},
                                           Layout{32, "-s 1", 40960}),
                         [](const auto& layout) { return fmt::format("FAT{}", layout.param.bits); });

// A card with an MBR: the volume is found in its first FAT partition.
TEST(FatToolsPartition, TheFatPartitionOfACardWithAnMbr) {
    if (!have("mkfs.fat") || !have("fsck.fat") || !have("mcopy")) GTEST_SKIP() << "dosfstools and mtools missing";
    const fs::path dir = fs::temp_directory_path() / fmt::format("mcuflash-fat-mbr-{}", getpid());
    fs::create_directories(dir);
    const fs::path image = dir / "card.img";
    std::vector<uint8_t> disk(2048 * 512 + 20 * 1024 * 1024, 0);
    // One partition of type 0x0C (FAT32 LBA) from sector 2048.
    uint8_t* e = disk.data() + 446;
    e[4] = 0x0C;
    const uint32_t first = 2048, count = 20 * 2048;
    for (int i = 0; i < 4; ++i) e[8 + i] = uint8_t(first >> (8 * i)), e[12 + i] = uint8_t(count >> (8 * i));
    disk[510] = 0x55;
    disk[511] = 0xAA;
    spill(image, disk);
    auto [rc, out] = sh(fmt::format("mkfs.fat -F 16 --offset 2048 '{}' {}", image.string(), 20 * 1024));
    ASSERT_EQ(rc, 0) << out;
    const auto fw = random_bytes(123456, 14);
    {
        FileBlockDevice dev(image.string(), true);
        auto where = storage::locate_fat_volume(dev);
        EXPECT_EQ(where.partition, 1);
        EXPECT_EQ(where.first_sector, 2048u);
        storage::PartitionDevice part(dev, where.first_sector, where.sector_count, where.partition);
        FatVolume(part).write_file("firmware.bin", fw);
    }
    auto [rc2, listing] = sh(fmt::format("mcopy -n -i '{}@@1M' ::firmware.bin '{}'", image.string(), (dir / "back").string()));
    EXPECT_EQ(rc2, 0) << listing;
    EXPECT_TRUE(slurp(dir / "back") == fw);
    sh(fmt::format("dd if='{}' of='{}' bs=512 skip=2048 status=none", image.string(), (dir / "part.img").string()));
    auto [rc3, fsck] = sh(fmt::format("fsck.fat -n '{}'", (dir / "part.img").string()));
    EXPECT_EQ(rc3, 0) << fsck;
    fs::remove_all(dir);
}

// Faults: a write error on one sector and a card pulled out mid-write leave a volume fsck.fat
// accepts (lost clusters at most) with the files that were there intact.
TEST(FatToolsFaults, AWriteErrorOrAVanishedCardLeavesTheOtherFilesIntact) {
    if (!have("mkfs.fat") || !have("fsck.fat") || !have("mcopy")) GTEST_SKIP() << "dosfstools and mtools missing";
    const fs::path dir = fs::temp_directory_path() / fmt::format("mcuflash-fat-fault-{}", getpid());
    fs::create_directories(dir);
    const fs::path image = dir / "card.img";
    ASSERT_EQ(sh(fmt::format("mkfs.fat -C -F 32 -s 1 '{}' 40960", image.string())).first, 0);
    const auto keep = random_bytes(30000, 15);
    spill(dir / "keep", keep);
    ASSERT_EQ(sh(fmt::format("mcopy -i '{}' '{}' ::KEEP.BIN", image.string(), (dir / "keep").string())).first, 0);
    ASSERT_EQ(sh(fmt::format("mcopy -i '{}' '{}' ::firmware.bin", image.string(), (dir / "keep").string())).first, 0);
    const auto pristine = slurp(image);
    const auto fw = random_bytes(100000, 16);
    for (uint64_t after : {3ull, 150ull, 196ull, 197ull, 198ull, 199ull, 200ull}) {
        for (bool vanish : {true, false}) {
            storage::MemoryBlockDevice dev(pristine);
            if (vanish) dev.vanish_after_writes = after;
            else {
                // the sector the after-th write would go to fails
                storage::MemoryBlockDevice dry(pristine);
                FatVolume(dry).write_file("firmware.bin", fw);
                ASSERT_GT(dry.written_sectors.size(), std::min<uint64_t>(after, dry.written_sectors.size() - 1));
                dev.fail_writes_to = dry.written_sectors[std::min<uint64_t>(after, dry.written_sectors.size() - 1)];
            }
            EXPECT_THROW(FatVolume(dev).write_file("firmware.bin", fw), core::Error);
            spill(image, dev.bytes());
            auto [rc, out] = sh(fmt::format("fsck.fat -n '{}'", image.string()));
            // Lost clusters are the only thing fsck.fat may find; never a damaged file or directory.
            EXPECT_TRUE(rc == 0 || out.find("unused clusters") != std::string::npos ||
                        out.find("Free cluster summary") != std::string::npos)
                << "after " << after << (vanish ? " writes the card vanished" : " a write failed") << ":\n" << out;
            EXPECT_EQ(out.find("Cluster chain"), std::string::npos) << out;
            EXPECT_EQ(out.find("Deleting"), std::string::npos) << out;
            storage::MemoryBlockDevice reread(dev.bytes());
            FatVolume vol(reread);
            EXPECT_TRUE(vol.read_file("KEEP.BIN") == keep);
            auto now = vol.read_file("firmware.bin");
            EXPECT_TRUE(now == keep || now == fw) << "firmware.bin is neither the old nor the new file";
        }
    }
    fs::remove_all(dir);
}

}  // namespace
