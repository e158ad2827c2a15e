#include <gtest/gtest.h>

#include "protocol/stk500v1/codec.hpp"

using namespace mcuflash::protocol::stk500v1;
using Bytes = std::vector<uint8_t>;

TEST(Stk500v1Codec, SimpleCommandsEndWithEop) {
    EXPECT_EQ(encode_get_sync(), (Bytes{0x30, 0x20}));
    EXPECT_EQ(encode_get_parameter(0x81), (Bytes{0x41, 0x81, 0x20}));
    EXPECT_EQ(encode_enter_progmode(), (Bytes{0x50, 0x20}));
    EXPECT_EQ(encode_leave_progmode(), (Bytes{0x51, 0x20}));
    EXPECT_EQ(encode_read_sign(), (Bytes{0x75, 0x20}));
}

TEST(Stk500v1Codec, LoadAddressIsLittleEndianWords) {
    // Byte address 0x1FC00 is word 0xFE00.
    EXPECT_EQ(encode_load_address(0xFE00), (Bytes{0x55, 0x00, 0xFE, 0x20}));
}

TEST(Stk500v1Codec, ExtendedAddressGoesThroughUniversal) {
    EXPECT_EQ(encode_load_extended_address(1), (Bytes{0x56, 0x4D, 0x00, 0x01, 0x00, 0x20}));
}

TEST(Stk500v1Codec, ProgPageCarriesBigEndianLengthAndMemoryType) {
    Bytes data(256, 0xAB);
    auto frame = encode_prog_page(kMemFlash, data);
    ASSERT_EQ(frame.size(), 256u + 5);
    EXPECT_EQ(frame[0], 0x64);
    EXPECT_EQ(frame[1], 0x01);
    EXPECT_EQ(frame[2], 0x00);
    EXPECT_EQ(frame[3], 'F');
    EXPECT_EQ(frame.back(), 0x20);
}

TEST(Stk500v1Codec, ReadPage) { EXPECT_EQ(encode_read_page(kMemFlash, 128), (Bytes{0x74, 0x00, 0x80, 'F', 0x20})); }

TEST(Stk500v1Codec, ReplyChecks) {
    EXPECT_FALSE(check_reply(Bytes{0x14, 0x10}).has_value());
    EXPECT_FALSE(check_reply(Bytes{0x14, 0x1E, 0x97, 0x05, 0x10}).has_value());
    auto nosync = check_reply(Bytes{0x15, 0x10});
    ASSERT_TRUE(nosync.has_value());
    EXPECT_NE(nosync->find("NOSYNC"), std::string::npos);
    auto bad_end = check_reply(Bytes{0x14, 0x00, 0x11});
    ASSERT_TRUE(bad_end.has_value());
    EXPECT_NE(bad_end->find("FAILED"), std::string::npos);
    EXPECT_TRUE(check_reply(Bytes{0x14}).has_value());
}
