// data/boards.toml: every row of ../shared/reference/boards.csv, tied to known chips and bootloaders,
// at offsets Klipper's menuconfig offers; finding boards as people write their names; the strict loader.
#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <set>

#include "core/error.hpp"
#include "targets/knowledge.hpp"

using namespace mcuflash;
using targets::Knowledge;

namespace {

const Knowledge& kb() { return Knowledge::builtin(); }

std::vector<std::string> ids(const std::vector<const targets::Board*>& boards) {
    std::vector<std::string> out;
    for (const auto* b : boards) out.push_back(b->id);
    return out;
}

bool contains(const std::vector<uint32_t>& list, uint32_t value) {
    return std::find(list.begin(), list.end(), value) != list.end();
}

}  // namespace

TEST(Boards, EveryRowOfTheReferenceTableIsThere) {
    EXPECT_EQ(kb().boards().size(), 178u);
    for (const char* id : {"btt-skr-v1.4", "btt-octopus-v1.1-f446", "ramps-v1.3", "creality-v4.2.2", "duet3-mini",
                           "btt-ebb-can-v1.2", "prusa-buddy", "tronxy-chitu-v6", "th3d-ezboard-lite-v2.0"})
        EXPECT_TRUE(kb().boards().count(id)) << id;
}

TEST(Boards, NameKnownChipsBootloadersAndMethods) {
    for (const auto& [id, b] : kb().boards()) {
        ASSERT_TRUE(kb().chips().count(b.chip)) << id << ": " << b.chip;
        for (const auto& name : b.bootloaders) EXPECT_NE(kb().find_bootloader(name), nullptr) << id << ": " << name;
        EXPECT_TRUE(b.flash_method == "none" || kb().protocols().count(b.flash_method)) << id;
        EXPECT_FALSE(b.klipper_configs.empty()) << id;
        EXPECT_FALSE(b.mcu.empty()) << id;
        // The first bootloader is the one the firmware goes through: it speaks the method.
        if (!b.bootloaders.empty() && b.flash_method != "none") {
            const auto& protocol = kb().find_bootloader(b.bootloaders.front())->protocol;
            EXPECT_TRUE(protocol == b.flash_method || (b.flash_method == "samba-uart" && protocol == "samba"))
                << id << ": " << b.flash_method << " through " << b.bootloaders.front() << " (" << protocol << ")";
        }
        // Each has words for the guide: its bootloader's or its method's.
        if (b.flash_method != "none") {
            EXPECT_NE(targets::guide_for(kb(), b.bootloaders.empty() ? b.flash_method : b.bootloaders.front()), nullptr)
                << id;
        }
        if (b.unique_name || !b.transform.empty()) {
            EXPECT_EQ(b.flash_method, "sdcard") << id;
        }
    }
}

// boards-notes §1 (src/stm32/Kconfig "Bootloader offset"), by the chip row each CONFIG_MCU maps to.
TEST(Boards, ChipsCarryKlippersMenuconfigOffsets) {
    const std::map<std::string, std::vector<uint32_t>> stm32{
        {"stm32f103xe", {0x2000, 0x5000, 0x7000, 0x8000, 0x8800, 0x9000, 0x10000, 0x800, 0x1000, 0x4000, 0}},
        {"stm32f042x6", {0x2000, 0x1000, 0}},
        {"stm32f070xb", {0x2000, 0x1000, 0}},
        {"stm32f072xb", {0x2000, 0x1000, 0x4000, 0}},
        {"stm32f401xc", {0x8000, 0xC000, 0x10000, 0x4000, 0}},
        {"stm32f405xg", {0x8000, 0x20200, 0xC000, 0x10000, 0x4000, 0}},
        {"stm32f407xg", {0x8000, 0x20200, 0xC000, 0x10000, 0x4000, 0}},
        {"stm32f429zi", {0x8000, 0x20200, 0xC000, 0x10000, 0x4000, 0}},
        {"stm32f446xe", {0x8000, 0x10000, 0}},
        {"stm32f765xi", {0x8000, 0x20000, 0}},
        {"stm32g0b1xe", {0x2000, 0}},
        {"stm32g0b1xb", {0x2000, 0}},
        {"stm32h723xg", {0x20000, 0}},
        {"stm32h743xi", {0x20000, 0}},
    };
    for (const auto& [chip, offsets] : stm32) EXPECT_EQ(kb().chip(chip).klipper_offsets, offsets) << chip;
    // boards-notes §2: SAMD21 8/16 KiB or none, SAMx5 and SAMC21 16 KiB or none, LPC176x 16 KiB or none.
    EXPECT_EQ(kb().chip("samd21g18a").klipper_offsets, (std::vector<uint32_t>{0x2000, 0x4000, 0}));
    for (const char* chip : {"samd51j19a", "same54p20a", "samc21g18a"})
        EXPECT_EQ(kb().chip(chip).klipper_offsets, (std::vector<uint32_t>{0x4000, 0})) << chip;
    for (const char* chip : {"lpc1768", "lpc1769"})
        EXPECT_EQ(kb().chip(chip).klipper_offsets, (std::vector<uint32_t>{0x4000, 0})) << chip;
}

TEST(Boards, OffsetsAreOnesKlipperOffers) {
    int stm32 = 0, avr = 0;
    for (const auto& [id, b] : kb().boards()) {
        if (!b.app_offset) continue;
        const auto& chip = kb().chip(b.chip);
        const uint32_t offset = *b.app_offset;
        EXPECT_LT(offset, chip.flash_size) << id;
        if (chip.family.starts_with("stm32")) {
            EXPECT_TRUE(contains(chip.klipper_offsets, offset)) << id << ": 0x" << std::hex << offset;
            ++stm32;
        } else if (chip.family == "avr") {
            EXPECT_EQ(offset, 0u) << id;  // the bootloader sits at the top
            ++avr;
        } else if (chip.family.starts_with("sam") || chip.family.starts_with("lpc")) {
            EXPECT_TRUE(contains(chip.klipper_offsets, offset)) << id << ": 0x" << std::hex << offset;
        }
        // Where the first bootloader keeps the start of flash, the application starts right after it.
        if (b.bootloaders.empty()) continue;
        const auto* first = kb().find_bootloader(b.bootloaders.front());
        if (auto size = first->size_on(chip.name); size && *size && first->placement == targets::Placement::Bottom) {
            EXPECT_EQ(offset, *size) << id << " after " << first->name;
        }
    }
    EXPECT_GE(stm32, 90);  // of the 178 rows
    EXPECT_GE(avr, 49);
    EXPECT_EQ(*kb().boards().at("prusa-buddy").app_offset, 0x20200u);  // 128 KiB + 512 bytes
    EXPECT_EQ(*kb().boards().at("tronxy-chitu-v6").app_offset, 0x8800u);
    EXPECT_FALSE(kb().boards().at("btt-ebb-can-v1.2").app_offset);  // the sample config does not say
}

TEST(Boards, MenuconfigEntriesForOffsets) {
    const auto& f103 = kb().chip("stm32f103xe");
    EXPECT_EQ(targets::klipper_offset_choice(f103, 0x7000), "28KiB bootloader");
    EXPECT_EQ(targets::klipper_offset_choice(f103, 0), "No bootloader");
    EXPECT_EQ(targets::klipper_offset_choice(kb().chip("stm32f407xg"), 0x20200), "128KiB bootloader with 512 byte offset");
    EXPECT_EQ(targets::klipper_offset_choice(kb().chip("hc32f460xc"), 0x8000), "0x008000");
}

TEST(Boards, NamesAreWordsAsPeopleWriteThem) {
    EXPECT_EQ(targets::name_words("SKR-v1.4"), (std::vector<std::string>{"skr", "1.4"}));
    EXPECT_EQ(targets::name_words("Ender3 V2.0"), (std::vector<std::string>{"ender", "3", "2"}));
    EXPECT_EQ(targets::name_words("BigTreeTech Octopus Pro v1.0 (STM32F446)"),
              (std::vector<std::string>{"bigtreetech", "octopus", "pro", "1", "stm", "32", "f", "446"}));
    EXPECT_EQ(targets::name_words("v4.2.2"), (std::vector<std::string>{"4.2.2"}));
}

TEST(Boards, FoundByIdNameAliasOrWords) {
    for (const char* name : {"btt-skr-v1.4", "skr 1.4", "SKR v1.4", "btt skr 1.4", "BTT-SKR-V1.4", "skr1.4"})
        EXPECT_EQ(ids(kb().find_boards(name)), std::vector<std::string>{"btt-skr-v1.4"}) << name;
    EXPECT_EQ(ids(kb().find_boards("skr 1.4 turbo")), std::vector<std::string>{"btt-skr-v1.4-turbo"});
    EXPECT_EQ(ids(kb().find_boards("mega 2560")), std::vector<std::string>{"ramps-v1.3"});
    EXPECT_EQ(ids(kb().find_boards("Ender 3 v2")), std::vector<std::string>{"creality-ender3-v2"});
    EXPECT_EQ(ids(kb().find_boards("octopus pro f446")), std::vector<std::string>{"btt-octopus-pro-v1.0-f446"});
    EXPECT_EQ(ids(kb().find_boards("skr mini e3 v2")), std::vector<std::string>{"btt-skr-mini-e3-v2.0"});
    EXPECT_EQ(ids(kb().find_boards("Creality 4.2.2")), std::vector<std::string>{"creality-v4.2.2"});

    // Several: every board with all the words, the tightest names first.
    const auto octopus = ids(kb().find_boards("octopus"));
    EXPECT_GE(octopus.size(), 7u);
    for (const auto& id : octopus) EXPECT_NE(id.find("octopus"), std::string::npos) << id;
    const auto manta = ids(kb().find_boards("manta m8p"));
    EXPECT_EQ(manta, (std::vector<std::string>{"btt-manta-m8p-v1.0", "btt-manta-m8p-v1.1"}));
    // A word's beginning is enough ("octo"), a version is not ("1" is not "1.4").
    EXPECT_EQ(ids(kb().find_boards("octo max")), std::vector<std::string>{"btt-octopus-max-ez"});
    const auto skr_1 = ids(kb().find_boards("skr 1"));
    EXPECT_EQ(std::count(skr_1.begin(), skr_1.end(), "btt-skr-v1.4"), 0);
    EXPECT_TRUE(kb().find_boards("no such board").empty());

    const auto nearest = ids(targets::nearest_boards(kb(), "octopuss pro", 3));
    ASSERT_EQ(nearest.size(), 3u);
    for (const auto& id : nearest) EXPECT_NE(id.find("octopus-pro"), std::string::npos) << id;
}

TEST(Boards, TheLoaderRejectsBadRowsWithTheirLine) {
    const std::string base =
        "[protocols.p]\ndescription = 'd'\n"
        "[chips.c]\nfamily = 'stm32f1'\nflash_base = 0x08000000\nflash_size = 65536\npage_size = 1024\n"
        "klipper_offsets = [0x2000, 0]\n"
        "[bootloaders.b]\nprotocol = 'p'\nplacement = 'bottom'\nsizes = { c = 0x2000 }\n";
    const std::string board = "[boards.x]\nname = 'X'\nklipper_config = 'config/x.cfg'\nmcu = 'c'\n";
    auto expect_bad = [&](const std::string& rest, const std::string& fragment) {
        try {
            Knowledge::from_documents({{"test.toml", base + board + rest}});
            FAIL() << "accepted: " << rest;
        } catch (const core::Error& e) {
            EXPECT_EQ(e.kind(), core::ErrorKind::BadInput);
            EXPECT_NE(std::string(e.what()).find(fragment), std::string::npos) << e.what();
        }
    };
    const std::string good = "chip = 'c'\nbootloaders = ['b']\napp_offset = 0x2000\nflash_method = 'p'\n";
    EXPECT_NO_THROW(Knowledge::from_documents({{"test.toml", base + board + good}}));
    EXPECT_EQ(Knowledge::from_documents({{"test.toml", base + board + good}}).boards().at("x").app_offset, 0x2000u);

    expect_bad("chip = 'nochip'\nbootloaders = ['b']\nflash_method = 'p'\n",
               "test.toml:13: boards.x: chip 'nochip' is not in chips.toml");
    expect_bad("chip = 'c'\nbootloaders = ['nob']\nflash_method = 'p'\n", "bootloader 'nob' is not in bootloaders.toml");
    expect_bad("chip = 'c'\nbootloaders = ['b']\nflash_method = 'q'\n", "flash_method 'q' is neither");
    expect_bad("chip = 'c'\nbootloaders = []\nflash_method = 'p'\n", "name it in 'bootloaders'");
    expect_bad("chip = 'c'\nbootloaders = ['b']\nflash_method = 'p'\napp_offset = 0x3000\n",
               "app_offset 0x3000 is not one Klipper's menuconfig offers for the c (0x2000, 0x0)");
    expect_bad("chip = 'c'\nbootloaders = ['b']\nflash_method = 'p'\napp_offset = 0x20000\n", "past the c's 64 KiB");
    expect_bad(good + "transform = 'xor'\n", "transform 'xor' is none of");
    // A chip without Klipper's menu: the offset must start an erase unit.
    const std::string plain_chip = "[chips.d]\nfamily = 'x'\nflash_size = 65536\npage_size = 1024\n";
    try {
        Knowledge::from_documents({{"test.toml", base + plain_chip + board + "chip = 'd'\nflash_method = 'none'\napp_offset = 0x300\n"}});
        FAIL() << "an offset inside an erase unit was accepted";
    } catch (const core::Error& e) {
        EXPECT_NE(std::string(e.what()).find("app_offset 0x300 does not start an erase unit of the d"), std::string::npos)
            << e.what();
    }
    expect_bad(good + "unique_name = true\n", "for SD-card boards");
    expect_bad(good + "colour = 'red'\n", "test.toml:13: boards.x: unknown key 'colour'");
    expect_bad("chip = 'c'\nflash_method = 'none'\n[boards.x2]\nname = 'X'\n", "boards.x2: missing 'klipper_config'");
    expect_bad("chip = 'c'\nflash_method = 'none'\n[guides.nothing]\nclassic = 'x'\ninstall = 'y'\n",
               "'nothing' is neither a bootloader");
    try {
        Knowledge::from_documents({{"a.toml", base + board + good}, {"b.toml", board + good}});
        FAIL() << "a board defined twice was accepted";
    } catch (const core::Error& e) {
        EXPECT_NE(std::string(e.what()).find("b.toml:1: boards.x: defined twice"), std::string::npos) << e.what();
    }
}
