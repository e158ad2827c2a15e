// The DFU client against the DFU simulators in-process: ST's ROM DfuSe (STM32F0/F4) and the
// stm32duino bootloader (plain DFU), clean and with the failures the field knows: a device left in
// dfuERROR, a stall mid-download, a device that vanishes, a leave that drops the bus.
#include <gtest/gtest.h>

#include <csignal>
#include <cstring>

#include <random>

#include "client_test_support.hpp"
#include "core/error.hpp"
#include "core/interrupt.hpp"
#include "plan/flash_plan.hpp"
#include "protocol/dfu/client.hpp"
#include "sim/dfu/dfu_device.hpp"
#include "sim/dfu/simulator.hpp"
#include "sim/usb/in_process_usb.hpp"

using namespace mcuflash;
using test::flash_holds;
using test::random_image;
using core::ErrorKind;

namespace {


struct Run {
    std::unique_ptr<sim::usb::InProcessUsb> usb;
    std::unique_ptr<protocol::dfu::Client> client;
    std::vector<std::string> warnings;
    sim::dfu::DfuDevice& device() { return dynamic_cast<sim::dfu::DfuDevice&>(usb->model()); }
    sim::FlashMemory& flash() { return usb->model().flash(); }
};

std::unique_ptr<Run> open(const std::string& chip, const std::string& faults = {}) {
    auto run = std::make_unique<Run>();
    sim::DeviceOptions options;
    options.timing = false;
    run->usb = std::make_unique<sim::usb::InProcessUsb>(sim::dfu::make_dfu_device(chip, options), false,
                                                        sim::usb::UsbFaults::parse(faults));
    protocol::ConnectOptions connect;
    connect.warn = [r = run.get()](const std::string& w) { r->warnings.push_back(w); };
    run->client = std::make_unique<protocol::dfu::Client>(*run->usb, connect);
    return run;
}

std::optional<ErrorKind> flash(Run& run, const image::Image& img, plan::PlanOptions options = {}) {
    return test::flash_through_plan(*run.client, img, options);
}


}  // namespace

TEST(DfuClient, IdentifiesTheRomBootloaderAndTheChipFromItsLayout) {
    for (const char* chip : {"stm32f407xg", "stm32f072xb", "stm32f446xe"}) {
        auto run = open(chip);
        auto info = run->client->connect();
        EXPECT_EQ(info.chip, chip);
        EXPECT_EQ(info.bootloader, "st_rom_dfu");
        EXPECT_TRUE(run->client->dfuse());
        EXPECT_TRUE(info.boot_area_end.has_value());
    }
}

TEST(DfuClient, DfuseErasesOnlyTheSectorsTheImageTouchesWritesVerifiesAndLeaves) {
    auto run = open("stm32f407xg");
    auto img = random_image(0x08020000, 200 * 1024, 1);  // sectors 5 and 6 (128 KiB each)
    EXPECT_FALSE(flash(*run, img).has_value());
    EXPECT_TRUE(flash_holds(run->flash(), img));
    EXPECT_EQ(run->flash().counters().erases, 2u);
    EXPECT_FALSE(run->usb->present());  // left DFU: the application runs
    EXPECT_NE(run->client->leave_outcome().find("dfuMANIFEST"), std::string::npos) << run->client->leave_outcome();
}

TEST(DfuClient, TheFirstSectorTakesAnImageUnlessABootloaderIsThere) {
    // The ROM bootloader is not in flash: an application built without one goes to 0x08000000.
    auto img = random_image(0x08000000, 20000, 2);
    auto run = open("stm32f072xb");
    plan::PlanOptions stay;  // the device stays in DFU for the next flash
    stay.start_application = false;
    EXPECT_FALSE(flash(*run, img, stay).has_value());
    EXPECT_TRUE(flash_holds(run->flash(), img));
    // A bootloader at the start (a vector table there, and one at 0x08002000 linked for there) is not
    // replaced without --write-boot-area.
    auto layout = random_image(0x08000000, 0x2100, 5);
    std::vector<uint8_t> bytes = layout.flatten(0x08000000, 0x08002100);
    const uint32_t boot[2] = {0x20001000, 0x08000101}, app[2] = {0x20001000, 0x08002101};
    std::memcpy(bytes.data(), boot, sizeof boot);
    std::memcpy(bytes.data() + 0x2000, app, sizeof app);
    image::Image with_bootloader;
    with_bootloader.add(0x08000000, bytes, "bootloader + app");
    plan::PlanOptions allowed = stay;
    allowed.write_boot_area = true;
    ASSERT_FALSE(flash(*run, with_bootloader, allowed).has_value());
    const auto erases = run->flash().counters().erases;
    auto outcome = flash(*run, img);
    ASSERT_TRUE(outcome);
    EXPECT_EQ(*outcome, ErrorKind::Unsafe);
    EXPECT_EQ(run->flash().counters().erases, erases);
}

TEST(DfuClient, AnImageLargerThanFlashOrInOptionBytesIsRefusedBeforeAnythingIsWritten) {
    auto run = open("stm32f072xb");
    auto too_large = flash(*run, random_image(0x08010000, 0x20000, 3));
    ASSERT_TRUE(too_large.has_value());
    EXPECT_TRUE(*too_large == ErrorKind::BadInput || *too_large == ErrorKind::Unsafe);
    auto run2 = open("stm32f407xg");
    EXPECT_TRUE(flash(*run2, random_image(0x1FFFC000, 16, 4)).has_value());
    EXPECT_EQ(run->flash().counters().programs + run2->flash().counters().programs, 0u);
    EXPECT_EQ(run->flash().counters().erases + run2->flash().counters().erases, 0u);
}

TEST(DfuClient, ADeviceLeftInDfuErrorIsClearedOnConnect) {
    auto run = open("stm32f407xg");
    run->device().start_in_error();
    EXPECT_FALSE(flash(*run, random_image(0x08008000, 4096, 5)).has_value());
    ASSERT_FALSE(run->warnings.empty());
    EXPECT_NE(run->warnings.front().find("dfuERROR"), std::string::npos);
}

TEST(DfuClient, ALeaveThatDropsTheBusIsASuccessSaidAsSuch) {
    auto run = open("stm32f407xg");
    run->device().set_leave_without_answer(true);
    auto img = random_image(0x08008000, 8192, 6);
    EXPECT_FALSE(flash(*run, img).has_value());
    EXPECT_TRUE(flash_holds(run->flash(), img));
    EXPECT_NE(run->client->leave_outcome().find("dropped off the bus"), std::string::npos);
}

TEST(DfuClient, AStallOrATimeoutMidDownloadIsSentAgainAndTheFlashEndsRight) {
    // Transfer 40 is a block of the download; 400 one of the verify's uploads (a 64 KiB image is
    // 32 blocks of 2 KiB, each a DNLOAD and two GETSTATUS).
    auto img = random_image(0x08020000, 64 * 1024, 7);
    for (const char* faults : {"stall@40", "timeout@40", "stall@41", "stall@130", "stall@40,timeout@41,stall@60"}) {
        auto run = open("stm32f407xg", faults);
        EXPECT_FALSE(flash(*run, img).has_value()) << faults;
        EXPECT_TRUE(flash_holds(run->flash(), img)) << faults;
        ASSERT_FALSE(run->warnings.empty()) << faults;
        EXPECT_NE(run->warnings.front().find("trying again"), std::string::npos) << run->warnings.front();
    }
}

TEST(DfuClient, AVanishingDeviceOrOneThatKeepsFailingIsAClearErrorNeverSilentSuccess) {
    auto img = random_image(0x08020000, 64 * 1024, 7);
    for (const char* faults : {"vanish@40", "stall@40,stall@41,stall@42,stall@43,stall@44,stall@45,stall@46,stall@47"}) {
        auto run = open("stm32f407xg", faults);
        auto outcome = flash(*run, img);
        ASSERT_TRUE(outcome.has_value()) << faults;
        EXPECT_TRUE(*outcome == ErrorKind::Protocol || *outcome == ErrorKind::Io) << faults;
    }
}

TEST(DfuClient, AFailureTheDeviceReportsIsNotSentAgain) {
    // The F407's DfuSe alt 0 is its flash; 0x08100000 is past its end: the device answers errADDRESS.
    auto run = open("stm32f407xg");
    run->client->connect();
    const auto before = run->usb->transfers();
    std::vector<uint8_t> block(2048, 0x5A);
    try {
        run->client->write(0x08100000, block);
        FAIL() << "a write past the flash was taken";
    } catch (const core::Error& e) {
        EXPECT_EQ(e.kind(), ErrorKind::Io) << e.what();
    }
    EXPECT_TRUE(run->warnings.empty());
    EXPECT_LT(run->usb->transfers() - before, 8u);  // set address, one DNLOAD and its GETSTATUS: no retries
}

TEST(DfuClient, Stm32duinoStartsItsDownloadAgainAfterAStall) {
    // Plain DFU numbers blocks from the base: after a failure everything is sent again from there.
    auto img = random_image(0x08002000, 30000, 8);
    for (const char* faults : {"stall@30", "timeout@31", "stall@80"}) {
        auto run = open("stm32f103xb", faults);
        plan::PlanOptions stay;
        stay.start_application = false;
        EXPECT_FALSE(flash(*run, img, stay).has_value()) << faults;
        EXPECT_TRUE(flash_holds(run->flash(), img)) << faults;
        EXPECT_TRUE(run->flash().protected_ranges_intact());
        EXPECT_FALSE(run->warnings.empty()) << faults;
    }
}

TEST(DfuClient, Stm32duinoWritesFromItsApplicationStartAndLeavesItsBootloaderAlone) {
    auto run = open("stm32f103xb");
    auto info = run->client->connect();
    EXPECT_EQ(info.bootloader, "stm32duino");
    EXPECT_EQ(info.app_start, 0x08002000u);
    auto img = random_image(0x08002000, 30000, 8);
    auto plan = plan::make_plan(img, info, run->client->capabilities(), {});
    plan::execute(*run->client, plan, {}, core::Progress());
    EXPECT_TRUE(flash_holds(run->flash(), img));
    EXPECT_TRUE(run->flash().protected_ranges_intact());
    EXPECT_TRUE(run->flash().violations().empty());
    // After the USB reset the bootloader waits its window, then runs the application.
    EXPECT_TRUE(run->usb->present());
    run->usb->pause(std::chrono::milliseconds(3500));
    EXPECT_FALSE(run->usb->present());
}

TEST(DfuClient, Stm32duinoRefusesAnImageInsideTheBootloader) {
    auto run = open("stm32f103xb");
    EXPECT_EQ(flash(*run, random_image(0x08000000, 4096, 9)), ErrorKind::Unsafe);
    EXPECT_TRUE(run->flash().protected_ranges_intact());
    EXPECT_EQ(run->flash().counters().programs, 0u);
}

TEST(DfuClient, SmoothieboardWritesFromItsApplicationStartVerifiesAndLeaves) {
    auto run = open("lpc1768");
    auto info = run->client->connect();
    EXPECT_EQ(info.bootloader, "smoothie_dfu");
    EXPECT_EQ(info.app_start, 0x4000u);
    // Not a multiple of the bootloader's 512-byte write buffer: the plan pads the last block, or the
    // bootloader would never write it.
    auto img = random_image(0x4000, 40000, 10);
    auto plan = plan::make_plan(img, info, run->client->capabilities(), {});
    plan::execute(*run->client, plan, {}, core::Progress());
    EXPECT_TRUE(flash_holds(run->flash(), img));
    EXPECT_TRUE(run->flash().protected_ranges_intact());
    EXPECT_FALSE(run->usb->present());  // the zero-length download made it leave
}

TEST(DfuClient, ReadUnprotectMassErasesAndTheDeviceResets) {
    auto run = open("stm32f407xg");
    run->flash().load(0x08040000, std::vector<uint8_t>(4096, 0x12));
    run->client->connect();
    run->client->remove_readout_protection();
    run->usb->pause(std::chrono::milliseconds(100));
    EXPECT_FALSE(run->usb->present());
    const auto cells = run->flash().contents();
    EXPECT_TRUE(std::all_of(cells.begin(), cells.end(), [](uint8_t b) { return b == 0xFF; }));
}

TEST(DfuClient, AFlashStoppedBeforeItsFinalGetstatusIsRunAgainWithoutTheDeviceLeaving) {
    // Stopped (Ctrl-C, a killed process) just after the zero-length DNLOAD that ends a download, the
    // device waits in dfuMANIFEST-SYNC. The next session's first GETSTATUS would start the
    // manifestation and the device would leave the bus: it used to end in "control request 0x06
    // stalled" (12 of 1,000 DFU runs of `fault-campaign --interrupt --seed 20261206`).
    for (const char* chip : {"stm32f407xg", "lpc1768"}) {
        auto run = open(chip);
        const uint32_t start = run->client->connect().app_start;
        auto img = random_image(start >= 0x08000000u ? 0x08008000u : start, 8192, 11);
        size_t writes = 0, stop_at = SIZE_MAX;
        auto count_or_stop = [&](const std::string& line) {
            if (line.size() < 10 || line[0] != '+' || line[line.find(' ') + 1] != '>') return;
            if (writes++ == stop_at) throw core::Interrupted(SIGINT, "stopped by the test");
        };
        {  // how many requests the flash sends
            auto counting = open(chip);
            counting->usb->set_trace(count_or_stop);
            ASSERT_FALSE(flash(*counting, img).has_value()) << chip;
        }
        const size_t total = writes;
        ASSERT_GT(total, 2u);
        // The stop comes before the last request: the GETSTATUS after the zero-length DNLOAD.
        writes = 0;
        stop_at = total - 1;
        run->usb->set_trace(count_or_stop);
        EXPECT_THROW(flash(*run, img), core::Interrupted) << chip;
        EXPECT_EQ(run->device().state(), 6) << chip << ": not left in dfuMANIFEST-SYNC";
        run->usb->set_trace({});
        run->warnings.clear();

        protocol::ConnectOptions connect;
        connect.warn = [r = run.get()](const std::string& w) { r->warnings.push_back(w); };
        protocol::dfu::Client again(*run->usb, connect);
        EXPECT_FALSE(test::flash_through_plan(again, img).has_value()) << chip;
        EXPECT_TRUE(flash_holds(run->flash(), img)) << chip;
        ASSERT_FALSE(run->warnings.empty()) << chip;
        EXPECT_NE(run->warnings.front().find("stopped as it finished"), std::string::npos) << run->warnings.front();
    }
}
