// printer.cfg as Klipper reads it: comments, continuation lines, repeated sections, includes with
// wildcards, and the refusals (a missing include, a loop, an [mcu] Klipper could not reach).
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "core/error.hpp"
#include "targets/printer_config.hpp"

namespace fs = std::filesystem;
using mcuflash::core::Error;
using mcuflash::core::ErrorKind;
using mcuflash::targets::read_printer_config;

namespace {

class PrinterConfigTest : public ::testing::Test {
protected:
    void SetUp() override {
        dir_ = fs::temp_directory_path() / ("mcuflash-printer-cfg-" + std::to_string(::getpid()));
        fs::create_directories(dir_ / "boards");
    }
    void TearDown() override { fs::remove_all(dir_); }
    std::string write(const std::string& name, const std::string& text) {
        std::ofstream(dir_ / name) << text;
        return (dir_ / name).string();
    }
    fs::path dir_;
};

}  // namespace

TEST_F(PrinterConfigTest, ReadsEveryMcuThroughIncludesAsKlipperDoes) {
    write("boards/toolhead.cfg", "[mcu ebb]\ncanbus_uuid: 0e0d81e4210c  # the EBB36\n[mcu rpi]\nserial: /tmp/klipper_host_mcu\n");
    write("boards/z.cfg", "[mcu z]\nserial = /dev/ttyUSB1 ; the Z board\nbaud: 115200\n");
    const auto path = write("printer.cfg",
                            "# a comment\n[printer]\nkinematics: corexy\n"
                            "[gcode_macro START]\ngcode:\n  M117 #1 ; text\n  G28\n"
                            "[include boards/*.cfg]\n"
                            "[mcu]\nSERIAL: /dev/serial/by-id/usb-Klipper_stm32f446xx_1-if00\nrestart_method: command\n"
                            "[mcu z]\nbaud: 250000\n"
                            "#*# <---------------------- SAVE_CONFIG ---------------------->\n#*# [mcu]\n#*# serial: x\n");
    const auto config = read_printer_config(path);
    ASSERT_EQ(config.mcus.size(), 4u);
    EXPECT_EQ(config.files.size(), 3u);
    EXPECT_EQ(config.mcus[0].name, "mcu");  // [mcu] first, wherever it is
    EXPECT_EQ(config.mcus[0].serial, "/dev/serial/by-id/usb-Klipper_stm32f446xx_1-if00");
    EXPECT_EQ(config.mcus[0].restart_method, "command");
    EXPECT_EQ(config.mcus[1].name, "ebb");  // then in the order they first appeared (includes sorted)
    EXPECT_EQ(config.mcus[1].canbus_uuid, "0e0d81e4210c");
    EXPECT_EQ(config.mcus[1].canbus_interface, "can0");
    EXPECT_EQ(config.mcus[2].name, "rpi");
    EXPECT_EQ(config.mcus[3].name, "z");
    EXPECT_EQ(config.mcus[3].serial, "/dev/ttyUSB1");
    EXPECT_EQ(config.mcus[3].baud, 250000u);  // the later value wins
    EXPECT_EQ(config.mcus[3].file, (dir_ / "boards/z.cfg").string());
}

TEST_F(PrinterConfigTest, RefusesWhatKlipperWouldRefuse) {
    auto kind_of = [](const std::string& path) {
        try {
            read_printer_config(path);
        } catch (const Error& e) {
            return e.kind();
        }
        return ErrorKind::Internal;  // accepted
    };
    EXPECT_EQ(kind_of(write("a.cfg", "[include missing.cfg]\n")), ErrorKind::BadInput);
    EXPECT_EQ(kind_of(write("b.cfg", "[include nothing*.cfg]\n[mcu]\nserial: /dev/x\n")), ErrorKind::Internal);
    EXPECT_EQ(kind_of(write("loop.cfg", "[include loop.cfg]\n")), ErrorKind::BadInput);
    EXPECT_EQ(kind_of(write("c.cfg", "serial: /dev/x\n")), ErrorKind::BadInput);  // outside a section
    EXPECT_EQ(kind_of(write("d.cfg", "[mcu\nserial: /dev/x\n")), ErrorKind::BadInput);
    EXPECT_EQ(kind_of(write("e.cfg", "[mcu]\nbaud: fast\nserial: /dev/x\n")), ErrorKind::BadInput);
    EXPECT_EQ(kind_of(write("f.cfg", "[mcu]\nrestart_method: command\n")), ErrorKind::BadInput);  // no way to reach it
    EXPECT_EQ(kind_of((dir_ / "absent.cfg").string()), ErrorKind::NotFound);
}
