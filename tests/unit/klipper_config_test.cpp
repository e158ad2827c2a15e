// Klipper's .config as `make menuconfig` writes it: what mcuflash reads from it and what it refuses.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <unistd.h>

#include "core/error.hpp"
#include "targets/klipper_config.hpp"
#include "targets/knowledge.hpp"

using namespace mcuflash;

namespace {

const char* kSkrMiniE3 = R"(#
# Automatically generated file; DO NOT EDIT.
# Klipper Firmware Configuration
#
CONFIG_LOW_LEVEL_OPTIONS=y
# CONFIG_MACH_AVR is not set
CONFIG_MACH_STM32=y
CONFIG_BOARD_DIRECTORY="stm32"
CONFIG_MCU="stm32f103xe"
CONFIG_CLOCK_FREQ=72000000
CONFIG_SERIAL=y
CONFIG_FLASH_SIZE=0x10000
CONFIG_FLASH_BOOT_ADDRESS=0x8000000
CONFIG_RAM_START=0x20000000
CONFIG_STM32_FLASH_START_7000=y
CONFIG_FLASH_APPLICATION_ADDRESS=0x8007000
CONFIG_USBSERIAL=y
CONFIG_SERIAL_BAUD=250000
)";

}  // namespace

TEST(KlipperConfig, ReadsTheMcuTheApplicationAddressAndTheInterface) {
    auto config = targets::parse_klipper_config(kSkrMiniE3, ".config");
    EXPECT_EQ(config.mcu, "stm32f103xe");
    ASSERT_TRUE(config.application_address);
    EXPECT_EQ(*config.application_address, 0x08007000u);
    EXPECT_EQ(config.interface, "USB");
    EXPECT_EQ(config.serial_baud, 250000u);
    // Klipper's MCU names are the knowledge base's chips.
    EXPECT_NE(targets::Knowledge::builtin().find_chip(config.mcu), nullptr);
}

TEST(KlipperConfig, AvrHasNoApplicationAddress) {
    auto config = targets::parse_klipper_config("CONFIG_MACH_AVR=y\r\nCONFIG_MCU=\"atmega2560\"\r\nCONFIG_SERIAL=y\r\n", "c");
    EXPECT_EQ(config.mcu, "atmega2560");
    EXPECT_FALSE(config.application_address);
    EXPECT_EQ(config.interface, "serial");
    EXPECT_EQ(targets::parse_klipper_config("CONFIG_MCU=\"stm32g0b1xx\"\nCONFIG_USBCANBUS=y\nCONFIG_USBSERIAL=y\n", "c").interface,
              "USB to CAN bridge");
}

TEST(KlipperConfig, RefusesWhatIsNotOne) {
    EXPECT_THROW(targets::parse_klipper_config("", "empty"), core::Error);
    EXPECT_THROW(targets::parse_klipper_config("# CONFIG_MCU is not set\n", "c"), core::Error);
    EXPECT_THROW(targets::parse_klipper_config("CONFIG_MCU=\"x\"\nCONFIG_FLASH_APPLICATION_ADDRESS=0x8zz\n", "c"), core::Error);
    EXPECT_THROW(targets::parse_klipper_config("CONFIG_MCU=\"x\"\nCONFIG_FLASH_APPLICATION_ADDRESS=0x1ffffffff\n", "c"),
                 core::Error);
    EXPECT_THROW(targets::read_klipper_config("/nonexistent/.config"), core::Error);
}

TEST(KlipperConfig, FoundBesideAnImageInOut) {
    namespace fs = std::filesystem;
    const fs::path tree = fs::temp_directory_path() / ("klipper-config-test-" + std::to_string(::getpid()));
    fs::create_directories(tree / "out");
    std::ofstream(tree / "out" / "klipper.bin") << "x";
    std::ofstream(tree / "elsewhere.bin") << "x";
    EXPECT_FALSE(targets::klipper_config_beside((tree / "out" / "klipper.bin").string()));  // no .config yet
    std::ofstream(tree / ".config") << kSkrMiniE3;
    EXPECT_EQ(targets::klipper_config_beside((tree / "out" / "klipper.bin").string()), (tree / ".config").string());
    EXPECT_FALSE(targets::klipper_config_beside((tree / "elsewhere.bin").string()));
    fs::remove_all(tree);
}
