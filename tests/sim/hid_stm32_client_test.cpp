// The STM32 HID bootloader client against its simulator in-process: the F1 build (STM32F103, 2 KiB,
// reports as SET_REPORT) and the F4 build (16 KiB, interrupt OUT endpoint); the result says "not
// verified"; an image below the application start is refused before anything is sent; gaps are
// written blank; a 2 KiB-page F103 gets its last half page; a board that leaves the bus mid-write is
// an I/O error with the hint to restart the bootloader.
#include <gtest/gtest.h>

#include <fmt/format.h>

#include "client_test_support.hpp"
#include "core/error.hpp"
#include "plan/flash_plan.hpp"
#include "protocol/hid_stm32/client.hpp"
#include "sim/hid_stm32/hid_stm32_device.hpp"
#include "sim/usb/in_process_usb.hpp"

using namespace mcuflash;
using core::ErrorKind;
using test::flash_holds;
using test::random_image;

namespace {

using Run = test::UsbRun<protocol::hid_stm32::Client, sim::hid_stm32::HidStm32Device>;

struct Setup {
    std::string sim_chip = "stm32f103xb";
    std::string chip = "stm32f103xb";  // what the client is told ("" = nothing)
    std::string bootloader;            // both sides
    std::string faults;
    bool timing = false;               // the device's program times, in skipped time
};

std::unique_ptr<Run> open(const Setup& s = {}) {
    sim::DeviceOptions options;
    options.timing = s.timing;
    options.bootloader = s.bootloader;
    protocol::ConnectOptions connect;
    connect.chip = s.chip;
    connect.bootloader = s.bootloader;
    return test::usb_run<protocol::hid_stm32::Client, sim::hid_stm32::HidStm32Device>(
        sim::hid_stm32::make_hid_stm32_device(s.sim_chip, options), s.faults, connect);
}

}  // namespace

TEST(HidStm32Client, TheF1BuildLeavesTheApplicationFrom0x08000800) {
    auto run = open();
    auto info = run->client->connect();
    EXPECT_EQ(info.chip, "stm32f103xb");
    EXPECT_EQ(info.bootloader, "hid_stm32");
    EXPECT_EQ(info.app_start, 0x08000800u);
    EXPECT_EQ(info.app_end, 0x08020000u);
    EXPECT_EQ(info.page_size, 1024u);
    EXPECT_FALSE(run->client->capabilities().can_read);
    EXPECT_EQ(run->hid->output_route(), "SET_REPORT on endpoint 0");  // the F1 build has no OUT endpoint
    EXPECT_THROW(run->client->read(0x08000800, 1024), core::Error);
}

TEST(HidStm32Client, FlashesAnF103SaysNotVerifiedAndReboots) {
    auto run = open({.timing = true});
    std::vector<uint8_t> old(0x1F800, 0x5A);
    run->flash().load(0x08000800, old);
    auto img = random_image(0x08000800, 5000, 1);
    plan::FlashReport report;
    std::string error;
    EXPECT_FALSE(test::flash_through_plan(*run->client, img, {}, &report, &error).has_value()) << error;
    EXPECT_TRUE(flash_holds(run->flash(), img));
    // The last page is filled with 0xFF, the pages after it are left as they were.
    for (uint32_t a = 0x08000800 + 5000; a < 0x08000800 + 5 * 1024; ++a) ASSERT_EQ(run->flash().at(a), 0xFF) << a;
    EXPECT_EQ(run->flash().at(0x08000800 + 5 * 1024), 0x5A);
    EXPECT_FALSE(report.verified);
    EXPECT_NE(report.not_verified.find("not verified"), std::string::npos) << report.not_verified;
    EXPECT_TRUE(report.started);
    EXPECT_EQ(run->client->pages_sent(), 5u);
    EXPECT_EQ(run->device().pages_written(), 5u);
    EXPECT_TRUE(run->device().rebooted());
    run->usb->pause(std::chrono::milliseconds(50));
    EXPECT_FALSE(run->usb->present());
    test::expect_bootloader_untouched(run->flash());
}

TEST(HidStm32Client, RefusesAnImageBelowTheApplicationStartBeforeSendingAnything) {
    auto run = open();
    auto img = random_image(0x08000000, 4096, 2);
    auto kind = test::flash_through_plan(*run->client, img);
    ASSERT_TRUE(kind.has_value());
    EXPECT_EQ(*kind, ErrorKind::Unsafe);
    EXPECT_FALSE(run->device().started());
    EXPECT_EQ(run->device().pages_written(), 0u);
    test::expect_bootloader_untouched(run->flash());
    // The client refuses it too when asked directly.
    auto direct = open();
    direct->client->connect();
    std::vector<uint8_t> page(1024, 0);
    EXPECT_THROW(direct->client->write(0x08000400, page), core::Error);
    EXPECT_FALSE(direct->device().started());
}

TEST(HidStm32Client, TheF4BuildUsesItsOutEndpointAndStartsAt16K) {
    auto run = open({.sim_chip = "stm32f407xg", .chip = "stm32f407xg", .timing = true});
    auto img = random_image(0x08004000, 150000, 3);  // across the 16 KiB, 64 KiB and a 128 KiB sector
    std::vector<uint8_t> old(0x40000, 0x33);
    run->flash().load(0x08004000, old);
    std::string error;
    auto info = run->client->connect();
    EXPECT_EQ(info.app_start, 0x08004000u);
    EXPECT_EQ(run->hid->output_route(), "interrupt OUT endpoint 01");
    EXPECT_FALSE(test::flash_through_plan(*run->client, img, {}, nullptr, &error).has_value()) << error;
    EXPECT_TRUE(flash_holds(run->flash(), img));
    EXPECT_EQ(run->client->pages_sent(), 147u);
    test::expect_bootloader_untouched(run->flash());
}

TEST(HidStm32Client, AGapIsWrittenBlankBecauseThePagesGoInOrder) {
    auto run = open();
    std::vector<uint8_t> old(0x4000, 0x5A);
    run->flash().load(0x08000800, old);
    image::Image img;
    img.add(0x08000800, std::vector<uint8_t>(1000, 0x11), "a");
    img.add(0x08002000, std::vector<uint8_t>(1000, 0x22), "b");
    std::string error;
    EXPECT_FALSE(test::flash_through_plan(*run->client, img, {}, nullptr, &error).has_value()) << error;
    EXPECT_TRUE(flash_holds(run->flash(), img));
    EXPECT_EQ(run->client->gap_pages(), 5u);  // 0x0C00-0x1FFF
    for (uint32_t a = 0x08000C00; a < 0x08002000; ++a) ASSERT_EQ(run->flash().at(a), 0xFF) << a;
}

TEST(HidStm32Client, AHighDensityF103GetsItsLastHalfPage) {
    // 2 KiB pages: the device acks 0x03 and writes only when 2 KiB came; 3 KiB of image needs a
    // blank fourth KiB, or the last KiB stays in the device's buffer.
    auto run = open({.sim_chip = "stm32f103xe", .chip = "stm32f103xe"});
    auto img = random_image(0x08000800, 3000, 4);
    std::string error;
    EXPECT_FALSE(test::flash_through_plan(*run->client, img, {}, nullptr, &error).has_value()) << error;
    EXPECT_TRUE(flash_holds(run->flash(), img));
    EXPECT_EQ(run->device().buffer_size(), 2048u);
    EXPECT_EQ(run->client->pages_sent(), 4u);
    EXPECT_EQ(run->device().pages_written(), 2u);
}

TEST(HidStm32Client, The16KiBF103BuildIsChosenWithBootloader) {
    auto run = open({.sim_chip = "stm32f103xe", .chip = "stm32f103xe", .bootloader = "hid_stm32_16k"});
    auto info = run->client->connect();
    EXPECT_EQ(info.app_start, 0x08004000u);
    auto img = random_image(0x08004000, 4096, 5);
    EXPECT_FALSE(test::flash_through_plan(*run->client, img).has_value());
    EXPECT_TRUE(flash_holds(run->flash(), img));
    test::expect_bootloader_untouched(run->flash());
    auto below = open({.sim_chip = "stm32f103xe", .chip = "stm32f103xe", .bootloader = "hid_stm32_16k"});
    EXPECT_EQ(test::flash_through_plan(*below->client, random_image(0x08000800, 4096, 5)), ErrorKind::Unsafe);
}

TEST(HidStm32Client, WithoutAChipTheBuildIsToldFromEndpointZero) {
    auto f1 = open({.chip = ""});
    EXPECT_EQ(f1->client->connect().app_start, 0x08000800u);
    ASSERT_FALSE(f1->warnings.empty());
    EXPECT_NE(f1->warnings.front().find("assuming an stm32f103x8"), std::string::npos) << f1->warnings.front();
    auto f4 = open({.sim_chip = "stm32f446xe", .chip = ""});
    const auto f4_info = f4->client->connect();
    EXPECT_EQ(f4_info.app_start, 0x08004000u);
    EXPECT_EQ(f4_info.chip, "stm32f401xc");
}

TEST(HidStm32Client, WithoutAChipAnImageLargerThanTheSmallestChipIsRefusedBeforeAnyWrite) {
    // The bootloader cannot be read back: an image past 64 KiB on a guessed F103 could be written
    // past the end of a Blue Pill's flash and still end in "written". A campaign run (--interrupt,
    // seed 1275622451) sent 64,415 bytes at 0x08000800 to a 64 KiB chip that way.
    auto guessed = open({.sim_chip = "stm32f103x8", .chip = ""});
    const auto info = guessed->client->connect();
    EXPECT_EQ(info.app_end, 0x08010000u);
    const auto img = random_image(0x08000800, 64415, 9);
    const std::vector<uint8_t> before(guessed->flash().contents().begin(), guessed->flash().contents().end());
    std::string error;
    EXPECT_EQ(test::flash_through_plan(*guessed->client, img, {}, nullptr, &error), ErrorKind::Unsafe);
    EXPECT_NE(error.find("0x0800FFFF"), std::string::npos) << error;  // where the smallest chip ends
    EXPECT_TRUE(std::equal(before.begin(), before.end(), guessed->flash().contents().begin()))
        << "pages were written for an image that does not fit";
    // Told the chip, the same image goes to a 128 KiB one.
    auto told = open({.sim_chip = "stm32f103xb", .chip = "stm32f103xb"});
    told->client->connect();
    EXPECT_FALSE(test::flash_through_plan(*told->client, img).has_value());
    EXPECT_TRUE(flash_holds(told->flash(), img));
}

TEST(HidStm32Client, ABoardThatLeavesTheBusMidWriteIsAnIoErrorWithTheHint) {
    auto run = open({.faults = "vanish@40"});
    auto img = random_image(0x08000800, 20000, 6);
    try {
        auto info = run->client->connect();
        auto plan = plan::make_plan(img, info, run->client->capabilities(), {});
        plan::execute(*run->client, plan, {}, core::Progress());
        FAIL() << "flashing a vanished device succeeded";
    } catch (const core::Error& e) {
        EXPECT_EQ(e.kind(), ErrorKind::Io) << e.what();
        EXPECT_NE(e.hint().find("BOOT"), std::string::npos) << e.hint();
        EXPECT_NE(e.hint().find("left the bus"), std::string::npos) << e.hint();
    }
    test::expect_bootloader_untouched(run->flash());
}

TEST(HidStm32Client, AStalledReportEndsTheSessionWithTheHalfWrittenPageHint) {
    // The device gets 15 reports of a page (the 16th stalls): no ack comes.
    auto direct = open({.faults = "stall@20"});
    direct->client->connect();
    std::vector<uint8_t> page(1024, 0x42);
    try {
        direct->client->write(0x08000800, page);
        FAIL() << "a stalled report went unnoticed";
    } catch (const core::Error& e) {
        EXPECT_EQ(e.kind(), ErrorKind::Protocol) << e.what();
        EXPECT_NE(e.hint().find("half written"), std::string::npos) << e.hint();
    }
}

TEST(HidStm32Client, AFailedRequestForTheDeviceDescriptorIsAskedAgain) {
    // Without --chip, transfer 2 reads the device descriptor, which tells the F1 build from the F4
    // one: a stall or a timeout there once ended in "give it with --chip" (a fault campaign run).
    for (const char* faults : {"stall@2", "timeout@2", "stall@2,timeout@3"}) {
        auto run = open({.chip = "", .faults = faults});
        EXPECT_EQ(run->client->connect().chip, "stm32f103x8") << faults;
        EXPECT_GT(run->usb->transfers(), 3u) << faults << ": the faulted transfers were never made";
    }
    auto hopeless = open({.chip = "", .faults = "stall@2,stall@3,stall@4"});
    try {
        hopeless->client->connect();
        FAIL() << "the build was told without its descriptor";
    } catch (const core::Error& e) {
        EXPECT_NE(std::string(e.what()).find("could not be read"), std::string::npos) << e.what();
    }
}

TEST(HidStm32Client, AnF103LeftMidPageByAnInterruptedSessionStillGetsEveryPageInPlace) {
    // The F103 build takes a command only at the start of its page buffer: a session stopped after
    // some reports of a page (Ctrl-C, SIGKILL, a pulled cable) leaves it part-filled. The next flash
    // must still put every page where it belongs (this bootloader cannot be read back to check).
    for (const char* chip : {"stm32f103xb", "stm32f103xe"}) {  // 1 KiB and 2 KiB page buffers
        const uint32_t buffer_reports = std::string(chip) == "stm32f103xe" ? 32 : 16;
        for (uint32_t left : {0u, 1u, 5u, buffer_reports - 1, buffer_reports / 2 - 1}) {
            SCOPED_TRACE(fmt::format("{}, {} reports of a page left in its buffer", chip, left));
            auto run = open({.sim_chip = chip, .chip = chip});
            run->client->connect();
            run->client->write(0x08000800, std::vector<uint8_t>(2048, 0x33));  // an earlier session
            for (uint32_t i = 0; i < left; ++i) run->hid->write_report(std::vector<uint8_t>(64, 0x44), 1000);
            protocol::ConnectOptions connect;
            connect.chip = chip;
            protocol::hid_stm32::Client again(*run->hid, connect);
            auto img = random_image(0x08000800, 6000, 50 + left);
            std::string error;
            EXPECT_FALSE(test::flash_through_plan(again, img, {}, nullptr, &error).has_value()) << error;
            EXPECT_TRUE(flash_holds(run->flash(), img));
            test::expect_bootloader_untouched(run->flash());
        }
    }
}

TEST(HidStm32Client, RefusesAnotherDevice) {
    sim::DeviceOptions options;
    options.timing = false;
    sim::usb::InProcessUsb usb(sim::hid_stm32::make_hid_stm32_device("stm32f103xb", options), false);
    // The right device: fine; the simulator refuses a chip it has no build for.
    EXPECT_THROW(sim::hid_stm32::make_hid_stm32_device("atmega328p", options), core::Error);
    protocol::ConnectOptions connect;
    connect.chip = "atmega328p";
    link::UsbHidDevice hid(usb);
    protocol::hid_stm32::Client client(hid, connect);
    try {
        client.connect();
        FAIL();
    } catch (const core::Error& e) {
        EXPECT_EQ(e.kind(), ErrorKind::Unsupported) << e.what();
    }
}

TEST(HidStm32Client, AMissingAcknowledgementIsATimeoutWithTheHint) {
    // Which transfer the first page's ack is: after connect, "reset pages" and its ack twice (the
    // F103 build's start of a session), then 16 reports.
    auto probe = open();
    probe->client->connect();
    const uint64_t ack_transfer = probe->usb->transfers() + 20;
    auto run = open({.faults = fmt::format("timeout@{}", ack_transfer)});
    run->client->connect();
    std::vector<uint8_t> page(1024, 0x42);
    try {
        run->client->write(0x08000800, page);
        FAIL() << "a lost acknowledgement went unnoticed";
    } catch (const core::Error& e) {
        EXPECT_EQ(e.kind(), ErrorKind::Timeout) << e.what();
        EXPECT_NE(e.full_message().find("acknowledgement"), std::string::npos) << e.full_message();
        EXPECT_NE(e.hint().find("half written"), std::string::npos) << e.hint();
    }
}
