// Katapult frames (protocol/katapult/codec.hpp) against the bytes protocol.md and Katapult's
// command.c give.
#include <gtest/gtest.h>

#include <string>

#include "core/crc.hpp"
#include "protocol/katapult/codec.hpp"

using namespace mcuflash::protocol::katapult;

namespace {

Bytes bytes_of(const std::string& text) { return Bytes(text.begin(), text.end()); }

}  // namespace

TEST(KatapultCodec, CrcIsMcrf4xx) {
    EXPECT_EQ(mcuflash::core::crc16_mcrf4xx(bytes_of("123456789")), 0x6F91);
}

TEST(KatapultCodec, NackFrameAsProtocolMdPrintsIt) {
    EXPECT_EQ(encode(answer::kNack), (Bytes{0x01, 0x88, 0xF1, 0x00, 0x68, 0x95, 0x99, 0x03}));
}

TEST(KatapultCodec, SendBlockFrameLayout) {
    Bytes block(64, 0xAB);
    Bytes frame = encode(cmd::kSendBlock, send_block_payload(0x08002000, block));
    ASSERT_EQ(frame.size(), 8u + 4 + 64);
    EXPECT_EQ(frame[2], 0x12);
    EXPECT_EQ(frame[3], 17);  // one address word and 16 data words
    EXPECT_EQ(read_le32(std::span(frame).subspan(4)), 0x08002000u);
    EXPECT_EQ(frame[frame.size() - 2], 0x99);
    EXPECT_EQ(frame[frame.size() - 1], 0x03);
    EXPECT_THROW(encode(cmd::kSendBlock, Bytes(3)), std::invalid_argument);
    EXPECT_THROW(encode(cmd::kSendBlock, Bytes(256 * 4)), std::invalid_argument);
}

TEST(KatapultCodec, ReaderFindsFramesInNoiseAndPieces) {
    Bytes stream{0x55, 0x01, 0x99};
    Bytes a = encode(answer::kAck, le32(cmd::kComplete));
    Bytes b = encode(answer::kError);
    stream.insert(stream.end(), a.begin(), a.end());
    Bytes damaged = encode(answer::kAck, le32(cmd::kConnect));
    damaged[5] ^= 0x40;
    stream.insert(stream.end(), damaged.begin(), damaged.end());
    stream.insert(stream.end(), b.begin(), b.end());
    FrameReader reader;
    std::vector<Frame> frames;
    for (uint8_t byte : stream) {  // one byte at a time, as a slow line delivers them
        reader.feed({&byte, 1});
        while (auto f = reader.next()) frames.push_back(*f);
    }
    ASSERT_EQ(frames.size(), 2u);
    EXPECT_EQ(frames[0].command, answer::kAck);
    EXPECT_EQ(ack_body(frames[0], cmd::kComplete), Bytes{});
    EXPECT_FALSE(ack_body(frames[0], cmd::kConnect));
    EXPECT_EQ(frames[1].command, answer::kError);
    EXPECT_GT(reader.skipped(), damaged.size() - 1);
}

TEST(KatapultCodec, ConnectAnswerAsKatapultBuildsIt) {
    // command_connect(): protocol, start, block size, the MCU string in whole words, a zero word,
    // the version in whole words.
    ConnectInfo info{0x00010100, 0x08002000, 64, "stm32f103xe", "v0.0.1-91-g2f3e6fb"};
    Bytes body = connect_body(info);
    EXPECT_EQ(body.size(), 12u + 12 + 4 + 20);
    auto parsed = parse_connect(body);
    ASSERT_TRUE(parsed);
    EXPECT_EQ(parsed->mcu, "stm32f103xe");
    EXPECT_EQ(parsed->software_version, "v0.0.1-91-g2f3e6fb");
    EXPECT_EQ(parsed->app_start, 0x08002000u);
    EXPECT_EQ(parsed->block_size, 64u);
    EXPECT_EQ(parsed->protocol_text(), "1.1.0");
    // An MCU name of whole words ("rp2040" is not, "stm32g0b1xx" is 11): still split right.
    info.mcu = "lpc1768x";
    parsed = parse_connect(connect_body(info));
    ASSERT_TRUE(parsed);
    EXPECT_EQ(parsed->mcu, "lpc1768x");
    EXPECT_EQ(parsed->software_version, "v0.0.1-91-g2f3e6fb");
}

TEST(KatapultCodec, ConnectBeforeProtocol110HasOnlyTheMcu) {
    Bytes body = le32(0x00010000);
    for (uint32_t v : {0x08002000u, 64u}) {
        auto w = le32(v);
        body.insert(body.end(), w.begin(), w.end());
    }
    for (char c : std::string("stm32f072xb")) body.push_back(static_cast<uint8_t>(c));
    body.push_back(0);
    auto parsed = parse_connect(body);
    ASSERT_TRUE(parsed);
    EXPECT_EQ(parsed->mcu, "stm32f072xb");
    EXPECT_EQ(parsed->software_version, "");
    EXPECT_FALSE(parse_connect(Bytes(11, 0)));
    Bytes binary = body;
    binary[12] = 0x07;
    EXPECT_FALSE(parse_connect(binary));
}

TEST(KatapultCodec, BlockSizesAndCanbusId) {
    for (uint32_t size : {64u, 128u, 256u, 512u}) EXPECT_TRUE(valid_block_size(size));
    for (uint32_t size : {0u, 32u, 96u, 1024u}) EXPECT_FALSE(valid_block_size(size));
    EXPECT_EQ(parse_canbus_id(Bytes{0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0, 0}), 0x112233445566ull);
    EXPECT_FALSE(parse_canbus_id(Bytes{1, 2, 3}));
    EXPECT_EQ(command_name(cmd::kSendBlock), "SEND_BLOCK (0x12)");
}
