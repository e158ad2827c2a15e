// The Katapult client against the Katapult simulator in-process: clean flashes on every chip model
// and block size, the MCU check, and faults (lost and damaged bytes both ways, busy answers, resets
// mid-transfer, an unplugged board): a verified flash or a clear error, never success with wrong
// flash, and never a write below the application start.
#include <fmt/format.h>
#include <gtest/gtest.h>

#include "client_test_support.hpp"
#include "protocol/katapult/client.hpp"
#include "sim/in_process_link.hpp"
#include "sim/katapult/katapult_device.hpp"
#include "targets/knowledge.hpp"

using namespace mcuflash;
using core::ErrorKind;
using sim::katapult::KatapultConfig;
using sim::katapult::KatapultDevice;
using test::flash_holds;
using test::random_image;

namespace {

constexpr uint8_t kMarker = 0xA5;  // what the application area holds before a test flashes

struct Run {
    std::unique_ptr<sim::InProcessLink> link;
    std::unique_ptr<protocol::katapult::Client> client;
    std::vector<std::string> warnings;
    std::string error;
    KatapultDevice& device() { return dynamic_cast<KatapultDevice&>(link->device()); }
    sim::FlashMemory& flash() { return link->flash(); }
};

std::unique_ptr<Run> open(const std::string& chip, KatapultConfig config = {}, const std::string& faults = {},
                          const std::string& expect_chip = {}, bool timing = false) {
    auto run = std::make_unique<Run>();
    const auto& kb = targets::Knowledge::builtin();
    sim::DeviceOptions options;
    options.timing = timing;
    auto device = std::make_unique<KatapultDevice>(kb.chip(chip), *kb.find_bootloader("katapult"), options, config);
    // An older application everywhere above the bootloader, so that a missed erase shows.
    const uint32_t app = device->app_start();
    std::vector<uint8_t> old(static_cast<size_t>(device->flash().end() - app), kMarker);
    device->flash().load(app, old);
    run->link = std::make_unique<sim::InProcessLink>(std::move(device), sim::FaultInjector(sim::FaultSpec::parse(faults)),
                                                     sim::LinkBehaviour{timing, false, {250000, link::Parity::None}});
    protocol::ConnectOptions connect;
    connect.chip = expect_chip;
    connect.warn = [r = run.get()](const std::string& w) { r->warnings.push_back(w); };
    run->client = std::make_unique<protocol::katapult::Client>(*run->link, connect);
    return run;
}

std::optional<ErrorKind> flash(Run& run, const image::Image& img, plan::FlashReport* report = nullptr) {
    return test::flash_through_plan(*run.client, img, {}, report, &run.error);
}

// A faulty run ends verified with the image in flash, or with a clear error; and in every case the
// bootloader is untouched.
void expect_honest(Run& run, const image::Image& img, std::optional<ErrorKind> outcome, const std::string& label) {
    SCOPED_TRACE(label);
    test::expect_bootloader_untouched(run.flash());
    if (!outcome) {
        EXPECT_TRUE(flash_holds(run.flash(), img)) << "success reported with wrong flash";
        return;
    }
    EXPECT_TRUE(*outcome == ErrorKind::Timeout || *outcome == ErrorKind::Protocol ||
                *outcome == ErrorKind::VerifyMismatch || *outcome == ErrorKind::Io || *outcome == ErrorKind::NotFound)
        << run.error;
}

}  // namespace

TEST(KatapultClient, FlashesAndVerifiesOnEachFlashModel) {
    // STM32 pages (F1 1-2 KiB, G0 2 KiB), STM32F4 sectors, the RP2040's page buffer.
    for (std::string chip : {"stm32f103xe", "stm32g0b1xb", "stm32f407xg", "rp2040", "lpc1768"}) {
        SCOPED_TRACE(chip);
        auto run = open(chip);
        const uint32_t app = run->device().app_start();
        auto img = random_image(app, 20003, 7);
        plan::FlashReport report;
        ASSERT_FALSE(flash(*run, img, &report)) << run->error;
        EXPECT_TRUE(flash_holds(*run->link, img));
        test::expect_bootloader_untouched(run->flash());
        EXPECT_TRUE(report.verified);
        EXPECT_EQ(report.verify_method, "read back");
        EXPECT_TRUE(report.started);
        run->link->pause(std::chrono::milliseconds(200));
        run->link->line().advance(run->link->clock().now());
        EXPECT_FALSE(run->device().in_bootloader()) << "COMPLETE starts the application";
        ASSERT_TRUE(run->client->pages_written());
        EXPECT_GT(*run->client->pages_written(), 0u);
        // The tail of the last block is padded with 0xFF, as flashtool.py pads it.
        EXPECT_EQ(run->flash().at(app + 20003), 0xFF);
    }
}

TEST(KatapultClient, EveryBlockSizeTheDeviceMayAnnounce) {
    for (uint32_t block : {64u, 128u, 256u, 512u})
        for (std::string chip : {"stm32f103xe", "rp2040"}) {
            SCOPED_TRACE(chip + " block " + std::to_string(block));
            KatapultConfig config;
            config.block_size = block;
            auto run = open(chip, config);
            auto info = run->client->connect();
            EXPECT_EQ(info.page_size, block);
            auto img = random_image(run->device().app_start(), 9000, block);
            ASSERT_FALSE(flash(*run, img)) << run->error;
            EXPECT_TRUE(flash_holds(*run->link, img));
            test::expect_bootloader_untouched(run->flash());
        }
}

TEST(KatapultClient, ReflashingOverAnOlderApplication) {
    auto run = open("stm32f103xe");
    const uint32_t app = run->device().app_start();
    auto first = random_image(app, 30000, 1);
    ASSERT_FALSE(flash(*run, first)) << run->error;
    run->link->reopen();  // the board enters Katapult again
    auto second = random_image(app, 12345, 2);
    ASSERT_FALSE(flash(*run, second)) << run->error;
    EXPECT_TRUE(flash_holds(*run->link, second));
}

TEST(KatapultClient, AnImageAboveTheApplicationStartStreamsFromItsEraseUnit) {
    auto run = open("stm32f103xe");
    const uint32_t app = run->device().app_start();
    auto img = random_image(app + 0x1000 + 0x140, 5000, 3);  // inside a page, past old contents
    ASSERT_FALSE(flash(*run, img)) << run->error;
    EXPECT_TRUE(flash_holds(*run->link, img));
    EXPECT_EQ(run->flash().at(app), kMarker) << "pages below the image's page are left alone";
}

TEST(KatapultClient, RefusesAnImageBelowTheApplicationStart) {
    auto run = open("stm32f103xe");
    auto img = random_image(0x08001000, 8192, 4);  // into Katapult's 8 KiB
    EXPECT_EQ(flash(*run, img), ErrorKind::Unsafe);
    EXPECT_EQ(run->flash().counters().programs, 0u);
    test::expect_bootloader_untouched(run->flash());
    EXPECT_NE(run->error.find("0x08002000"), std::string::npos) << run->error;
}

TEST(KatapultClient, ChecksTheMcuKatapultReports) {
    // Katapult says "stm32f103xe" on every F103: an F103C8 board given as such is fine.
    auto ok = open("stm32f103x8", {}, {}, "stm32f103x8");
    auto info = ok->client->connect();
    EXPECT_EQ(info.chip, "stm32f103x8");
    EXPECT_EQ(info.app_start, 0x08002000u);
    auto wrong = open("stm32f103xe", {}, {}, "stm32f407xg");
    try {
        wrong->client->connect();
        FAIL() << "an STM32F103 accepted as an STM32F407";
    } catch (const core::Error& e) {
        EXPECT_EQ(e.kind(), ErrorKind::Usage);
        EXPECT_NE(std::string(e.what()).find("stm32f103xe"), std::string::npos) << e.what();
    }
    // "stm32g0b1xx": any size; the smaller one is taken, with a warning.
    auto g0 = open("stm32g0b1xe");
    EXPECT_EQ(g0->client->connect().chip, "stm32g0b1xb");
    EXPECT_FALSE(g0->warnings.empty());
    KatapultConfig unknown;
    unknown.mcu = "gd32f303xx";
    auto alien = open("stm32f103xe", unknown);
    EXPECT_THROW(alien->client->connect(), core::Error);
}

TEST(KatapultClient, TheChipsOwnFlashSizeRegisterTellsWhichF103ItIs) {
    // Katapult says "stm32f103xe" on every F103; the flash size register (read with REQUEST_BLOCK)
    // tells the Blue Pill's 64 KiB from the 512 KiB of an F103RE, with no --chip.
    for (const char* chip : {"stm32f103x8", "stm32f103xb", "stm32f103xe"}) {
        auto run = open(chip);
        const auto info = run->client->connect();
        EXPECT_EQ(info.chip, chip);
        EXPECT_EQ(info.app_end, 0x08000000u + targets::Knowledge::builtin().chip(chip).flash_size) << chip;
    }
    // An image too large for the Blue Pill is refused before anything is written (it used to go
    // out until Katapult refused the block past the flash end).
    auto small = open("stm32f103x8");
    EXPECT_EQ(flash(*small, random_image(0x08002000, 60 * 1024, 40)), ErrorKind::Unsafe);
    EXPECT_EQ(small->flash().counters().programs, 0u);
    EXPECT_EQ(small->flash().counters().erases, 0u);
}

TEST(KatapultClient, ReadOnlyUseLeavesTheBoardInKatapult) {
    auto run = open("rp2040");
    auto info = run->client->connect();
    EXPECT_EQ(info.bootloader, "katapult");
    EXPECT_EQ(info.app_start, 0x10004000u);
    auto bytes = run->client->read(info.app_start + 10, 300);
    EXPECT_EQ(bytes, std::vector<uint8_t>(300, kMarker));
    run->client->leave();
    EXPECT_TRUE(run->device().in_bootloader());
    EXPECT_EQ(run->client->canbus_uuid(), std::nullopt) << "a USB/UART build has no CAN UUID";
}

TEST(KatapultClient, CanbusIdOfACanBuild) {
    KatapultConfig config;
    config.canbus_uuid = 0x0A1B2C3D4E5Full;
    auto run = open("stm32f103xe", config);
    run->client->connect();
    EXPECT_EQ(run->client->canbus_uuid(), 0x0A1B2C3D4E5Full);
}

TEST(KatapultClient, NothingAnswering) {
    auto run = open("stm32f103xe");
    run->link->device().reset(sim::ResetCause::PowerOn, run->link->clock().now());  // a valid app: it runs
    try {
        run->client->connect();
        FAIL() << "connected to an application";
    } catch (const core::Error& e) {
        EXPECT_EQ(e.kind(), ErrorKind::NotFound);
        EXPECT_NE(e.hint().find("double-press"), std::string::npos) << e.hint();
    }
}

TEST(KatapultClient, BusyAnswersAreWaitedOut) {
    KatapultConfig config;
    config.busy_every = 5;
    auto run = open("stm32f103xe", config);
    auto img = random_image(run->device().app_start(), 8000, 5);
    ASSERT_FALSE(flash(*run, img)) << run->error;
    EXPECT_TRUE(flash_holds(*run->link, img));
    EXPECT_GT(run->client->stats().busy, 10u);
}

TEST(KatapultClient, AnswersLostOrDamagedOnTheWayBack) {
    // The device is fine; the client retries, and a retried SEND_BLOCK meets its block in place.
    std::string outcomes;
    for (unsigned seed = 1; seed <= 6; ++seed)
        for (std::string chip : {"stm32f103xe", "rp2040"}) {
            auto faults = fmt::format("seed={},tx:drop@rate=0.0004,tx:corrupt@rate=0.0004", seed);
            auto run = open(chip, {}, faults);
            auto img = random_image(run->device().app_start(), 12000, seed);
            auto outcome = flash(*run, img);
            expect_honest(*run, img, outcome, chip + " " + faults);
            outcomes += outcome ? "E" : "v";
        }
    EXPECT_NE(outcomes.find('v'), std::string::npos) << "no faulty run recovered: " << outcomes;
}

TEST(KatapultClient, AFrameDamagedOnTheWayInStopsKatapult) {
    // Katapult's parser never drops a damaged frame's header (command.c): it stops taking commands.
    // The client gives up with a clear error; nothing past that frame is written.
    auto run = open("stm32f103xe", {}, "rx:corrupt@byte=2000:mask=0x10");
    auto img = random_image(run->device().app_start(), 12000, 8);
    auto outcome = flash(*run, img);
    ASSERT_TRUE(outcome);
    EXPECT_EQ(*outcome, ErrorKind::Timeout) << run->error;
    EXPECT_TRUE(run->device().stats().wedged);
    EXPECT_NE(run->error.find("SEND_BLOCK"), std::string::npos) << run->error;
    test::expect_bootloader_untouched(run->flash());
}

TEST(KatapultClient, LostAndDamagedBytesWithAParserThatResynchronises) {
    KatapultConfig config;
    config.skip_damaged_frames = true;
    std::string outcomes;
    for (unsigned seed = 1; seed <= 6; ++seed) {
        auto faults = fmt::format("seed={},rx:drop@rate=0.0003,rx:corrupt@rate=0.0003", seed);
        auto run = open("stm32f103xe", config, faults);
        auto img = random_image(run->device().app_start(), 12000, seed);
        auto outcome = flash(*run, img);
        expect_honest(*run, img, outcome, faults);
        outcomes += outcome ? "E" : "v";
    }
    EXPECT_NE(outcomes.find('v'), std::string::npos) << outcomes;
}

TEST(KatapultClient, ResetMidTransfer) {
    for (std::string chip : {"stm32f103xe", "rp2040"})
        for (std::string cause : {"power", "pin"}) {
            // power: the half-written application is "valid" and starts; pin: Katapult starts afresh
            // (and the RP2040 loses the page it was gathering).
            auto faults = "rx:reset@byte=6000:cause=" + cause;
            auto run = open(chip, {}, faults);
            auto img = random_image(run->device().app_start(), 16000, 9);
            auto outcome = flash(*run, img);
            expect_honest(*run, img, outcome, chip + " " + faults);
            if (cause == "power") {
                ASSERT_TRUE(outcome);
                EXPECT_EQ(*outcome, ErrorKind::Timeout);
                EXPECT_NE(run->error.find("no answer"), std::string::npos) << run->error;
            }
        }
}

TEST(KatapultClient, UnpluggedMidTransfer) {
    auto run = open("stm32f103xe", {}, "tx:disconnect@byte=3000");
    auto img = random_image(run->device().app_start(), 16000, 10);
    auto outcome = flash(*run, img);
    ASSERT_TRUE(outcome);
    EXPECT_TRUE(*outcome == ErrorKind::Io || *outcome == ErrorKind::Timeout) << run->error;
    test::expect_bootloader_untouched(run->flash());
}

TEST(KatapultClient, WithWireAndFlashTiming) {
    auto run = open("stm32f103xe", {}, {}, {}, true);
    auto img = random_image(run->device().app_start(), 3000, 11);
    ASSERT_FALSE(flash(*run, img)) << run->error;
    EXPECT_TRUE(flash_holds(*run->link, img));
}
