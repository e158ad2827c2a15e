// SAM-BA command strings as BOSSA sends them, the version string's extensions, XMODEM-CRC blocks.
#include <gtest/gtest.h>

#include <stdexcept>

#include "protocol/samba/codec.hpp"

using namespace mcuflash::protocol::samba;

TEST(SambaCodec, CommandsAreHexWithEightDigits) {
    EXPECT_EQ(write_word(0x41004000, 0xA544), "W41004000,0000A544#");
    EXPECT_EQ(read_word(0x41002018), "w41002018,4#");
    EXPECT_EQ(send_data(0x20004000, 0x1000), "S20004000,00001000#");
    EXPECT_EQ(receive_data(0x2000, 63), "R00002000,0000003F#");
    EXPECT_EQ(go(0x20001000), "G20001000#");
    EXPECT_EQ(copy_source(0x20005000), "Y20005000,0#");
    EXPECT_EQ(copy_to_flash(0x4000, 4096), "Y00004000,00001000#");
    EXPECT_EQ(checksum(0x2000, 256), "Z00002000,00000100#");
    EXPECT_EQ(binary_mode(), "N#");
    EXPECT_EQ(write_byte(0x41004001, 0xC0), "O41004001,C0#");
    EXPECT_EQ(read_byte(0x41004012), "o41004012,4#");
}

TEST(SambaCodec, ExtensionsComeFromTheArduinoTag) {
    auto zero = parse_extensions("v2.0 [Arduino:XYZ] Mar 19 2016 11:03:07");
    EXPECT_TRUE(zero.erase && zero.buffered_write && zero.checksum);
    auto partial = parse_extensions("v1.1 [Arduino:X] Jan 1 2015");
    EXPECT_TRUE(partial.erase);
    EXPECT_FALSE(partial.buffered_write || partial.checksum);
    auto rom = parse_extensions("v1.1 Dec 15 2010 19:25:04");
    EXPECT_FALSE(rom.erase || rom.buffered_write || rom.checksum);
}

TEST(SambaCodec, ChecksumAnswers) {
    EXPECT_EQ(parse_checksum_answer("Z0000BEEF#\n\r"), 0xBEEFu);
    EXPECT_EQ(parse_checksum_answer("Z0000beef#"), 0xBEEFu);
    EXPECT_FALSE(parse_checksum_answer("Z0000BEE#\n\r"));
    EXPECT_FALSE(parse_checksum_answer("Y\n\r"));
    EXPECT_FALSE(parse_checksum_answer("Z0000BEXF#"));
}

TEST(SambaCodec, XmodemBlocksRoundTripAndRejectDamage) {
    Bytes data(100);
    for (size_t i = 0; i < data.size(); ++i) data[i] = static_cast<uint8_t>(i * 7);
    auto block = xmodem_block(3, data);
    ASSERT_EQ(block.size(), 133u);
    EXPECT_EQ(block[0], kSoh);
    EXPECT_EQ(block[1], 3);
    EXPECT_EQ(block[2], 0xFC);
    auto back = parse_xmodem_block(block, 3);
    ASSERT_TRUE(back);
    EXPECT_TRUE(std::equal(data.begin(), data.end(), back->begin()));
    EXPECT_EQ((*back)[100], 0x00);  // padding
    EXPECT_FALSE(parse_xmodem_block(block, 4));
    block[50] ^= 0x10;
    EXPECT_FALSE(parse_xmodem_block(block, 3));
    EXPECT_THROW(xmodem_block(1, Bytes(129)), std::length_error);
    auto zeros = xmodem_block(1, Bytes{});
    EXPECT_EQ(zeros[131], 0x00);
    EXPECT_EQ(zeros[132], 0x00);  // CRC16/XMODEM of zeros is 0
}
