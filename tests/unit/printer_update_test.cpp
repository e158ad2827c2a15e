// The whole-printer update's order: different transports at once, one USB bootloader and one node per
// CAN bus at a time, the USB-to-CAN bridge after the nodes of its bus; what is left out, and why.
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "core/error.hpp"
#include "plan/printer_update.hpp"

namespace fs = std::filesystem;
using mcuflash::core::Error;
using mcuflash::core::ErrorKind;
using mcuflash::plan::PrinterUpdatePlan;
using mcuflash::plan::StepState;
using mcuflash::targets::ManifestMcu;
using mcuflash::targets::PrinterConfig;
using mcuflash::targets::PrinterManifest;
using mcuflash::targets::PrinterMcu;

namespace {

PrinterMcu serial_mcu(const std::string& name, const std::string& port, uint32_t baud = 250000) {
    PrinterMcu m;
    m.name = name;
    m.serial = port;
    m.baud = baud;
    return m;
}
PrinterMcu can_mcu(const std::string& name, const std::string& uuid, const std::string& bus = "can0") {
    PrinterMcu m;
    m.name = name;
    m.canbus_uuid = uuid;
    m.canbus_interface = bus;
    return m;
}
ManifestMcu entry(const std::string& name, std::optional<bool> bridge = {}) {
    ManifestMcu m;
    m.name = name;
    m.board = "board-of-" + name;
    m.image = "/out/" + name + "/klipper.bin";
    m.can_bridge = bridge;
    m.where = "mcuflash.toml:1";
    return m;
}

// Runs the plan as the CLI does, every step finishing at once: the rounds of steps started together.
std::vector<std::vector<std::string>> rounds(const PrinterUpdatePlan& plan) {
    std::vector<StepState> states(plan.steps.size(), StepState::Waiting);
    for (size_t i = 0; i < plan.steps.size(); ++i)
        if (!plan.steps[i].skip_reason.empty()) states[i] = StepState::Finished;
    std::vector<std::vector<std::string>> result;
    for (;;) {
        const auto ready = mcuflash::plan::ready_steps(plan, states);
        if (ready.empty()) break;
        std::vector<std::string> round;
        for (auto i : ready) {
            round.push_back(plan.steps[i].mcu);
            states[i] = StepState::Finished;
        }
        result.push_back(round);
    }
    return result;
}

}  // namespace

TEST(PrinterUpdate, NodesFirstThenTheirBridgeWhileOtherTransportsRunAlongside) {
    PrinterConfig config;
    config.path = "printer.cfg";
    config.mcus = {can_mcu("mcu", "aaaaaaaaaaaa"), can_mcu("ebb", "bbbbbbbbbbbb"), can_mcu("sb", "cccccccccccc"),
                   serial_mcu("z", "/dev/ttyAMA0", 115200),
                   serial_mcu("usbtool", "/dev/serial/by-id/usb-Klipper_rp2040_E66-if00")};
    PrinterManifest manifest;
    manifest.path = "mcuflash.toml";
    manifest.mcus = {entry("mcu", true), entry("ebb"), entry("sb"), entry("z"), entry("usbtool")};
    const auto plan = mcuflash::plan::plan_printer_update(config, manifest);
    ASSERT_EQ(plan.steps.size(), 5u);
    EXPECT_TRUE(plan.steps[0].can_bridge);
    EXPECT_EQ(plan.steps[0].device, "can:can0:aaaaaaaaaaaa");
    EXPECT_EQ(plan.steps[0].after, (std::vector<std::string>{"ebb", "sb"}));
    EXPECT_EQ(plan.steps[3].uart_baud, 115200u);
    EXPECT_EQ(plan.steps[4].uart_baud, 0u);
    // Round 1: the first node, the UART and the USB board together; then the second node; the bridge
    // last, and not beside the USB board's bootloader.
    const auto order = rounds(plan);
    ASSERT_EQ(order.size(), 3u);
    EXPECT_EQ(order[0], (std::vector<std::string>{"ebb", "z", "usbtool"}));
    EXPECT_EQ(order[1], (std::vector<std::string>{"sb"}));
    EXPECT_EQ(order[2], (std::vector<std::string>{"mcu"}));
}

TEST(PrinterUpdate, ABridgeWaitsForAUsbBoardStillRunning) {
    PrinterConfig config;
    config.mcus = {can_mcu("mcu", "aaaaaaaaaaaa"), serial_mcu("x", "/dev/serial/by-id/usb-Klipper_stm32f103xe_1-if00")};
    PrinterManifest manifest;
    manifest.mcus = {entry("mcu", true), entry("x")};
    const auto plan = mcuflash::plan::plan_printer_update(config, manifest);
    std::vector<StepState> states{StepState::Waiting, StepState::Running};
    EXPECT_TRUE(mcuflash::plan::ready_steps(plan, states).empty());  // both reboot into USB bootloaders
    states[1] = StepState::Finished;
    EXPECT_EQ(mcuflash::plan::ready_steps(plan, states), (std::vector<size_t>{0}));
}

TEST(PrinterUpdate, WhatIsLeftOutSaysWhy) {
    PrinterConfig config;
    config.path = "printer.cfg";
    config.mcus = {serial_mcu("mcu", "/dev/ttyAMA0"), serial_mcu("rpi", "/tmp/klipper_host_mcu"),
                   serial_mcu("extra", "/dev/ttyUSB3"), serial_mcu("off", "/dev/ttyUSB4")};
    PrinterManifest manifest;
    manifest.path = "mcuflash.toml";
    auto off = entry("off");
    off.skip = true;
    auto sd = entry("sdboard");
    sd.device = "dir:/media/pi/SD";
    manifest.mcus = {entry("mcu"), entry("rpi"), off, sd};
    const auto plan = mcuflash::plan::plan_printer_update(config, manifest);
    ASSERT_EQ(plan.steps.size(), 5u);
    EXPECT_EQ(plan.steps[0].skip_reason, "");
    EXPECT_NE(plan.steps[1].skip_reason.find("Linux process"), std::string::npos);
    EXPECT_EQ(plan.steps[2].skip_reason, "not in mcuflash.toml");
    EXPECT_EQ(plan.steps[3].skip_reason, "skip = true in mcuflash.toml:1");
    EXPECT_EQ(plan.steps[4].mcu, "sdboard");  // only the manifest names it: its own device
    EXPECT_EQ(plan.steps[4].resources, (std::vector<std::string>{"storage:/media/pi/SD"}));
    EXPECT_EQ(rounds(plan), (std::vector<std::vector<std::string>>{{"mcu", "sdboard"}}));

    const auto only = mcuflash::plan::plan_printer_update(config, manifest, {"sdboard"});
    ASSERT_EQ(only.steps.size(), 1u);
    EXPECT_EQ(only.steps[0].mcu, "sdboard");
}

TEST(PrinterUpdate, RefusesWhatCannotBeDone) {
    PrinterConfig config;
    config.path = "printer.cfg";
    config.mcus = {can_mcu("a", "aaaaaaaaaaaa"), can_mcu("b", "bbbbbbbbbbbb")};
    PrinterManifest manifest;
    manifest.path = "mcuflash.toml";
    manifest.mcus = {entry("a", true), entry("b", true)};
    try {
        mcuflash::plan::plan_printer_update(config, manifest);
        FAIL() << "two bridges on can0 accepted";
    } catch (const Error& e) {
        EXPECT_EQ(e.kind(), ErrorKind::BadInput);
    }
    manifest.mcus = {entry("a"), entry("ghost")};
    try {
        mcuflash::plan::plan_printer_update(config, manifest);
        FAIL() << "an MCU with no device accepted";
    } catch (const Error& e) {
        EXPECT_EQ(e.kind(), ErrorKind::BadInput);
        EXPECT_NE(std::string(e.what()).find("ghost"), std::string::npos);
    }
    manifest.mcus = {entry("a")};
    try {
        mcuflash::plan::plan_printer_update(config, manifest, {"nobody"});
        FAIL() << "an unknown --only accepted";
    } catch (const Error& e) {
        EXPECT_EQ(e.kind(), ErrorKind::Usage);
    }
}

TEST(PrinterUpdate, TheBridgeIsKnownByItsKlipperConfig) {
    const auto dir = fs::temp_directory_path() / ("mcuflash-printer-update-" + std::to_string(::getpid()));
    fs::create_directories(dir);
    std::ofstream(dir / "bridge.config") << "CONFIG_MCU=\"stm32f446xx\"\nCONFIG_USBCANBUS=y\nCONFIG_CANBUS=y\n";
    std::ofstream(dir / "node.config") << "CONFIG_MCU=\"stm32g0b1xx\"\nCONFIG_CANSERIAL=y\nCONFIG_CANBUS=y\n";
    PrinterConfig config;
    config.mcus = {can_mcu("mcu", "aaaaaaaaaaaa"), can_mcu("ebb", "bbbbbbbbbbbb")};
    PrinterManifest manifest;
    auto main = entry("mcu");
    main.kconfig = (dir / "bridge.config").string();
    auto node = entry("ebb");
    node.kconfig = (dir / "node.config").string();
    manifest.mcus = {main, node};
    const auto plan = mcuflash::plan::plan_printer_update(config, manifest);
    fs::remove_all(dir);
    EXPECT_TRUE(plan.steps[0].can_bridge);
    EXPECT_FALSE(plan.steps[1].can_bridge);
    EXPECT_EQ(rounds(plan), (std::vector<std::vector<std::string>>{{"ebb"}, {"mcu"}}));
}
