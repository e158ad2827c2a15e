// The HalfKay client against the HalfKay simulator in-process (a Teensy++ 2.0, at90usb1286): the
// first block erases the application area, blank blocks are skipped, the result says "not verified",
// the boot block is never touched; and the failures: a stalled report, a report lost (no answer), a
// Teensy that leaves the bus mid-write, a device of the wrong kind.
#include <gtest/gtest.h>

#include "client_test_support.hpp"
#include "core/error.hpp"
#include "plan/flash_plan.hpp"
#include "protocol/halfkay/client.hpp"
#include "sim/halfkay/halfkay_device.hpp"
#include "sim/usb/in_process_usb.hpp"

using namespace mcuflash;
using core::ErrorKind;
using test::flash_holds;
using test::random_image;

namespace {

using Run = test::UsbRun<protocol::halfkay::Client, sim::halfkay::HalfKayDevice>;

// `timing`: the device's erase and program times, in skipped (simulated) time.
std::unique_ptr<Run> open(const std::string& faults = {}, bool timing = false, const std::string& chip = {}) {
    sim::DeviceOptions options;
    options.timing = timing;
    protocol::ConnectOptions connect;
    connect.chip = chip;
    return test::usb_run<protocol::halfkay::Client, sim::halfkay::HalfKayDevice>(
        sim::halfkay::make_halfkay_device("at90usb1286", options), faults, connect);
}

}  // namespace

TEST(HalfKayClient, IdentifiesTheTeensyPlusPlus2) {
    auto run = open();
    auto info = run->client->connect();
    EXPECT_EQ(info.chip, "at90usb1286");
    EXPECT_EQ(info.bootloader, "halfkay");
    EXPECT_EQ(info.app_start, 0u);
    EXPECT_EQ(info.app_end, 130048u);
    EXPECT_EQ(info.page_size, 256u);
    EXPECT_FALSE(run->client->capabilities().can_read);
    EXPECT_THROW(run->client->read(0, 256), core::Error);
}

TEST(HalfKayClient, FlashesSaysNotVerifiedAndBoots) {
    auto run = open();
    // Old firmware everywhere: the first block must erase it all.
    std::vector<uint8_t> old(130048, 0x5A);
    run->flash().load(0, old);
    auto img = random_image(0, 40000, 1);
    plan::FlashReport report;
    std::string error;
    EXPECT_FALSE(test::flash_through_plan(*run->client, img, {}, &report, &error).has_value()) << error;
    EXPECT_TRUE(flash_holds(run->flash(), img));
    for (uint32_t a = 40000; a < 130048; ++a) ASSERT_EQ(run->flash().at(a), 0xFF) << "old byte left at " << a;
    EXPECT_FALSE(report.verified);
    EXPECT_NE(report.not_verified.find("not verified"), std::string::npos) << report.not_verified;
    EXPECT_TRUE(report.started);
    EXPECT_TRUE(run->device().booted());
    run->usb->pause(std::chrono::milliseconds(50));
    EXPECT_FALSE(run->usb->present());  // the application runs: the Teensy left the bus
    EXPECT_EQ(run->flash().counters().erases, 508u);  // the first block erased the application area
    test::expect_bootloader_untouched(run->flash());
}

TEST(HalfKayClient, SkipsBlankBlocksAfterTheFirstAndAlwaysStartsWithBlockZero) {
    auto run = open();
    image::Image img;
    std::vector<uint8_t> data(256 * 4, 0xFF);
    data[256 * 3] = 0x12;  // only the fourth block holds anything
    img.add(0x1000, data, "test");
    EXPECT_FALSE(test::flash_through_plan(*run->client, img).has_value());
    EXPECT_TRUE(flash_holds(run->flash(), img));
    // Block 0 (the erase), then the one block that is not blank.
    EXPECT_EQ(run->client->blocks_sent(), 2u);
    EXPECT_EQ(run->client->blocks_skipped(), 3u);
    EXPECT_EQ(run->device().blocks_written(), 2u);
}

TEST(HalfKayClient, RefusesAnImageReachingTheBootBlock) {
    auto run = open();
    auto img = random_image(129024, 2048, 2);  // 0x1F800..0x1FFFF: HalfKay's 1 KiB at the top
    auto kind = test::flash_through_plan(*run->client, img);
    ASSERT_TRUE(kind.has_value());
    EXPECT_EQ(*kind, ErrorKind::Unsafe);
    EXPECT_FALSE(run->device().erased());  // nothing was sent
    test::expect_bootloader_untouched(run->flash());
}

TEST(HalfKayClient, ALostReportIsSentAgain) {
    // Transfers 0 and 1 read the configuration descriptor (the HID link finds the interface), 2 is the
    // report descriptor; 3 the first block, 4 the second: lost (never answered).
    auto run = open("timeout@4");
    auto img = random_image(0, 5000, 3);
    std::string error;
    EXPECT_FALSE(test::flash_through_plan(*run->client, img, {}, nullptr, &error).has_value()) << error;
    EXPECT_TRUE(flash_holds(run->flash(), img));
    ASSERT_FALSE(run->warnings.empty());
    EXPECT_NE(run->warnings.front().find("sending it again"), std::string::npos) << run->warnings.front();
}

TEST(HalfKayClient, AStalledReportIsSentAgain) {
    auto run = open("stall@3");  // the first block
    auto img = random_image(0, 3000, 4);
    EXPECT_FALSE(test::flash_through_plan(*run->client, img).has_value());
    EXPECT_TRUE(flash_holds(run->flash(), img));
    ASSERT_EQ(run->warnings.size(), 1u);
    EXPECT_NE(run->warnings.front().find("stalled"), std::string::npos) << run->warnings.front();
}

TEST(HalfKayClient, ATeensyThatKeepsStallingFailsWithWhereItStopped) {
    auto run = open("stall@5,stall@6,stall@7,stall@8");  // the third block, four times
    auto img = random_image(0, 5000, 5);
    std::string error;
    auto kind = test::flash_through_plan(*run->client, img, {}, nullptr, &error);
    ASSERT_TRUE(kind.has_value());
    EXPECT_EQ(*kind, ErrorKind::Protocol);
    EXPECT_NE(error.find("stalled"), std::string::npos) << error;
    test::expect_bootloader_untouched(run->flash());
}

TEST(HalfKayClient, ATeensyThatLeavesTheBusMidWriteIsAnIoErrorWithTheButtonHint) {
    auto run = open("vanish@12");
    auto img = random_image(0, 20000, 6);
    try {
        auto info = run->client->connect();
        auto plan = plan::make_plan(img, info, run->client->capabilities(), {});
        plan::execute(*run->client, plan, {}, core::Progress());
        FAIL() << "flashing a vanished device succeeded";
    } catch (const core::Error& e) {
        EXPECT_EQ(e.kind(), ErrorKind::Io) << e.what();
        EXPECT_NE(e.hint().find("press the button on the Teensy"), std::string::npos) << e.hint();
    }
    test::expect_bootloader_untouched(run->flash());
}

TEST(HalfKayClient, TheFirstBlockWaitsForTheChipErase) {
    // The device's timing on, in skipped time: the first block's status stage waits for the erase of
    // 508 pages at 4 ms (about 2 s), so a 1 s limit is too short and the device is still busy after;
    // the next block waits for the erase to end, then goes through.
    auto run = open({}, true);
    run->client->connect();
    std::vector<uint8_t> block(258, 0x11);
    block[0] = block[1] = 0;
    EXPECT_THROW(run->usb->control_out({0x21, 9, 0x0200, 0, 258}, block, 1000), core::Error);
    EXPECT_TRUE(run->device().erased());
    block[0] = 1;  // 0x100
    EXPECT_NO_THROW(run->usb->control_out({0x21, 9, 0x0200, 0, 258}, block, 1500));
    EXPECT_EQ(run->flash().at(0x100), 0x11);
    // The client's own first-block limit covers the erase.
    auto again = open({}, true);
    auto img = random_image(0, 512, 7);
    EXPECT_FALSE(test::flash_through_plan(*again->client, img).has_value());
    EXPECT_TRUE(flash_holds(again->flash(), img));
}

TEST(HalfKayClient, TheReportDescriptorGivesTheReportSize) {
    // The Teensy++ 2.0 says 258 bytes; the atmega32u4 (Teensy 2.0) would take 130.
    auto run = open({}, false, "at90usb1286");
    auto info = run->client->connect();
    EXPECT_EQ(info.chip, "at90usb1286");
    const auto* t2 = protocol::halfkay::find_teensy("atmega32u4");
    ASSERT_NE(t2, nullptr);
    EXPECT_EQ(t2->report_size(), 130u);
    auto d = run->device().report_descriptor();
    EXPECT_EQ(protocol::halfkay::output_report_bytes(d), std::optional<uint32_t>(258));
}

TEST(HalfKayClient, ReportsOfTheWrongSizeAreStalledByTheDevice) {
    auto run = open();
    run->client->connect();
    std::vector<uint8_t> report(130, 0);
    EXPECT_THROW(run->usb->control_out({0x21, 9, 0x0200, 0, 130}, report, 1000), core::Error);
    EXPECT_FALSE(run->device().erased());
}
