// Klipper's .config for a board from the knowledge base (targets/klipper_kconfig.*): the symbols of
// Klipper's Kconfig for boards of several families, the offset from the board or the chosen
// bootloader, the interface the board names or the caller asks for, and refusals where a guess would
// make a board that never answers. tests/interop/printer_build.sh completes such files with Klipper's
// own `make olddefconfig` and builds them.
#include <gtest/gtest.h>

#include <set>
#include <sstream>

#include "core/error.hpp"
#include "targets/klipper_kconfig.hpp"

using namespace mcuflash;
using targets::KconfigChoices;
using targets::KconfigInterface;
using targets::Knowledge;

namespace {

const Knowledge& kb() { return Knowledge::builtin(); }

// The CONFIG_ lines of a generated file, comments left out.
std::set<std::string> settings(const std::string& text) {
    std::set<std::string> out;
    std::istringstream in(text);
    for (std::string line; std::getline(in, line);)
        if (line.starts_with("CONFIG_")) out.insert(line);
    return out;
}

std::set<std::string> config_of(const std::string& board, KconfigChoices choices = {},
                                const targets::Bootloader* chosen = nullptr) {
    return settings(targets::klipper_kconfig_for(kb(), kb().boards().at(board), chosen, choices));
}

bool has(const std::set<std::string>& s, const std::string& line) { return s.count(line) > 0; }

// Lines that set a symbol of a menu choice group (the interface, the offset).
size_t count_prefix(const std::set<std::string>& s, const std::string& prefix) {
    size_t n = 0;
    for (const auto& line : s) n += line.starts_with(prefix);
    return n;
}

}  // namespace

TEST(KlipperKconfig, Stm32f103With28KiBBootloaderOnUsb) {
    const auto c = config_of("btt-skr-mini-e3-v2.0");
    EXPECT_TRUE(has(c, "CONFIG_LOW_LEVEL_OPTIONS=y"));
    EXPECT_TRUE(has(c, "CONFIG_MACH_STM32=y"));
    EXPECT_TRUE(has(c, "CONFIG_MACH_STM32F103=y"));
    EXPECT_TRUE(has(c, "CONFIG_STM32_FLASH_START_7000=y"));
    EXPECT_TRUE(has(c, "CONFIG_STM32_USB_PA11_PA12=y"));
    EXPECT_EQ(count_prefix(c, "CONFIG_STM32_FLASH_START_"), 1u);
    EXPECT_EQ(count_prefix(c, "CONFIG_STM32_CLOCK_REF_"), 0u);  // the config states no crystal
}

TEST(KlipperKconfig, Stm32f446WithItsCrystalAndCanWhenAsked) {
    auto c = config_of("btt-octopus-v1.1-f446");
    EXPECT_TRUE(has(c, "CONFIG_MACH_STM32F446=y"));
    EXPECT_TRUE(has(c, "CONFIG_STM32_FLASH_START_8000=y"));
    EXPECT_TRUE(has(c, "CONFIG_STM32_CLOCK_REF_12M=y"));
    EXPECT_TRUE(has(c, "CONFIG_STM32_USB_PA11_PA12=y"));  // "USB (CAN also available)": USB first
    // Asked to be a USB to CAN bridge, with the pins named by the caller (the board does not say them).
    KconfigChoices bridge;
    bridge.interface = KconfigInterface::UsbToCan;
    bridge.pins = "PD0/PD1";
    bridge.canbus_bitrate = 500000;
    c = config_of("btt-octopus-v1.1-f446", bridge);
    EXPECT_TRUE(has(c, "CONFIG_STM32_USBCANBUS_PA11_PA12=y"));
    EXPECT_TRUE(has(c, "CONFIG_STM32_CMENU_CANBUS_PD0_PD1=y"));
    EXPECT_TRUE(has(c, "CONFIG_CANBUS_FREQUENCY=500000"));
    EXPECT_FALSE(has(c, "CONFIG_STM32_USB_PA11_PA12=y"));
    // CAN without pins: the F446 has several, so it is not guessed.
    KconfigChoices can;
    can.interface = KconfigInterface::Can;
    EXPECT_THROW(config_of("btt-octopus-v1.1-f446", can), core::Error);
}

TEST(KlipperKconfig, CanToolheadTakesTheBoardsPinsAndKatapultsOffset) {
    KconfigChoices can;
    can.interface = KconfigInterface::Can;
    // btt-ebb-can-v1.1 states no offset; its first bootloader, Katapult, keeps 8 KiB on the G0B1.
    auto plan = targets::klipper_kconfig_plan(kb(), kb().boards().at("btt-ebb-can-v1.1"), nullptr, can);
    auto c = settings(plan.text);
    EXPECT_TRUE(has(c, "CONFIG_MACH_STM32G0B1=y"));
    EXPECT_TRUE(has(c, "CONFIG_STM32_FLASH_START_2000=y"));
    EXPECT_TRUE(has(c, "CONFIG_STM32_CLOCK_REF_8M=y"));
    EXPECT_TRUE(has(c, "CONFIG_STM32_MMENU_CANBUS_PB0_PB1=y"));
    EXPECT_EQ(plan.interface, "CAN PB0/PB1");
    ASSERT_TRUE(plan.offset);
    EXPECT_EQ(*plan.offset, 0x2000u);
    EXPECT_NE(plan.text.find("# mcuflash: CAN bus speed"), std::string::npos);
    // The F042's CAN on PA9/PA10 is Klipper's remapped PA11/PA12; behind Katapult's 8 KiB.
    c = config_of("cartographer-v3", can);
    EXPECT_TRUE(has(c, "CONFIG_STM32_CANBUS_PA11_PA12_REMAP=y"));
    EXPECT_TRUE(has(c, "CONFIG_STM32_CLOCK_REF_24M=y"));
    EXPECT_TRUE(has(c, "CONFIG_STM32_FLASH_START_2000=y"));
    // Flashed through the ROM DFU instead: no bootloader in flash.
    c = config_of("cartographer-v3", can, kb().find_bootloader("st_rom_dfu"));
    EXPECT_TRUE(has(c, "CONFIG_STM32_FLASH_START_0000=y"));
    // A bootloader with no size on the chip is refused, not guessed.
    EXPECT_THROW(config_of("btt-ebb-can-v1.1", can, kb().find_bootloader("stk500boot_v2")), core::Error);
}

TEST(KlipperKconfig, Lpc1768Rp2040AndSamc21) {
    auto c = config_of("btt-skr-v1.4");
    EXPECT_TRUE(has(c, "CONFIG_MACH_LPC176X=y"));
    EXPECT_TRUE(has(c, "CONFIG_MACH_LPC1768=y"));
    EXPECT_TRUE(has(c, "CONFIG_LPC_FLASH_START_4000=y"));
    EXPECT_TRUE(has(c, "CONFIG_LPC_USB=y"));

    c = config_of("btt-skr-pico-v1.0");
    EXPECT_TRUE(has(c, "CONFIG_MACH_RPXXXX=y"));
    EXPECT_TRUE(has(c, "CONFIG_MACH_RP2040=y"));
    EXPECT_TRUE(has(c, "CONFIG_RPXXXX_FLASH_START_0100=y"));  // "No bootloader": after the 256-byte boot2
    EXPECT_TRUE(has(c, "CONFIG_RPXXXX_USB=y"));
    // On the Pi's UART instead: UART0 on GPIO0/GPIO1 (the menu's first) at printer.cfg's baud.
    KconfigChoices uart;
    uart.interface = KconfigInterface::Serial;
    uart.serial_baud = 115200;
    c = config_of("btt-skr-pico-v1.0", uart);
    EXPECT_TRUE(has(c, "CONFIG_RPXXXX_SERIAL_UART0_PINS_0_1=y"));
    EXPECT_TRUE(has(c, "CONFIG_SERIAL_BAUD=115200"));
    EXPECT_FALSE(has(c, "CONFIG_RPXXXX_USB=y"));

    c = config_of("duet3-1lc");  // "CAN PA25/PA24"; no USB on the SAMC21
    EXPECT_TRUE(has(c, "CONFIG_MACH_ATSAMD=y"));
    EXPECT_TRUE(has(c, "CONFIG_MACH_SAMC21G18=y"));
    EXPECT_TRUE(has(c, "CONFIG_SAMD_FLASH_START_0000=y"));
    EXPECT_TRUE(has(c, "CONFIG_ATSAMD_MMENU_CANBUS_PA25_PA24=y"));
    KconfigChoices usb;
    usb.interface = KconfigInterface::Usb;
    EXPECT_THROW(config_of("duet3-1lc", usb), core::Error);
}

TEST(KlipperKconfig, AvrHasNoOffsetChoiceAndTakesItsUart) {
    auto c = config_of("einsy-rambo");  // "UART via USB-serial (ttyACM0)"
    EXPECT_TRUE(has(c, "CONFIG_MACH_AVR=y"));
    EXPECT_TRUE(has(c, "CONFIG_MACH_atmega2560=y"));
    EXPECT_TRUE(has(c, "CONFIG_AVR_SERIAL_UART0=y"));
    EXPECT_TRUE(has(c, "CONFIG_SERIAL_BAUD=250000"));
    EXPECT_EQ(count_prefix(c, "CONFIG_STM32_"), 0u);
    // The ATmega1281 is built as Klipper's atmega1280.
    c = config_of("minitronics-v1.0");
    EXPECT_TRUE(has(c, "CONFIG_MACH_atmega1280=y"));
}

TEST(KlipperKconfig, SerialPinsOfTheBoard) {
    // "USART1 PA10/PA9; alt USART3 PB11/PB10 on LCD IDC": the first.
    for (const auto& [id, board] : kb().boards()) {
        if (board.interface.rfind("USART3 PB11/PB10", 0) != 0 || !board.chip.starts_with("stm32")) continue;
        const auto c = config_of(id);
        EXPECT_TRUE(has(c, "CONFIG_STM32_SERIAL_USART3=y")) << id;
    }
    // The menu writes RX/TX; some configs TX/RX: "UART PD8/PD9" is USART3 on PD9/PD8.
    targets::Board board = kb().boards().at("btt-skr-mini-e3-v2.0");
    board.interface = "UART PD8/PD9 (ESP32)";
    const auto c = settings(targets::klipper_kconfig_for(kb(), board, nullptr, {}));
    EXPECT_TRUE(has(c, "CONFIG_STM32_SERIAL_USART3_ALT_PD9_PD8=y"));
    board.interface = "UART PE1/PE0";
    EXPECT_THROW(targets::klipper_kconfig_for(kb(), board, nullptr, {}), core::Error);
}

TEST(KlipperKconfig, EveryBoardWithAFlashMethodGetsAConfigOrAReason) {
    // Every board: a config with exactly one architecture and at most one offset and one interface,
    // or a core::Error saying why not (no Kconfig facts do not occur: every chip has them).
    size_t written = 0;
    for (const auto& [id, board] : kb().boards()) {
        try {
            const auto plan = targets::klipper_kconfig_plan(kb(), board, nullptr, {});
            const auto c = settings(plan.text);
            EXPECT_TRUE(has(c, "CONFIG_LOW_LEVEL_OPTIONS=y")) << id;
            EXPECT_LE(count_prefix(c, "CONFIG_STM32_FLASH_START_"), 1u) << id;
            EXPECT_LE(count_prefix(c, "CONFIG_STM32_USB_") + count_prefix(c, "CONFIG_STM32_SERIAL_") +
                          count_prefix(c, "CONFIG_STM32_MMENU_CANBUS_"),
                      1u)
                << id;
            ++written;
        } catch (const core::Error& e) {
            ADD_FAILURE() << id << ": " << e.what();
        }
    }
    EXPECT_EQ(written, kb().boards().size());
}

TEST(KlipperKconfig, TheLoaderChecksTheKey) {
    const std::string chip = R"([chips.x]
family = "stm32f1"
flash_base = 0x08000000
flash_size = 65536
page_size = 1024
klipper_offsets = [0x2000, 0]
)";
    auto load = [&](const std::string& kconfig) {
        return Knowledge::from_documents({{"chips.toml", chip + "[chips.x.klipper_kconfig]\n" + kconfig}});
    };
    EXPECT_NO_THROW(load("choose = [\"MACH_STM32\"]\noffsets = [\"A\", \"B\"]\ndefault_interface = \"usb\"\n"));
    EXPECT_THROW(load("choose = [\"MACH_STM32\"]\noffsets = [\"A\"]\ndefault_interface = \"usb\"\n"), core::Error);
    EXPECT_THROW(load("choose = [\"MACH_STM32\"]\nserial = [\"no colon\"]\ndefault_interface = \"usb\"\n"), core::Error);
    EXPECT_THROW(load("choose = [\"MACH_STM32\"]\ndefault_interface = \"wifi\"\n"), core::Error);
    EXPECT_THROW(load("choose = [\"MACH_STM32\"]\nbogus = 1\ndefault_interface = \"usb\"\n"), core::Error);
}
