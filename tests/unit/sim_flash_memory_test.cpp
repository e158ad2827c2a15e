// The simulators' flash model: erase units, AND-programming, protection, timing, persistence.
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <iterator>

#include "core/error.hpp"
#include "sim/flash_memory.hpp"

namespace mcuflash::sim {
namespace {

using namespace std::chrono_literals;
using Bytes = std::vector<uint8_t>;

Bytes bytes_at(const FlashMemory& flash, uint32_t address, uint32_t length) {
    Bytes out(length);
    flash.read(address, out);
    return out;
}

// 4 KiB of 256-byte pages, written 2 bytes at a time, from 0x1000.
FlashMemory small_flash(FlashTiming timing = {}) { return FlashMemory(FlashLayout::uniform(0x1000, 4096, 256, 2), timing); }

TEST(SimFlashMemory, StartsErased) {
    auto flash = small_flash();
    EXPECT_EQ(flash.size(), 4096u);
    EXPECT_EQ(flash.base(), 0x1000u);
    EXPECT_EQ(bytes_at(flash, 0x1000, 4096), Bytes(4096, 0xFF));
}

TEST(SimFlashMemory, ProgrammingOnlyClearsBits) {
    auto flash = small_flash();
    ASSERT_TRUE(flash.program(0x1000, Bytes{0xF0, 0x0F}).ok());
    EXPECT_EQ(flash.counters().programs_over_unerased, 0u);
    // Writing 1s over 0s without an erase leaves the 0s: the result is the AND of both.
    ASSERT_TRUE(flash.program(0x1000, Bytes{0x3C, 0xFF}).ok());
    EXPECT_EQ(bytes_at(flash, 0x1000, 2), (Bytes{0x30, 0x0F}));
    EXPECT_EQ(flash.counters().programs, 2u);
    EXPECT_EQ(flash.counters().bytes_programmed, 4u);
    EXPECT_EQ(flash.counters().programs_over_unerased, 1u);
}

TEST(SimFlashMemory, EraseWorksOnWholeUnits) {
    auto flash = small_flash();
    flash.load(0x1000, Bytes(1024, 0x00));
    EXPECT_EQ(flash.erase(0x1080, 256).status, FlashStatus::Misaligned);
    EXPECT_EQ(flash.erase(0x1100, 100).status, FlashStatus::Misaligned);
    ASSERT_TRUE(flash.erase(0x1100, 512).ok());
    EXPECT_EQ(bytes_at(flash, 0x1000, 256), Bytes(256, 0x00));
    EXPECT_EQ(bytes_at(flash, 0x1100, 512), Bytes(512, 0xFF));
    EXPECT_EQ(bytes_at(flash, 0x1300, 256), Bytes(256, 0x00));
    EXPECT_EQ(flash.counters().erases, 2u);
}

TEST(SimFlashMemory, WritesMustBeWholeWriteUnits) {
    auto flash = small_flash();
    EXPECT_EQ(flash.program(0x1001, Bytes{1, 2}).status, FlashStatus::Misaligned);
    EXPECT_EQ(flash.program(0x1000, Bytes{1, 2, 3}).status, FlashStatus::Misaligned);
    EXPECT_EQ(flash.program(0x0FFE, Bytes{1, 2}).status, FlashStatus::OutOfRange);
    EXPECT_EQ(flash.program(0x1FFE, Bytes{1, 2, 3, 4}).status, FlashStatus::OutOfRange);
    EXPECT_EQ(flash.erase(0x2000, 256).status, FlashStatus::OutOfRange);
    EXPECT_EQ(flash.counters().programs, 0u);
    EXPECT_EQ(bytes_at(flash, 0x1000, 4096), Bytes(4096, 0xFF));
}

TEST(SimFlashMemory, VariableSizeSectors) {
    // STM32F4-like: 4 x 16 KiB, 1 x 64 KiB, 7 x 128 KiB from 0x08000000.
    FlashLayout layout{0x08000000, {{16 * 1024, 4}, {64 * 1024, 1}, {128 * 1024, 7}}, 4};
    FlashMemory flash(layout, FlashTiming{100ms, 5ms, 10us});
    EXPECT_EQ(flash.size(), 1024u * 1024u);
    auto unit = flash.erase_unit_at(0x0800C123);
    ASSERT_TRUE(unit);
    EXPECT_EQ(unit->address, 0x0800C000u);
    EXPECT_EQ(unit->size, 16u * 1024u);
    unit = flash.erase_unit_at(0x08010000);
    EXPECT_EQ(unit->address, 0x08010000u);
    EXPECT_EQ(unit->size, 64u * 1024u);
    unit = flash.erase_unit_at(0x080FFFFF);
    EXPECT_EQ(unit->address, 0x080E0000u);
    EXPECT_EQ(unit->size, 128u * 1024u);
    EXPECT_FALSE(flash.erase_unit_at(0x08100000));

    // A 16 KiB and the 64 KiB sector: per-sector time plus time per KiB.
    auto outcome = flash.erase(0x0800C000, 16 * 1024 + 64 * 1024);
    ASSERT_TRUE(outcome.ok());
    EXPECT_EQ(outcome.busy, 2 * 100ms + 80 * 5ms);
    EXPECT_EQ(flash.program(0x08000000, Bytes(8, 0)).busy, 2 * 10us);
    EXPECT_EQ(flash.erase(0x08010000, 16 * 1024).status, FlashStatus::Misaligned);
}

TEST(SimFlashMemory, ProtectedRangeRefusesAndCounts) {
    auto flash = small_flash();
    flash.protect({0x1E00, 512, "bootloader"});
    flash.fill_protected_with_placeholder();
    EXPECT_TRUE(flash.protected_ranges_intact());
    Bytes before = bytes_at(flash, 0x1E00, 512);
    EXPECT_EQ(before, FlashMemory::placeholder("bootloader", 512));

    EXPECT_EQ(flash.erase(0x1D00, 512).status, FlashStatus::Protected);  // overlaps by one page
    EXPECT_EQ(flash.program(0x1F00, Bytes(16, 0)).status, FlashStatus::Protected);
    EXPECT_EQ(flash.counters().violations, 2u);
    ASSERT_EQ(flash.violations().size(), 2u);
    EXPECT_NE(flash.violations()[0].find("'bootloader'"), std::string::npos) << flash.violations()[0];
    EXPECT_NE(flash.violations()[1].find("program 0x00001F00+16"), std::string::npos) << flash.violations()[1];
    // Refused means untouched, including the unprotected part of a refused erase.
    EXPECT_EQ(bytes_at(flash, 0x1E00, 512), before);
    EXPECT_TRUE(flash.protected_ranges_intact());
    EXPECT_EQ(flash.counters().erases, 0u);

    // Right below the protected range is fine.
    EXPECT_TRUE(flash.erase(0x1D00, 256).ok());
    EXPECT_TRUE(flash.program(0x1DFE, Bytes{0, 0}).ok());
    EXPECT_EQ(flash.counters().violations, 2u);
}

TEST(SimFlashMemory, ReportsBusyTime) {
    auto flash = small_flash(FlashTiming{4500us, {}, 100us});
    EXPECT_EQ(flash.erase(0x1000, 512).busy, 9000us);
    EXPECT_EQ(flash.program(0x1000, Bytes(256, 0)).busy, 128 * 100us);
    EXPECT_EQ(flash.program(0x0000, Bytes(2, 0)).busy, 0us);  // refused: no time
}

class SimFlashFile : public ::testing::Test {
protected:
    void SetUp() override {
        dir_ = std::filesystem::temp_directory_path() /
               ("mcuflash-sim-flash-" + std::to_string(::getpid()) + "-" +
                ::testing::UnitTest::GetInstance()->current_test_info()->name());
        std::filesystem::remove_all(dir_);
        std::filesystem::create_directories(dir_);
    }
    void TearDown() override { std::filesystem::remove_all(dir_); }
    static Bytes file_bytes(const std::filesystem::path& path) {
        std::ifstream in(path, std::ios::binary);
        return Bytes(std::istreambuf_iterator<char>(in), {});
    }
    std::filesystem::path dir_;
};

TEST_F(SimFlashFile, CreatedWithPlaceholderThenWrittenThrough) {
    auto path = dir_ / "flash.bin";
    {
        auto flash = small_flash();
        flash.protect({0x1E00, 512, "boot"});
        flash.fill_protected_with_placeholder();
        EXPECT_EQ(flash.attach_file(path), FlashMemory::FileOrigin::Created);
        Bytes on_disk = file_bytes(path);
        ASSERT_EQ(on_disk.size(), 4096u);
        EXPECT_EQ(Bytes(on_disk.begin() + 0xE00, on_disk.end()), FlashMemory::placeholder("boot", 512));

        ASSERT_TRUE(flash.program(0x1100, Bytes{0x12, 0x34}).ok());
        // On disk at once, not only at exit.
        on_disk = file_bytes(path);
        EXPECT_EQ(on_disk[0x100], 0x12);
        EXPECT_EQ(on_disk[0x101], 0x34);
        ASSERT_TRUE(flash.erase(0x1100, 256).ok());
        EXPECT_EQ(file_bytes(path)[0x100], 0xFF);
        ASSERT_TRUE(flash.program(0x1200, Bytes{0xAB, 0xCD}).ok());
    }
    auto again = small_flash();
    EXPECT_EQ(again.attach_file(path), FlashMemory::FileOrigin::Loaded);
    EXPECT_EQ(bytes_at(again, 0x1200, 2), (Bytes{0xAB, 0xCD}));
    EXPECT_EQ(Bytes(again.contents().begin(), again.contents().end()), file_bytes(path));
}

TEST_F(SimFlashFile, SizeMismatchIsAClearError) {
    auto path = dir_ / "short.bin";
    std::ofstream(path, std::ios::binary) << std::string(1000, '\xFF');
    auto flash = small_flash();
    try {
        flash.attach_file(path);
        FAIL() << "expected an error";
    } catch (const core::Error& e) {
        EXPECT_EQ(e.kind(), core::ErrorKind::BadInput);
        EXPECT_NE(std::string(e.what()).find("1000 bytes"), std::string::npos) << e.what();
        EXPECT_NE(std::string(e.what()).find("4096 bytes"), std::string::npos) << e.what();
    }
    EXPECT_FALSE(flash.file());
    EXPECT_EQ(file_bytes(path).size(), 1000u);  // left as it was
}

}  // namespace
}  // namespace mcuflash::sim
