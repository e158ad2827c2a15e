// The STK500v1 device simulator driven with raw bytes at chosen instants, as avrdude would drive it.
#include <gtest/gtest.h>

#include <numeric>

#include "core/error.hpp"
#include "device_test_support.hpp"
#include "sim/registry.hpp"
#include "sim/stk500v1/atmegaboot_device.hpp"
#include "sim/stk500v1/optiboot_device.hpp"

namespace mcuflash::sim {
namespace {

using namespace std::chrono_literals;
using stk500v1::AvrBootloaderDevice;
using test::Bytes;
using test::cat;

constexpr uint8_t kInSync = 0x14, kOk = 0x10, kEop = 0x20;

Bytes pattern(size_t length, uint8_t seed) {
    Bytes out(length);
    for (size_t i = 0; i < length; ++i) out[i] = static_cast<uint8_t>(seed + i * 7 + (i >> 8));
    return out;
}

// Raw STK500v1 commands, written out here from the protocol description.
Bytes get_sync() { return {0x30, kEop}; }
Bytes get_parameter(uint8_t p) { return {0x41, p, kEop}; }
Bytes set_device() { return cat({{0x42}, Bytes(20, 0x86), {kEop}}); }
Bytes set_device_ext() { return {0x45, 0x05, 0x04, 0xD7, 0xC2, 0x00, kEop}; }
Bytes enter_progmode() { return {0x50, kEop}; }
Bytes leave_progmode() { return {0x51, kEop}; }
Bytes read_sign() { return {0x75, kEop}; }
Bytes load_address(uint32_t word) { return {0x55, static_cast<uint8_t>(word), static_cast<uint8_t>(word >> 8), kEop}; }
Bytes load_extended(uint8_t ext) { return {0x56, 0x4D, 0x00, ext, 0x00, kEop}; }
Bytes prog_page(uint8_t memory, const Bytes& data) {
    return cat({{0x64, static_cast<uint8_t>(data.size() >> 8), static_cast<uint8_t>(data.size()), memory}, data, {kEop}});
}
Bytes read_page(uint8_t memory, uint16_t length) {
    return {0x74, static_cast<uint8_t>(length >> 8), static_cast<uint8_t>(length), memory, kEop};
}
Bytes ok_with(const Bytes& data = {}) { return cat({{kInSync}, data, {kOk}}); }

class Bench : public test::DeviceBench {
public:
    explicit Bench(const std::string& chip, DeviceOptions options = quiet())
        : DeviceBench(make_device("stk500v1", chip, options), Clock::time_point(std::chrono::seconds(1000))) {}
    AvrBootloaderDevice& avr() { return as<AvrBootloaderDevice>(); }
    FlashMemory& flash() { return device_->flash(); }

    Bytes flash_bytes(uint32_t address, uint32_t length) {
        Bytes out(length);
        flash().read(address, out);
        return out;
    }
};

TEST(SimStk500v1Optiboot, AvrdudeSession) {
    Bench bench("atmega1284p");
    EXPECT_TRUE(bench.device().in_bootloader());
    EXPECT_EQ(bench.exchange(get_sync()), ok_with());
    EXPECT_EQ(bench.exchange(get_sync()), ok_with());
    EXPECT_EQ(bench.exchange(get_parameter(0x81)), ok_with({8}));
    EXPECT_EQ(bench.exchange(get_parameter(0x82)), ok_with({0}));
    EXPECT_EQ(bench.exchange(get_parameter(0x80)), ok_with({3}));  // anything else: 3
    EXPECT_EQ(bench.exchange(set_device()), ok_with());
    EXPECT_EQ(bench.exchange(set_device_ext()), ok_with());
    EXPECT_EQ(bench.exchange(enter_progmode()), ok_with());
    EXPECT_EQ(bench.exchange(read_sign()), ok_with({0x1E, 0x97, 0x05}));
    EXPECT_EQ(bench.exchange({0x52, kEop}), ok_with());  // chip erase: accepted, does nothing

    // Write three pages, then verify them as avrdude does.
    Bytes image = pattern(3 * 256, 1);
    for (uint32_t page = 0; page < 3; ++page) {
        Bytes data(image.begin() + page * 256, image.begin() + (page + 1) * 256);
        EXPECT_EQ(bench.exchange(cat({load_address(page * 128), prog_page('F', data)})), cat({ok_with(), ok_with()}));
    }
    for (uint32_t page = 0; page < 3; ++page) {
        Bytes data(image.begin() + page * 256, image.begin() + (page + 1) * 256);
        EXPECT_EQ(bench.exchange(cat({load_address(page * 128), read_page('F', 256)})), cat({ok_with(), ok_with(data)}));
    }
    EXPECT_EQ(bench.flash_bytes(0, 768), image);
    EXPECT_EQ(bench.exchange(leave_progmode()), ok_with());
    bench.wait(20ms);
    EXPECT_FALSE(bench.device().in_bootloader());
    EXPECT_EQ(bench.flash().counters().violations, 0u);
    EXPECT_TRUE(bench.flash().protected_ranges_intact());
    EXPECT_EQ(bench.avr().stats().bad_eop, 0u);
}

TEST(SimStk500v1Optiboot, PageWriteErasesFirst) {
    Bench bench("atmega328p");
    Bytes first = pattern(128, 3), second = pattern(128, 90);
    bench.exchange(cat({load_address(0x40), prog_page('F', first)}));
    bench.exchange(cat({load_address(0x40), prog_page('F', second)}));
    // Not first & second: optiboot erases the page before writing it.
    EXPECT_EQ(bench.flash_bytes(0x80, 128), second);
    EXPECT_EQ(bench.flash().counters().programs_over_unerased, 0u);
    EXPECT_EQ(bench.flash().counters().erases, 2u);
}

TEST(SimStk500v1Optiboot, PartialPageKeepsOldBufferContents) {
    Bench bench("atmega328p");
    Bytes full = pattern(128, 5), part = pattern(16, 200);
    bench.exchange(cat({load_address(0), prog_page('F', full)}));
    EXPECT_EQ(bench.exchange(cat({load_address(0x40), prog_page('F', part)})), cat({ok_with(), ok_with()}));
    // The rest of the page comes from the RAM buffer, which still holds the previous page.
    Bytes expected = full;
    std::copy(part.begin(), part.end(), expected.begin());
    EXPECT_EQ(bench.flash_bytes(0x80, 128), expected);
}

TEST(SimStk500v1Optiboot, MissingEopSendsItToTheApplication) {
    Bench bench("atmega328p");
    EXPECT_EQ(bench.exchange({0x30, 0x21}), Bytes{});  // no answer at all
    EXPECT_TRUE(bench.device().in_bootloader());       // spinning until the 16 ms watchdog
    EXPECT_EQ(bench.exchange(get_sync()), Bytes{});    // and reading nothing meanwhile
    bench.wait(17ms);
    EXPECT_FALSE(bench.device().in_bootloader());
    EXPECT_EQ(bench.exchange(get_sync()), Bytes{});
    bench.wait(5s);
    EXPECT_EQ(bench.exchange(get_sync()), Bytes{});
    EXPECT_EQ(bench.avr().stats().bad_eop, 1u);
    // Only a reset brings the bootloader back.
    bench.device().hardware_reset(bench.now());
    EXPECT_EQ(bench.exchange(get_sync()), ok_with());
}

TEST(SimStk500v1Optiboot, MissingEopAfterPageDataWritesNothing) {
    Bench bench("atmega328p");
    Bytes command = prog_page('F', pattern(128, 1));
    command.back() = 0x00;
    EXPECT_EQ(bench.exchange(cat({load_address(0), command})), ok_with());  // only LOAD_ADDRESS answered
    EXPECT_EQ(bench.flash().counters().programs, 0u);
    bench.wait(20ms);
    EXPECT_FALSE(bench.device().in_bootloader());
}

TEST(SimStk500v1Optiboot, OneSecondOfSilenceStartsTheApplication) {
    Bench bench("atmega1284p");
    bench.wait(999ms);
    EXPECT_TRUE(bench.device().in_bootloader());
    EXPECT_EQ(bench.exchange(get_sync()), ok_with());  // every byte kicks the watchdog
    bench.wait(999ms);
    EXPECT_TRUE(bench.device().in_bootloader());
    bench.wait(2ms);
    EXPECT_FALSE(bench.device().in_bootloader());
    EXPECT_EQ(bench.avr().stats().watchdog_resets, 1u);
    EXPECT_EQ(bench.exchange(get_sync()), Bytes{});
    // A power cycle runs the application too; the RESET pin runs the bootloader.
    bench.device().reset(ResetCause::PowerOn, bench.now());
    EXPECT_FALSE(bench.device().in_bootloader());
    bench.device().reset(ResetCause::Pin, bench.now());
    EXPECT_TRUE(bench.device().in_bootloader());
}

TEST(SimStk500v1Optiboot, LeaveProgmodeStartsTheApplicationAfter16ms) {
    Bench bench("atmega1284p");
    EXPECT_EQ(bench.exchange(leave_progmode()), ok_with());
    bench.wait(15ms);
    EXPECT_TRUE(bench.device().in_bootloader());
    bench.wait(2ms);
    EXPECT_FALSE(bench.device().in_bootloader());
    EXPECT_EQ(bench.exchange(get_sync()), Bytes{});
}

TEST(SimStk500v1Optiboot, BootSectionWritesAreRefusedAndCounted) {
    Bench bench("atmega1284p");
    const auto& boot = bench.avr().boot_section();
    EXPECT_EQ(boot.address, 0x1FC00u);  // optiboot keeps the top 1 KiB of the 1284P
    EXPECT_EQ(boot.length, 1024u);
    Bytes before = bench.flash_bytes(boot.address, boot.length);
    EXPECT_EQ(before, FlashMemory::placeholder("optiboot", 1024));

    // The chip ignores SPM into its locked boot section; optiboot answers as usual.
    EXPECT_EQ(bench.exchange(cat({load_address(0x1FC00 / 2), prog_page('F', Bytes(256, 0))})),
              cat({ok_with(), ok_with()}));
    EXPECT_EQ(bench.flash_bytes(boot.address, boot.length), before);
    EXPECT_EQ(bench.flash().counters().violations, 2u);  // the page erase and the page write
    ASSERT_FALSE(bench.flash().violations().empty());
    EXPECT_NE(bench.flash().violations().front().find("optiboot"), std::string::npos);

    // The page right below is the application's.
    bench.exchange(cat({load_address(0x1FB00 / 2), prog_page('F', Bytes(256, 0x55))}));
    EXPECT_EQ(bench.flash_bytes(0x1FB00, 256), Bytes(256, 0x55));
    EXPECT_EQ(bench.flash().counters().violations, 2u);
}

TEST(SimStk500v1Optiboot, ExtendedAddressingOnAtmega2560) {
    Bench bench("atmega2560");
    Bytes low = pattern(256, 10), middle = pattern(256, 20), high = pattern(256, 30);
    // Below 64K words: no extended address needed.
    bench.exchange(cat({load_address(0x0000), prog_page('F', low)}));
    // Word 0x8000 (byte 0x10000): bit 15 of the word address selects the upper 64 KiB.
    bench.exchange(cat({load_address(0x8000), prog_page('F', middle)}));
    // Word 0x10000 (byte 0x20000): avrdude sends UNIVERSAL 4D 00 01 00 first.
    EXPECT_EQ(bench.exchange(load_extended(1)), ok_with({0x00}));
    bench.exchange(cat({load_address(0x0000), prog_page('F', high)}));

    EXPECT_EQ(bench.flash_bytes(0x00000, 256), low);
    EXPECT_EQ(bench.flash_bytes(0x10000, 256), middle);
    EXPECT_EQ(bench.flash_bytes(0x20000, 256), high);

    EXPECT_EQ(bench.exchange(cat({load_address(0x0000), read_page('F', 256)})), cat({ok_with(), ok_with(high)}));
    EXPECT_EQ(bench.exchange(load_extended(0)), ok_with({0x00}));
    EXPECT_EQ(bench.exchange(cat({load_address(0x8000), read_page('F', 256)})), cat({ok_with(), ok_with(middle)}));
    EXPECT_EQ(bench.exchange(cat({load_address(0x0000), read_page('F', 256)})), cat({ok_with(), ok_with(low)}));
}

TEST(SimStk500v1Optiboot, ReadingToASegmentEndCarriesIntoRampz) {
    Bench bench("atmega2560");
    auto& optiboot = dynamic_cast<stk500v1::OptibootDevice&>(bench.device());
    bench.exchange(cat({load_address(0xFF80), read_page('F', 256)}));  // bytes 0x1FF00..0x1FFFF
    EXPECT_EQ(optiboot.rampz(), 2);  // ELPM Z+ ran on into the next 64 KiB
    // So a host that did not re-send the extended address now reads 0x3FF00, not 0x1FF00.
    bench.flash().load(0x3FF00, Bytes(256, 0xAB));
    EXPECT_EQ(bench.exchange(cat({load_address(0xFF80), read_page('F', 4)})),
              cat({ok_with(), ok_with(Bytes(4, 0xAB))}));
}

TEST(SimStk500v1Optiboot, EepromReadAndWrite) {
    Bench bench("atmega328p");
    Bytes data = pattern(8, 40);
    EXPECT_EQ(bench.exchange(cat({load_address(0x10), prog_page('E', data)})), cat({ok_with(), ok_with()}));
    Bytes stored(8);
    bench.avr().eeprom().read(0x20, stored);  // the word address 0x10 is byte 0x20
    EXPECT_EQ(stored, data);
    EXPECT_EQ(bench.exchange(cat({load_address(0x10), read_page('E', 8)})), cat({ok_with(), ok_with(data)}));
    EXPECT_EQ(bench.flash().counters().programs, 0u);
}

TEST(SimStk500v1Optiboot, PageWritesTakeTheirTimeWhenTimed) {
    DeviceOptions timed;
    timed.timing = true;
    Bench bench("atmega1284p", timed);
    Bytes answer = bench.exchange(cat({load_address(0), prog_page('F', Bytes(256, 0x12))}));
    EXPECT_EQ(answer, (Bytes{kInSync, kOk, kInSync}));  // OK comes when the page is written
    bench.wait(8900us);
    EXPECT_EQ(bench.take(), Bytes{});
    // While busy the UART keeps three bytes; the rest are lost.
    EXPECT_EQ(bench.exchange(cat({get_sync(), get_sync()})), Bytes{});
    bench.wait(200us);  // 4.5 ms erase + 4.5 ms write
    EXPECT_EQ(bench.take(), cat({{kOk}, ok_with()}));
    EXPECT_EQ(bench.avr().stats().overruns, 1u);
    // Of the second GET_SYNC only 0x30 was kept: completing it gets an answer.
    bench.wait(1ms);
    EXPECT_EQ(bench.exchange({kEop}), ok_with());
}

TEST(SimStk500v1Atmegaboot, IdentityAndQuirks) {
    DeviceOptions options = Bench::quiet();
    options.bootloader = "atmegaboot";
    Bench bench("atmega328p", options);
    EXPECT_EQ(bench.device().line_settings().baud, 57600u);
    EXPECT_EQ(bench.avr().boot_section().length, 2048u);
    EXPECT_EQ(bench.exchange(get_parameter(0x80)), ok_with({2}));
    EXPECT_EQ(bench.exchange(get_parameter(0x81)), ok_with({1}));
    EXPECT_EQ(bench.exchange(get_parameter(0x82)), ok_with({0x10}));
    EXPECT_EQ(bench.exchange(get_parameter(0x90)), ok_with({0}));
    EXPECT_EQ(bench.exchange({0x31, kEop}), ok_with({'A', 'V', 'R', ' ', 'I', 'S', 'P'}));
    EXPECT_EQ(bench.exchange({0x56, 0x30, 0x00, 0x01, 0x00, kEop}), ok_with({0x95}));  // signature byte 1
    EXPECT_EQ(bench.exchange(read_sign()), ok_with({0x1E, 0x95, 0x0F}));

    Bytes two_pages = pattern(256, 77);
    EXPECT_EQ(bench.exchange(cat({load_address(0x40), prog_page('F', two_pages)})), cat({ok_with(), ok_with()}));
    EXPECT_EQ(bench.flash_bytes(0x80, 256), two_pages);
    EXPECT_EQ(bench.exchange(cat({load_address(0x40), read_page('F', 256)})), cat({ok_with(), ok_with(two_pages)}));

    // LEAVE_PROGMODE only answers.
    EXPECT_EQ(bench.exchange(leave_progmode()), ok_with());
    bench.wait(100ms);
    EXPECT_TRUE(bench.device().in_bootloader());
    // A power-on reset runs the bootloader too.
    bench.device().reset(ResetCause::PowerOn, bench.now());
    EXPECT_TRUE(bench.device().in_bootloader());
}

TEST(SimStk500v1Atmegaboot, FiveErrorsStartTheApplication) {
    DeviceOptions options = Bench::quiet();
    options.bootloader = "atmegaboot";
    Bench bench("atmega168", options);
    EXPECT_EQ(bench.exchange({0x30, 0x21}), Bytes{});  // bad end: no answer, error 1
    EXPECT_EQ(bench.exchange(get_sync()), ok_with());   // still listening
    EXPECT_EQ(bench.exchange({0x99, 0x98, 0x97}), Bytes{});  // errors 2, 3, 4
    EXPECT_TRUE(bench.device().in_bootloader());
    EXPECT_EQ(bench.exchange({0x99}), Bytes{});  // error 5
    EXPECT_FALSE(bench.device().in_bootloader());
}

TEST(SimStk500v1Registry, ChipsAndPersonalities) {
    EXPECT_THROW(make_device("stk500v1", "atmega9", {}), core::Error);
    DeviceOptions atmegaboot;
    atmegaboot.bootloader = "atmegaboot";
    EXPECT_THROW(make_device("stk500v1", "atmega2560", atmegaboot), core::Error);  // no such build in the data
    DeviceOptions unknown;
    unknown.bootloader = "caterina";
    EXPECT_THROW(make_device("stk500v1", "atmega328p", unknown), core::Error);
    EXPECT_THROW(make_device("stk500v9", "atmega328p", {}), core::Error);
    auto device = make_device("stk500v1", "", Bench::quiet());
    EXPECT_EQ(device->describe(), "optiboot 8.0 on atmega1284p");
    EXPECT_EQ(device->line_settings().baud, 115200u);
}

}  // namespace
}  // namespace mcuflash::sim
