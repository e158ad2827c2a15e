// Raw binary: a base address in, gaps filled with 0xFF out.
#include <gtest/gtest.h>

#include "image_test_support.hpp"

using namespace mcuflash::image::test_support;

namespace {

std::string write_bin(const Image& image) { return write_as(Format::Binary, image); }

}  // namespace

TEST(RawBinary, WholeFileAtBaseAddress) {
    const Bytes content{1, 2, 3, 4, 5};
    const Image at_zero = handler(Format::Binary).parse(content, {}, "fw.bin");
    EXPECT_EQ(at_zero.describe_ranges(), "0x00000000-0x00000004 (5 bytes)");
    const Image based = handler(Format::Binary).parse(content, ParseOptions{0x08002000}, "fw.bin");
    EXPECT_EQ(based.describe_ranges(), "0x08002000-0x08002004 (5 bytes)");
    EXPECT_EQ(based.runs().begin()->second, content);
    EXPECT_FALSE(based.entry);
}

TEST(RawBinary, BaseAddressTooHighForTheFile) {
    EXPECT_EQ(bad_input_of([] { handler(Format::Binary).parse(Bytes(32, 0), ParseOptions{0xFFFFFFF0}, "fw.bin"); }),
              "fw.bin: data at 0xFFFFFFF0 (32 bytes) runs past the end of the 32-bit address space");
}

TEST(RawBinary, WriterFillsGapsWithErasedValue) {
    Image image;
    image.add(0x100, Bytes{1, 2}, "a");
    image.add(0x105, Bytes{3}, "b");
    EXPECT_EQ(write_bin(image), std::string("\x01\x02\xFF\xFF\xFF\x03", 6));
    EXPECT_EQ(write_bin(Image{}), "");
}

TEST(RawBinary, WriterRefusesFarApartData) {
    Image image;
    image.add(0x08000000, Bytes{1}, "flash");
    image.add(0x1FFF7800, Bytes{2}, "option bytes");
    const std::optional<Error> error = error_thrown_by([&] { write_bin(image); });
    ASSERT_TRUE(error.has_value());
    EXPECT_EQ(error->kind(), ErrorKind::BadInput);
    EXPECT_NE(std::string(error->what()).find("more than 256 MiB"), std::string::npos) << error->what();
    EXPECT_FALSE(error->hint().empty());
}

TEST(RawBinary, WriterAcceptsLargeButSaneGaps) {
    Image image;
    image.add(0, Bytes{1}, "a");
    image.add(0x20000, Bytes{2}, "b");  // 128 KiB apart: bigger than one fill chunk
    const std::string out = write_bin(image);
    ASSERT_EQ(out.size(), 0x20001u);
    EXPECT_EQ(out.front(), '\x01');
    EXPECT_EQ(out.back(), '\x02');
    EXPECT_EQ(out.find_first_not_of('\xFF', 1), 0x20000u);
}
