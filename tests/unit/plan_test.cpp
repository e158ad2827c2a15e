#include <gtest/gtest.h>

#include <cstring>
#include <map>
#include <random>

#include "core/crc.hpp"
#include "core/error.hpp"
#include "plan/flash_plan.hpp"

using namespace mcuflash;
using core::ErrorKind;

namespace {

// An in-memory device with optiboot's semantics (page writes erase first), and hooks to misbehave.
class FakeDevice : public protocol::Bootloader {
public:
    explicit FakeDevice(uint32_t size, uint32_t page) : flash(size, 0xFF), page_(page) {}
    protocol::DeviceInfo connect() override { return {}; }
    protocol::Capabilities capabilities() const override {
        protocol::Capabilities c;
        c.can_read = readable;
        c.erases_on_write = true;
        c.write_unit = page_;
        return c;
    }
    void write(uint32_t address, std::span<const uint8_t> data) override {
        writes.push_back(address);
        if (fail_write_at && *fail_write_at == address)
            throw core::Error(ErrorKind::Timeout, "simulated timeout");
        // A corrupted address sends the second write of a page elsewhere.
        if (auto m = misdirect.find(address); m != misdirect.end() && ++writes_to[address] == 2) address = m->second;
        for (size_t i = 0; i < data.size(); ++i) flash.at(address + i) = data[i];
        if (corrupt_writes_left > 0 && address == corrupt_address) {
            --corrupt_writes_left;
            flash.at(address) ^= 0x01;
        }
    }
    std::vector<uint8_t> read(uint32_t address, uint32_t length) override {
        return {flash.begin() + address, flash.begin() + address + length};
    }
    void start_application() override { started = true; }

    std::vector<uint8_t> flash;
    std::vector<uint32_t> writes;
    std::map<uint32_t, uint32_t> misdirect;  // page -> where its second write lands
    std::map<uint32_t, int> writes_to;
    bool readable = true;
    std::optional<uint32_t> fail_write_at;
    uint32_t corrupt_address = 0;
    int corrupt_writes_left = 0;
    bool started = false;

private:
    uint32_t page_;
};

protocol::DeviceInfo avr_device() {
    protocol::DeviceInfo info;
    info.chip = "atmega1284p";
    info.bootloader = "optiboot";
    info.flash_size = 131072;
    info.app_start = 0;
    info.app_end = 131072 - 1024;
    info.page_size = 256;
    return info;
}

image::Image image_at(uint32_t address, size_t size, uint8_t seed = 1) {
    std::vector<uint8_t> data(size);
    for (size_t i = 0; i < size; ++i) data[i] = static_cast<uint8_t>(i * 31 + seed);
    image::Image img;
    img.add(address, data, "test");
    return img;
}

void expect_error(ErrorKind kind, const std::function<void()>& f, const std::string& fragment = {}) {
    try {
        f();
        FAIL() << "no error";
    } catch (const core::Error& e) {
        EXPECT_EQ(e.kind(), kind) << e.what();
        if (!fragment.empty()) {
            EXPECT_NE(std::string(e.what()).find(fragment), std::string::npos) << e.what();
        }
    }
}

}  // namespace

TEST(Plan, PagesCoverTheImageAndPadWithErasedBytes) {
    FakeDevice dev(131072, 256);
    auto img = image_at(0x100 + 10, 300);  // spans pages 0x100 and 0x200, partly
    auto plan = plan::make_plan(img, avr_device(), dev.capabilities(), {});
    ASSERT_EQ(plan.pages.size(), 2u);
    EXPECT_EQ(plan.pages[0].address, 0x100u);
    EXPECT_EQ(plan.pages[1].address, 0x200u);
    EXPECT_EQ(plan.pages[0].data[0], 0xFF);
    EXPECT_EQ(plan.pages[0].data[10], img.runs().begin()->second[0]);
    EXPECT_EQ(plan.pages[1].data.back(), 0xFF);
}

TEST(Plan, RefusesImagesReachingIntoTheBootloader) {
    FakeDevice dev(131072, 256);
    auto img = image_at(131072 - 1024 - 16, 32);  // 16 bytes into optiboot's 1 KiB
    expect_error(ErrorKind::Unsafe, [&] { plan::make_plan(img, avr_device(), dev.capabilities(), {}); },
                 "0x0001FC00");
}

TEST(Plan, RefusesImagesPastTheEndOfFlash) {
    FakeDevice dev(131072, 256);
    auto img = image_at(131072 - 8, 16);
    expect_error(ErrorKind::Unsafe, [&] { plan::make_plan(img, avr_device(), dev.capabilities(), {}); }, "flash");
    expect_error(ErrorKind::Unsafe, [&] { plan::check_fits_flash(img, 0, 131072, "atmega1284p"); }, "0x0001FFFF");
}

TEST(Plan, RefusesAUf2FileForAnotherChipFamily) {
    auto img = image_at(0x10004000, 256);
    img.family_id = 0xE48BFF56;  // RP2040
    plan::check_uf2_family(img, "rp2040");
    expect_error(ErrorKind::BadInput, [&] { plan::check_uf2_family(img, "stm32f103xe"); },
                 "for RP2040 chips (family 0xE48BFF56), but the device is an stm32f103xe (STM32F1");
    img.family_id = 0x57755A57;  // STM32F4: an STM32F407 is one too, as well as STM32F407
    plan::check_uf2_family(img, "stm32f407xg");
    img.family_id = 0x6D0922FA;
    plan::check_uf2_family(img, "stm32f407xg");
    expect_error(ErrorKind::BadInput, [&] { plan::check_uf2_family(img, "stm32f446xe"); }, "STM32F407 chips");
    img.family_id = 0x12345678;  // unknown family, known chip: refused, named by number
    expect_error(ErrorKind::BadInput, [&] { plan::check_uf2_family(img, "rp2040"); }, "other chips (family 0x12345678)");
    plan::check_uf2_family(img, "atmega2560");  // no UF2 family known for the chip: nothing to check
}

TEST(Plan, RefusesAnEntryPointOutsideTheApplicationUnlessForced) {
    FakeDevice dev(131072, 256);
    auto info = avr_device();
    info.app_start = 0x2000;  // a bootloader at the bottom, like SAMD21
    info.app_end = 131072;
    auto img = image_at(0x2000, 64);
    img.entry = 0x100;
    expect_error(ErrorKind::Unsafe, [&] { plan::make_plan(img, info, dev.capabilities(), {}); }, "entry point");
    plan::PlanOptions forced;
    forced.force_link_address = true;
    EXPECT_NO_THROW(plan::make_plan(img, info, dev.capabilities(), forced));
    // --force never lets data land below the application start.
    auto low = image_at(0x1F00, 512);
    expect_error(ErrorKind::Unsafe, [&] { plan::make_plan(low, info, dev.capabilities(), forced); }, "bootloader");
}

TEST(Plan, WritesVerifiesAndStarts) {
    FakeDevice dev(131072, 256);
    auto img = image_at(0, 10 * 1024);
    auto plan = plan::make_plan(img, avr_device(), dev.capabilities(), {});
    std::vector<core::ProgressEvent> events;
    auto report = plan::execute(dev, plan, {}, core::Progress([&](const auto& e) { events.push_back(e); }));
    EXPECT_EQ(report.pages_written, 40u);
    EXPECT_TRUE(report.verified);
    EXPECT_TRUE(dev.started);
    EXPECT_TRUE(std::equal(img.runs().begin()->second.begin(), img.runs().begin()->second.end(), dev.flash.begin()));
    ASSERT_FALSE(events.empty());
    EXPECT_EQ(events.back().stage, core::Stage::Start);
}

TEST(Plan, RewritesAPageThatFailsVerifyOnce) {
    FakeDevice dev(131072, 256);
    dev.corrupt_address = 0x300;
    dev.corrupt_writes_left = 1;
    auto plan = plan::make_plan(image_at(0, 4096), avr_device(), dev.capabilities(), {});
    auto report = plan::execute(dev, plan, {}, core::Progress());
    EXPECT_EQ(report.pages_rewritten, 1u);
    EXPECT_TRUE(report.verified);
}

TEST(Plan, GivesUpWithVerifyMismatchWhenAPageNeverVerifies) {
    FakeDevice dev(131072, 256);
    dev.corrupt_address = 0x300;
    dev.corrupt_writes_left = 100;
    auto plan = plan::make_plan(image_at(0, 4096), avr_device(), dev.capabilities(), {});
    expect_error(ErrorKind::VerifyMismatch, [&] { plan::execute(dev, plan, {}, core::Progress()); }, "0x00000300");
    EXPECT_FALSE(dev.started);
}

TEST(Plan, AFailingWriteStopsAndLeavesTheBootloaderAlone) {
    FakeDevice dev(131072, 256);
    dev.fail_write_at = 0x500;
    auto plan = plan::make_plan(image_at(0, 4096), avr_device(), dev.capabilities(), {});
    expect_error(ErrorKind::Timeout, [&] { plan::execute(dev, plan, {}, core::Progress()); });
    for (uint32_t a : dev.writes) EXPECT_LT(a, avr_device().app_end);
    EXPECT_FALSE(dev.started);
}

namespace {

// Flash that needs a separate erase (STM32-like sectors): writes AND into what is there.
class SectorDevice : public protocol::Bootloader {
public:
    static constexpr uint32_t kBase = 0x08000000;
    SectorDevice() : flash(512 * 1024, 0x00) {  // starts full of old data: nothing is erased
        uint32_t at = kBase;
        for (uint32_t size : {16384u, 16384u, 16384u, 16384u, 65536u, 131072u, 131072u, 131072u}) {
            units.push_back({at, size});
            at += size;
        }
    }
    protocol::DeviceInfo connect() override { return {}; }
    protocol::Capabilities capabilities() const override {
        protocol::Capabilities c;
        c.write_unit = 256;
        c.erase_units = units;
        return c;
    }
    void erase(uint32_t address, uint32_t length) override {
        erases.emplace_back(address, length);
        std::fill_n(flash.begin() + (address - kBase), length, 0xFF);
    }
    void write(uint32_t address, std::span<const uint8_t> data) override {
        if (on_write) on_write(address);
        for (size_t i = 0; i < data.size(); ++i) flash.at(address - kBase + i) &= data[i];
        if (corrupt_writes_left > 0 && address == corrupt_address) {
            --corrupt_writes_left;
            flash.at(address - kBase) = 0x00;
        }
    }
    std::vector<uint8_t> read(uint32_t address, uint32_t length) override {
        return {flash.begin() + (address - kBase), flash.begin() + (address - kBase) + length};
    }
    void start_application() override {}

    std::vector<protocol::EraseUnit> units;
    std::vector<uint8_t> flash;
    std::vector<std::pair<uint32_t, uint32_t>> erases;
    std::function<void(uint32_t)> on_write;  // a damaged command acting somewhere else
    uint32_t corrupt_address = 0;
    int corrupt_writes_left = 0;
};

protocol::DeviceInfo stm32_device(uint32_t app_start) {
    protocol::DeviceInfo info;
    info.chip = "stm32f446xe";
    info.flash_base = SectorDevice::kBase;
    info.flash_size = 512 * 1024;
    info.app_start = app_start;
    info.app_end = SectorDevice::kBase + 512 * 1024;
    info.page_size = 256;
    return info;
}

}  // namespace

TEST(Plan, ErasesOnlyTheSectorsTheImageTouchesInOneCallPerRun) {
    SectorDevice dev;
    auto img = image_at(0x08008000, 20000);  // sectors 2 and 3
    auto plan = plan::make_plan(img, stm32_device(0x08008000), dev.capabilities(), {});
    ASSERT_EQ(plan.erases.size(), 2u);
    auto report = plan::execute(dev, plan, {}, core::Progress());
    EXPECT_TRUE(report.verified);
    EXPECT_EQ(report.bytes_erased, 32768u);
    ASSERT_EQ(dev.erases.size(), 1u);
    EXPECT_EQ(dev.erases[0], std::make_pair(0x08008000u, 32768u));
    EXPECT_EQ(dev.flash[0x7FFF], 0x00);   // sector 1: untouched
    EXPECT_EQ(dev.flash[0x10000], 0x00);  // sector 4: untouched
    EXPECT_TRUE(std::equal(dev.flash.begin() + 0x8000, dev.flash.begin() + 0x8000 + 20000,
                           img.flatten(0x08008000, 0x08008000 + 20000).begin()));
}

TEST(Plan, RefusesAnImageWhoseSectorAlsoHoldsTheBootloader) {
    SectorDevice dev;
    // A bootloader in 0x08000000-0x08001FFF: sector 0 (16 KiB) holds both.
    expect_error(ErrorKind::Unsafe,
                 [&] { plan::make_plan(image_at(0x08002000, 1024), stm32_device(0x08002000), dev.capabilities(), {}); },
                 "0x08000000-0x08003FFF");
    EXPECT_TRUE(dev.erases.empty());
}

TEST(Plan, AFailedVerifyErasesTheSectorAgainAndRewritesAllOfIt) {
    SectorDevice dev;
    dev.corrupt_address = 0x08004100;
    dev.corrupt_writes_left = 1;
    auto img = image_at(0x08004000, 1024, 7);
    auto plan = plan::make_plan(img, stm32_device(0x08004000), dev.capabilities(), {});
    auto report = plan::execute(dev, plan, {}, core::Progress());
    EXPECT_TRUE(report.verified);
    EXPECT_EQ(dev.erases.size(), 2u);
    EXPECT_EQ(report.pages_rewritten, 4u);  // every planned page in the re-erased sector
    EXPECT_TRUE(std::equal(dev.flash.begin() + 0x4000, dev.flash.begin() + 0x4400,
                           img.flatten(0x08004000, 0x08004400).begin()));
}

// A Cortex-M vector table for code linked at `base`: stack in SRAM, reset handler just above it.
void put_vector_table(std::vector<uint8_t>& flash, uint32_t offset, uint32_t base) {
    const uint32_t words[2] = {0x20005000, base + 0x101};
    std::memcpy(flash.data() + offset, words, sizeof words);
}

TEST(Plan, AnImageWhereARomBootloaderChipBootsGoesInUnlessTheFlashStartsWithABootloader) {
    auto info = stm32_device(SectorDevice::kBase);
    info.boot_area_end = SectorDevice::kBase + 16384;
    auto img = image_at(SectorDevice::kBase, 4096);
    {
        SectorDevice dev;  // old data, no vector table: nothing to replace
        auto plan = plan::make_plan(img, info, dev.capabilities(), {});
        EXPECT_TRUE(plan::execute(dev, plan, {}, core::Progress()).verified);
    }
    {
        SectorDevice dev;  // an application without a bootloader: replaced without a flag
        put_vector_table(dev.flash, 0, SectorDevice::kBase);
        EXPECT_NO_THROW(plan::execute(dev, plan::make_plan(img, info, dev.capabilities(), {}), {}, core::Progress()));
    }
    SectorDevice dev;  // stm32duino at the start, its application at 0x08002000
    put_vector_table(dev.flash, 0, SectorDevice::kBase);
    put_vector_table(dev.flash, 0x2000, SectorDevice::kBase + 0x2000);
    const auto before = dev.flash;
    expect_error(ErrorKind::Unsafe, [&] { plan::execute(dev, plan::make_plan(img, info, dev.capabilities(), {}), {}, core::Progress()); },
                 "starts with a bootloader (0x08000000-0x08001FFF, with its application at 0x08002000)");
    EXPECT_EQ(dev.flash, before);
    EXPECT_TRUE(dev.erases.empty());
    plan::PlanOptions allowed;
    allowed.write_boot_area = true;
    EXPECT_TRUE(plan::execute(dev, plan::make_plan(img, info, dev.capabilities(), allowed), allowed, core::Progress()).verified);
}

// A flash bootloader larger than the first erase unit (Katapult's 32 KiB on an F4): an image above
// that unit but below the bootloader's application would overwrite the bootloader's end.
TEST(Plan, AnImageBelowTheApplicationOfABootloaderAtTheStartIsRefused) {
    auto info = stm32_device(SectorDevice::kBase);
    info.boot_area_end = SectorDevice::kBase + 16384;
    SectorDevice dev;
    put_vector_table(dev.flash, 0, SectorDevice::kBase);
    put_vector_table(dev.flash, 0x8000, SectorDevice::kBase + 0x8000);
    const auto before = dev.flash;
    auto low = image_at(SectorDevice::kBase + 0x4000, 4096);  // built for a 16 KiB bootloader
    expect_error(ErrorKind::Unsafe, [&] { plan::execute(dev, plan::make_plan(low, info, dev.capabilities(), {}), {}, core::Progress()); },
                 "starts with a bootloader (0x08000000-0x08007FFF, with its application at 0x08008000): the image "
                 "starts at 0x08004000 and would overwrite part of it");
    EXPECT_EQ(dev.flash, before);
    EXPECT_TRUE(dev.erases.empty());
    // Inside the first erase unit, but above its start: that sector's erase would replace the bootloader.
    auto inside = image_at(SectorDevice::kBase + 0x800, 1024);
    expect_error(ErrorKind::Unsafe, [&] { plan::execute(dev, plan::make_plan(inside, info, dev.capabilities(), {}), {}, core::Progress()); },
                 "the image needs the flash erased from 0x08000000 and would replace it");
    EXPECT_EQ(dev.flash, before);
    // At the bootloader's application, the image goes in and the bootloader stays.
    auto app = image_at(SectorDevice::kBase + 0x8000, 4096);
    EXPECT_TRUE(plan::execute(dev, plan::make_plan(app, info, dev.capabilities(), {}), {}, core::Progress()).verified);
    EXPECT_TRUE(std::equal(dev.flash.begin(), dev.flash.begin() + 0x8000, before.begin()));
    // Asked for, it goes in.
    plan::PlanOptions allowed;
    allowed.write_boot_area = true;
    EXPECT_TRUE(plan::execute(dev, plan::make_plan(low, info, dev.capabilities(), allowed), allowed, core::Progress()).verified);
}

TEST(Plan, AnImageLinkedForAnotherApplicationStartIsRefused) {
    SectorDevice dev;
    auto info = stm32_device(SectorDevice::kBase + 0x8000);
    // Klipper built with "No bootloader" (linked at 0x08000000), placed at the 32 KiB offset.
    std::vector<uint8_t> bin(4096, 0x00);
    const uint32_t words[2] = {0x20005000, SectorDevice::kBase + 0x189};
    std::memcpy(bin.data(), words, sizeof words);
    image::Image img;
    img.add(SectorDevice::kBase + 0x8000, bin, "klipper.bin");
    expect_error(ErrorKind::Unsafe, [&] { plan::make_plan(img, info, dev.capabilities(), {}); },
                 "reset handler at 0x08000188, outside the image (0x08008000-0x08008FFF)");
    try {
        plan::make_plan(img, info, dev.capabilities(), {});
    } catch (const core::Error& e) {
        EXPECT_NE(e.hint().find("\"32KiB bootloader\""), std::string::npos) << e.hint();
    }
    plan::PlanOptions forced;
    forced.force_link_address = true;
    EXPECT_NO_THROW(plan::make_plan(img, info, dev.capabilities(), forced));
    // Linked for where it goes: accepted.
    const uint32_t right[2] = {0x20005000, SectorDevice::kBase + 0x8189};
    std::memcpy(bin.data(), right, sizeof right);
    image::Image good;
    good.add(SectorDevice::kBase + 0x8000, bin, "klipper.bin");
    EXPECT_NO_THROW(plan::make_plan(good, info, dev.capabilities(), {}));
}

TEST(Plan, RandomDataInAnImageIsNotTakenForPointersOfAnotherLinkAddress) {
    // A vector table linked where it goes, then 1 MiB of data that looks random (fonts, tables):
    // some of its words fall in flash outside the image, spread over all of it, and must not count.
    SectorDevice dev;
    auto info = stm32_device(SectorDevice::kBase + 0x8000);
    info.flash_size = 2 * 1024 * 1024;  // a large flash: random words hit it more often
    info.app_end = SectorDevice::kBase + info.flash_size;
    std::mt19937 random(5);
    for (int trial = 0; trial < 20; ++trial) {
        std::vector<uint8_t> bin(1024 * 1024);
        for (auto& b : bin) b = static_cast<uint8_t>(random());
        const uint32_t words[2] = {0x20005000, SectorDevice::kBase + 0x8189};
        std::memcpy(bin.data(), words, sizeof words);
        for (size_t i = 8; i < 64; i += 4) std::memset(bin.data() + i, 0, 4);  // unused system vectors
        // A few hundred pointers of its own, as real code has.
        for (size_t i = 0; i < 300; ++i) {
            const uint32_t own = SectorDevice::kBase + 0x8000 + uint32_t(random() % bin.size()) / 4 * 4;
            std::memcpy(bin.data() + 1024 + 4 * i, &own, 4);
        }
        image::Image img;
        img.add(SectorDevice::kBase + 0x8000, bin, "app.bin");
        EXPECT_NO_THROW(plan::make_plan(img, info, dev.capabilities(), {})) << "trial " << trial;
    }
}

TEST(Plan, AnImageLinkedAboveTheBootloadersApplicationStartIsRefused) {
    // Built for a 64 KiB bootloader (its vector table and handlers at 0x08010000), flashed through a
    // 32 KiB one: inside the application region, but the bootloader jumps to 0x08008000.
    SectorDevice dev;
    auto info = stm32_device(SectorDevice::kBase + 0x8000);
    std::vector<uint8_t> bin(4096, 0x00);
    const uint32_t words[2] = {0x20005000, SectorDevice::kBase + 0x10189};
    std::memcpy(bin.data(), words, sizeof words);
    image::Image img;
    img.add(SectorDevice::kBase + 0x10000, bin, "klipper.elf");
    expect_error(ErrorKind::Unsafe, [&] { plan::make_plan(img, info, dev.capabilities(), {}); },
                 "vector table is at 0x08010000, but the bootloader starts the application at 0x08008000");
    // A ROM bootloader (the application region starts at the flash base) takes it: a flash bootloader
    // below it is the user's business.
    EXPECT_NO_THROW(plan::make_plan(img, stm32_device(SectorDevice::kBase), dev.capabilities(), {}));
}

namespace {

// The sector device with a device-side checksum (CRC32 here; the plan only compares).
class ChecksumDevice : public SectorDevice {
public:
    protocol::Capabilities capabilities() const override {
        auto c = SectorDevice::capabilities();
        c.can_checksum = true;
        c.local_checksum = [](std::span<const uint8_t> bytes) { return core::crc32(bytes); };
        return c;
    }
    std::optional<uint32_t> checksum(uint32_t address, uint32_t length) override {
        ++checksums;
        auto data = SectorDevice::read(address, length);
        return core::crc32(data);
    }
    std::vector<uint8_t> read(uint32_t address, uint32_t length) override {
        ++reads;
        return SectorDevice::read(address, length);
    }
    int checksums = 0;
    int reads = 0;
};

}  // namespace

TEST(Plan, AReflashOfWhatIsThereWritesNothingAndAChangeRewritesOnlyItsUnit) {
    ChecksumDevice dev;
    auto img = image_at(0x08008000, 40000, 3);  // sectors 2, 3 and 4 (16 + 16 + 64 KiB)
    auto info = stm32_device(0x08008000);
    auto first = plan::execute(dev, plan::make_plan(img, info, dev.capabilities(), {}), {}, core::Progress());
    EXPECT_EQ(first.bytes_unchanged, 0u);
    EXPECT_EQ(first.bytes_erased, 16384u + 16384u + 65536u);
    EXPECT_TRUE(first.verified);
    EXPECT_EQ(first.verify_method, "read back") << "a CRC finds differences, it cannot prove sameness";
    EXPECT_GT(dev.reads, 0);

    dev.erases.clear();
    auto again = plan::execute(dev, plan::make_plan(img, info, dev.capabilities(), {}), {}, core::Progress());
    EXPECT_EQ(again.bytes_unchanged, 16384u + 16384u + 65536u);
    EXPECT_EQ(again.bytes_written, 0u);
    EXPECT_TRUE(dev.erases.empty());

    auto bytes = img.flatten(0x08008000, 0x08008000 + 40000);
    bytes[0x4010] = 0x42;  // in sector 3 only
    image::Image changed;
    changed.add(0x08008000, bytes, "changed");
    auto third = plan::execute(dev, plan::make_plan(changed, info, dev.capabilities(), {}), {}, core::Progress());
    ASSERT_EQ(dev.erases.size(), 1u);
    EXPECT_EQ(dev.erases[0], std::make_pair(0x0800C000u, 16384u));
    EXPECT_EQ(third.bytes_unchanged, 16384u + 65536u);
    EXPECT_EQ(dev.flash[0xC010], 0x42);

    plan::PlanOptions always;
    always.skip_unchanged = false;
    dev.erases.clear();
    plan::execute(dev, plan::make_plan(changed, info, dev.capabilities(), always), always, core::Progress());
    EXPECT_EQ(dev.erases.size(), 1u);  // one call for the three adjacent sectors
}

namespace {

// A device whose checksum is a weak one that collides: it answers the checksum of what the plan
// expects whatever the flash holds (the worst case of a CRC-16 collision).
class CollidingChecksumDevice : public ChecksumDevice {
public:
    std::optional<uint32_t> checksum(uint32_t address, uint32_t length) override {
        ++checksums;
        if (lie) return lie(address, length);
        return ChecksumDevice::checksum(address, length);
    }
    std::function<std::optional<uint32_t>(uint32_t, uint32_t)> lie;
};

// A device with a hash that proves sameness: no read-back is needed.
class ProvingDevice : public ChecksumDevice {
public:
    protocol::Capabilities capabilities() const override {
        auto c = ChecksumDevice::capabilities();
        c.checksum_proves_sameness = true;
        c.checksum_name = "SHA-256";
        return c;
    }
};

}  // namespace

TEST(Plan, AChecksumCollisionNeverSkipsAUnitThatDiffers) {
    CollidingChecksumDevice dev;
    auto old_img = image_at(0x08008000, 16384, 1);
    auto info = stm32_device(0x08008000);
    plan::execute(dev, plan::make_plan(old_img, info, dev.capabilities(), {}), {}, core::Progress());
    auto new_img = image_at(0x08008000, 16384, 2);
    auto plan = plan::make_plan(new_img, info, dev.capabilities(), {});
    // The device's checksum of every unit equals the new image's: a collision everywhere.
    dev.lie = [&](uint32_t address, uint32_t length) -> std::optional<uint32_t> {
        auto expected = new_img.flatten(address, address + length, 0xFF);
        return core::crc32(expected);
    };
    plan::PlanOptions options;
    options.check_outside = false;
    auto report = plan::execute(dev, plan, options, core::Progress());
    EXPECT_EQ(report.bytes_unchanged, 0u);
    EXPECT_TRUE(report.verified);
    EXPECT_TRUE(std::equal(dev.flash.begin() + 0x8000, dev.flash.begin() + 0x8000 + 16384,
                           new_img.flatten(0x08008000, 0x08008000 + 16384).begin()));
}

TEST(Plan, AHashThatProvesSamenessVerifiesWithoutReadingBack) {
    ProvingDevice dev;
    auto img = image_at(0x08008000, 40000, 3);
    auto info = stm32_device(0x08008000);
    auto report = plan::execute(dev, plan::make_plan(img, info, dev.capabilities(), {}), {}, core::Progress());
    EXPECT_TRUE(report.verified);
    EXPECT_EQ(report.verify_method, "device SHA-256");
    EXPECT_EQ(dev.reads, 0);
    auto again = plan::execute(dev, plan::make_plan(img, info, dev.capabilities(), {}), {}, core::Progress());
    EXPECT_EQ(again.bytes_written, 0u);
    EXPECT_TRUE(again.verified);
    EXPECT_EQ(dev.reads, 0);
}

TEST(Plan, AfterARewriteEveryPageIsVerifiedAgain) {
    // The rewrite of 0x500 goes to 0x400 (a corrupted address); 0x400 passed the first verify.
    FakeDevice dev(131072, 256);
    auto img = image_at(0, 4096);
    auto plan = plan::make_plan(img, avr_device(), dev.capabilities(), {});
    dev.corrupt_address = 0x500;
    dev.corrupt_writes_left = 1;
    dev.misdirect = {{0x500, 0x400}};
    auto report = plan::execute(dev, plan, {}, core::Progress());
    EXPECT_TRUE(report.verified);
    EXPECT_TRUE(std::equal(dev.flash.begin(), dev.flash.begin() + 4096, img.flatten(0, 4096).begin()));
}

TEST(Plan, AWriteOnlyDeviceIsWrittenAndSaysItWasNotVerified) {
    FakeDevice dev(131072, 256);
    dev.readable = false;
    auto img = image_at(0, 4096);
    auto report = plan::execute(dev, plan::make_plan(img, avr_device(), dev.capabilities(), {}), {}, core::Progress());
    EXPECT_FALSE(report.verified);
    EXPECT_NE(report.not_verified.find("not verified"), std::string::npos);
    EXPECT_TRUE(dev.started);
    expect_error(ErrorKind::Usage, [&] { plan::verify_pages(dev, plan::make_plan(img, avr_device(), dev.capabilities(), {}).pages, core::Progress()); });
}

TEST(Plan, AChangeOutsideTheImageIsFoundByTheDeviceChecksum) {
    ChecksumDevice dev;
    auto img = image_at(0x08008000, 16384, 1);
    auto info = stm32_device(0x08008000);
    auto plan = plan::make_plan(img, info, dev.capabilities(), {});
    // A damaged command erases sector 5 while the image is written.
    dev.on_write = [&](uint32_t) { std::fill_n(dev.flash.begin() + 0x20000, 16, 0xFF); };
    expect_error(ErrorKind::VerifyMismatch, [&] { plan::execute(dev, plan, {}, core::Progress()); },
                 "0x08020000-0x08020FFF");
    // The bootloader's region too, in words.
    dev.on_write = [&](uint32_t) { dev.flash[0x10] = 0x5A; };
    expect_error(ErrorKind::VerifyMismatch, [&] {
        plan::execute(dev, plan::make_plan(image_at(0x08008000, 16384, 2), info, dev.capabilities(), {}), {},
                      core::Progress());
    }, "bootloader");
    dev.on_write = nullptr;
    auto report = plan::execute(dev, plan::make_plan(img, info, dev.capabilities(), {}), {}, core::Progress());
    EXPECT_TRUE(report.outside_checked);
}

namespace {

// A device that takes the image as one file (an SD card, a UF2 drive).
class WholeImageDevice : public FakeDevice {
public:
    WholeImageDevice() : FakeDevice(65536, 256) {}
    protocol::Capabilities capabilities() const override {
        auto c = FakeDevice::capabilities();
        c.whole_image = true;
        return c;
    }
    void write_image(uint32_t address, std::span<const uint8_t> bytes) override {
        images.emplace_back(address, bytes.size());
        // In 256-byte blocks, as Katapult sends them, saying how far it got after each.
        for (size_t done = 0; done < bytes.size(); done += 256) {
            const size_t block = std::min<size_t>(256, bytes.size() - done);
            std::copy_n(bytes.begin() + static_cast<long>(done), block, flash.begin() + address + done);
            write_advanced(done + block);
        }
    }
    void write(uint32_t, std::span<const uint8_t>) override { FAIL() << "pages written to a whole-image device"; }
    std::vector<std::pair<uint32_t, size_t>> images;
};

// Flash that only clears bits and has no erase: a page cannot be written twice.
class WriteOnceDevice : public FakeDevice {
public:
    WriteOnceDevice() : FakeDevice(131072, 256) {}
    protocol::Capabilities capabilities() const override {
        auto c = FakeDevice::capabilities();
        c.erases_on_write = false;
        return c;
    }
};

}  // namespace

TEST(Plan, AWholeImageDeviceGetsOneFileAndItIsReadBack) {
    WholeImageDevice dev;
    image::Image img;
    img.add(0x100, std::vector<uint8_t>(100, 0x11), "a");
    img.add(0x400, std::vector<uint8_t>(50, 0x22), "b");
    auto plan = plan::make_plan(img, avr_device(), dev.capabilities(), {});
    ASSERT_TRUE(plan.whole);
    EXPECT_TRUE(plan.pages.empty());
    EXPECT_EQ(plan.whole->address, 0x100u);
    EXPECT_EQ(plan.whole->bytes.size(), 0x400u + 50 - 0x100);
    EXPECT_EQ(plan.whole->bytes[0x200], 0xFF);  // the gap
    std::vector<uint64_t> write_progress;
    auto report = plan::execute(dev, plan, {}, core::Progress([&](const core::ProgressEvent& e) {
        if (e.stage == core::Stage::Write && e.kind == core::ProgressEvent::Kind::Advanced) write_progress.push_back(e.done);
    }));
    ASSERT_EQ(dev.images.size(), 1u);
    EXPECT_EQ(write_progress, (std::vector<uint64_t>{256, 512, 768, 0x400 + 50 - 0x100}));  // the write moves as it goes
    EXPECT_TRUE(report.verified);
    EXPECT_EQ(report.bytes_written, plan.whole->bytes.size());
    // Refused like any image where it would reach the bootloader.
    expect_error(ErrorKind::Unsafe,
                 [&] { plan::make_plan(image_at(131072 - 1024 - 16, 32), avr_device(), dev.capabilities(), {}); });
    // Without reading back: written, and said to be not verified.
    dev.readable = false;
    auto unread = plan::execute(dev, plan, {}, core::Progress());
    EXPECT_FALSE(unread.verified);
    EXPECT_NE(unread.not_verified.find("not verified"), std::string::npos);
}

TEST(Plan, APageThatCannotBeRewrittenWithoutAnEraseFailsAtOnce) {
    WriteOnceDevice dev;
    dev.corrupt_address = 0x300;
    dev.corrupt_writes_left = 1;
    auto plan = plan::make_plan(image_at(0, 4096), avr_device(), dev.capabilities(), {});
    expect_error(ErrorKind::VerifyMismatch, [&] { plan::execute(dev, plan, {}, core::Progress()); }, "without an erase");
    EXPECT_EQ(std::count(dev.writes.begin(), dev.writes.end(), 0x300u), 1);
}

namespace {

// Writes only in ascending order, restarting from its start (as plain DFU and stk500boot_v2 do).
class InOrderDevice : public FakeDevice {
public:
    InOrderDevice() : FakeDevice(131072, 256) {}
    protocol::Capabilities capabilities() const override {
        auto c = FakeDevice::capabilities();
        c.writes_in_address_order = true;
        return c;
    }
    void write(uint32_t address, std::span<const uint8_t> data) override {
        if (!writes.empty() && address <= writes.back() && address != start) stepped_back = true;
        FakeDevice::write(address, data);
    }
    uint32_t start = 0;
    bool stepped_back = false;
};

}  // namespace

TEST(Plan, AnInOrderDeviceIsRewrittenFromItsStartUpToThePageThatFailed) {
    InOrderDevice dev;
    dev.corrupt_address = 0x300;
    dev.corrupt_writes_left = 1;
    auto plan = plan::make_plan(image_at(0, 4096), avr_device(), dev.capabilities(), {});
    auto report = plan::execute(dev, plan, {}, core::Progress());
    EXPECT_TRUE(report.verified);
    EXPECT_FALSE(dev.stepped_back);
    EXPECT_EQ(report.pages_rewritten, 4u);  // 0x000 to 0x300
    EXPECT_EQ(dev.writes.size(), 16u + 4u);
}

// A read whose command the line damaged into a destructive one: the device carries that out (here,
// page 0 erased, as SAM-BA's X erases from its address on), the client resynchronises and the read
// is asked again and answered right. Campaign seed 806830761 on samba-uart: a checksum command after
// the verify was read as "X00001000" and erased the whole application, and the flash ended verified.
class DamagedReadDevice : public FakeDevice {
public:
    DamagedReadDevice() : FakeDevice(65536, 256) {}
    std::vector<uint8_t> read(uint32_t address, uint32_t length) override {
        if (damage_at_read_of && address == *damage_at_read_of && (always || !damaged)) {
            damaged = true;
            ++failures;
            std::fill_n(flash.begin(), 256, 0xFF);
        }
        return FakeDevice::read(address, length);
    }
    uint64_t failed_exchanges() const override { return failures; }

    std::optional<uint32_t> damage_at_read_of;
    bool always = false;  // every read of that address is damaged so (a line that keeps failing)
    bool damaged = false;
    uint64_t failures = 0;
};

TEST(Plan, AFailedExchangeDuringTheVerifyHasTheImageCheckedAgain) {
    DamagedReadDevice dev;
    dev.damage_at_read_of = 0xC00;  // the verify's last read: page 0 was read back right before it
    auto img = image_at(0, 4096, 9);
    auto plan = plan::make_plan(img, avr_device(), dev.capabilities(), {});
    auto report = plan::execute(dev, plan, {}, core::Progress());
    EXPECT_TRUE(dev.damaged);
    EXPECT_TRUE(report.verified);
    EXPECT_TRUE(std::equal(dev.flash.begin(), dev.flash.begin() + 4096, img.flatten(0, 4096).begin()))
        << "verified, but page 0 holds " << int(dev.flash[0]);
    EXPECT_GE(report.pages_rewritten, 1u);
}

TEST(Plan, ALineThatKeepsFailingAfterTheVerifyEndsInAnErrorNotInVerified) {
    DamagedReadDevice dev;
    dev.damage_at_read_of = 0xC00;
    dev.always = true;
    auto img = image_at(0, 4096, 10);
    auto plan = plan::make_plan(img, avr_device(), dev.capabilities(), {});
    expect_error(ErrorKind::Io, [&] { plan::execute(dev, plan, {}, core::Progress()); }, "not reported as verified");
    EXPECT_FALSE(dev.started);
}
