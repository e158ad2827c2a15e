// UF2 writing (image/uf2.cpp) and the family IDs (storage/uf2_families.cpp): what is written reads back
// as the same bytes at the same addresses with its family, in 256-byte aligned blocks.
#include <gtest/gtest.h>

#include <sstream>

#include "image/loader.hpp"
#include "storage/uf2_families.hpp"

using namespace mcuflash;

namespace {

uint32_t le32(const std::string& s, size_t at) {
    return uint32_t(uint8_t(s[at])) | uint32_t(uint8_t(s[at + 1])) << 8 | uint32_t(uint8_t(s[at + 2])) << 16 |
           uint32_t(uint8_t(s[at + 3])) << 24;
}

TEST(StorageUf2, WrittenUf2ReadsBackWithItsFamily) {
    image::Image img;
    std::vector<uint8_t> a(1000), b(10);
    for (size_t i = 0; i < a.size(); ++i) a[i] = uint8_t(i * 7);
    for (size_t i = 0; i < b.size(); ++i) b[i] = uint8_t(0xA0 + i);
    img.add(0x10000100 + 3, a, "a");
    img.add(0x10004000, b, "b");
    img.family_id = storage::uf2_family_for_chip("rp2040");
    std::ostringstream out;
    image::write_image(img, out, image::Format::Uf2);
    const std::string file = out.str();
    ASSERT_EQ(file.size() % 512, 0u);
    const size_t blocks = file.size() / 512;
    EXPECT_EQ(blocks, 4u + 1u);  // 0x100..0x4FF (1003 bytes from 0x103) and 0x4000
    for (size_t n = 0; n < blocks; ++n) {
        EXPECT_EQ(le32(file, n * 512 + 12) % 256, 0u);        // aligned
        EXPECT_EQ(le32(file, n * 512 + 16), 256u);            // payload
        EXPECT_EQ(le32(file, n * 512 + 20), n);               // block number
        EXPECT_EQ(le32(file, n * 512 + 24), blocks);          // count
        EXPECT_EQ(le32(file, n * 512 + 8), 0x2000u);          // family present
        EXPECT_EQ(le32(file, n * 512 + 28), 0xE48BFF56u);     // RP2040
    }
    std::vector<uint8_t> bytes(file.begin(), file.end());
    auto back = image::parse_content(bytes, {}, "t.uf2");
    ASSERT_TRUE(back.family_id);
    EXPECT_EQ(*back.family_id, 0xE48BFF56u);
    EXPECT_EQ(back.flatten(0x10000103, 0x10000103 + 1000), a);
    EXPECT_EQ(back.flatten(0x10004000, 0x1000400A), b);
    EXPECT_EQ(back.flatten(0x10000100, 0x10000103), std::vector<uint8_t>(3, 0xFF));  // the gap in a block
}

TEST(StorageUf2, FamiliesByChipAndName) {
    EXPECT_EQ(storage::uf2_family_for_chip("atsamd51j19a"), 0x55114460u);
    EXPECT_EQ(storage::uf2_family_for_chip("stm32f407xg"), 0x6D0922FAu);  // the longer prefix wins
    EXPECT_EQ(storage::uf2_family_for_chip("stm32f446xe"), 0x57755A57u);
    EXPECT_FALSE(storage::uf2_family_for_chip("atmega2560"));
    EXPECT_EQ(storage::uf2_family_by_name("samd21"), 0x68ED2B88u);
}

}  // namespace
