// The STK500v1 client against the optiboot/ATmegaBOOT simulators in-process, clean and with faults:
// every run ends with verified flash or a clear error; never silent corruption, never a write into
// the bootloader.
#include <gtest/gtest.h>

#include <random>

#include "client_test_support.hpp"
#include "core/error.hpp"
#include "plan/flash_plan.hpp"
#include "protocol/stk500v1/client.hpp"
#include "sim/in_process_link.hpp"

using namespace mcuflash;
using test::flash_holds;
using test::random_image;
using core::ErrorKind;

namespace {


struct Run {
    std::unique_ptr<sim::InProcessLink> link;
    std::unique_ptr<protocol::stk500v1::Client> client;
    std::vector<std::string> warnings;
};

std::unique_ptr<Run> open(const std::string& chip, const std::string& faults = {}, const std::string& bootloader = {},
                          int sync_attempts = 10) {
    auto run = std::make_unique<Run>();
    sim::InProcessOptions options;
    options.chip = chip;
    options.faults = faults;
    options.bootloader = bootloader;
    options.timing = false;
    options.settings = {bootloader == "atmegaboot" ? 57600u : 115200u, link::Parity::None};
    run->link = sim::open_in_process("stk500v1", options);
    protocol::ConnectOptions connect;
    connect.sync_attempts = sync_attempts;
    connect.warn = [r = run.get()](const std::string& w) { r->warnings.push_back(w); };
    run->client = std::make_unique<protocol::stk500v1::Client>(*run->link, connect);
    return run;
}

// Flashes `img` through the plan; returns the error kind, or nullopt on success.
std::optional<ErrorKind> flash(Run& run, const image::Image& img, plan::FlashReport* report = nullptr) {
    return test::flash_through_plan(*run.client, img, {}, report);
}


void expect_bootloader_untouched(sim::InProcessLink& link) { test::expect_bootloader_untouched(link.flash()); }

}  // namespace

TEST(Stk500v1Client, IdentifiesOptibootAndTheChip) {
    auto run = open("atmega1284p");
    auto info = run->client->connect();
    EXPECT_EQ(info.chip, "atmega1284p");
    EXPECT_EQ(info.bootloader, "optiboot");
    EXPECT_EQ(info.signature, (std::vector<uint8_t>{0x1E, 0x97, 0x05}));
    EXPECT_EQ(info.app_end, 0x1FC00u);
}

TEST(Stk500v1Client, IdentifiesAtmegaBootAndItsLargerBootSection) {
    auto run = open("atmega1280", "", "atmegaboot");
    auto info = run->client->connect();
    EXPECT_EQ(info.bootloader, "atmegaboot");
    EXPECT_EQ(info.app_end, 0x1F000u);
}

TEST(Stk500v1Client, RefusesTheWrongChip) {
    auto run = open("atmega328p");
    protocol::ConnectOptions connect;
    connect.chip = "atmega2560";
    protocol::stk500v1::Client client(*run->link, connect);
    try {
        client.connect();
        FAIL();
    } catch (const core::Error& e) {
        EXPECT_EQ(e.kind(), ErrorKind::Usage);
        EXPECT_NE(std::string(e.what()).find("atmega328p"), std::string::npos);
    }
}

TEST(Stk500v1Client, FlashesAndVerifiesEveryChip) {
    for (const char* chip : {"atmega168", "atmega328p", "atmega1280", "atmega1284p", "atmega2560"}) {
        auto run = open(chip);
        auto img = random_image(0, 12 * 1024 + 100, 1);
        plan::FlashReport report;
        EXPECT_EQ(flash(*run, img, &report), std::nullopt) << chip;
        EXPECT_TRUE(report.verified) << chip;
        EXPECT_TRUE(flash_holds(*run->link, img)) << chip;
        expect_bootloader_untouched(*run->link);
    }
}

TEST(Stk500v1Client, CrossesThe64KWordBoundaryOnTheAtmega2560) {
    auto run = open("atmega2560");
    auto img = random_image(0x1F000, 0x3000, 2);  // 0x1F000-0x21FFF: crosses 0x20000
    EXPECT_EQ(flash(*run, img), std::nullopt);
    EXPECT_TRUE(flash_holds(*run->link, img));
    // Reading across the boundary in one call comes back right too.
    auto back = run->client->read(0x1FF00, 0x200);
    EXPECT_TRUE(std::equal(back.begin(), back.end(), img.runs().begin()->second.begin() + 0xF00));
}

TEST(Stk500v1Client, AReadEndingAtASegmentBoundaryDoesNotMisdirectTheNextWrite) {
    // optiboot's ELPM Z+ carries into RAMPZ when a read ends exactly at 0x20000 on the atmega2560.
    auto run = open("atmega2560");
    run->client->connect();
    run->client->read(0x1FF00, 0x100);
    std::vector<uint8_t> page(256, 0x5A);
    run->client->write(0x1FE00, page);
    EXPECT_EQ(run->link->flash().at(0x1FE00), 0x5A);
    expect_bootloader_untouched(*run->link);
}

TEST(Stk500v1Client, ReadsBackWhatWasWritten) {
    auto run = open("atmega1284p");
    auto img = random_image(0x400, 3000, 3);
    ASSERT_EQ(flash(*run, img), std::nullopt);
    auto back = run->client->read(0x400, 3000);
    EXPECT_TRUE(std::equal(back.begin(), back.end(), img.runs().begin()->second.begin()));
}

// Faults at fixed places: each must end verified (after recovery) or with a clear error.
TEST(Stk500v1Client, RecoversFromSingleFaults) {
    const char* specs[] = {
        "rx:drop@byte=3000",             // a byte of page data lost: optiboot falls out of sync
        "rx:corrupt@byte=5000",          // page data garbled: written wrong, caught by verify
        "tx:corrupt@byte=40",            // an answer garbled
        "tx:drop@byte=100",              // an answer lost
        "tx:corrupt@byte=9000",          // read-back data garbled during verify
        "rx:reset@byte=7000",            // the board resets mid-write
        "rx:delay@byte=4000:ms=3000",    // the line stalls longer than a command timeout
    };
    auto img = random_image(0, 16 * 1024, 4);
    for (const char* spec : specs) {
        auto run = open("atmega1284p", spec);
        auto outcome = flash(*run, img);
        EXPECT_EQ(outcome, std::nullopt) << spec;  // every single fault is recoverable
        EXPECT_TRUE(flash_holds(*run->link, img)) << spec;
        expect_bootloader_untouched(*run->link);
    }
}

// Random faults over many seeds: success means the flash really holds the image.
TEST(Stk500v1Client, RandomFaultsNeverCorruptSilently) {
    auto img = random_image(0, 8 * 1024, 5);
    int succeeded = 0, failed = 0;
    for (int seed = 1; seed <= 20; ++seed) {
        auto spec = "seed=" + std::to_string(seed) + ",rx:corrupt@rate=0.0005,tx:drop@rate=0.0005";
        auto run = open("atmega1284p", spec);
        auto outcome = flash(*run, img);
        if (!outcome) {
            ++succeeded;
            EXPECT_TRUE(flash_holds(*run->link, img)) << spec << ": reported success with wrong flash";
        } else {
            ++failed;
            EXPECT_TRUE(*outcome == ErrorKind::Timeout || *outcome == ErrorKind::Protocol ||
                        *outcome == ErrorKind::VerifyMismatch || *outcome == ErrorKind::NotFound)
                << spec << ": " << static_cast<int>(*outcome);
        }
        expect_bootloader_untouched(*run->link);
    }
    EXPECT_GT(succeeded, 10) << "recovery should handle most of these";
    RecordProperty("succeeded", succeeded);
    RecordProperty("failed", failed);
}

TEST(Stk500v1Client, ADeadLinkIsAClearErrorNotAHang) {
    auto run = open("atmega1284p", "disconnect@byte=2000");
    auto outcome = flash(*run, random_image(0, 16 * 1024, 6));
    ASSERT_TRUE(outcome.has_value());
    EXPECT_TRUE(*outcome == ErrorKind::Io || *outcome == ErrorKind::NotFound) << static_cast<int>(*outcome);
    expect_bootloader_untouched(*run->link);
}

TEST(Stk500v1Client, ASilentDeviceIsNotFound) {
    auto run = open("atmega1284p", "tx:drop@rate=1", "", 2);
    try {
        run->client->connect();
        FAIL();
    } catch (const core::Error& e) {
        EXPECT_EQ(e.kind(), ErrorKind::NotFound);
        EXPECT_NE(e.hint().find("baud"), std::string::npos);
    }
}
