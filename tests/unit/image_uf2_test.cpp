// UF2: blocks, magics, flags, numbering.
#include <gtest/gtest.h>

#include <algorithm>
#include <sstream>

#include "image/loader.hpp"
#include "image_test_support.hpp"

using namespace mcuflash::image::test_support;

namespace {

constexpr uint32_t kFamilyRp2040 = 0xE48BFF56;
constexpr uint32_t kFlagNotMainFlash = 0x1;
constexpr uint32_t kFlagFileContainer = 0x1000;
constexpr uint32_t kFlagFamilyId = 0x2000;

struct Block {
    uint32_t target = 0;
    Bytes payload;
    uint32_t number = 0;
    uint32_t count = 1;
    uint32_t flags = kFlagFamilyId;
    uint32_t family = kFamilyRp2040;
};

void put32(Bytes& out, size_t at, uint32_t value) {
    for (int i = 0; i < 4; ++i) out[at + static_cast<size_t>(i)] = static_cast<uint8_t>(value >> (8 * i));
}

Bytes encode(const std::vector<Block>& blocks) {
    Bytes out(blocks.size() * 512, 0);
    for (size_t i = 0; i < blocks.size(); ++i) {
        const Block& block = blocks[i];
        const size_t at = i * 512;
        put32(out, at + 0, 0x0A324655);
        put32(out, at + 4, 0x9E5D5157);
        put32(out, at + 8, block.flags);
        put32(out, at + 12, block.target);
        put32(out, at + 16, static_cast<uint32_t>(block.payload.size()));
        put32(out, at + 20, block.number);
        put32(out, at + 24, block.count);
        put32(out, at + 28, block.family);
        std::copy(block.payload.begin(), block.payload.end(), out.begin() + static_cast<ptrdiff_t>(at + 32));
        put32(out, at + 508, 0x0AB16F30);
    }
    return out;
}

std::vector<Block> two_blocks() { return {{0x10000000, counting(256), 0, 2}, {0x10000100, counting(256), 1, 2}}; }

Image parse_uf2(const Bytes& content, const std::string& filename = "x.uf2") {
    return parse_as(Format::Uf2, content, filename);
}

// The BadInput message parsing `content` produces.
std::string uf2_error(const Bytes& content) { return parse_error(Format::Uf2, content, "x.uf2"); }

}  // namespace

TEST(Uf2, TwoBlocks) {
    const Image image = parse_uf2(encode(two_blocks()));
    EXPECT_EQ(image.describe_ranges(), "0x10000000-0x100001FF (512 bytes)");
    EXPECT_EQ(image.family_id, kFamilyRp2040);
    EXPECT_FALSE(image.entry);
}

TEST(Uf2, Fixture) {
    const Image image = parse_uf2(read_fixture("blink.uf2"), "blink.uf2");
    EXPECT_EQ(image.lowest(), 0x10000000u);
    EXPECT_EQ(image.runs().begin()->second, read_fixture("blink.bin"));
    EXPECT_EQ(image.family_id, kFamilyRp2040);
}

TEST(Uf2, BadMagics) {
    Bytes content = encode(two_blocks());
    content[512 + 0] ^= 0xFF;
    EXPECT_EQ(uf2_error(content), "x.uf2: offset 0x200: bad first start magic 0x0A3246AA, expected 0x0A324655");
    content = encode(two_blocks());
    content[4] = 0;
    EXPECT_EQ(uf2_error(content), "x.uf2: offset 0x4: bad second start magic 0x9E5D5100, expected 0x9E5D5157");
    content = encode(two_blocks());
    content[512 + 511] = 0;
    EXPECT_EQ(uf2_error(content), "x.uf2: offset 0x3FC: bad end magic 0x00B16F30, expected 0x0AB16F30");
}

TEST(Uf2, PartialBlock) {
    Bytes content = encode(two_blocks());
    content.resize(700);
    EXPECT_EQ(uf2_error(content), "x.uf2: offset 0x200: 188 trailing bytes do not make a whole 512-byte block");
}

TEST(Uf2, PayloadTooLarge) {
    Bytes content = encode(two_blocks());
    put32(content, 16, 477);
    EXPECT_EQ(uf2_error(content), "x.uf2: offset 0x10: payload size 477 exceeds 476");
    put32(content, 16, 0xFFFFFFFF);
    EXPECT_EQ(uf2_error(content), "x.uf2: offset 0x10: payload size 4294967295 exceeds 476");
}

TEST(Uf2, BlockNumbering) {
    auto blocks = two_blocks();
    blocks[1].number = 0;
    EXPECT_EQ(uf2_error(encode(blocks)), "x.uf2: offset 0x214: block number 0, expected 1");
    blocks = two_blocks();
    blocks[1].count = 3;
    EXPECT_EQ(uf2_error(encode(blocks)), "x.uf2: offset 0x214: the block count changes from 2 to 3");
    blocks = two_blocks();
    blocks[0].number = 1;
    EXPECT_EQ(uf2_error(encode(blocks)), "x.uf2: offset 0x14: block number 1, expected 0");
    blocks = two_blocks();
    blocks[1].number = 2;
    EXPECT_EQ(uf2_error(encode(blocks)), "x.uf2: offset 0x214: block number 2 is not below the block count 2");
    blocks = two_blocks();
    blocks[0].count = blocks[1].count = 0;
    EXPECT_EQ(uf2_error(encode(blocks)), "x.uf2: offset 0x14: the block count is 0");
    blocks = two_blocks();
    blocks.pop_back();
    EXPECT_EQ(uf2_error(encode(blocks)), "x.uf2: offset 0x200: the file ends after block 1 of 2 (is it truncated?)");
}

TEST(Uf2, ConcatenatedFilesAccepted) {
    auto blocks = two_blocks();
    blocks.push_back({0x10001000, counting(16), 0, 1});
    EXPECT_EQ(parse_uf2(encode(blocks)).describe_ranges(),
              "0x10000000-0x100001FF (512 bytes), 0x10001000-0x1000100F (16 bytes)");
}

TEST(Uf2, NotMainFlashBlocksSkipped) {
    auto blocks = two_blocks();
    blocks[1].flags |= kFlagNotMainFlash;
    EXPECT_EQ(parse_uf2(encode(blocks)).describe_ranges(), "0x10000000-0x100000FF (256 bytes)");
}

TEST(Uf2, FileContainerRefused) {
    auto blocks = two_blocks();
    blocks[0].flags = kFlagFileContainer;
    EXPECT_EQ(uf2_error(encode(blocks)),
              "x.uf2: offset 0x8: the block carries a file for a file system (flag 0x1000), not flash contents");
}

TEST(Uf2, FamilyIdOptionalButMustAgree) {
    auto blocks = two_blocks();
    for (auto& block : blocks) block.flags = 0;
    EXPECT_FALSE(parse_uf2(encode(blocks)).family_id);

    blocks = two_blocks();
    blocks[1].family = 0x68ED2B88;  // SAMD21
    EXPECT_EQ(uf2_error(encode(blocks)),
              "x.uf2: offset 0x21C: family ID 0x68ED2B88 differs from 0xE48BFF56 in earlier blocks (files for several "
              "chips in one are not supported)");
}

TEST(Uf2, OverlapAndAddressSpace) {
    auto blocks = two_blocks();
    blocks[1].target = 0x10000080;
    EXPECT_EQ(uf2_error(encode(blocks)), "x.uf2: offset 0x200: data at 0x10000080 overlaps data already at 0x10000080");
    blocks = two_blocks();
    blocks[1].target = 0xFFFFFF80;
    EXPECT_EQ(uf2_error(encode(blocks)).rfind("x.uf2: offset 0x200: data at 0xFFFFFF80 (256 bytes) runs past", 0), 0u);
}

TEST(Uf2, Sniff) {
    const auto sniff = handler(Format::Uf2).sniff;
    EXPECT_TRUE(sniff(encode(two_blocks())));
    EXPECT_FALSE(sniff(Bytes(512, 0)));
    EXPECT_FALSE(sniff(Bytes{0x55, 0x46, 0x32, 0x0A}));
    EXPECT_NE(handler(Format::Uf2).write, nullptr);  // written since the SD-card issue (storage_uf2_test.cpp)
}

// A block that ends at the top of the 32-bit address space (found by fuzz.uf2): the writer's block
// end and the reader's flatten must not wrap to 0, or the written file carries zeros.
TEST(Uf2, BlockAtTopOfMemoryRoundTrips) {
    const Image image = parse_uf2(encode({{0xFFFFFFF0, counting(16), 0, 1}}));
    EXPECT_EQ(image.end(), uint64_t{1} << 32);
    EXPECT_EQ(image.flatten(0xFFFFFFF0, image.end()), counting(16));
    std::ostringstream written;
    write_image(image, written, Format::Uf2);
    const std::string text = written.str();
    const Image again = parse_uf2(Bytes(text.begin(), text.end()));
    EXPECT_EQ(again.flatten(0xFFFFFFF0, again.end()), counting(16));
}
