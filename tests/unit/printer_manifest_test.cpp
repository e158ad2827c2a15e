// mcuflash.toml: read with paths resolved against its folder, MCUs in file order, every mistake
// refused with file:line; and what printer init writes reads back to the same manifest.
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "core/error.hpp"
#include "targets/printer_manifest.hpp"

namespace fs = std::filesystem;
using mcuflash::core::Error;
using mcuflash::core::ErrorKind;
using mcuflash::targets::read_printer_manifest;

namespace {

class PrinterManifestTest : public ::testing::Test {
protected:
    void SetUp() override {
        dir_ = fs::temp_directory_path() / ("mcuflash-manifest-" + std::to_string(::getpid()));
        fs::create_directories(dir_);
        if (const char* home = std::getenv("HOME")) saved_home_ = home;
        ::setenv("HOME", "/home/pi", 1);
    }
    void TearDown() override {
        fs::remove_all(dir_);
        ::setenv("HOME", saved_home_.c_str(), 1);
    }
    std::string write(const std::string& text) {
        const auto path = dir_ / "mcuflash.toml";
        std::ofstream(path) << text;
        return path.string();
    }
    ErrorKind kind_of(const std::string& text, std::string* message = nullptr) {
        try {
            read_printer_manifest(write(text));
        } catch (const Error& e) {
            if (message) *message = e.what();
            return e.kind();
        }
        ADD_FAILURE() << "accepted: " << text;
        return ErrorKind::Internal;
    }
    fs::path dir_;
    std::string saved_home_ = "/root";
};

}  // namespace

TEST_F(PrinterManifestTest, ReadsPathsRelativeToItsFolderAndMcusInFileOrder) {
    const auto manifest = read_printer_manifest(write(R"(
[printer]
config = "printer.cfg"
klipper = "~/kalico"
out = "builds"

[mcu.mcu]
board = "btt-octopus-v1.1"
kconfig = "builds/mcu.config"
bootloader = "katapult"

[mcu.ebb]
board = "btt-ebb36-v1.2"
image = "/srv/ebb.bin"
can_bridge = false

[mcu."host mcu"]
board = ""
skip = true
device = "/tmp/klipper_host_mcu"
)"));
    EXPECT_EQ(manifest.printer_config, (dir_ / "printer.cfg").string());
    EXPECT_EQ(manifest.klipper_tree, "/home/pi/kalico");
    EXPECT_EQ(manifest.out_dir, (dir_ / "builds").string());
    ASSERT_EQ(manifest.mcus.size(), 3u);
    // The file's order, not toml++'s sorted one ("ebb" < "host mcu" < "mcu").
    EXPECT_EQ(manifest.mcus[0].name, "mcu");
    EXPECT_EQ(manifest.mcus[1].name, "ebb");
    EXPECT_EQ(manifest.mcus[2].name, "host mcu");
    EXPECT_EQ(manifest.mcus[0].kconfig, (dir_ / "builds/mcu.config").string());
    EXPECT_EQ(manifest.mcus[0].image, (dir_ / "builds/mcu/klipper.bin").string());
    EXPECT_EQ(manifest.mcus[0].bootloader, "katapult");
    EXPECT_FALSE(manifest.mcus[0].can_bridge.has_value());
    EXPECT_EQ(manifest.mcus[1].image, "/srv/ebb.bin");
    EXPECT_EQ(manifest.mcus[1].can_bridge, std::optional<bool>(false));
    EXPECT_TRUE(manifest.mcus[2].skip);
    EXPECT_EQ(manifest.mcus[2].device, "/tmp/klipper_host_mcu");
    EXPECT_EQ(manifest.find("ebb"), &manifest.mcus[1]);
    EXPECT_EQ(manifest.find("nope"), nullptr);
}

TEST_F(PrinterManifestTest, DefaultsAreBesideTheManifest) {
    const auto manifest = read_printer_manifest(write("[mcu.mcu]\nboard = \"x\"\n"));
    EXPECT_EQ(manifest.printer_config, (dir_ / "printer.cfg").string());
    EXPECT_EQ(manifest.klipper_tree, "/home/pi/klipper");
    EXPECT_EQ(manifest.mcus.at(0).image, (dir_ / "mcuflash/mcu/klipper.bin").string());
}

TEST_F(PrinterManifestTest, RefusesMistakesWithTheirLine) {
    std::string message;
    EXPECT_EQ(kind_of("[mcu.mcu]\nbord = \"x\"\n", &message), ErrorKind::BadInput);
    EXPECT_NE(message.find("mcuflash.toml:1"), std::string::npos) << message;
    EXPECT_NE(message.find("unknown key 'bord'"), std::string::npos) << message;
    EXPECT_EQ(kind_of("[printer]\nconfig = 3\n", &message), ErrorKind::BadInput);
    EXPECT_NE(message.find("'config' must be a string"), std::string::npos) << message;
    EXPECT_EQ(kind_of("[mcu.mcu]\nskip = \"yes\"\n", &message), ErrorKind::BadInput);
    EXPECT_EQ(kind_of("[mcus.mcu]\n", &message), ErrorKind::BadInput);
    EXPECT_EQ(kind_of("[mcu.mcu]\n[mcu.mcu]\n", &message), ErrorKind::BadInput);  // an MCU given twice
    EXPECT_EQ(kind_of("mcu = 1\n", &message), ErrorKind::BadInput);
    EXPECT_EQ(kind_of("[mcu.mcu\n", &message), ErrorKind::BadInput);
    EXPECT_NE(message.find("mcuflash.toml:1"), std::string::npos) << message;
    try {
        read_printer_manifest((dir_ / "none.toml").string());
        FAIL();
    } catch (const Error& e) {
        EXPECT_EQ(e.kind(), ErrorKind::NotFound);
    }
}

TEST_F(PrinterManifestTest, WhatInitWritesReadsBack) {
    mcuflash::targets::PrinterManifest manifest;
    manifest.path = (dir_ / "mcuflash.toml").string();
    manifest.printer_config = (dir_ / "printer.cfg").string();
    manifest.klipper_tree = "/home/pi/klipper";
    manifest.out_dir = (dir_ / "mcuflash").string();
    mcuflash::targets::ManifestMcu main;
    main.name = "mcu";
    main.board = "btt-octopus-v1.1";
    main.kconfig = (dir_ / "mcuflash/mcu.config").string();
    main.image = (dir_ / "mcuflash/mcu/klipper.bin").string();
    main.can_bridge = true;
    mcuflash::targets::ManifestMcu odd;
    odd.name = "tool \"head\"";
    odd.image = "/srv/x.bin";
    odd.skip = true;
    manifest.mcus = {main, odd};
    const auto text = mcuflash::targets::printer_manifest_text(manifest, {{"mcu", "found by its USB name\nsecond line"}});
    EXPECT_NE(text.find("# found by its USB name\n# second line\n[mcu.mcu]"), std::string::npos) << text;
    EXPECT_NE(text.find("klipper = \"~/klipper\""), std::string::npos) << text;
    EXPECT_EQ(text.find("image = \"mcuflash/mcu/klipper.bin\""), std::string::npos) << "the default is not written: " << text;
    std::ofstream(manifest.path) << text;
    const auto back = read_printer_manifest(manifest.path);
    ASSERT_EQ(back.mcus.size(), 2u);
    EXPECT_EQ(back.klipper_tree, manifest.klipper_tree);
    EXPECT_EQ(back.out_dir, manifest.out_dir);
    EXPECT_EQ(back.mcus[0].kconfig, main.kconfig);
    EXPECT_EQ(back.mcus[0].image, main.image);
    EXPECT_EQ(back.mcus[0].can_bridge, std::optional<bool>(true));
    EXPECT_EQ(back.mcus[1].name, odd.name);
    EXPECT_EQ(back.mcus[1].image, "/srv/x.bin");
    EXPECT_TRUE(back.mcus[1].skip);
}
