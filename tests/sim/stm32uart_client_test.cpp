// The STM32 ROM USART client against the STM32 ROM bootloader simulator in-process, clean and with
// faults: every run ends with verified flash or a clear error, never silent corruption; only the erase
// units the image touches are erased.
#include <gtest/gtest.h>

#include <random>

#include "client_test_support.hpp"
#include "core/error.hpp"
#include "plan/flash_plan.hpp"
#include "protocol/stm32uart/client.hpp"
#include "sim/in_process_link.hpp"
#include "sim/stm32uart/stm32_rom_device.hpp"
#include "targets/knowledge.hpp"

using namespace mcuflash;
using test::flash_holds;
using test::random_image;
using core::ErrorKind;

namespace {

constexpr uint32_t kFlash = 0x08000000;
constexpr uint8_t kMarker = 0xA5;  // what the flash holds before a test flashes anything


struct Run {
    std::unique_ptr<sim::InProcessLink> link;
    std::unique_ptr<protocol::stm32uart::Client> client;
    std::vector<std::string> warnings;
    std::string error;  // what the last failed flash() said
    sim::stm32uart::Stm32RomDevice& rom() { return dynamic_cast<sim::stm32uart::Stm32RomDevice&>(link->device()); }
};

std::unique_ptr<Run> open(const std::string& chip, const std::string& faults = {}, int sync_attempts = 8) {
    auto run = std::make_unique<Run>();
    sim::InProcessOptions options;
    options.chip = chip;
    options.faults = faults;
    options.timing = false;
    options.settings = {115200, link::Parity::Even};
    run->link = sim::open_in_process("stm32-uart", options);
    // Old contents everywhere, so that an erase the image did not need shows.
    std::vector<uint8_t> old(run->link->flash().size(), kMarker);
    run->link->flash().load(kFlash, old);
    protocol::ConnectOptions connect;
    connect.sync_attempts = sync_attempts;
    connect.warn = [r = run.get()](const std::string& w) { r->warnings.push_back(w); };
    run->client = std::make_unique<protocol::stm32uart::Client>(*run->link, connect);
    return run;
}

// Flashes `img` through the plan; returns the error kind, or nullopt on success.
std::optional<ErrorKind> flash(Run& run, const image::Image& img, plan::FlashReport* report = nullptr) {
    plan::PlanOptions options;
    options.write_boot_area = img.lowest() == kFlash;  // no flash bootloader to keep on these boards
    return test::flash_through_plan(*run.client, img, options, report, &run.error);
}


// Units the image touches hold the image and erased bytes; all others still hold the old contents.
void expect_only_touched_units_erased(Run& run, const image::Image& img, const std::string& chip) {
    const auto& chip_info = targets::Knowledge::builtin().chip(chip);
    size_t touched = 0;
    for (const auto& unit : targets::erase_layout(chip_info, chip_info.flash_size)) {
        const uint64_t unit_end = uint64_t(unit.address) + unit.size;
        const bool in_image = unit.address < img.end() && unit_end > img.lowest();
        touched += in_image;
        for (uint64_t at = unit.address; at < unit_end; ++at) {
            const bool image_byte = at >= img.lowest() && at < img.end();
            if (image_byte) continue;
            const uint8_t expected = in_image ? 0xFF : kMarker;
            if (run.link->flash().at(static_cast<uint32_t>(at)) != expected) {
                ADD_FAILURE() << chip << ": 0x" << std::hex << at << " holds 0x"
                              << +run.link->flash().at(static_cast<uint32_t>(at)) << ", expected 0x" << +expected;
                return;
            }
        }
    }
    EXPECT_EQ(run.link->flash().counters().erases, touched) << chip;
}

}  // namespace

TEST(Stm32UartClient, IdentifiesTheChipsAndTheirRoms) {
    const std::tuple<const char*, uint32_t, bool> chips[] = {
        {"stm32f103xb", 128 * 1024, false}, {"stm32f103x8", 64 * 1024, false},
        {"stm32f072xb", 128 * 1024, true},  {"stm32f407xg", 1024 * 1024, true},
    };
    for (const auto& [chip, size, extended] : chips) {
        auto run = open(chip);
        auto info = run->client->connect();
        EXPECT_EQ(info.chip, chip);
        EXPECT_EQ(info.bootloader, "stm32_rom");
        EXPECT_EQ(info.flash_size, size) << chip;
        EXPECT_EQ(info.app_start, kFlash);
        EXPECT_EQ(run->client->bootloader_commands().has(0x44), extended) << chip;
        EXPECT_EQ(run->client->bootloader_commands().has(0x43), !extended) << chip;
    }
}

TEST(Stm32UartClient, RefusesTheWrongChip) {
    auto run = open("stm32f407xg");
    protocol::ConnectOptions connect;
    connect.chip = "stm32f103xb";
    protocol::stm32uart::Client client(*run->link, connect);
    try {
        client.connect();
        FAIL();
    } catch (const core::Error& e) {
        EXPECT_EQ(e.kind(), ErrorKind::Usage);
        EXPECT_NE(std::string(e.what()).find("0x413"), std::string::npos) << e.what();
    }
}

TEST(Stm32UartClient, FlashesAndVerifiesErasingOnlyTouchedUnits) {
    const std::tuple<const char*, uint32_t, size_t> cases[] = {
        {"stm32f103xb", kFlash, 12 * 1024 + 100},            // 1 KiB pages, Erase 0x43, from the start of flash
        {"stm32f072xb", kFlash + 0x2000, 9 * 1024 + 6},       // 2 KiB pages, Extended Erase, above an 8 KiB bootloader
        {"stm32f407xg", kFlash + 0x8000, 0x9000 + 100},       // sectors 2, 3 (16K) and 4 (64K)
    };
    unsigned seed = 1;
    for (const auto& [chip, address, size] : cases) {
        auto run = open(chip);
        auto img = random_image(address, size, seed++);
        plan::FlashReport report;
        ASSERT_EQ(flash(*run, img, &report), std::nullopt) << chip;
        EXPECT_TRUE(report.verified) << chip;
        EXPECT_TRUE(report.started) << chip;
        EXPECT_TRUE(flash_holds(*run->link, img)) << chip;
        expect_only_touched_units_erased(*run, img, chip);
        EXPECT_FALSE(run->link->device().in_bootloader()) << chip << ": Go started the application";
        EXPECT_EQ(run->rom().jumped_to(), kFlash) << chip;
        EXPECT_EQ(run->link->flash().counters().programs_over_unerased, 0u) << chip;
    }
}

TEST(Stm32UartClient, ReadsBackWhatWasWritten) {
    auto run = open("stm32f407xg");
    auto img = random_image(kFlash + 0x4000, 3000, 9);
    plan::PlanOptions options;
    options.start_application = false;
    auto info = run->client->connect();
    auto plan = plan::make_plan(img, info, run->client->capabilities(), options);
    plan::execute(*run->client, plan, options, core::Progress());
    auto back = run->client->read(kFlash + 0x4000, 3000);
    EXPECT_TRUE(std::equal(back.begin(), back.end(), img.runs().begin()->second.begin()));
}

TEST(Stm32UartClient, MassEraseAndReadoutUnprotect) {
    for (const char* chip : {"stm32f103xb", "stm32f407xg"}) {
        auto run = open(chip);
        run->client->connect();
        run->client->mass_erase();
        EXPECT_EQ(run->link->flash().at(kFlash), 0xFF) << chip;
        EXPECT_EQ(run->link->flash().at(kFlash + run->link->flash().size() - 1), 0xFF) << chip;

        // Protect it by hand (0x82), as a board shipped locked would be.
        run->link->flash().load(kFlash, std::vector<uint8_t>(16, 0x12));
        const uint8_t protect[] = {0x82, 0x7D};
        run->link->write(protect);
        uint8_t acks[2] = {};
        run->link->read_exact(acks, core::Deadline::after_ms(500), "Readout Protect");
        EXPECT_EQ(acks[0], 0x79);
        EXPECT_EQ(acks[1], 0x79);
        ASSERT_TRUE(run->rom().readout_protected());
        EXPECT_THROW(run->client->read(kFlash, 16), core::Error) << chip << ": reading is refused";

        run->client->remove_readout_protection();
        EXPECT_FALSE(run->rom().readout_protected());
        EXPECT_TRUE(run->rom().synchronised()) << "the client synchronised again after the self-reset";
        EXPECT_EQ(run->client->read(kFlash, 16), std::vector<uint8_t>(16, 0xFF)) << chip;
    }
}

// Faults at fixed places: each must end verified (after recovery) or with a clear error.
TEST(Stm32UartClient, RecoversFromSingleFaults) {
    const char* specs[] = {
        "rx:drop@byte=3000",           // a byte of block data lost: the ROM waits for more, then NACKs
        "rx:corrupt@byte=5000",        // block data garbled: the checksum NACKs it
        "rx:corrupt@byte=40",          // early: a command or the erase list garbled
        "tx:corrupt@byte=30",          // an answer garbled
        "tx:drop@byte=100",            // an ACK lost
        "tx:corrupt@byte=9000",        // read-back data garbled during verify
        "rx:reset@byte=7000",          // the board resets mid-write: needs 0x7F again
        "rx:delay@byte=4000:ms=1500",  // the line stalls longer than an ACK timeout (1 s)
    };
    auto img = random_image(kFlash + 0x1000, 16 * 1024, 4);
    for (const char* spec : specs) {
        auto run = open("stm32f103xb", spec);
        auto outcome = flash(*run, img);
        EXPECT_EQ(outcome, std::nullopt) << spec << ": " << run->error;  // every single fault is recoverable
        EXPECT_TRUE(flash_holds(*run->link, img)) << spec;
        EXPECT_FALSE(run->link->faults().log().empty()) << spec << ": the fault never happened";
    }
}

// The answer to the Read Memory that probes for readout protection at connect, damaged on the line,
// once taken for the ROM's NACK: "the chip's readout protection is on" (a fault campaign run).
// Every answer byte of the connect, damaged in turn: only a real NACK means protection.
TEST(Stm32UartClient, ADamagedAnswerAtConnectIsNeverTakenForReadoutProtection) {
    auto img = random_image(kFlash + 0x1000, 4096, 9);
    for (int byte = 0; byte < 48; ++byte) {
        const auto spec = fmt::format("tx:corrupt@byte={}:mask=0x80", byte);
        auto run = open("stm32f103xb", spec);
        auto outcome = flash(*run, img);
        EXPECT_NE(outcome, ErrorKind::Unsafe) << spec << ": " << run->error;
        if (!outcome) {
            EXPECT_TRUE(flash_holds(*run->link, img)) << spec;
        }
    }
}

// Faults recovery cannot always get past: success (then the flash holds the image) or a clear error.
TEST(Stm32UartClient, HopelessFaultsEndInAClearError) {
    const char* specs[] = {
        "rx:delay@byte=4000:ms=3000",  // longer than the whole resynchronisation
        "disconnect@byte=2000",        // the adapter unplugged
        "tx:corrupt@rate=0.01",        // a line too noisy to verify over
    };
    auto img = random_image(kFlash + 0x1000, 16 * 1024, 6);
    for (const char* spec : specs) {
        auto run = open("stm32f103xb", spec);
        auto outcome = flash(*run, img);
        if (!outcome) EXPECT_TRUE(flash_holds(*run->link, img)) << spec << ": reported success with wrong flash";
        else
            EXPECT_TRUE(*outcome == ErrorKind::Timeout || *outcome == ErrorKind::Protocol || *outcome == ErrorKind::Io ||
                        *outcome == ErrorKind::VerifyMismatch || *outcome == ErrorKind::NotFound)
                << spec << ": " << run->error;
    }
}

// Random faults over many seeds: success means the flash really holds the image. Read Memory has no
// checksum, so garbled read-back costs rewrites (of a whole 16K sector on the F4): a run may end in
// a verify error, never in a false success.
TEST(Stm32UartClient, RandomFaultsNeverCorruptSilently) {
    int succeeded = 0, failed = 0;
    for (const char* chip : {"stm32f103xb", "stm32f407xg"}) {
        auto img = random_image(kFlash + 0x4000, 8 * 1024, 5);
        for (int seed = 1; seed <= 8; ++seed) {
            auto spec = "seed=" + std::to_string(seed) + ",rx:corrupt@rate=0.0005,tx:drop@rate=0.0003,tx:corrupt@rate=0.0001";
            auto run = open(chip, spec);
            auto outcome = flash(*run, img);
            if (!outcome) {
                ++succeeded;
                EXPECT_TRUE(flash_holds(*run->link, img)) << chip << " " << spec << ": reported success with wrong flash";
            } else {
                ++failed;
                EXPECT_TRUE(*outcome == ErrorKind::Timeout || *outcome == ErrorKind::Protocol ||
                            *outcome == ErrorKind::VerifyMismatch || *outcome == ErrorKind::NotFound)
                    << chip << " " << spec << ": " << run->error;
            }
        }
    }
    EXPECT_GE(succeeded, 12) << "recovery should handle most of these";
    RecordProperty("succeeded", succeeded);
    RecordProperty("failed", failed);
}

TEST(Stm32UartClient, ASilentDeviceIsNotFound) {
    auto run = open("stm32f103xb", "tx:drop@rate=1", 2);
    try {
        run->client->connect();
        FAIL();
    } catch (const core::Error& e) {
        EXPECT_EQ(e.kind(), ErrorKind::NotFound);
        EXPECT_NE(e.hint().find("BOOT0"), std::string::npos);
    }
}
