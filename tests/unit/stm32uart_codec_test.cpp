// AN3155 byte layouts.
#include <gtest/gtest.h>

#include <stdexcept>

#include "protocol/stm32uart/codec.hpp"

using namespace mcuflash::protocol::stm32uart;

TEST(Stm32UartCodec, CommandsCarryTheirComplement) {
    EXPECT_EQ(command(cmd::kWriteMemory), (Bytes{0x31, 0xCE}));
    EXPECT_EQ(command(cmd::kGet), (Bytes{0x00, 0xFF}));
    EXPECT_EQ(command(cmd::kExtendedErase), (Bytes{0x44, 0xBB}));
}

TEST(Stm32UartCodec, AddressesAreBigEndianWithTheirXor) {
    EXPECT_EQ(address_block(0x08000000), (Bytes{0x08, 0x00, 0x00, 0x00, 0x08}));
    EXPECT_EQ(address_block(0x1FFFF7E0), (Bytes{0x1F, 0xFF, 0xF7, 0xE0, 0x1F ^ 0xFF ^ 0xF7 ^ 0xE0}));
}

TEST(Stm32UartCodec, ReadLengthIsNMinusOneAndItsComplement) {
    EXPECT_EQ(read_length(256), (Bytes{0xFF, 0x00}));
    EXPECT_EQ(read_length(1), (Bytes{0x00, 0xFF}));
    EXPECT_THROW(read_length(0), std::length_error);
    EXPECT_THROW(read_length(257), std::length_error);
}

TEST(Stm32UartCodec, WriteBlocksAreWholeWordsWithAChecksumOverLengthAndData) {
    EXPECT_EQ(write_block(Bytes{1, 2, 3, 4}), (Bytes{0x03, 1, 2, 3, 4, 0x03 ^ 1 ^ 2 ^ 3 ^ 4}));
    Bytes full(256, 0xA5);
    auto block = write_block(full);
    ASSERT_EQ(block.size(), 258u);
    EXPECT_EQ(block.front(), 0xFF);
    EXPECT_EQ(block.back(), 0xFF);  // 0xFF xor 256 x 0xA5 (an even count cancels)
    EXPECT_THROW(write_block(Bytes{1, 2, 3}), std::length_error);
    EXPECT_THROW(write_block(Bytes(260, 0)), std::length_error);
    EXPECT_THROW(write_block(Bytes{}), std::length_error);
}

TEST(Stm32UartCodec, EraseListsAndTheirSpecialCodes) {
    const uint16_t pages[] = {0, 1, 2};
    EXPECT_EQ(erase_pages(pages), (Bytes{0x02, 0x00, 0x01, 0x02, 0x02 ^ 0x01 ^ 0x02}));
    const uint16_t big[] = {256};
    EXPECT_THROW(erase_pages(big), std::out_of_range);
    EXPECT_EQ(erase_global(), (Bytes{0xFF, 0x00}));
    const uint16_t sectors[] = {0x0102, 0x0005};
    EXPECT_EQ(extended_erase_pages(sectors), (Bytes{0x00, 0x01, 0x01, 0x02, 0x00, 0x05, 0x01 ^ 0x01 ^ 0x02 ^ 0x05}));
    EXPECT_EQ(extended_erase_mass(), (Bytes{0xFF, 0xFF, 0x00}));
    std::vector<uint16_t> too_many(513, 1);
    EXPECT_THROW(extended_erase_pages(too_many), std::length_error);
}

TEST(Stm32UartCodec, ParsesGetAndGetId) {
    // An STM32F103's ROM (bootloader 2.2): eleven commands, Erase (0x43) but no Extended Erase.
    const Bytes get{0x0B, 0x22, 0x00, 0x01, 0x02, 0x11, 0x21, 0x31, 0x43, 0x63, 0x73, 0x82, 0x92};
    auto parsed = parse_get(get);
    ASSERT_TRUE(parsed);
    EXPECT_EQ(parsed->version, 0x22);
    EXPECT_EQ(parsed->commands.size(), 11u);
    EXPECT_TRUE(parsed->has(cmd::kErase));
    EXPECT_FALSE(parsed->has(cmd::kExtendedErase));
    EXPECT_EQ(version_text(parsed->version), "2.2");
    EXPECT_FALSE(parse_get(Bytes{0x0B, 0x22, 0x00}));
    EXPECT_FALSE(parse_get(Bytes{}));

    EXPECT_EQ(parse_get_id(Bytes{0x01, 0x04, 0x10}), 0x410);
    EXPECT_FALSE(parse_get_id(Bytes{0x02, 0x04, 0x10}));
    EXPECT_FALSE(parse_get_id(Bytes{0x01, 0x04}));
}
