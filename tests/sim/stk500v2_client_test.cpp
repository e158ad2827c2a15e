// Our STK500v2 code against the STK500v2 simulators in-process, clean and with faults: the bootloader
// client (stk500boot_v2, Arduino M0) and the ISP programmer with the bootloader install and fuse
// writes. Every run ends with verified flash and fuses, or a clear error naming what was written;
// never silent corruption, never a write into a bootloader the user did not ask to replace.
#include <gtest/gtest.h>

#include <random>

#include "client_test_support.hpp"
#include "core/error.hpp"
#include "image/loader.hpp"
#include "plan/avr_install.hpp"
#include "plan/flash_plan.hpp"
#include "protocol/stk500v2/client.hpp"
#include "protocol/stk500v2/isp_programmer.hpp"
#include "sim/in_process_link.hpp"
#include "sim/stk500v2/isp_programmer_device.hpp"

using namespace mcuflash;
using test::flash_holds;
using test::random_image;
using core::ErrorKind;
using targets::FuseByte;

namespace {


struct Run {
    std::unique_ptr<sim::InProcessLink> link;
    std::unique_ptr<protocol::stk500v2::Client> client;
    std::vector<std::string> warnings;
};

std::unique_ptr<Run> open(const std::string& chip, const std::string& faults = {}) {
    auto run = std::make_unique<Run>();
    sim::InProcessOptions options;
    options.chip = chip;
    options.faults = faults;
    options.timing = false;
    options.settings = {chip == "samd21g18a" ? 57600u : 115200u, link::Parity::None};
    run->link = sim::open_in_process("stk500v2", options);
    protocol::ConnectOptions connect;
    connect.warn = [r = run.get()](const std::string& w) { r->warnings.push_back(w); };
    run->client = std::make_unique<protocol::stk500v2::Client>(*run->link, connect);
    return run;
}

std::optional<ErrorKind> flash(Run& run, const image::Image& img) { return test::flash_through_plan(*run.client, img); }


void expect_bootloader_untouched(sim::InProcessLink& link) { test::expect_bootloader_untouched(link.flash()); }

}  // namespace

TEST(Stk500v2Client, FlashesAndVerifies100KiBAcrossThe64KWordBoundary) {
    auto run = open("atmega2560");
    auto img = random_image(0, 140000, 1);
    EXPECT_FALSE(flash(*run, img).has_value());
    EXPECT_TRUE(flash_holds(run->link->flash(), img));
    expect_bootloader_untouched(*run->link);
}

TEST(Stk500v2Client, RandomFaultsNeverCorruptSilently) {
    auto img = random_image(0, 16 * 1024, 2);
    int succeeded = 0;
    for (int seed = 1; seed <= 12; ++seed) {
        auto spec = "seed=" + std::to_string(seed) + ",rx:corrupt@rate=0.0005,tx:drop@rate=0.0005";
        auto run = open("atmega2560", spec);
        auto outcome = flash(*run, img);
        if (!outcome) {
            ++succeeded;
            EXPECT_TRUE(flash_holds(run->link->flash(), img)) << spec << ": reported success with wrong flash";
        } else {
            EXPECT_TRUE(*outcome == ErrorKind::Timeout || *outcome == ErrorKind::Protocol ||
                        *outcome == ErrorKind::VerifyMismatch || *outcome == ErrorKind::NotFound)
                << spec << ": " << static_cast<int>(*outcome);
        }
        expect_bootloader_untouched(*run->link);
    }
    EXPECT_GT(succeeded, 6) << "recovery should handle most of these";
}

TEST(Stk500v2Client, AnImageReachingTheBootloaderIsRefusedBeforeAnythingIsWritten) {
    auto run = open("atmega2560");
    auto outcome = flash(*run, random_image(0x3D000, 0x2000, 3));
    ASSERT_TRUE(outcome.has_value());
    EXPECT_EQ(*outcome, ErrorKind::Unsafe);
    EXPECT_EQ(run->link->flash().counters().programs, 0u);
    expect_bootloader_untouched(*run->link);
}

TEST(Stk500v2Client, TheArduinoM0IsASamd21WithItsApplicationAt0x4000) {
    auto run = open("samd21g18a");
    auto info = run->client->connect();
    EXPECT_EQ(info.chip, "samd21g18a");
    EXPECT_EQ(info.bootloader, "arduino_m0_stk500v2");
    EXPECT_EQ(info.app_start, 0x4000u);
    auto img = random_image(0x4000, 30000, 4);
    auto plan = plan::make_plan(img, info, run->client->capabilities(), {});
    plan::execute(*run->client, plan, {}, core::Progress());
    EXPECT_TRUE(flash_holds(run->link->flash(), img));
    expect_bootloader_untouched(*run->link);
    // A second, different image over the first: the whole region is erased first.
    auto second = random_image(0x4000, 20000, 5);
    auto run2 = open("samd21g18a");
    run2->link->flash().load(0x4000, img.runs().begin()->second);
    EXPECT_FALSE(flash(*run2, second).has_value());
    EXPECT_TRUE(flash_holds(run2->link->flash(), second));
}

TEST(Stk500v2Client, TheArduinoM0RefusesAnImageBelowItsApplication) {
    auto run = open("samd21g18a");
    auto outcome = flash(*run, random_image(0, 1024, 6));
    ASSERT_TRUE(outcome.has_value());
    EXPECT_EQ(*outcome, ErrorKind::Unsafe);
    EXPECT_EQ(run->link->flash().counters().programs, 0u);
    EXPECT_EQ(run->link->flash().counters().erases, 0u);
}

// ---- the ISP programmer role

namespace {

struct IspRun {
    std::unique_ptr<sim::InProcessLink> link;
    std::unique_ptr<protocol::stk500v2::IspProgrammer> programmer;
    const targets::Chip* chip = nullptr;
    sim::stk500v2::AvrTarget& target() {
        return dynamic_cast<sim::stk500v2::IspProgrammerDevice&>(link->device()).target();
    }
};

std::unique_ptr<IspRun> open_isp(const std::string& chip, const std::string& faults = {}) {
    auto run = std::make_unique<IspRun>();
    sim::InProcessOptions options;
    options.chip = chip;
    options.faults = faults;
    options.timing = false;
    options.settings = {115200, link::Parity::None};
    run->link = sim::open_in_process("stk500v2-isp", options);
    run->chip = &targets::Knowledge::builtin().chip(chip);
    run->programmer = std::make_unique<protocol::stk500v2::IspProgrammer>(*run->link, *run->chip,
                                                                           targets::Knowledge::builtin(), nullptr);
    run->programmer->sign_on();
    run->programmer->enter_programming();
    return run;
}

plan::InstallRequest request_for(const targets::Chip& chip) {
    const auto& kb = targets::Knowledge::builtin();
    const auto* bootloader = kb.find_bootloader(chip.install_bootloader);
    const auto& install = bootloader->installs.at(chip.name);
    plan::InstallRequest request;
    request.chip = &chip;
    request.bootloader = bootloader->name;
    request.image = image::load_file(install.hex, {});
    request.image_name = install.hex;
    request.fuses = install.fuses;
    request.unlock = install.unlock;
    request.lock = install.lock;
    request.stray_bytes = install.stray_bytes;
    return request;
}

}  // namespace

TEST(Stk500v2Isp, InstallsEachChipsBootloaderWithItsFusesAndLock) {
    for (const char* name : {"atmega2560", "atmega1280", "atmega1284p", "atmega168"}) {
        const auto& chip = targets::Knowledge::builtin().chip(name);
        const auto& install =
            targets::Knowledge::builtin().find_bootloader(chip.install_bootloader)->installs.at(chip.name);
        if (!std::filesystem::exists(install.hex)) GTEST_SKIP() << install.hex << " not installed";
        auto run = open_isp(name);
        auto request = request_for(chip);
        plan::check_install(request, {});
        auto report = plan::install_bootloader(*run->programmer, request, core::Progress());
        EXPECT_TRUE(report.flash_verified) << name;
        const auto& f = run->target().fuses();
        EXPECT_EQ(f.low, install.fuses.at(FuseByte::Low)) << name;
        EXPECT_EQ(f.high, install.fuses.at(FuseByte::High)) << name;
        EXPECT_EQ(f.extended | static_cast<uint8_t>(~chip.fuses->used(FuseByte::Extended)),
                  install.fuses.at(FuseByte::Extended) | static_cast<uint8_t>(~chip.fuses->used(FuseByte::Extended)))
            << name;
        EXPECT_EQ(f.lock & 0x3F, install.lock & 0x3F) << name;
        EXPECT_TRUE(flash_holds(run->link->flash(), request.image)) << name;
        EXPECT_TRUE(run->target().bricked().empty()) << name;
    }
}

TEST(Stk500v2Isp, AFuseWriteThatDoesNotStickIsReportedWithWhatWasWritten) {
    // The lock byte is programmed to mode 2 first: the chip then ignores fuse writes, so the first
    // fuse written does not read back as written.
    auto run = open_isp("atmega2560");
    run->programmer->write(FuseByte::Lock, 0x3E);
    try {
        plan::write_fuses(*run->programmer, *run->chip->fuses,
                          {{FuseByte::Extended, 0xFD}, {FuseByte::High, 0xD8}, {FuseByte::Low, 0xFF}}, core::Progress());
        FAIL() << "a fuse that did not stick was not reported";
    } catch (const core::Error& e) {
        EXPECT_EQ(e.kind(), ErrorKind::VerifyMismatch);
        std::string text = e.what();
        EXPECT_NE(text.find("efuse"), std::string::npos) << text;
    }
    EXPECT_EQ(run->target().fuses().high, 0x99);  // nothing after the failed one was written
}

TEST(Stk500v2Isp, BrickingFusesAreRefusedUnlessForcedTwice) {
    const auto& chip = targets::Knowledge::builtin().chip("atmega168");
    targets::FuseValues rstdisbl{{FuseByte::High, 0x5D}};
    EXPECT_THROW(plan::check_fuses(chip, rstdisbl, {}), core::Error);
    EXPECT_THROW(plan::check_fuses(chip, rstdisbl, {true, false}), core::Error);
    EXPECT_FALSE(plan::check_fuses(chip, rstdisbl, {true, true}).empty());
    // And the simulated chip really is lost when it is written anyway.
    auto run = open_isp("atmega168");
    run->programmer->write(FuseByte::High, 0x5D);
    run->programmer->leave_programming();
    EXPECT_NE(run->target().bricked().find("RSTDISBL"), std::string::npos);
    EXPECT_THROW(run->programmer->enter_programming(), core::Error);
}

TEST(Stk500v2Isp, RandomFaultsInAnInstallEndVerifiedOrReported) {
    const auto& chip = targets::Knowledge::builtin().chip("atmega2560");
    const auto& install = targets::Knowledge::builtin().find_bootloader(chip.install_bootloader)->installs.at(chip.name);
    if (!std::filesystem::exists(install.hex)) GTEST_SKIP() << install.hex << " not installed";
    int succeeded = 0;
    for (int seed = 1; seed <= 8; ++seed) {
        auto spec = "seed=" + std::to_string(seed) + ",rx:corrupt@rate=0.001,tx:drop@rate=0.001";
        std::unique_ptr<IspRun> run;
        try {
            run = open_isp("atmega2560", spec);
            auto request = request_for(chip);
            auto report = plan::install_bootloader(*run->programmer, request, core::Progress());
            ++succeeded;
            EXPECT_TRUE(report.flash_verified);
            EXPECT_TRUE(flash_holds(run->link->flash(), request.image)) << spec;
            EXPECT_EQ(run->target().fuses().high, 0xD8) << spec;
            EXPECT_EQ(run->target().fuses().lock & 0x3F, 0x0F) << spec;
        } catch (const core::Error& e) {
            EXPECT_TRUE(e.kind() == ErrorKind::Timeout || e.kind() == ErrorKind::Protocol ||
                        e.kind() == ErrorKind::VerifyMismatch || e.kind() == ErrorKind::NotFound)
                << spec << ": " << e.what();
        }
    }
    EXPECT_GT(succeeded, 4);
}
