// AVR fuse facts (data/chips.toml), the brick checks, and the checks before a bootloader install.
#include <gtest/gtest.h>

#include <filesystem>
#include <functional>

#include "core/error.hpp"
#include "image/loader.hpp"
#include "plan/avr_install.hpp"
#include "targets/avr_fuses.hpp"
#include "targets/knowledge.hpp"

using namespace mcuflash;
using core::ErrorKind;
using targets::FuseByte;
using targets::FuseValues;
using targets::Knowledge;

namespace {

void expect_error(ErrorKind kind, const std::function<void()>& f, const std::string& fragment = {}) {
    try {
        f();
        FAIL() << "no error";
    } catch (const core::Error& e) {
        EXPECT_EQ(e.kind(), kind) << e.what();
        EXPECT_NE(std::string(e.what()).find(fragment), std::string::npos) << e.what();
    }
}

const targets::Chip& chip(const char* name) { return Knowledge::builtin().chip(name); }

FuseValues fuses(uint8_t l, uint8_t h, uint8_t e) {
    return {{FuseByte::Low, l}, {FuseByte::High, h}, {FuseByte::Extended, e}};
}

image::Image bytes_at(uint32_t address, size_t count) {
    image::Image img;
    img.add(address, std::vector<uint8_t>(count, 0x0C), "test");
    return img;
}

}  // namespace

TEST(FuseAssignment, ParsesNamesAndByteValues) {
    EXPECT_EQ(targets::parse_fuse_assignment("lfuse=0xFF"), std::make_pair(FuseByte::Low, uint8_t{0xFF}));
    EXPECT_EQ(targets::parse_fuse_assignment("hfuse=216"), std::make_pair(FuseByte::High, uint8_t{0xD8}));
    EXPECT_EQ(targets::parse_fuse_assignment("efuse=0xfd"), std::make_pair(FuseByte::Extended, uint8_t{0xFD}));
    EXPECT_EQ(targets::parse_fuse_assignment("lock=0x0F"), std::make_pair(FuseByte::Lock, uint8_t{0x0F}));
    expect_error(ErrorKind::Usage, [] { targets::parse_fuse_assignment("xfuse=1"); }, "lfuse, hfuse, efuse, lock");
    expect_error(ErrorKind::Usage, [] { targets::parse_fuse_assignment("lfuse"); }, "NAME=VALUE");
    expect_error(ErrorKind::Usage, [] { targets::parse_fuse_assignment("lfuse=0x100"); }, "not a byte");
    expect_error(ErrorKind::Usage, [] { targets::parse_fuse_assignment("lfuse="); }, "not a byte");
    expect_error(ErrorKind::Usage, [] { targets::parse_fuse_assignment("lfuse=0xFZ"); }, "not a byte");
    expect_error(ErrorKind::Usage, [] { targets::parse_fuse_assignment("lfuse=-1"); }, "not a byte");
}

TEST(FuseFacts, EveryKnownInstallSelectsTheBootSectionItsBootloaderNeeds) {
    const auto& kb = Knowledge::builtin();
    int installs = 0;
    for (const auto& [name, bl] : kb.bootloaders())
        for (const auto& [chip_name, install] : bl.installs) {
            const auto& facts = *kb.chip(chip_name).fuses;
            EXPECT_EQ(facts.boot_size(install.fuses), bl.size_on(chip_name)) << name << " on " << chip_name;
            EXPECT_EQ(facts.boot_reset_programmed(install.fuses), true) << name << " on " << chip_name;
            EXPECT_TRUE(targets::fuse_refusals(facts, install.fuses).empty()) << name << " on " << chip_name;
            ++installs;
        }
    EXPECT_EQ(installs, 5);  // m2560, m1280, m1284p (optiboot and ATmegaBOOT), m168
    for (const char* name : {"atmega168", "atmega1280", "atmega1284p", "atmega2560"})
        EXPECT_FALSE(chip(name).install_bootloader.empty()) << name;
}

TEST(FuseFacts, TheDebianHexFilesFitTheBootSectionsTheirFusesSelect) {
    for (const auto& [name, bl] : Knowledge::builtin().bootloaders())
        for (const auto& [chip_name, install] : bl.installs) {
            if (!std::filesystem::exists(install.hex)) continue;  // package not installed: nothing to check
            plan::InstallRequest request;
            request.chip = &chip(chip_name.c_str());
            request.image = image::load_file(install.hex, {});
            request.image_name = install.hex;
            request.fuses = install.fuses;
            request.stray_bytes = install.stray_bytes;
            EXPECT_NO_THROW(plan::check_install(request, {})) << install.hex;
        }
}

TEST(FuseRefusals, NameTheBitsThatWouldBrickTheBoard) {
    const auto& mega = *chip("atmega2560").fuses;
    EXPECT_TRUE(targets::fuse_refusals(mega, fuses(0xFF, 0xD8, 0xFD)).empty());
    EXPECT_TRUE(targets::fuse_refusals(mega, fuses(0xF7, 0xD8, 0xFD)).empty());  // full-swing crystal
    auto spien = targets::fuse_refusals(mega, {{FuseByte::High, 0xF8}});
    ASSERT_EQ(spien.size(), 1u);
    EXPECT_NE(spien[0].find("hfuse=0xF8: SPIEN"), std::string::npos) << spien[0];
    for (uint8_t l : {0xE0, 0xE2, 0xE3, 0xE4, 0xE5, 0xE8}) {  // external clock, RC, 128 kHz, low-frequency, 0.4 MHz
        auto clock = targets::fuse_refusals(mega, {{FuseByte::Low, l}});
        ASSERT_EQ(clock.size(), 1u) << int(l);
        EXPECT_NE(clock[0].find("CKSEL"), std::string::npos);
    }

    const auto& small = *chip("atmega168").fuses;
    EXPECT_TRUE(targets::fuse_refusals(small, fuses(0xFF, 0xDD, 0xF8)).empty());
    EXPECT_EQ(targets::fuse_refusals(small, {{FuseByte::High, 0x5D}}).size(), 1u);  // RSTDISBL
    EXPECT_EQ(targets::fuse_refusals(small, {{FuseByte::High, 0x9D}}).size(), 1u);  // DWEN
    EXPECT_EQ(targets::fuse_refusals(small, {{FuseByte::High, 0x3D}}).size(), 3u);  // RSTDISBL, DWEN, SPIEN
    // The atmega2560 has no RSTDISBL: bit 7 of its hfuse is OCDEN, harmless.
    EXPECT_TRUE(targets::fuse_refusals(mega, {{FuseByte::High, 0x58}}).empty());
}

TEST(FuseSafety, RefusalNeedsBothFlagsToOverride) {
    const auto& mega = chip("atmega2560");
    FuseValues bad{{FuseByte::High, 0xF8}};
    expect_error(ErrorKind::Unsafe, [&] { plan::check_fuses(mega, bad, {}); }, "SPIEN");
    try {
        plan::check_fuses(mega, bad, {true, false});
        FAIL();
    } catch (const core::Error& e) {
        EXPECT_EQ(e.kind(), ErrorKind::Unsafe);
        EXPECT_NE(e.hint().find("--confirm-brick-risk"), std::string::npos) << e.hint();
    }
    expect_error(ErrorKind::Unsafe, [&] { plan::check_fuses(mega, bad, {false, true}); }, "SPIEN");
    EXPECT_EQ(plan::check_fuses(mega, bad, {true, true}).size(), 1u);
    EXPECT_TRUE(plan::check_fuses(mega, fuses(0xFF, 0xD8, 0xFD), {}).empty());
}

TEST(FuseFacts, UnusedBitsAreIgnoredWhenComparing) {
    const auto& mega = *chip("atmega1280").fuses;
    // Arduino writes efuse=0xF5 on the Mega 1280; only bits 2-0 exist, so it reads back 0xFD.
    EXPECT_TRUE(mega.same(FuseByte::Extended, 0xF5, 0xFD));
    EXPECT_FALSE(mega.same(FuseByte::Extended, 0xF5, 0xFF));
    EXPECT_TRUE(mega.same(FuseByte::Lock, 0x0F, 0xCF));
    EXPECT_FALSE(mega.same(FuseByte::High, 0xD8, 0xD9));
}

TEST(InstallChecks, TheImageMustLieInTheBootSectionTheFusesSelect) {
    plan::InstallRequest request;
    request.chip = &chip("atmega2560");
    request.image_name = "boot.hex";
    request.fuses = fuses(0xFF, 0xD8, 0xFD);  // BOOTSZ=00: 8 KiB at 0x3E000
    request.image = bytes_at(0x3E000, 8192);
    EXPECT_TRUE(plan::check_install(request, {}).empty());

    request.image = bytes_at(0x3DF00, 512);
    expect_error(ErrorKind::BadInput, [&] { plan::check_install(request, {}); }, "0x0003E000-0x0003FFFF");
    request.fuses[FuseByte::High] = 0xDE;  // BOOTSZ=11: 1 KiB at 0x3FC00
    request.image = bytes_at(0x3F000, 1024);
    expect_error(ErrorKind::BadInput, [&] { plan::check_install(request, {}); }, "hfuse=0xDE");
    request.image = bytes_at(0x3FC00, 1024);
    EXPECT_TRUE(plan::check_install(request, {}).empty());

    // A stray range the data allows (optiboot's misplaced version word) passes; more does not.
    request.image.add(0, std::vector<uint8_t>{0x05, 0x04}, "test");
    expect_error(ErrorKind::BadInput, [&] { plan::check_install(request, {}); }, "0x00000000-0x0003FFFF");
    request.stray_bytes = {{0, 2}};
    EXPECT_TRUE(plan::check_install(request, {}).empty());
    request.image.add(2, std::vector<uint8_t>{0x00}, "test");
    expect_error(ErrorKind::BadInput, [&] { plan::check_install(request, {}); }, "does not fit");
    request.image = bytes_at(0x3FC00, 1024);
    request.stray_bytes.clear();

    request.fuses[FuseByte::High] = 0xDF;  // BOOTRST unprogrammed: the bootloader would never run
    auto warnings = plan::check_install(request, {});
    ASSERT_EQ(warnings.size(), 1u);
    EXPECT_NE(warnings[0].find("BOOTRST"), std::string::npos);

    request.fuses.erase(FuseByte::High);
    expect_error(ErrorKind::Usage, [&] { plan::check_install(request, {}); }, "hfuse");
    request.fuses = fuses(0xE2, 0xD8, 0xFD);
    expect_error(ErrorKind::Unsafe, [&] { plan::check_install(request, {}); }, "CKSEL");
    request.image = image::Image{};
    request.fuses = fuses(0xFF, 0xD8, 0xFD);
    expect_error(ErrorKind::BadInput, [&] { plan::check_install(request, {}); }, "no data");
}

TEST(InstallChecks, TheAtmega168KeepsItsBootSizeInTheExtendedFuse) {
    plan::InstallRequest request;
    request.chip = &chip("atmega168");
    request.image_name = "boot.hex";
    request.fuses = fuses(0xFF, 0xDD, 0xF8);  // efuse BOOTSZ=00: 2 KiB at 0x3800
    request.image = bytes_at(0x3800, 2048);
    EXPECT_TRUE(plan::check_install(request, {}).empty());
    request.fuses[FuseByte::Extended] = 0xFC;  // BOOTSZ=10: 512 bytes
    expect_error(ErrorKind::BadInput, [&] { plan::check_install(request, {}); }, "efuse=0xFC");
}

TEST(FuseFacts, BadFuseDataIsRejected) {
    const std::string chip_head =
        "[chips.x]\nfamily='avr'\nsignature=[1,2,3]\nflash_size=4096\npage_size=128\nmax_boot_size=2048\n";
    const std::string good_fuses =
        "[chips.x.fuses]\nbits={lfuse=0xFF,hfuse=0xFF,efuse=0x07,lock=0x3F}\n"
        "boot_size={fuse='hfuse',mask=0x06,sizes=[2048,1024,512,256]}\nboot_reset={fuse='hfuse',mask=0x01}\n"
        "rules=[{fuse='hfuse',mask=0x20,allowed=[0x00],why='SPIEN'}]\n";
    auto expect_bad = [](const std::string& toml, const std::string& fragment) {
        try {
            Knowledge::from_documents({{"test.toml", toml}});
            FAIL() << "accepted: " << toml;
        } catch (const core::Error& e) {
            EXPECT_EQ(e.kind(), ErrorKind::BadInput);
            EXPECT_NE(std::string(e.what()).find(fragment), std::string::npos) << e.what();
        }
    };
    EXPECT_NO_THROW(Knowledge::from_documents({{"test.toml", chip_head + good_fuses}}));
    auto replace = [&](const std::string& from, const std::string& to) {
        std::string s = chip_head + good_fuses;
        s.replace(s.find(from), from.size(), to);
        return s;
    };
    expect_bad(replace("sizes=[2048,1024,512,256]", "sizes=[2048,1024]"), "one size per value");
    expect_bad(replace("fuse='hfuse',mask=0x06", "fuse='gfuse',mask=0x06"), "boot_size.fuse");
    expect_bad(replace("allowed=[0x00]", "allowed=[0x40]"), "inside the rule's mask");
    expect_bad(replace(",why='SPIEN'", ""), "why");
    expect_bad(replace("efuse=0x07", "efuse=0x107"), "bits.efuse");

    const std::string bootloader =
        "[protocols.stk500v1]\ndescription='d'\n[bootloaders.b]\nprotocol='stk500v1'\nsizes={x=1024}\n"
        "[bootloaders.b.install.x]\nhex='/b.hex'\nlfuse=0xFF\nhfuse=0xDC\nefuse=0xFD\nunlock=0x3F\nlock=0x0F\n";
    EXPECT_NO_THROW(Knowledge::from_documents({{"test.toml", chip_head + good_fuses + bootloader}}));
    std::string unsafe = bootloader;
    unsafe.replace(unsafe.find("hfuse=0xDC"), 10, "hfuse=0xFC");  // SPIEN unprogrammed
    expect_bad(chip_head + good_fuses + unsafe, "would brick");
    std::string no_lock = bootloader;
    no_lock.replace(no_lock.find("lock=0x0F"), 9, "");
    expect_bad(chip_head + good_fuses + no_lock, "'lock'");
    expect_bad(chip_head + "install_bootloader='b'\n" + good_fuses, "install_bootloader 'b'");
}
