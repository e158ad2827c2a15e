// HalfKay's block reports (teensy_loader_cli 2.2's formats), as bytes.
#include <gtest/gtest.h>

#include "protocol/halfkay/codec.hpp"

using namespace mcuflash::protocol::halfkay;

TEST(HalfKayCodec, TeensyPlusPlus2PutsAddressBits8To23InFront) {
    const auto* t = find_teensy("at90usb1286");
    ASSERT_NE(t, nullptr);
    EXPECT_EQ(t->report_size(), 258u);
    std::vector<uint8_t> block(256, 0xA5);
    auto r = block_report(*t, 0x1FA00, block);
    ASSERT_EQ(r.size(), 258u);
    EXPECT_EQ(r[0], 0xFA);
    EXPECT_EQ(r[1], 0x01);
    EXPECT_EQ(r[2], 0xA5);
    auto back = decode_report(*t, r);
    ASSERT_TRUE(back);
    EXPECT_FALSE(back->boot);
    EXPECT_EQ(back->address, 0x1FA00u);
    EXPECT_EQ(back->block.size(), 256u);
}

TEST(HalfKayCodec, SmallAvrTeensiesPutTheLow16BitsInFront) {
    for (const char* mcu : {"atmega32u4", "at90usb162", "at90usb646"}) {
        const auto* t = find_teensy(mcu);
        ASSERT_NE(t, nullptr) << mcu;
        EXPECT_EQ(t->format, BlockFormat::Address16) << mcu;
        std::vector<uint8_t> block(t->block_size, 1);
        auto r = block_report(*t, 0x7D00 & ~(t->block_size - 1), block);
        EXPECT_EQ(r.size(), t->block_size + 2);
        EXPECT_EQ(r[0], static_cast<uint8_t>(0x7D00 & ~(t->block_size - 1)));
        EXPECT_EQ(r[1], 0x7D);
    }
    EXPECT_EQ(find_teensy("Teensy 2.0")->mcu, "atmega32u4");
}

TEST(HalfKayCodec, ArmTeensiesHaveA64ByteHeader) {
    const auto* t = find_teensy("imxrt1062");
    ASSERT_NE(t, nullptr);
    std::vector<uint8_t> block(1024, 2);
    auto r = block_report(*t, 0x123400, block);
    ASSERT_EQ(r.size(), 1088u);
    EXPECT_EQ(r[0], 0x00);
    EXPECT_EQ(r[1], 0x34);
    EXPECT_EQ(r[2], 0x12);
    for (int i = 3; i < 64; ++i) EXPECT_EQ(r[i], 0) << i;
    EXPECT_EQ(r[64], 2);
}

TEST(HalfKayCodec, TheBootReportIsThreeFFsThenZeros) {
    for (const auto& t : teensies()) {
        auto r = boot_report(t);
        ASSERT_EQ(r.size(), t.report_size());
        EXPECT_EQ(r[0], 0xFF);
        EXPECT_EQ(r[1], 0xFF);
        EXPECT_EQ(r[2], 0xFF);
        EXPECT_EQ(r[3], 0);
        auto back = decode_report(t, r);
        ASSERT_TRUE(back);
        EXPECT_TRUE(back->boot) << t.mcu;
    }
}

TEST(HalfKayCodec, ReadsTheOutputReportSizeFromAReportDescriptor) {
    const std::vector<uint8_t> d{0x06, 0x9C, 0xFF, 0x09, 0x1B, 0xA1, 0x01, 0x75, 0x08, 0x15, 0x00, 0x26, 0xFF,
                                 0x00, 0x96, 0x02, 0x01, 0x09, 0x02, 0x91, 0x02, 0xC0};
    EXPECT_EQ(output_report_bytes(d), std::optional<uint32_t>(258));
    EXPECT_FALSE(output_report_bytes(std::vector<uint8_t>{0x06, 0x9C}).has_value());  // cut short
    EXPECT_FALSE(output_report_bytes(std::vector<uint8_t>{0x75, 0x01, 0x95, 0x08, 0x91, 0x02}).has_value());  // bits
    EXPECT_EQ(decode_report(*find_teensy("at90usb1286"), std::vector<uint8_t>(130)), std::nullopt);
}
