// Klipper's MCU protocol codec. The expected bytes were computed with Klipper's own klippy/msgproto.py
// (PT_uint32.encode, MessageParser.encode_msgblock), so they pin our codec to Klipper's host.
#include <gtest/gtest.h>

#include <random>

#include "core/error.hpp"
#include "protocol/klipper_mcu/codec.hpp"

namespace km = mcuflash::protocol::klipper_mcu;
using mcuflash::core::Error;
using mcuflash::core::ErrorKind;

namespace {

std::vector<uint8_t> vlq(int64_t v) {
    std::vector<uint8_t> out;
    km::append_vlq(out, v);
    return out;
}

const char* kDictionary = R"({"app": "Klipper", "version": "v0.12.0-1-gtest", "build_versions": "gcc: 12",
  "config": {"MCU": "stm32f103xe", "CLOCK_FREQ": 72000000},
  "commands": {"identify offset=%u count=%c": 1, "get_uptime": 4, "get_clock": 5},
  "responses": {"identify_response offset=%u data=%.*s": 0, "uptime high=%u clock=%u": -11,
                "clock clock=%u": -10, "shutdown clock=%u static_string_id=%hu": -13, "v s=%*s d=%i h=%hi": 90}})";

}  // namespace

TEST(KlipperMcuCodec, VariableLengthQuantitiesMatchKlippy) {
    const std::vector<std::pair<int64_t, std::vector<uint8_t>>> cases{
        {0, {0x00}},
        {1, {0x01}},
        {-1, {0x7F}},
        {-32, {0x60}},
        {95, {0x5F}},
        {96, {0x80, 0x60}},
        {-33, {0xFF, 0x5F}},
        {12287, {0xDF, 0x7F}},
        {12288, {0x80, 0xE0, 0x00}},
        {-4096, {0xE0, 0x00}},
        {-4097, {0xFF, 0xDF, 0x7F}},
        {1572864, {0x80, 0xE0, 0x80, 0x00}},
        {4294967295, {0x8F, 0xFF, 0xFF, 0xFF, 0x7F}},
        {-67108865, {0xFF, 0xDF, 0xFF, 0xFF, 0x7F}},
        {1234567, {0xCB, 0xAD, 0x07}},
    };
    for (const auto& [value, bytes] : cases) {
        EXPECT_EQ(vlq(value), bytes) << value;
        size_t pos = 0;
        auto back = km::read_vlq(bytes, pos);
        ASSERT_TRUE(back) << value;
        // Integers come back as 32-bit values (msgproto masks unsigned ones).
        EXPECT_EQ(static_cast<uint32_t>(*back), static_cast<uint32_t>(value)) << value;
        EXPECT_EQ(pos, bytes.size());
    }
    size_t pos = 0;
    const std::vector<uint8_t> cut{0x80};
    EXPECT_FALSE(km::read_vlq(cut, pos));
}

TEST(KlipperMcuCodec, BlockMatchesKlippyAndIsFoundInNoise) {
    // identify offset=40 count=40, sequence 3: klippy's encode_msgblock(0x13, [1, 40, 40]).
    const std::vector<uint8_t> content{0x01, 0x28, 0x28};
    const auto block = km::encode_block(3, content);
    EXPECT_EQ(block, (std::vector<uint8_t>{0x08, 0x13, 0x01, 0x28, 0x28, 0x96, 0xA1, 0x7E}));

    km::BlockReader reader;
    std::vector<uint8_t> stream{0x42, 0x13, 0x7E, 0x7E};  // noise ending in a sync, then idle syncs
    auto corrupt = block;
    corrupt[3] ^= 0x01;  // a bad CRC: dropped up to its sync byte
    stream.insert(stream.end(), corrupt.begin(), corrupt.end());
    stream.insert(stream.end(), block.begin(), block.end());
    const auto ack = km::encode_block(4, {});
    stream.insert(stream.end(), ack.begin(), ack.end());
    // Fed one byte at a time: blocks split across reads are reassembled.
    std::vector<km::Block> found;
    for (uint8_t byte : stream) {
        reader.feed(std::span(&byte, 1));
        while (auto b = reader.next()) found.push_back(*b);
    }
    ASSERT_EQ(found.size(), 2u);
    EXPECT_EQ(found[0].sequence, 3);
    EXPECT_EQ(found[0].content, content);
    EXPECT_EQ(found[1].sequence, 4);
    EXPECT_TRUE(found[1].content.empty());
    EXPECT_EQ(reader.discarded(), 3u + corrupt.size());
}

TEST(KlipperMcuCodec, MessagesEncodeAndDecodeWithTheDictionary) {
    const auto d = km::Dictionary::parse(kDictionary);
    EXPECT_EQ(d.app, "Klipper");
    EXPECT_EQ(d.version, "v0.12.0-1-gtest");
    EXPECT_EQ(d.mcu(), "stm32f103xe");
    EXPECT_EQ(d.config.at("CLOCK_FREQ"), "72000000");
    EXPECT_EQ(d.command_count, 3u);
    EXPECT_EQ(d.response_count, 5u);

    std::vector<uint8_t> content = km::encode_message(*d.find("uptime"), {{"high", 1}, {"clock", 4000000000LL}});
    const auto more = km::encode_message(*d.find("v"), {{"s", std::vector<uint8_t>{'h', 'i'}}, {"d", -5}, {"h", -300}});
    content.insert(content.end(), more.begin(), more.end());
    const auto messages = km::decode_messages(content, &d);
    ASSERT_EQ(messages.size(), 2u);
    EXPECT_EQ(messages[0].name, "uptime");
    EXPECT_EQ(messages[0].id, -11);
    EXPECT_EQ(messages[0].number("high"), 1);
    EXPECT_EQ(messages[0].number("clock"), 4000000000LL);
    EXPECT_EQ(messages[1].bytes("s"), (std::vector<uint8_t>{'h', 'i'}));
    EXPECT_EQ(messages[1].number("d"), -5);
    EXPECT_EQ(messages[1].number("h"), -300);
    EXPECT_EQ(km::describe_message(messages[0]), "uptime clock=4000000000 high=1");

    // An id the dictionary lacks stops the decoding there.
    const std::vector<uint8_t> unknown{0x05, 0x33, 0x01};
    const auto rest = km::decode_messages(unknown, &d);
    ASSERT_EQ(rest.size(), 2u);
    EXPECT_EQ(rest[0].name, "get_clock");
    EXPECT_EQ(rest[1].name, "#unknown");
    EXPECT_EQ(rest[1].bytes("raw"), (std::vector<uint8_t>{0x33, 0x01}));

    // A buffer running past the block is a protocol error, not a crash.
    const std::vector<uint8_t> short_buffer{0x00, 0x00, 0x09, 0x01};
    EXPECT_THROW(km::decode_messages(short_buffer, nullptr), Error);
    // Without a dictionary only identify and identify_response are known.
    const std::vector<uint8_t> identify{0x00, 0x28, 0x02, 0xAA, 0xBB};
    const auto response = km::decode_messages(identify, nullptr);
    ASSERT_EQ(response.size(), 1u);
    EXPECT_EQ(response[0].number("offset"), 40);
    EXPECT_EQ(response[0].bytes("data"), (std::vector<uint8_t>{0xAA, 0xBB}));
}

TEST(KlipperMcuCodec, BadDictionariesAndFormatsAreProtocolErrors) {
    for (const char* bad : {"not json", "[]", R"({"commands": {}})", R"({"commands": {"x a=%q": 3}, "responses": {}})",
                            R"({"commands": {"get_clock": "5"}, "responses": {}})"}) {
        try {
            km::Dictionary::parse(bad);
            ADD_FAILURE() << "accepted: " << bad;
        } catch (const Error& e) {
            EXPECT_EQ(e.kind(), ErrorKind::Protocol) << bad;
        }
    }
    const std::vector<uint8_t> not_zlib{1, 2, 3, 4};
    EXPECT_THROW(km::inflate(not_zlib), Error);
}

TEST(KlipperMcuCodec, TheDictionaryIsFoundInAFirmwareImage) {
    const auto compressed = km::deflate(kDictionary);
    EXPECT_EQ(km::inflate(compressed), kDictionary);
    std::vector<uint8_t> image(20000);
    std::mt19937 random(7);
    for (auto& byte : image) byte = static_cast<uint8_t>(random());
    // A decoy: a zlib stream that is not a dictionary comes first.
    const auto decoy = km::deflate(R"({"not": "a dictionary"})");
    std::copy(decoy.begin(), decoy.end(), image.begin() + 3000);
    std::copy(compressed.begin(), compressed.end(), image.begin() + 9000);
    auto found = km::find_dictionary_in_image(image);
    ASSERT_TRUE(found);
    EXPECT_EQ(*found, compressed);
    image.erase(image.begin() + 9000, image.begin() + 9000 + static_cast<long>(compressed.size()));
    EXPECT_FALSE(km::find_dictionary_in_image(image));
}
