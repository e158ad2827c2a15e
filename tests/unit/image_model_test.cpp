// The sparse Image model: merging, overlaps, flattening, slicing, shifting.
#include <gtest/gtest.h>

#include "image_test_support.hpp"

using namespace mcuflash::image::test_support;

TEST(ImageModel, EmptyImage) {
    Image image;
    EXPECT_TRUE(image.empty());
    EXPECT_EQ(image.lowest(), 0u);
    EXPECT_EQ(image.end(), 0u);
    EXPECT_EQ(image.total_bytes(), 0u);
    EXPECT_FALSE(image.any_in(0, 0x100000000));
    EXPECT_EQ(image.describe_ranges(), "no data");
    EXPECT_FALSE(image.reset_vector_arm());
    image.add(0x100, Bytes{}, "nothing");
    EXPECT_TRUE(image.empty());
}

TEST(ImageModel, AdjacentRunsMergeInAnyOrder) {
    Image image;
    image.add(0x20, counting(16, 0x20), "c");
    image.add(0x00, counting(16, 0x00), "a");
    EXPECT_EQ(image.runs().size(), 2u);
    image.add(0x10, counting(16, 0x10), "b");  // fills the gap: all three become one run
    ASSERT_EQ(image.runs().size(), 1u);
    EXPECT_EQ(image.runs().begin()->second, counting(48));
    image.add(0x30, counting(4, 0x30), "d");  // appended at the end
    ASSERT_EQ(image.runs().size(), 1u);
    EXPECT_EQ(image.lowest(), 0u);
    EXPECT_EQ(image.end(), 0x34u);
    EXPECT_EQ(image.total_bytes(), 0x34u);
}

TEST(ImageModel, OverlapIsRefusedNamingOriginAndAddresses) {
    Image image;
    image.add(0x1000, counting(0x100), "fw.hex:3");
    EXPECT_EQ(bad_input_of([&] { image.add(0x10F0, counting(0x20), "fw.hex:12"); }),
              "fw.hex:12: data at 0x000010F0 overlaps data already at 0x000010F0");
    EXPECT_EQ(bad_input_of([&] { image.add(0x0FF0, counting(0x20), "fw.hex:13"); }),
              "fw.hex:13: data at 0x00000FF0 overlaps data already at 0x00001000");
    EXPECT_EQ(bad_input_of([&] { image.add(0x0F00, counting(0x400), "x"); }),
              "x: data at 0x00000F00 overlaps data already at 0x00001000");
    // A refused add leaves the image as it was.
    EXPECT_EQ(image.describe_ranges(), "0x00001000-0x000010FF (256 bytes)");
}

TEST(ImageModel, DataRunningPastFourGigabytesIsRefused) {
    Image image;
    image.add(0xFFFFFFF0, counting(16), "top");  // ends exactly at 2^32: fine
    EXPECT_EQ(image.end(), 0x100000000u);
    Image other;
    EXPECT_NE(bad_input_of([&] { other.add(0xFFFFFFF8, counting(16), "fw.bin"); }).find("fw.bin: data at 0xFFFFFFF8"),
              std::string::npos);
}

TEST(ImageModel, FlattenFillsGaps) {
    Image image;
    image.add(0x10, Bytes{0x01, 0x02}, "a");
    image.add(0x14, Bytes{0x03}, "b");
    EXPECT_EQ(image.flatten(0x0F, 0x16), (std::vector<uint8_t>{0xFF, 0x01, 0x02, 0xFF, 0xFF, 0x03, 0xFF}));
    EXPECT_EQ(image.flatten(0x11, 0x15, 0x00), (std::vector<uint8_t>{0x02, 0x00, 0x00, 0x03}));
    EXPECT_TRUE(image.flatten(0x20, 0x10).empty());
    EXPECT_EQ(image.flatten(0x100, 0x102), (std::vector<uint8_t>{0xFF, 0xFF}));
}

TEST(ImageModel, AnyIn) {
    Image image;
    image.add(0x100, counting(0x10), "a");
    EXPECT_FALSE(image.any_in(0, 0x100));
    EXPECT_TRUE(image.any_in(0, 0x101));
    EXPECT_TRUE(image.any_in(0x10F, 0x110));
    EXPECT_FALSE(image.any_in(0x110, 0x200));
    EXPECT_TRUE(image.any_in(0x104, 0x105));
    EXPECT_FALSE(image.any_in(0x105, 0x105));
}

TEST(ImageModel, SliceCutsRunsAndKeepsMetadata) {
    Image image;
    image.add(0x00, counting(0x20), "a");
    image.add(0x40, counting(0x20, 0x40), "b");
    image.entry = 0x04;
    const Image slice = image.slice(0x10, 0x50);
    EXPECT_EQ(slice.describe_ranges(), "0x00000010-0x0000001F (16 bytes), 0x00000040-0x0000004F (16 bytes)");
    EXPECT_EQ(slice.runs().begin()->second, counting(0x10, 0x10));
    EXPECT_EQ(slice.entry, 0x04u);
    EXPECT_TRUE(image.slice(0x20, 0x40).empty());
    EXPECT_EQ(image.slice(0, 0x100000000).total_bytes(), 0x40u);
}

TEST(ImageModel, ShiftMovesDataAndEntry) {
    Image image;
    image.add(0x0000, counting(8), "a");
    image.add(0x1000, counting(8), "b");
    image.entry = 0x0004;
    image.shift(0x08000000);
    EXPECT_EQ(image.describe_ranges(), "0x08000000-0x08000007 (8 bytes), 0x08001000-0x08001007 (8 bytes)");
    EXPECT_EQ(image.entry, 0x08000004u);
    image.shift(-0x08000000);
    EXPECT_EQ(image.lowest(), 0u);

    const std::string below = bad_input_of([&] { image.shift(-1); });
    EXPECT_NE(below.find("leaves the 32-bit address space"), std::string::npos) << below;
    EXPECT_NE(bad_input_of([&] { image.shift(0xFFFFF000); }).find("leaves the 32-bit address space"),
              std::string::npos);
    EXPECT_EQ(image.lowest(), 0u);  // unchanged after a refused shift
}

TEST(ImageModel, ResetVectorOfCortexMVectorTable) {
    Image image;
    // Initial stack pointer 0x20005000, reset handler 0x080001C1 (Thumb bit set).
    image.add(0x08000000, Bytes{0x00, 0x50, 0x00, 0x20, 0xC1, 0x01, 0x00, 0x08, 0xAA}, "vectors");
    EXPECT_EQ(image.reset_vector_arm(), 0x080001C1u);

    Image short_image;
    short_image.add(0x08000000, Bytes{0x00, 0x50, 0x00, 0x20, 0xC1, 0x01}, "too short");
    EXPECT_FALSE(short_image.reset_vector_arm());
}

TEST(ImageModel, DescribeRanges) {
    Image image;
    image.add(0, std::vector<uint8_t>(10240, 0), "a");
    EXPECT_EQ(image.describe_ranges(), "0x00000000-0x000027FF (10240 bytes)");
}
