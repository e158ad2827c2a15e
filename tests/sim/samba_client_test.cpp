// The SAM-BA client against the SAM-BA simulators in-process (SAMD21 Arduino Zero bootloader, SAMD51
// Adafruit bootloader, SAM3X8E and SAM4E8E ROM monitors), USB and UART modes, clean and with faults:
// every run ends with the image in flash or a clear error, and the bootloader region is never written.
#include <fmt/format.h>
#include <gtest/gtest.h>

#include <random>

#include "client_test_support.hpp"
#include "core/crc.hpp"
#include "core/error.hpp"
#include "plan/flash_plan.hpp"
#include "protocol/samba/client.hpp"
#include "sim/in_process_link.hpp"
#include "sim/registry.hpp"

using namespace mcuflash;
using test::flash_holds;
using test::random_image;
using core::ErrorKind;
using protocol::samba::Transport;

namespace {

struct ChipCase {
    const char* chip;
    uint32_t app_start;
    uint32_t flash_end;
};

const ChipCase kChips[] = {
    {"samd21g18a", 0x2000, 0x40000},
    {"samd51j19a", 0x4000, 0x80000},
    {"sam3x8e", 0x80000, 0x100000},
    {"sam4e8e", 0x400000, 0x480000},
};

bool simulator_present() {
    try {
        sim::find_simulator("samba");
        return true;
    } catch (const core::Error&) {
        return false;
    }
}


struct Run {
    std::unique_ptr<sim::InProcessLink> link;
    std::unique_ptr<protocol::samba::Client> client;
    std::vector<std::string> warnings;
};

std::unique_ptr<Run> open(const std::string& chip, Transport transport, const std::string& faults = {}) {
    auto run = std::make_unique<Run>();
    sim::InProcessOptions options;
    options.chip = chip;
    options.faults = faults;
    options.timing = false;
    const auto& info = transport == Transport::Usb ? protocol::samba::usb_protocol_info()
                                                   : protocol::samba::uart_protocol_info();
    options.settings = info.serial;
    run->link = sim::open_in_process(info.name, options);
    protocol::ConnectOptions connect;
    connect.warn = [r = run.get()](const std::string& w) { r->warnings.push_back(w); };
    run->client = std::make_unique<protocol::samba::Client>(*run->link, transport, connect);
    return run;
}

std::optional<ErrorKind> flash(Run& run, const image::Image& img, plan::FlashReport* report = nullptr,
                               plan::PlanOptions options = {}) {
    return test::flash_through_plan(*run.client, img, options, report);
}

// The reset that starts the application ends the monitor (as on the boards): tests that talk to the
// monitor after flashing leave it running.
plan::PlanOptions stay_in_monitor() {
    plan::PlanOptions options;
    options.start_application = false;
    return options;
}


std::vector<uint8_t> whole_flash(sim::InProcessLink& link, uint32_t from, uint32_t to) {
    std::vector<uint8_t> out(to - from);
    link.flash().read(from, out);
    return out;
}

void expect_bootloader_untouched(sim::InProcessLink& link) { test::expect_bootloader_untouched(link.flash()); }

#define REQUIRE_SIMULATOR() \
    if (!simulator_present()) GTEST_SKIP() << "the samba simulator (src/sim/samba) is not built in"

}  // namespace

TEST(SambaClient, IdentifiesEachChipAndWhereTheApplicationStarts) {
    REQUIRE_SIMULATOR();
    for (const auto& c : kChips) {
        auto run = open(c.chip, Transport::Usb);
        auto info = run->client->connect();
        EXPECT_EQ(info.chip, c.chip);
        EXPECT_EQ(info.app_start, c.app_start) << c.chip;
        EXPECT_EQ(info.app_end, c.flash_end) << c.chip;
        EXPECT_FALSE(info.boot_area_end.has_value()) << c.chip;
    }
}

TEST(SambaClient, SaysWhetherTheChipItselfProtectsTheBootloader) {
    REQUIRE_SIMULATOR();
    // The simulated SAMD21 and SAMD51 carry their bootloader's BOOTPROT in the NVM user row, as
    // Arduino's and Adafruit's boards ship.
    for (const auto& [chip, kib] : {std::pair{"samd21g18a", 8}, std::pair{"samd51j19a", 16}}) {
        auto run = open(chip, Transport::Usb);
        auto info = run->client->connect();
        std::string protection;
        for (const auto& [key, value] : info.details)
            if (key == "bootloader protection") protection = value;
        EXPECT_NE(protection.find(fmt::format("BOOTPROT keeps the first {} KiB", kib)), std::string::npos)
            << chip << ": " << protection;
        EXPECT_TRUE(run->warnings.empty()) << chip;
    }
}

TEST(SambaClient, RefusesTheWrongChip) {
    REQUIRE_SIMULATOR();
    auto run = open("samd21g18a", Transport::Usb);
    protocol::ConnectOptions connect;
    connect.chip = "samd51j19a";
    protocol::samba::Client client(*run->link, Transport::Usb, connect);
    try {
        client.connect();
        FAIL() << "a SAMD21 accepted as a SAMD51";
    } catch (const core::Error& e) {
        EXPECT_EQ(e.kind(), ErrorKind::Usage);
        EXPECT_NE(std::string(e.what()).find("samd21g18a"), std::string::npos) << e.what();
    }
}

TEST(SambaClient, FlashesAndVerifiesAtTheApplicationOffsetOnEveryChipInBothModes) {
    REQUIRE_SIMULATOR();
    for (Transport transport : {Transport::Usb, Transport::Uart}) {
        for (const auto& c : kChips) {
            SCOPED_TRACE(std::string(c.chip) + (transport == Transport::Usb ? " USB" : " UART"));
            auto run = open(c.chip, transport);
            auto img = random_image(c.app_start, 20 * 1024 + 100, 11);
            plan::FlashReport report;
            ASSERT_EQ(flash(*run, img, &report), std::nullopt);
            EXPECT_TRUE(report.verified);
            EXPECT_TRUE(flash_holds(*run->link, img));
            expect_bootloader_untouched(*run->link);
        }
    }
}

TEST(SambaClient, ReadsBackWhatWasWritten) {
    REQUIRE_SIMULATOR();
    // On the SAM3X the ROM reads flash as zeros: only the applet route gives the data back.
    for (const auto& c : kChips) {
        SCOPED_TRACE(c.chip);
        auto run = open(c.chip, Transport::Usb);
        auto img = random_image(c.app_start, 3000, 5);
        ASSERT_EQ(flash(*run, img, nullptr, stay_in_monitor()), std::nullopt);
        auto back = run->client->read(c.app_start + 1, 2998);  // unaligned both ends
        const auto& data = img.runs().begin()->second;
        EXPECT_TRUE(std::equal(back.begin(), back.end(), data.begin() + 1));
    }
}

TEST(SambaClient, AnImageAtOffsetZeroIsRefusedAndNothingIsWritten) {
    REQUIRE_SIMULATOR();
    for (const char* chip : {"samd21g18a", "samd51j19a"}) {
        SCOPED_TRACE(chip);
        auto run = open(chip, Transport::Usb);
        auto before = whole_flash(*run->link, 0, 0x10000);
        auto img = random_image(0, 0x3000, 3);  // what `bossac --offset=0` writes
        EXPECT_EQ(flash(*run, img), ErrorKind::Unsafe);
        EXPECT_EQ(whole_flash(*run->link, 0, 0x10000), before);
        expect_bootloader_untouched(*run->link);
        // The client refuses on its own too, whatever a caller does.
        std::vector<uint8_t> page(256, 0);
        try {
            run->client->write(0, page);
            ADD_FAILURE() << "a write at 0 was accepted";
        } catch (const core::Error& e) {
            EXPECT_EQ(e.kind(), ErrorKind::Unsafe);
        }
        try {
            run->client->erase(0, 0x2000);
            ADD_FAILURE() << "an erase at 0 was accepted";
        } catch (const core::Error& e) {
            EXPECT_EQ(e.kind(), ErrorKind::Unsafe);
        }
        EXPECT_EQ(whole_flash(*run->link, 0, 0x10000), before);
    }
}

TEST(SambaClient, TheDeviceChecksumMatchesTheLocalOneAcrossBufferBoundaries) {
    REQUIRE_SIMULATOR();
    auto run = open("samd51j19a", Transport::Usb);
    auto img = random_image(0x4000, 3 * 4096 + 500, 8);
    ASSERT_EQ(flash(*run, img, nullptr, stay_in_monitor()), std::nullopt);
    auto caps = run->client->capabilities();
    ASSERT_TRUE(caps.can_checksum);
    const auto& data = img.runs().begin()->second;
    auto device = run->client->checksum(0x4000, static_cast<uint32_t>(data.size()));
    ASSERT_TRUE(device.has_value());
    EXPECT_EQ(*device, caps.local_checksum(data));
    EXPECT_EQ(*device, core::crc16_xmodem(data));
}

TEST(SambaClient, AnUnchangedReflashWritesNothing) {
    REQUIRE_SIMULATOR();
    for (const char* chip : {"samd21g18a", "samd51j19a"}) {
        SCOPED_TRACE(chip);
        auto run = open(chip, Transport::Usb);
        uint32_t start = std::string(chip) == "samd21g18a" ? 0x2000 : 0x4000;
        auto img = random_image(start, 40 * 1024, 4);
        ASSERT_EQ(flash(*run, img), std::nullopt);
        plan::FlashReport again;
        ASSERT_EQ(flash(*run, img, &again), std::nullopt);
        EXPECT_EQ(again.bytes_written, 0u);
        EXPECT_GE(again.bytes_unchanged, img.total_bytes());
        EXPECT_TRUE(flash_holds(*run->link, img));
    }
}

// Random corruption and loss in both directions: a run that reports success has the image in flash.
TEST(SambaClient, RandomFaultsNeverEndInSilentCorruption) {
    REQUIRE_SIMULATOR();
    int successes = 0, runs = 0;
    for (Transport transport : {Transport::Usb, Transport::Uart}) {
        for (const auto& c : kChips) {
            for (int seed = 1; seed <= 4; ++seed) {
                SCOPED_TRACE(fmt::format("{} {} seed {}", c.chip, transport == Transport::Usb ? "USB" : "UART", seed));
                auto spec = fmt::format("seed={},rx:corrupt@rate=0.0002,tx:drop@rate=0.0002,tx:corrupt@rate=0.0002", seed);
                auto run = open(c.chip, transport, spec);
                auto img = random_image(c.app_start, 6000, static_cast<unsigned>(seed));
                ++runs;
                std::string error;
                if (test::flash_through_plan(*run->client, img, {}, nullptr, &error) == std::nullopt) {
                    ++successes;
                    EXPECT_TRUE(flash_holds(*run->link, img));
                } else {
                    std::cerr << error << "\n";
                }
            }
        }
    }
    // Faults this rare are recovered from almost always; most runs must succeed.
    EXPECT_GE(successes, runs * 3 / 4) << successes << " of " << runs;
}
