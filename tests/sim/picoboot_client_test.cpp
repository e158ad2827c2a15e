// The PICOBOOT client against the RP2040 boot ROM simulator in-process: it identifies the rp2040,
// flashes through the plan (only the 4 KiB sectors the image touches are erased, the rest of those
// sectors keeps its bytes), verifies by read-back and reboots (the device leaves the bus); a command
// the ROM refuses is reported with its status in words and the interface recovers; a device that
// leaves the bus mid-write is an I/O error with the BOOTSEL hint. Raw transfers check the simulator's
// own rules: halts with a status on an unaligned erase, INTERFACE_RESET, AND-programming.
#include <gtest/gtest.h>

#include "client_test_support.hpp"
#include "core/error.hpp"
#include "plan/flash_plan.hpp"
#include "protocol/picoboot/client.hpp"
#include "sim/picoboot/picoboot_device.hpp"
#include "sim/usb/in_process_usb.hpp"

using namespace mcuflash;
using core::ErrorKind;
using test::flash_holds;
using test::random_image;
namespace pb = protocol::picoboot;

namespace {

constexpr uint32_t kBase = 0x10000000;

using Run = test::UsbRun<pb::Client, sim::picoboot::PicobootDevice>;

std::unique_ptr<Run> open(const std::string& faults = {}, bool timing = false, const std::string& chip = {},
                          const std::string& sim_chip = "rp2040") {
    sim::DeviceOptions options;
    options.timing = timing;
    protocol::ConnectOptions connect;
    connect.chip = chip;
    return test::usb_run<pb::Client, sim::picoboot::PicobootDevice>(sim::picoboot::make_picoboot_device(sim_chip, options),
                                                                     faults, connect);
}

std::vector<uint8_t> random_bytes(size_t n, unsigned seed) {
    std::mt19937 rng(seed);
    std::vector<uint8_t> out(n);
    for (auto& b : out) b = static_cast<uint8_t>(rng());
    return out;
}

}  // namespace

TEST(PicobootClient, IdentifiesTheRp2040AndTakesTheInterface) {
    auto run = open();
    auto info = run->client->connect();
    EXPECT_EQ(info.chip, "rp2040");
    EXPECT_EQ(info.bootloader, "rp2040_rom");
    EXPECT_EQ(info.app_start, kBase);  // the boot ROM is not in flash
    EXPECT_EQ(info.app_end, kBase + 2 * 1024 * 1024);
    EXPECT_EQ(info.page_size, 256u);
    EXPECT_FALSE(info.boot_area_end.has_value());
    EXPECT_TRUE(run->client->capabilities().can_read);
    EXPECT_TRUE(run->device().exclusive());
    EXPECT_TRUE(run->device().xip_exited());
    EXPECT_EQ(run->usb->identity().serial, "E0C912D24340");
}

TEST(PicobootClient, FlashesVerifiesAndReboots) {
    auto run = open({}, true);  // the ROM's erase and program times, in skipped time
    std::vector<uint8_t> old(64 * 1024, 0x5A);
    run->flash().load(kBase, old);
    auto img = random_image(kBase, 30000, 1);
    plan::FlashReport report;
    std::string error;
    EXPECT_FALSE(test::flash_through_plan(*run->client, img, {}, &report, &error).has_value()) << error;
    EXPECT_TRUE(flash_holds(run->flash(), img));
    EXPECT_TRUE(report.verified);
    EXPECT_TRUE(report.started);
    // 30000 bytes touch 8 sectors: only those were erased. The rest of the 8th sector after the
    // image's last page kept its old bytes, and so did everything after it.
    EXPECT_EQ(run->flash().counters().erases, 8u);
    EXPECT_EQ(run->client->sectors_erased(), 8u);
    for (uint32_t a = kBase + 30000; a < kBase + 0x7600; ++a) ASSERT_EQ(run->flash().at(a), 0xFF) << std::hex << a;
    for (uint32_t a = kBase + 0x7600; a < kBase + 0x10000; ++a) ASSERT_EQ(run->flash().at(a), 0x5A) << std::hex << a;
    EXPECT_TRUE(run->device().rebooted());
    run->usb->pause(std::chrono::milliseconds(600));
    EXPECT_FALSE(run->usb->present());  // REBOOT after 500 ms: the ROM left the bus
}

TEST(PicobootClient, APartialWriteKeepsTheRestOfItsSector) {
    auto run = open();
    const auto old = random_bytes(0x4000, 2);
    run->flash().load(kBase, old);
    image::Image img;
    const auto data = random_bytes(512, 3);
    img.add(kBase + 0x1200, data, "test");  // pages 0x1200 and 0x1300 of the sector at 0x1000
    std::string error;
    EXPECT_FALSE(test::flash_through_plan(*run->client, img, {}, nullptr, &error).has_value()) << error;
    EXPECT_EQ(run->flash().counters().erases, 1u);
    for (uint32_t off = 0; off < 0x4000; ++off) {
        const uint8_t want = off >= 0x1200 && off < 0x1400 ? data[off - 0x1200] : old[off];
        ASSERT_EQ(run->flash().at(kBase + off), want) << std::hex << off;
    }
    // 14 of the sector's 16 pages came back (none of random data is blank).
    EXPECT_EQ(run->client->pages_restored(), 14u);
}

TEST(PicobootClient, ABlankSectorIsNotErasedAgain) {
    auto run = open();
    auto img = random_image(kBase + 0x3000, 1000, 4);
    EXPECT_FALSE(test::flash_through_plan(*run->client, img).has_value());
    EXPECT_TRUE(flash_holds(run->flash(), img));
    EXPECT_EQ(run->flash().counters().erases, 0u);
    EXPECT_EQ(run->flash().counters().programs_over_unerased, 0u);
}

TEST(PicobootClient, ARefusedCommandIsReportedInWordsAndTheInterfaceRecovers) {
    auto run = open();
    run->client->connect();
    try {
        run->client->read(0x30000000, 256);  // neither flash nor SRAM
        FAIL() << "a read outside memory succeeded";
    } catch (const core::Error& e) {
        EXPECT_EQ(e.kind(), ErrorKind::Protocol) << e.what();
        const std::string message = e.what();
        EXPECT_NE(message.find("refused READ at 0x30000000: invalid address (status 4)"), std::string::npos) << message;
    }
    // The client reset the interface: the next command goes through.
    std::vector<uint8_t> pattern(256, 0x3C);
    run->flash().load(kBase, pattern);
    EXPECT_EQ(run->client->read(kBase, 256), pattern);
}

TEST(PicobootClient, ALeftDeviceIsAnIoErrorWithTheBootselHint) {
    auto run = open("vanish@40");
    auto img = random_image(kBase, 20000, 5);
    auto kind = test::flash_through_plan(*run->client, img);
    ASSERT_TRUE(kind.has_value());
    EXPECT_EQ(*kind, ErrorKind::Io);
    try {
        auto again = open("vanish@40");
        auto info = again->client->connect();
        plan::execute(*again->client, plan::make_plan(img, info, again->client->capabilities(), {}), {}, core::Progress());
        FAIL() << "flashing a vanished device succeeded";
    } catch (const core::Error& e) {
        EXPECT_EQ(e.kind(), ErrorKind::Io) << e.what();
        EXPECT_NE(e.hint().find("BOOTSEL"), std::string::npos) << e.hint();
    }
}

TEST(PicobootClient, RefusesAnotherChip) {
    auto run = open({}, false, "stm32f103xb");
    try {
        run->client->connect();
        FAIL() << "connected as an stm32f103xb";
    } catch (const core::Error& e) {
        EXPECT_EQ(e.kind(), ErrorKind::Usage) << e.what();
    }
}

TEST(PicobootSimulator, AnUnalignedEraseHaltsBothEndpointsUntilTheInterfaceIsReset) {
    auto run = open();
    auto& usb = *run->usb;
    usb.endpoint_out(0x03, pb::flash_erase(9, kBase + 0x100, 4096), 1000);
    EXPECT_THROW(usb.endpoint_in(0x84, 64, 1000), core::Error);  // the status phase is stalled
    EXPECT_THROW(usb.endpoint_out(0x03, pb::exit_xip(10), 1000), core::Error);
    auto status = pb::decode_status(usb.control_in({0xC1, 0x42, 0, 0, 16}, 1000));
    ASSERT_TRUE(status);
    EXPECT_EQ(status->token, 9u);
    EXPECT_EQ(status->code, 5u);  // bad alignment
    EXPECT_EQ(status->command, 0x03);
    usb.control_out({0x41, 0x41, 0, 0, 0}, {}, 1000);  // INTERFACE_RESET
    usb.endpoint_out(0x03, pb::exit_xip(11), 1000);
    EXPECT_TRUE(usb.endpoint_in(0x84, 64, 1000).empty());  // the zero-length status
    status = pb::decode_status(usb.control_in({0xC1, 0x42, 0, 0, 16}, 1000));
    ASSERT_TRUE(status);
    EXPECT_EQ(status->code, 0u);
    EXPECT_EQ(status->token, 11u);
}

TEST(PicobootSimulator, BadMagicAndWrongArgumentSizesAreRefused) {
    auto run = open();
    auto& usb = *run->usb;
    auto bad = pb::exit_xip(1);
    bad[0] ^= 1;
    usb.endpoint_out(0x03, bad, 1000);
    EXPECT_THROW(usb.endpoint_in(0x84, 64, 1000), core::Error);
    usb.control_out({0x41, 0x41, 0, 0, 0}, {}, 1000);
    auto wrong = pb::flash_erase(2, kBase, 4096);
    wrong[9] = 4;  // bCmdSize
    usb.endpoint_out(0x03, wrong, 1000);
    EXPECT_THROW(usb.endpoint_in(0x84, 64, 1000), core::Error);
    auto status = pb::decode_status(usb.control_in({0xC1, 0x42, 0, 0, 16}, 1000));
    ASSERT_TRUE(status);
    EXPECT_EQ(status->code, 2u);  // invalid command length
}

TEST(PicobootSimulator, WritingWithoutEraseAndsTheBits) {
    auto run = open();
    auto& usb = *run->usb;
    std::vector<uint8_t> was(256, 0x0F), page(256, 0xF5);
    run->flash().load(kBase, was);
    usb.endpoint_out(0x03, pb::write(1, kBase, 256), 1000);
    usb.endpoint_out(0x03, page, 1000);
    EXPECT_TRUE(usb.endpoint_in(0x84, 64, 1000).empty());
    EXPECT_EQ(run->flash().at(kBase), 0x05);
    EXPECT_EQ(run->flash().counters().programs_over_unerased, 1u);
    // READ: the data phase IN, then the host's status packet OUT.
    usb.endpoint_out(0x03, pb::read(2, kBase, 256), 1000);
    auto back = usb.endpoint_in(0x84, 256, 1000);
    ASSERT_EQ(back.size(), 256u);
    EXPECT_EQ(back[0], 0x05);
    usb.endpoint_out(0x03, std::vector<uint8_t>{0}, 1000);  // rp2040_flash's one-byte status packet
    usb.endpoint_out(0x03, pb::exit_xip(3), 1000);
    EXPECT_TRUE(usb.endpoint_in(0x84, 64, 1000).empty());
}

TEST(PicobootSimulator, ShowsOnlyThePicobootInterface) {
    auto run = open();
    auto config = run->usb->configuration_descriptor();
    ASSERT_GE(config.size(), 9u);
    EXPECT_EQ(config[4], 1);  // bNumInterfaces: no mass-storage interface
    auto found = pb::find_interface(config);
    ASSERT_TRUE(found);
    EXPECT_EQ(found->number, 0);
    EXPECT_EQ(found->out_endpoint, 0x03);
    EXPECT_EQ(found->in_endpoint, 0x84);
    EXPECT_EQ(run->usb->string_descriptor(1), "Raspberry Pi");
    EXPECT_EQ(run->usb->string_descriptor(2), "RP2 Boot");
}

TEST(PicobootClient, FlashesAnRp2350AndRebootsItWithReboot2) {
    auto run = open({}, true, {}, "rp2350");
    EXPECT_EQ(run->usb->identity().product, 0x000Fu);
    auto info = run->client->connect();
    EXPECT_EQ(info.chip, "rp2350");
    EXPECT_EQ(info.bootloader, "rp2350_rom");
    EXPECT_EQ(info.app_end, kBase + 4 * 1024 * 1024);
    auto img = random_image(kBase, 20000, 7);
    plan::FlashReport report;
    std::string error;
    EXPECT_FALSE(test::flash_through_plan(*run->client, img, {}, &report, &error).has_value()) << error;
    EXPECT_TRUE(flash_holds(run->flash(), img));
    EXPECT_TRUE(report.verified);
    EXPECT_TRUE(report.started);  // REBOOT2: the RP2350's ROM refuses REBOOT (below)
    EXPECT_TRUE(run->device().rebooted());
    run->usb->pause(std::chrono::milliseconds(600));
    EXPECT_FALSE(run->usb->present());
}

TEST(PicobootSimulator, EachRomRebootsOnlyByItsOwnCommand) {
    for (const char* chip : {"rp2040", "rp2350"}) {
        SCOPED_TRACE(chip);
        auto run = open({}, false, {}, chip);
        auto& usb = *run->usb;
        const bool rp2350 = std::string(chip) == "rp2350";
        // The other ROM's reboot command is unknown here (status 1), and the chip stays.
        usb.endpoint_out(0x03, rp2350 ? pb::reboot(1, 0, 0, 10) : pb::reboot2(1, 0, 10), 1000);
        EXPECT_THROW(usb.endpoint_in(0x84, 64, 1000), core::Error);
        auto status = pb::decode_status(usb.control_in({0xC1, 0x42, 0, 0, 16}, 1000));
        ASSERT_TRUE(status);
        EXPECT_EQ(status->code, 1u);
        EXPECT_FALSE(run->device().rebooted());
        EXPECT_THROW(sim::picoboot::make_picoboot_device("stm32f103xb", {}), core::Error);
    }
}
