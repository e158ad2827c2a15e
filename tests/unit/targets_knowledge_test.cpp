#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <unistd.h>

#include "core/error.hpp"
#include "discover/serial_ports.hpp"
#include "protocol/bootloader.hpp"
#include "targets/knowledge.hpp"

using namespace mcuflash;
using targets::Knowledge;

TEST(Knowledge, BuiltinDataLoadsAndIsConsistent) {
    const auto& kb = Knowledge::builtin();
    for (const char* name : {"atmega168", "atmega328p", "atmega1280", "atmega1284p", "atmega2560"}) {
        const auto* chip = kb.find_chip(name);
        ASSERT_NE(chip, nullptr) << name;
        EXPECT_EQ(chip->signature.size(), 3u) << name;
        EXPECT_EQ(chip->flash_size % chip->page_size, 0u) << name;
        EXPECT_EQ(kb.chip_by_signature(chip->signature), chip) << name;
    }
    // Every bootloader row fits its chips (the loader checks; this proves the shipped data passes).
    for (const auto& [name, bl] : kb.bootloaders())
        for (const auto& [chip, size] : bl.sizes) {
            // A boot section at the top is one the chip's fuses can select; one at the bottom only
            // has to leave room for an application.
            if (bl.placement == targets::Placement::Top) {
                EXPECT_LE(size, kb.chip(chip).max_boot_size) << name << " " << chip;
            }
            EXPECT_LT(size, kb.chip(chip).flash_size) << name << " " << chip;
        }
}

TEST(Knowledge, KnownFacts) {
    const auto& kb = Knowledge::builtin();
    EXPECT_EQ(kb.chip("atmega2560").flash_size, 262144u);
    EXPECT_EQ(kb.chip("atmega1284p").signature, (std::vector<uint8_t>{0x1E, 0x97, 0x05}));
    // The real bootloader hex files Debian ships start at these addresses.
    EXPECT_EQ(*kb.find_bootloader("optiboot")->size_on("atmega1284p"), 1024u);
    EXPECT_EQ(*kb.find_bootloader("atmegaboot")->size_on("atmega1284p"), 2048u);
    EXPECT_EQ(*kb.find_bootloader("atmegaboot")->size_on("atmega1280"), 4096u);
    EXPECT_EQ(kb.find_bootloader("atmegaboot")->other_bauds, (std::vector<uint32_t>{19200}));
}

TEST(Knowledge, UnknownChipIsAUsageErrorListingTheKnownOnes) {
    try {
        Knowledge::builtin().chip("atmega9999");
        FAIL();
    } catch (const core::Error& e) {
        EXPECT_EQ(e.kind(), core::ErrorKind::Usage);
        EXPECT_NE(std::string(e.what()).find("atmega2560"), std::string::npos);
    }
}

TEST(Knowledge, BadDataIsRejectedWithItsLocation) {
    auto expect_bad = [](const std::string& toml, const std::string& fragment) {
        try {
            Knowledge::from_documents({{"test.toml", toml}});
            FAIL() << "accepted: " << toml;
        } catch (const core::Error& e) {
            EXPECT_EQ(e.kind(), core::ErrorKind::BadInput);
            EXPECT_NE(std::string(e.what()).find(fragment), std::string::npos) << e.what();
        }
    };
    expect_bad("[chips.x]\nfamily='avr'\nflash_size=1000\npage_size=128\n", "multiple of page_size");
    expect_bad("[chips.x]\nfamily='avr'\nflash_size=1024\npage_size=100\n", "power of two");
    expect_bad("[chips.x]\nflash_size=1024\npage_size=128\n", "family");
    const std::string protocols = "[protocols.p]\ndescription='d'\n";
    expect_bad(protocols + "[bootloaders.b]\nprotocol='p'\nsizes={nochip=512}\n", "unknown chip");
    expect_bad(protocols + "[chips.x]\nfamily='avr'\nflash_size=1024\npage_size=128\n"
                           "[bootloaders.b]\nprotocol='p'\nsizes={x=100}\n",
               "whole number of pages");
    // Unknown keys and protocols, with the file and line.
    expect_bad(protocols + "[chips.x]\nfamily='avr'\nflash_size=1024\npage_size=128\npagesize=64\n",
               "test.toml:3: chips.x: unknown key 'pagesize' (line 7");
    expect_bad("[chips.x]\nfamily='avr'\nflash_size=1024\npage_size=128\n"
               "[bootloaders.b]\nprotocol='stk500v9'\nsizes={x=128}\n",
               "test.toml:5: bootloaders.b: protocol 'stk500v9' is not in protocols.toml");
    expect_bad("[chip.x]\nfamily='avr'\n", "unknown key 'chip'");
    expect_bad("this is = = not toml", "test.toml");
    // Found by fuzzing: sizes that wrapped when cut to 32 bits.
    expect_bad("[chips.x]\nfamily='stm32'\nflash_size=1024\npage_size=128\n"
               "sectors=[0x7FFFFFFFFFFFFFFF, 0x7FFFFFFFFFFFFFFF, 1026]\n",
               "sectors");
}

TEST(Discover, RecognisesTheRaspberryPiMiniUart) {
    auto dir = std::filesystem::temp_directory_path() / "mcuflash-pi-model";
    std::filesystem::create_directories(dir);
    auto model = (dir / "model").string();
    {
        std::ofstream out(model);
        out << "Raspberry Pi 4 Model B Rev 1.4" << '\0';
    }
    EXPECT_TRUE(discover::is_raspberry_pi_mini_uart("/dev/ttyS0", model));
    EXPECT_FALSE(discover::is_raspberry_pi_mini_uart("/dev/ttyAMA0", model));
    {
        std::ofstream out(model);
        out << "Some PC";
    }
    EXPECT_FALSE(discover::is_raspberry_pi_mini_uart("/dev/ttyS0", model));
    EXPECT_FALSE(discover::is_raspberry_pi_mini_uart("/dev/ttyS0", (dir / "absent").string()));
    std::filesystem::remove_all(dir);
}

TEST(Knowledge, EveryProtocolMcuflashSpeaksIsInProtocolsToml) {
    const auto& kb = Knowledge::builtin();
    for (const auto& p : protocol::protocols()) EXPECT_TRUE(kb.protocols().count(p.name)) << p.name;
}

TEST(Knowledge, ChipsAreFoundAsPeopleAndKlipperWriteThem) {
    const auto& kb = Knowledge::builtin();
    EXPECT_EQ(kb.chip("ATmega2560").name, "atmega2560");
    EXPECT_EQ(kb.chip("stm32f407").name, "stm32f407xg");    // a unique prefix
    EXPECT_EQ(kb.chip("stm32f446xx").name, "stm32f446xe");  // Klipper's CONFIG_MCU
    EXPECT_EQ(kb.find_chip("stm32f103"), nullptr);          // x6, x8, xb, xe: ambiguous
    try {
        kb.chip("stm32f103");
        FAIL() << "an ambiguous prefix was accepted";
    } catch (const core::Error& e) {
        EXPECT_NE(std::string(e.what()).find("stm32f103xb"), std::string::npos) << e.what();
    }
}

TEST(Discover, TellsKlipperAndKatapultFromTheirUsbNames) {
    auto klipper = discover::identify_port("/dev/serial/by-id/usb-Klipper_stm32f446xx_3A0028000851313339373836-if00");
    EXPECT_EQ(klipper.kind, discover::PortIdentity::Kind::Klipper);
    EXPECT_EQ(klipper.mcu, "stm32f446xx");
    auto katapult = discover::identify_port("/dev/serial/by-id/usb-katapult_rp2040_E66138935F3C2D2A-if00");
    EXPECT_EQ(katapult.kind, discover::PortIdentity::Kind::Katapult);
    EXPECT_EQ(katapult.mcu, "rp2040");
    EXPECT_EQ(discover::identify_port("/dev/serial/by-id/usb-1a86_USB_Serial-if00-port0").kind,
              discover::PortIdentity::Kind::Unknown);
}

TEST(Discover, ALinkStillBeingMadeIsNoPort) {
    EXPECT_TRUE(discover::is_settled_port_name("/dev/serial/by-id/usb-katapult_stm32f103xe_SIM0003-if00"));
    EXPECT_TRUE(discover::is_settled_port_name("/dev/ttyACM0"));
    // udev's temporary link, and mcuflash-sim's, before the rename that puts them in place
    EXPECT_FALSE(discover::is_settled_port_name("/dev/serial/by-id/.#usb-katapult_stm32f103xe_SIM0003-if00a1b2"));
    EXPECT_FALSE(discover::is_settled_port_name("/tmp/board/.usb-katapult_stm32f103xe_SIM0003-if00.4242.tmp"));
}

TEST(Discover, NamesTheProgramsThatHoldAPort) {
    namespace fs = std::filesystem;
    const fs::path root = fs::temp_directory_path() / fs::path("mcuflash-proc-" + std::to_string(::getpid()));
    fs::create_directories(root / "812" / "fd");
    fs::create_directories(root / "900" / "fd");
    const fs::path node = root / "ttyACM0";
    std::ofstream(node).put('x');
    fs::create_symlink(node, root / "812" / "fd" / "5");
    std::ofstream(root / "812" / "comm") << "klippy.py\n";
    std::ofstream(root / "900" / "comm") << "bash\n";
    EXPECT_EQ(discover::port_holders(node.string(), root.string()), std::vector<std::string>{"klippy.py (pid 812)"});
    fs::remove_all(root);
}
