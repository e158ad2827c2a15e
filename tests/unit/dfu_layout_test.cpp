// DfuSe memory layout strings as ST's ROM bootloaders name their alternate settings.
#include <gtest/gtest.h>

#include "protocol/dfu/layout.hpp"

using namespace mcuflash::protocol::dfu;

TEST(DfuLayout, ParsesTheStm32F4InternalFlash) {
    auto layout = parse_layout("@Internal Flash  /0x08000000/04*016Kg,01*064Kg,07*128Kg");
    ASSERT_TRUE(layout);
    EXPECT_EQ(layout->name, "Internal Flash");
    ASSERT_EQ(layout->segments.size(), 3u);
    EXPECT_EQ(layout->segments[0].address, 0x08000000u);
    EXPECT_EQ(layout->segments[0].unit_size, 16384u);
    EXPECT_EQ(layout->segments[0].count, 4u);
    EXPECT_EQ(layout->segments[1].address, 0x08010000u);
    EXPECT_EQ(layout->segments[2].address, 0x08020000u);
    EXPECT_EQ(layout->segments[2].count, 7u);
    EXPECT_TRUE(layout->segments[2].readable && layout->segments[2].erasable && layout->segments[2].writable);
    EXPECT_EQ(layout->size(), 1024u * 1024u);
    EXPECT_EQ(layout->segment_at(0x0800C000), &layout->segments[0]);
    EXPECT_EQ(layout->segment_at(0x08100000), nullptr);
}

TEST(DfuLayout, ParsesPagesBytesAndTypes) {
    auto f0 = parse_layout("@Internal Flash  /0x08000000/064*0002Kg");
    ASSERT_TRUE(f0);
    EXPECT_EQ(f0->segments[0].unit_size, 2048u);
    EXPECT_EQ(f0->segments[0].count, 64u);
    auto option = parse_layout("@Option Bytes  /0x1FFFC000/01*016 e");
    ASSERT_TRUE(option);
    EXPECT_EQ(option->segments[0].unit_size, 16u);
    EXPECT_TRUE(option->segments[0].readable);
    EXPECT_FALSE(option->segments[0].erasable);
    EXPECT_TRUE(option->segments[0].writable);
    auto two = parse_layout("@OTP Memory /0x1FFF7800/01*512 e,01*016 e");
    ASSERT_TRUE(two);
    EXPECT_EQ(two->segments[1].address, 0x1FFF7A00u);
    auto groups = parse_layout("@Flash/0x08000000/2*1Ka/0x08000800/2*1Kg");
    ASSERT_TRUE(groups);
    EXPECT_EQ(groups->segments.size(), 2u);
    EXPECT_EQ(groups->segments[1].address, 0x08000800u);
}

TEST(DfuLayout, RejectsWhatIsNotALayout) {
    EXPECT_FALSE(parse_layout("UPLOAD to Flash 0x8002000"));
    EXPECT_FALSE(parse_layout("@Flash/0x08000000/"));
    EXPECT_FALSE(parse_layout("@Flash/zzz/04*016Kg"));
    EXPECT_FALSE(parse_layout("@Flash/0x08000000/04*016K"));  // no type letter
    EXPECT_FALSE(parse_layout("@Flash/0xFFFFF000/04*016Kg"));  // past 4 GiB
    // Found by fuzzing: numbers that wrapped into something small instead of being refused.
    EXPECT_FALSE(parse_layout("@F/0x0/4294967296*1Kg"));
    EXPECT_FALSE(parse_layout("@F/0x0/1*17592186044417Mg"));
    EXPECT_FALSE(parse_layout("@F/0x08000000/4*1Kg/0x08000800/4*1Kg"));  // overlapping groups
}

TEST(DfuLayout, GroupsComeOutInAddressOrder) {
    auto layout = parse_layout("@F/0x08000800/2*1Kg/0x08000000/2*1Kg");
    ASSERT_TRUE(layout);
    ASSERT_EQ(layout->segments.size(), 2u);
    EXPECT_EQ(layout->segments[0].address, 0x08000000u);
    EXPECT_EQ(layout->segments[1].address, 0x08000800u);
}
