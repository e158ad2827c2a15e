// The Katapult simulator byte by byte, with frames built here by hand from protocol.md (not with the
// client's codec): CONNECT's answer layout, block writes as flashcmd.c and stm32/flash.c take them,
// the parser's stop after a damaged frame, COMPLETE and resets.
#include <gtest/gtest.h>

#include "core/crc.hpp"
#include "device_test_support.hpp"
#include "sim/katapult/katapult_device.hpp"
#include "targets/knowledge.hpp"

using namespace mcuflash;
using namespace mcuflash::sim;
using sim::katapult::KatapultConfig;
using sim::katapult::KatapultDevice;
using test::Bytes;

namespace {

Bytes frame(uint8_t cmd, const Bytes& payload = {}) {
    // Sized first and copied into: GCC 12 warns of a false -Warray-bounds on inserting after a short list.
    Bytes out(4 + payload.size());
    out[0] = 0x01;
    out[1] = 0x88;
    out[2] = cmd;
    out[3] = static_cast<uint8_t>(payload.size() / 4);
    std::copy(payload.begin(), payload.end(), out.begin() + 4);
    uint16_t crc = core::crc16_mcrf4xx(std::span<const uint8_t>(out).subspan(2));
    out.push_back(crc & 0xFF);
    out.push_back(crc >> 8);
    out.push_back(0x99);
    out.push_back(0x03);
    return out;
}

Bytes le(uint32_t v) { return {uint8_t(v), uint8_t(v >> 8), uint8_t(v >> 16), uint8_t(v >> 24)}; }

Bytes block_payload(uint32_t address, uint8_t fill) {
    Bytes p = le(address);
    p.insert(p.end(), 64, fill);
    return p;
}

test::DeviceBench bench(const std::string& chip, KatapultConfig config = {}) {
    const auto& kb = targets::Knowledge::builtin();
    return test::DeviceBench(std::make_unique<KatapultDevice>(kb.chip(chip), *kb.find_bootloader("katapult"),
                                                              test::DeviceBench::quiet(), config));
}

uint8_t answer_type(const Bytes& answer) { return answer.size() >= 8 ? answer[2] : 0; }

}  // namespace

TEST(KatapultSimDevice, ConnectAnswerLayout) {
    auto b = bench("stm32f103xe");
    Bytes a = b.exchange(frame(0x11));
    ASSERT_GE(a.size(), 8u + 20);
    EXPECT_EQ(a[2], 0xA0);
    const size_t words = a[3];
    ASSERT_EQ(a.size(), 8 + words * 4);
    EXPECT_EQ(Bytes(a.begin() + 4, a.begin() + 8), le(0x11));
    EXPECT_EQ(Bytes(a.begin() + 8, a.begin() + 12), le(0x00010100));
    EXPECT_EQ(Bytes(a.begin() + 12, a.begin() + 16), le(0x08002000));
    EXPECT_EQ(Bytes(a.begin() + 16, a.begin() + 20), le(64));
    EXPECT_EQ(std::string(a.begin() + 20, a.begin() + 31), "stm32f103xe");
    EXPECT_EQ(a[31], 0);                          // the MCU string's last word is padded
    EXPECT_EQ(Bytes(a.begin() + 32, a.begin() + 36), Bytes(4, 0));  // then a zero word
    uint16_t crc = core::crc16_mcrf4xx(std::span<const uint8_t>(a).subspan(2, a.size() - 6));
    EXPECT_EQ(a[a.size() - 4], crc & 0xFF);
    EXPECT_EQ(a[a.size() - 3], crc >> 8);
}

TEST(KatapultSimDevice, BlockWritesAsStm32FlashCTakesThem) {
    auto b = bench("stm32f103xe");
    auto& dev = b.as<KatapultDevice>();
    const uint32_t app = dev.app_start();
    EXPECT_EQ(answer_type(b.exchange(frame(0x12, block_payload(app - 64, 0x11)))), 0xF2) << "below the application";
    EXPECT_EQ(answer_type(b.exchange(frame(0x12, block_payload(app + 4, 0x11)))), 0xF2) << "not block aligned";
    EXPECT_EQ(answer_type(b.exchange(frame(0x12, le(app)))), 0xF2) << "no data";
    Bytes ok = b.exchange(frame(0x12, block_payload(app, 0x11)));
    ASSERT_EQ(answer_type(ok), 0xA0);
    EXPECT_EQ(Bytes(ok.begin() + 8, ok.begin() + 12), le(app));
    EXPECT_EQ(answer_type(b.exchange(frame(0x12, block_payload(app, 0x11)))), 0xA0) << "a retransmission";
    EXPECT_EQ(dev.stats().retransmissions, 1u);
    // Once the page holds data, another block over unerased flash is refused.
    EXPECT_EQ(answer_type(b.exchange(frame(0x12, block_payload(app + 64, 0x22)))), 0xA0);
    EXPECT_EQ(answer_type(b.exchange(frame(0x12, block_payload(app + 64, 0x33)))), 0xF2);
    Bytes eof = b.exchange(frame(0x13));
    ASSERT_EQ(answer_type(eof), 0xA0);
    EXPECT_EQ(Bytes(eof.begin() + 8, eof.begin() + 12), le(1)) << "one page started";
    Bytes back = b.exchange(frame(0x14, le(app + 64)));
    ASSERT_EQ(back.size(), 8u + 8 + 64);
    EXPECT_EQ(back[16], 0x22);
    EXPECT_TRUE(dev.flash().protected_ranges_intact());
    EXPECT_TRUE(dev.flash().violations().empty());
}

TEST(KatapultSimDevice, Rp2040GathersAPageUntilEof) {
    auto b = bench("rp2040");
    auto& dev = b.as<KatapultDevice>();
    const uint32_t app = dev.app_start();
    ASSERT_EQ(answer_type(b.exchange(frame(0x12, block_payload(app, 0x5A)))), 0xA0);
    Bytes before = b.exchange(frame(0x14, le(app)));
    EXPECT_EQ(before[16], 0xFF) << "still in the page buffer";
    ASSERT_EQ(answer_type(b.exchange(frame(0x13))), 0xA0);
    Bytes after = b.exchange(frame(0x14, le(app)));
    EXPECT_EQ(after[16], 0x5A);
}

TEST(KatapultSimDevice, ADamagedFrameStopsTheParserUntilReset) {
    auto b = bench("stm32f103xe");
    Bytes bad = frame(0x11);
    bad[4] ^= 0xFF;  // the CRC no longer matches
    Bytes a = b.exchange(bad);
    EXPECT_EQ(answer_type(a), 0xF1) << "one NACK";
    EXPECT_TRUE(b.exchange(frame(0x11)).empty()) << "then nothing: the damaged header is never dropped";
    EXPECT_TRUE(b.as<KatapultDevice>().stats().wedged);
    b.device().reset(ResetCause::Pin, b.now());
    EXPECT_EQ(answer_type(b.exchange(frame(0x11))), 0xA0);
    // Noise without a header is dropped with one NACK.
    EXPECT_EQ(answer_type(b.exchange(Bytes{0x55, 0x66, 0x77, 0x12, 0x34, 0x56, 0x78, 0x9A})), 0xF1);
    EXPECT_EQ(answer_type(b.exchange(frame(0x11))), 0xA0);
}

TEST(KatapultSimDevice, CompleteStartsTheApplicationAndPowerResetsKeepIt) {
    auto b = bench("stm32f103xe");
    auto& dev = b.as<KatapultDevice>();
    EXPECT_EQ(answer_type(b.exchange(frame(0x12, block_payload(dev.app_start(), 0x20)))), 0xA0);
    EXPECT_EQ(answer_type(b.exchange(frame(0x15))), 0xA0);
    EXPECT_TRUE(dev.in_bootloader());
    b.wait(std::chrono::milliseconds(150));
    EXPECT_FALSE(dev.in_bootloader());
    EXPECT_TRUE(b.exchange(frame(0x11)).empty());
    b.device().reset(ResetCause::PowerOn, b.now());
    EXPECT_FALSE(dev.in_bootloader()) << "a valid application starts";
    b.device().reset(ResetCause::Pin, b.now());
    EXPECT_TRUE(dev.in_bootloader()) << "the double reset enters Katapult";
    EXPECT_EQ(answer_type(b.exchange(frame(0x16))), 0xF2) << "GET_CANBUS_ID on a serial build";
    EXPECT_EQ(answer_type(b.exchange(frame(0x42))), 0xF2);
}
