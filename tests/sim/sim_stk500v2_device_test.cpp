// The STK500v2 simulators driven with raw messages at chosen instants: stk500boot_v2's erase pointer,
// refusal of chip erase and "!!!" monitor; the Arduino M0 bootloader's application region; the ISP
// programmer's AVR target with its fuses and lock bits.
#include <gtest/gtest.h>

#include "device_test_support.hpp"
#include "sim/registry.hpp"
#include "sim/stk500v2/arduino_m0_device.hpp"
#include "sim/stk500v2/isp_programmer_device.hpp"
#include "sim/stk500v2/stk500boot_device.hpp"

namespace mcuflash::sim {
namespace {

using namespace std::chrono_literals;
using Bytes = std::vector<uint8_t>;

// A message as the host frames it, written out here from AVR068.
Bytes message(uint8_t sequence, const Bytes& body) {
    Bytes out{0x1B, sequence, static_cast<uint8_t>(body.size() >> 8), static_cast<uint8_t>(body.size()), 0x0E};
    out.insert(out.end(), body.begin(), body.end());
    uint8_t checksum = 0;
    for (uint8_t b : out) checksum ^= b;
    out.push_back(checksum);
    return out;
}

Bytes pattern(size_t length, uint8_t seed) {
    Bytes out(length);
    for (size_t i = 0; i < length; ++i) out[i] = static_cast<uint8_t>(seed + i * 13 + (i >> 8));
    return out;
}

Bytes load_address(uint32_t word, bool extended = false) {
    if (extended) word |= 0x80000000u;
    return {0x06, static_cast<uint8_t>(word >> 24), static_cast<uint8_t>(word >> 16), static_cast<uint8_t>(word >> 8),
            static_cast<uint8_t>(word)};
}
Bytes program_flash(const Bytes& data) {
    Bytes out{0x13, static_cast<uint8_t>(data.size() >> 8), static_cast<uint8_t>(data.size()), 0xC1, 10, 0x40, 0x4C, 0x20, 0, 0};
    out.insert(out.end(), data.begin(), data.end());
    return out;
}
Bytes read_flash(uint16_t length) { return {0x14, static_cast<uint8_t>(length >> 8), static_cast<uint8_t>(length), 0x20}; }
Bytes enter_isp() { return {0x10, 200, 100, 25, 32, 0, 0x53, 3, 0xAC, 0x53, 0x00, 0x00}; }
Bytes read_fuse(uint8_t c1, uint8_t c2) { return {0x18, 4, c1, c2, 0, 0}; }
Bytes read_lock() { return {0x1A, 4, 0x58, 0x00, 0, 0}; }
Bytes program_fuse(uint8_t which, uint8_t value) { return {0x17, 0xAC, which, 0x00, value}; }
Bytes program_lock(uint8_t value) { return {0x19, 0xAC, 0xE0, 0x00, value}; }

class Bench : public test::DeviceBench {
public:
    Bench(const std::string& protocol, const std::string& chip, DeviceOptions options = quiet())
        : DeviceBench(make_device(protocol, chip, options)) {}
    // Sends one message and returns the answer's body (empty when none came).
    Bytes ask(const Bytes& body) { return unframe(send_raw(message(sequence_++, body))); }
    // Sends bytes and lets up to 100 ms pass while the device is busy with them.
    Bytes send_raw(const Bytes& bytes) {
        for (uint8_t b : bytes) device_->receive(b, now_);
        device_->tick(now_);
        const auto limit = now_ + 100ms;
        while (!device_->has_output()) {
            auto next = device_->next_deadline();
            if (!next || *next > limit) break;
            now_ = *next;
            device_->tick(now_);
        }
        Bytes out;
        for (const auto& sent : device_->take_output()) out.push_back(sent.value);
        return out;
    }
    static Bytes unframe(const Bytes& raw) {
        if (raw.size() < 6 || raw[0] != 0x1B || raw[4] != 0x0E) return {};
        size_t length = (size_t{raw[2]} << 8) | raw[3];
        if (raw.size() != length + 6) return {};
        uint8_t checksum = 0;
        for (size_t i = 0; i + 1 < raw.size(); ++i) checksum ^= raw[i];
        EXPECT_EQ(checksum, raw.back());
        return Bytes(raw.begin() + 5, raw.end() - 1);
    }

private:
    uint8_t sequence_ = 1;
};

Bytes flash_bytes(Device& device, uint32_t address, size_t length) {
    Bytes out(length);
    for (size_t i = 0; i < length; ++i) out[i] = device.flash().at(address + static_cast<uint32_t>(i));
    return out;
}

// ---- stk500boot_v2

TEST(Stk500bootSim, SignsOnAsAvrisp2AndReportsItsVersion) {
    Bench bench("stk500v2", "atmega2560");
    EXPECT_EQ(bench.ask({0x01}), (Bytes{0x01, 0x00, 8, 'A', 'V', 'R', 'I', 'S', 'P', '_', '2'}));
    EXPECT_EQ(bench.ask({0x03, 0x90}), (Bytes{0x03, 0x00, 0x0F}));
    EXPECT_EQ(bench.ask({0x03, 0x91}), (Bytes{0x03, 0x00, 0x02}));
    EXPECT_EQ(bench.ask({0x03, 0x92}), (Bytes{0x03, 0x00, 0x0A}));
    EXPECT_EQ(bench.ask({0x1B, 0x04, 0x30, 0x00, 0x01, 0x00}), (Bytes{0x1B, 0x00, 0x98, 0x00}));
    EXPECT_EQ(bench.ask({0x55}), (Bytes{0x55, 0xC0}));  // unknown: FAILED
}

TEST(Stk500bootSim, ChipEraseFailsAndOnlyRewindsTheErasePointer) {
    Bench bench("stk500v2", "atmega2560");
    auto& dev = bench.as<stk500v2::Stk500bootDevice>();
    ASSERT_EQ(bench.ask(load_address(0)), (Bytes{0x06, 0x00}));
    ASSERT_EQ(bench.ask(program_flash(pattern(256, 1))), (Bytes{0x13, 0x00}));
    EXPECT_EQ(dev.erase_pointer(), 256u);
    EXPECT_EQ(bench.ask({0x12, 10, 0, 0xAC, 0x80, 0, 0}), (Bytes{0x12, 0xC0}));
    EXPECT_EQ(dev.erase_pointer(), 0u);
    EXPECT_EQ(flash_bytes(bench.device(), 0, 256), pattern(256, 1));  // nothing erased
}

TEST(Stk500bootSim, APageWrittenOutOfOrderIsNotErasedFirst) {
    Bench bench("stk500v2", "atmega2560");
    // Page 0x400 gets data while the erase pointer erases page 0: writing it again with other data
    // ANDs into the first (the pointer has moved on to page 0x100).
    bench.ask(load_address(0x400 / 2));
    bench.ask(program_flash(Bytes(256, 0x0F)));
    bench.ask(load_address(0x400 / 2));
    bench.ask(program_flash(Bytes(256, 0xF0)));
    EXPECT_EQ(flash_bytes(bench.device(), 0x400, 4), (Bytes{0x00, 0x00, 0x00, 0x00}));
    EXPECT_GT(bench.device().flash().counters().programs_over_unerased, 0u);
}

TEST(Stk500bootSim, NeverErasesAtOrAboveAppEndAndNeverWritesItsBootSection) {
    Bench bench("stk500v2", "atmega2560");
    auto& dev = bench.as<stk500v2::Stk500bootDevice>();
    EXPECT_EQ(dev.app_end(), 0x3C000u);
    // Drive the erase pointer to APP_END with writes in order.
    for (uint32_t page = 0; page < 0x3C000; page += 256) {
        bench.ask(load_address(page / 2, true));
        bench.ask(program_flash(Bytes(256, 0xFF)));
    }
    EXPECT_EQ(dev.erase_pointer(), 0x3C000u);
    bench.ask(load_address(0x3C000 / 2, true));
    bench.ask(program_flash(Bytes(256, 0x0F)));
    bench.ask(load_address(0x3C000 / 2, true));
    bench.ask(program_flash(Bytes(256, 0xF0)));  // no erase up here: bits only clear
    EXPECT_EQ(bench.device().flash().at(0x3C000), 0x00);
    bench.ask(load_address(0x3E000 / 2, true));
    EXPECT_EQ(bench.ask(program_flash(Bytes(256, 0x00))), (Bytes{0x13, 0x00}));  // answers OK...
    EXPECT_TRUE(bench.device().flash().protected_ranges_intact());           // ...the chip ignored it
    EXPECT_EQ(bench.device().flash().counters().violations, 1u);
}

TEST(Stk500bootSim, ReadsWholeWordsAcrossThe64KWordBoundary) {
    Bench bench("stk500v2", "atmega2560");
    Bytes data = pattern(512, 9);
    bench.device().flash().load(0x1FF00, data);
    bench.ask(load_address(0x1FF00 / 2, true));
    Bytes answer = bench.ask(read_flash(512));
    ASSERT_EQ(answer.size(), 515u);
    EXPECT_EQ(Bytes(answer.begin() + 2, answer.end() - 1), data);
}

TEST(Stk500bootSim, ABadChecksumIsDroppedWithoutAnAnswer) {
    Bench bench("stk500v2", "atmega2560");
    Bytes bad = message(1, {0x01});
    bad.back() ^= 0x55;
    EXPECT_TRUE(bench.send_raw(bad).empty());
    EXPECT_EQ(bench.as<stk500v2::Stk500bootDevice>().dropped_messages(), 1u);
    EXPECT_FALSE(bench.ask({0x01}).empty());  // the parser is back at the start
}

TEST(Stk500bootSim, ThreeExclamationMarksAmongTheFirstBytesStartTheMonitor) {
    Bench bench("stk500v2", "atmega2560");
    Bytes out = bench.send_raw({'!', '!', '!'});
    std::string text(out.begin(), out.end());
    EXPECT_NE(text.find("Arduino explorer stk500V2 by MLS"), std::string::npos);
    EXPECT_TRUE(bench.as<stk500v2::Stk500bootDevice>().in_monitor());
    EXPECT_TRUE(Bench::unframe(bench.send_raw(message(1, {0x01}))).empty());  // STK500v2 is ignored now
    bench.device().hardware_reset({});
    EXPECT_FALSE(bench.as<stk500v2::Stk500bootDevice>().in_monitor());
}

TEST(Stk500bootSim, ExclamationMarksLaterInTheStreamAreData) {
    Bench bench("stk500v2", "atmega2560");
    bench.ask({0x01});  // 7 bytes read
    bench.ask(load_address(0));
    Bytes data(256, '!');
    EXPECT_EQ(bench.ask(program_flash(data)), (Bytes{0x13, 0x00}));
    EXPECT_FALSE(bench.as<stk500v2::Stk500bootDevice>().in_monitor());
    EXPECT_EQ(flash_bytes(bench.device(), 0, 256), data);
}

TEST(Stk500bootSim, StartsTheApplicationWithoutAByteWithinOneSecond) {
    Bench bench("stk500v2", "atmega2560");
    bench.wait(900ms);
    EXPECT_TRUE(bench.device().in_bootloader());
    bench.wait(200ms);
    EXPECT_FALSE(bench.device().in_bootloader());
}

TEST(Stk500bootSim, LeaveProgmodeStartsTheApplication) {
    Bench bench("stk500v2", "atmega2560");
    EXPECT_EQ(bench.ask({0x11, 1, 1}), (Bytes{0x11, 0x00}));
    bench.wait(150ms);
    EXPECT_FALSE(bench.device().in_bootloader());
}

// ---- Arduino M0

TEST(ArduinoM0Sim, PretendsToBeAnAtmega2560) {
    Bench bench("stk500v2", "samd21g18a");
    EXPECT_EQ(bench.ask({0x01}), (Bytes{0x01, 0x00, 8, 'A', 'V', 'R', 'I', 'S', 'P', '_', '2'}));
    EXPECT_EQ(bench.ask({0x03, 0x91}), (Bytes{0x03, 0x00, 4}));
    EXPECT_EQ(bench.ask({0x03, 0x92}), (Bytes{0x03, 0x00, 5}));
    EXPECT_EQ(bench.ask({0x1B, 0x04, 0x30, 0x00, 0x00, 0x00}), (Bytes{0x1B, 0x00, 0x1E, 0x00}));
    EXPECT_EQ(bench.ask({0x1B, 0x04, 0x30, 0x00, 0x02, 0x00}), (Bytes{0x1B, 0x00, 0x01, 0x00}));
    // Unknown commands get an answer with an empty body.
    EXPECT_EQ(bench.send_raw(message(9, {0x18, 4, 0x50, 0, 0, 0})), message(9, {}));
}

TEST(ArduinoM0Sim, WritesOnlyFromTheApplicationStartAndOnlyAfterAnErase) {
    Bench bench("stk500v2", "samd21g18a");
    auto& flash = bench.device().flash();
    bench.ask(load_address(0));
    EXPECT_EQ(bench.ask(program_flash(Bytes(256, 0x00))), (Bytes{0x13, 0x00}));  // below 0x4000: skipped, OK
    EXPECT_TRUE(flash.protected_ranges_intact());
    EXPECT_EQ(flash.counters().violations, 0u);  // not even attempted
    bench.ask(load_address(0x4000 / 2));
    bench.ask(program_flash(Bytes(256, 0x0F)));
    bench.ask(load_address(0x4000 / 2));
    bench.ask(program_flash(Bytes(256, 0xF0)));  // no erase between: bits only clear
    EXPECT_EQ(flash.at(0x4000), 0x00);
    EXPECT_EQ(bench.ask({0x12, 10, 0, 0xAC, 0x80, 0, 0}), (Bytes{0x12, 0x00}));
    EXPECT_EQ(flash.at(0x4000), 0xFF);
    EXPECT_TRUE(flash.protected_ranges_intact());
    Bytes data = pattern(256, 3);
    bench.ask(load_address(0x4000 / 2));
    bench.ask(program_flash(data));
    bench.ask(load_address(0x4000 / 2));
    Bytes answer = bench.ask(read_flash(256));
    ASSERT_EQ(answer.size(), 259u);
    EXPECT_EQ(Bytes(answer.begin() + 2, answer.end() - 1), data);
    bench.ask(load_address(0));
    answer = bench.ask(read_flash(4));
    EXPECT_EQ(answer, (Bytes{0x14, 0x00, 0xFF, 0xFF, 0xFF, 0xFF, 0x00}));  // the bootloader reads as 0xFF
}

TEST(ArduinoM0Sim, AShortWritePadsTheAddressToTheNextRow) {
    Bench bench("stk500v2", "samd21g18a");
    bench.ask({0x12, 10, 0, 0xAC, 0x80, 0, 0});
    bench.ask(load_address(0x4000 / 2));
    bench.ask(program_flash(Bytes(64, 0x11)));
    bench.ask(program_flash(Bytes(64, 0x22)));  // lands at 0x4100, not 0x4040
    EXPECT_EQ(bench.device().flash().at(0x4040), 0xFF);
    EXPECT_EQ(bench.device().flash().at(0x4100), 0x22);
}

TEST(ArduinoM0Sim, EightSecondsWithoutAMessageStartTheApplicationWhenThereIsOne) {
    Bench bench("stk500v2", "samd21g18a");
    bench.wait(9s);
    EXPECT_TRUE(bench.device().in_bootloader());  // no application: the bootloader again
    bench.ask({0x12, 10, 0, 0xAC, 0x80, 0, 0});
    bench.ask(load_address(0x4000 / 2));
    bench.ask(program_flash(pattern(256, 1)));
    bench.wait(9s);
    EXPECT_FALSE(bench.device().in_bootloader());
}

// ---- ISP programmer and AVR target

TEST(IspSim, EntersProgrammingModeAndReadsTheFactoryFuses) {
    Bench bench("stk500v2-isp", "atmega2560");
    EXPECT_EQ(bench.ask({0x01}), (Bytes{0x01, 0x00, 8, 'A', 'V', 'R', 'I', 'S', 'P', '_', '2'}));
    EXPECT_EQ(bench.ask(enter_isp()), (Bytes{0x10, 0x00}));
    EXPECT_EQ(bench.ask({0x1B, 4, 0x30, 0x00, 0x01, 0x00}), (Bytes{0x1B, 0x00, 0x98, 0x00}));
    EXPECT_EQ(bench.ask(read_fuse(0x50, 0x00)), (Bytes{0x18, 0x00, 0x62, 0x00}));
    EXPECT_EQ(bench.ask(read_fuse(0x58, 0x08)), (Bytes{0x18, 0x00, 0x99, 0x00}));
    EXPECT_EQ(bench.ask(read_fuse(0x50, 0x08)), (Bytes{0x18, 0x00, 0xFF, 0x00}));
    EXPECT_EQ(bench.ask(read_lock()), (Bytes{0x1A, 0x00, 0xFF, 0x00}));
}

TEST(IspSim, AChecksumErrorIsAnswered) {
    Bench bench("stk500v2-isp", "atmega2560");
    Bytes bad = message(1, {0x01});
    bad.back() ^= 1;
    EXPECT_EQ(Bench::unframe(bench.send_raw(bad)), (Bytes{0xB0, 0xC1}));
}

TEST(IspSim, FlashNeedsAChipEraseAndTheLockBitsStopProgramming) {
    Bench bench("stk500v2-isp", "atmega2560");
    auto& flash = bench.device().flash();
    bench.ask(enter_isp());
    bench.ask(load_address(0x100 / 2));
    bench.ask(program_flash(Bytes(256, 0x0F)));
    bench.ask(load_address(0x100 / 2));
    bench.ask(program_flash(Bytes(256, 0xF0)));
    EXPECT_EQ(flash.at(0x100), 0x00);  // no erase by a page write
    bench.ask({0x12, 10, 0, 0xAC, 0x80, 0, 0});
    EXPECT_EQ(flash.at(0x100), 0xFF);
    // Lock mode 2 (LB = 10): programming disabled until the next chip erase.
    EXPECT_EQ(bench.ask(program_lock(0xFE)), (Bytes{0x19, 0x00, 0x00}));
    bench.ask(load_address(0x100 / 2));
    bench.ask(program_flash(Bytes(256, 0x00)));
    EXPECT_EQ(flash.at(0x100), 0xFF);
    EXPECT_EQ(bench.ask(read_lock()), (Bytes{0x1A, 0x00, 0xFE, 0x00}));
    bench.ask(program_lock(0xFF));  // lock bits cannot be unprogrammed
    EXPECT_EQ(bench.ask(read_lock()), (Bytes{0x1A, 0x00, 0xFE, 0x00}));
    bench.ask({0x12, 10, 0, 0xAC, 0x80, 0, 0});
    EXPECT_EQ(bench.ask(read_lock()), (Bytes{0x1A, 0x00, 0xFF, 0x00}));
    // Lock mode 3 (LB = 00): no read-back either.
    bench.device().flash().load(0x200, Bytes{0x12, 0x34});
    bench.ask(program_lock(0xFC));
    bench.ask(load_address(0x200 / 2));
    EXPECT_EQ(bench.ask(read_flash(2)), (Bytes{0x14, 0x00, 0xFF, 0xFF, 0x00}));
}

TEST(IspSim, ExtendedAddressReachesTheUpperFlashAndDoesNotAdvanceOnItsOwn) {
    Bench bench("stk500v2-isp", "atmega2560");
    bench.ask(enter_isp());
    bench.ask({0x12, 10, 0, 0xAC, 0x80, 0, 0});
    Bytes data = pattern(256, 4);
    bench.ask(load_address(0x30000 / 2, true));
    bench.ask(program_flash(data));
    EXPECT_EQ(flash_bytes(bench.device(), 0x30000, 256), data);
    bench.device().flash().load(0x1FFFE, Bytes{0xAA, 0xBB});
    bench.device().flash().load(0x00000, Bytes{0xCC, 0xDD});
    bench.ask(load_address(0x1FFFE / 2, true));
    // Word 0xFFFF, then the 16-bit word counter wraps and the extended byte (0) stays: byte 0x00000
    // comes next, not 0x20000. A client must load the address again at each 128 KiB boundary.
    EXPECT_EQ(bench.ask(read_flash(4)), (Bytes{0x14, 0x00, 0xAA, 0xBB, 0xCC, 0xDD, 0x00}));
}

TEST(IspSim, FusesKeepSpienAndTakeEffectWhenTheChipLeavesProgrammingMode) {
    Bench bench("stk500v2-isp", "atmega168");
    auto& target = bench.as<stk500v2::IspProgrammerDevice>().target();
    bench.ask(enter_isp());
    bench.ask(program_fuse(0xA8, 0xFF));  // tries to unprogram SPIEN (bit 5)
    EXPECT_EQ(bench.ask(read_fuse(0x58, 0x08)), (Bytes{0x18, 0x00, 0xDF, 0x00}));
    bench.ask(program_fuse(0xA0, 0xE0));  // CKSEL 0000: external clock, which the board does not have
    EXPECT_EQ(bench.ask(read_fuse(0x50, 0x00)), (Bytes{0x18, 0x00, 0xE0, 0x00}));
    EXPECT_EQ(bench.ask({0x11, 1, 1}), (Bytes{0x11, 0x00}));
    EXPECT_NE(target.bricked().find("CKSEL"), std::string::npos);
    EXPECT_EQ(bench.ask(enter_isp()), (Bytes{0x10, 0xC0}));  // the chip no longer answers
}

TEST(IspSim, RstdisblBricksAnAtmega168) {
    Bench bench("stk500v2-isp", "atmega168");
    bench.ask(enter_isp());
    bench.ask(program_fuse(0xA8, 0x5F));  // RSTDISBL programmed
    bench.ask({0x11, 1, 1});
    EXPECT_EQ(bench.ask(enter_isp()), (Bytes{0x10, 0xC0}));
}

TEST(IspSim, FusesLiveBesideTheFlashFile) {
    auto dir = std::filesystem::temp_directory_path() / "mcuflash-isp-sim-test";
    std::filesystem::create_directories(dir);
    auto file = dir / "target.bin";
    std::filesystem::remove(file);
    std::filesystem::remove(dir / "target.bin.fuses");
    DeviceOptions options = Bench::quiet();
    options.flash_file = file;
    {
        Bench bench("stk500v2-isp", "atmega2560", options);
        bench.ask(enter_isp());
        bench.ask(program_fuse(0xA8, 0xD8));
        bench.ask(program_lock(0x0F));
    }
    Bench again("stk500v2-isp", "atmega2560", options);
    again.ask(enter_isp());
    EXPECT_EQ(again.ask(read_fuse(0x58, 0x08)), (Bytes{0x18, 0x00, 0xD8, 0x00}));
    EXPECT_EQ(again.ask(read_lock()), (Bytes{0x1A, 0x00, 0xCF, 0x00}));
    std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace mcuflash::sim
