// PICOBOOT's command struct, status struct and interface lookup (pico-sdk's boot/picoboot.h), as bytes.
#include <gtest/gtest.h>

#include "protocol/picoboot/codec.hpp"

using namespace mcuflash::protocol::picoboot;

namespace {
uint32_t le32(const std::vector<uint8_t>& b, size_t at) {
    return uint32_t{b[at]} | (uint32_t{b[at + 1]} << 8) | (uint32_t{b[at + 2]} << 16) | (uint32_t{b[at + 3]} << 24);
}
}  // namespace

TEST(PicobootCodec, CommandsAre32BytesWithMagicTokenIdSizeAndTransferLength) {
    auto c = read(7, 0x10001000, 4096);
    ASSERT_EQ(c.size(), 32u);
    EXPECT_EQ(le32(c, 0), 0x431FD10Bu);
    EXPECT_EQ(le32(c, 4), 7u);
    EXPECT_EQ(c[8], 0x84);  // READ: bit 7, the data phase is IN
    EXPECT_EQ(c[9], 8);     // dAddr + dSize
    EXPECT_EQ(c[10], 0);
    EXPECT_EQ(c[11], 0);
    EXPECT_EQ(le32(c, 12), 4096u);
    EXPECT_EQ(le32(c, 16), 0x10001000u);
    EXPECT_EQ(le32(c, 20), 4096u);
    for (size_t i = 24; i < 32; ++i) EXPECT_EQ(c[i], 0) << i;
}

TEST(PicobootCodec, EachCommandHasTheArgumentsTheRomExpects) {
    auto w = write(1, 0x10000100, 256);
    EXPECT_EQ(w[8], 0x05);
    EXPECT_EQ(w[9], 8);
    EXPECT_EQ(le32(w, 12), 256u);
    auto e = flash_erase(2, 0x10002000, 8192);
    EXPECT_EQ(e[8], 0x03);
    EXPECT_EQ(e[9], 8);
    EXPECT_EQ(le32(e, 12), 0u);  // no data phase
    EXPECT_EQ(le32(e, 20), 8192u);
    auto x = exclusive_access(3, Exclusive::Exclusive);
    EXPECT_EQ(x[8], 0x01);
    EXPECT_EQ(x[9], 1);
    EXPECT_EQ(x[16], 1);
    auto r = reboot(4, 0, 0, 500);
    EXPECT_EQ(r[8], 0x02);
    EXPECT_EQ(r[9], 12);
    EXPECT_EQ(le32(r, 16), 0u);
    EXPECT_EQ(le32(r, 20), 0u);
    EXPECT_EQ(le32(r, 24), 500u);
    auto q = exit_xip(5);
    EXPECT_EQ(q[8], 0x06);
    EXPECT_EQ(q[9], 0);
}

TEST(PicobootCodec, DecodesTheCommandStatus) {
    std::vector<uint8_t> bytes{0x2A, 0, 0, 0, 5, 0, 0, 0, 0x03, 1, 0, 0, 0, 0, 0, 0};
    auto s = decode_status(bytes);
    ASSERT_TRUE(s);
    EXPECT_EQ(s->token, 42u);
    EXPECT_EQ(s->code, 5u);
    EXPECT_EQ(s->command, 0x03);
    EXPECT_TRUE(s->in_progress);
    EXPECT_EQ(status_words(s->code), "bad address alignment");
    EXPECT_EQ(command_name(s->command), "FLASH_ERASE");
    bytes.pop_back();
    EXPECT_FALSE(decode_status(bytes));
}

TEST(PicobootCodec, StatusCodesInWordsFollowPicobootH) {
    EXPECT_EQ(status_words(0), "ok");
    EXPECT_EQ(status_words(1), "unknown command");
    EXPECT_EQ(status_words(2), "invalid command length");
    EXPECT_EQ(status_words(3), "invalid transfer length");
    EXPECT_EQ(status_words(4), "invalid address");
    EXPECT_EQ(status_words(7), "rebooting");
    EXPECT_EQ(status_words(8), "unknown error");
    EXPECT_EQ(status_words(99), "status 99");
    EXPECT_EQ(command_name(0x1A), "command 0x1A");
}

TEST(PicobootCodec, FindsTheVendorInterfaceAndItsBulkEndpoints) {
    // The ROM's full configuration: mass storage (interface 0), then PICOBOOT (interface 1).
    std::vector<uint8_t> both{9, 2, 55, 0, 2, 1, 0, 0x80, 0xFA,
                              9, 4, 0, 0, 2, 0x08, 0x06, 0x50, 0,
                              7, 5, 0x81, 2, 64, 0, 0,
                              7, 5, 0x02, 2, 64, 0, 0,
                              9, 4, 1, 0, 2, 0xFF, 0, 0, 0,
                              7, 5, 0x03, 2, 64, 0, 0,
                              7, 5, 0x84, 2, 64, 0, 0};
    auto i = find_interface(both);
    ASSERT_TRUE(i);
    EXPECT_EQ(i->number, 1);
    EXPECT_EQ(i->out_endpoint, 0x03);
    EXPECT_EQ(i->in_endpoint, 0x84);
    // Only the mass-storage interface: no PICOBOOT.
    std::vector<uint8_t> drive(both.begin(), both.begin() + 32);
    drive[2] = 32, drive[4] = 1;
    EXPECT_FALSE(find_interface(drive));
}
