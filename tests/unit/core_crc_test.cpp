#include <gtest/gtest.h>

#include <string>

#include "core/crc.hpp"
#include "core/error.hpp"

using namespace mcuflash;

namespace {
std::span<const uint8_t> bytes(const std::string& s) { return {reinterpret_cast<const uint8_t*>(s.data()), s.size()}; }
}  // namespace

// Check values from the CRC catalogue: each algorithm over "123456789".
TEST(Crc, Crc32CheckValue) { EXPECT_EQ(core::crc32(bytes("123456789")), 0xCBF43926u); }
TEST(Crc, Crc32Incremental) {
    EXPECT_EQ(core::crc32(bytes("56789"), core::crc32(bytes("1234"))), 0xCBF43926u);
}
TEST(Crc, Crc16XmodemCheckValue) { EXPECT_EQ(core::crc16_xmodem(bytes("123456789")), 0x31C3); }
TEST(Crc, Crc16Mcrf4xxCheckValue) { EXPECT_EQ(core::crc16_mcrf4xx(bytes("123456789")), 0x6F91); }
TEST(Crc, Sha256OfAbc) {
    EXPECT_EQ(core::sha256_hex(bytes("abc")), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}

TEST(Errors, ExitCodesFollowSysexits) {
    EXPECT_EQ(core::exit_code(core::ErrorKind::Usage), 64);
    EXPECT_EQ(core::exit_code(core::ErrorKind::BadInput), 65);
    EXPECT_EQ(core::exit_code(core::ErrorKind::NotFound), 69);
    EXPECT_EQ(core::exit_code(core::ErrorKind::Io), 74);
    EXPECT_EQ(core::exit_code(core::ErrorKind::Timeout), 75);
    EXPECT_EQ(core::exit_code(core::ErrorKind::Permission), 77);
    EXPECT_EQ(core::exit_code(core::ErrorKind::VerifyMismatch), 1);
}
