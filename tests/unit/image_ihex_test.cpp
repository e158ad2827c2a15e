// Intel HEX: every record type, both addressing modes, every framing error, the writer.
#include <gtest/gtest.h>

#include <algorithm>

#include "image_test_support.hpp"

using namespace mcuflash::image::test_support;

namespace {

Image parse_hex(std::string_view text) { return parse_as(Format::IntelHex, text_bytes(text), "x.hex"); }

Image parse_hex_fixture(const std::string& name) { return parse_fixture(Format::IntelHex, name); }

// The BadInput message parsing `text` produces.
std::string hex_error(std::string_view text) { return parse_error(Format::IntelHex, text_bytes(text), "x.hex", text); }

// The message of the error parsing the fixture produces (its kind is not checked).
std::string fixture_error(const std::string& name) {
    return message_of([&] { parse_hex_fixture(name); }, name);
}

std::string write_hex(const Image& image) { return write_as(Format::IntelHex, image); }

std::string fmt_hex(uint8_t byte) {
    constexpr char kDigits[] = "0123456789ABCDEF";
    return {kDigits[byte >> 4], kDigits[byte & 0xF]};
}

}  // namespace

TEST(IntelHex, ReadsAvrObjcopyOutput) {
    const Image image = parse_hex_fixture("blink.hex");  // CRLF line endings
    ASSERT_EQ(image.runs().size(), 1u);
    EXPECT_EQ(image.lowest(), 0u);
    EXPECT_EQ(image.runs().begin()->second, read_fixture("blink.bin"));
    EXPECT_FALSE(image.entry);
}

TEST(IntelHex, LinearAddressingAndStartLinearAddress) {
    const Image image = parse_hex_fixture("blink_at_08000000.hex");
    EXPECT_EQ(image.lowest(), 0x08000000u);
    EXPECT_EQ(image.runs().begin()->second, read_fixture("blink.bin"));
    EXPECT_EQ(image.entry, 0x08000000u);
}

TEST(IntelHex, EveryRecordType) {
    const Image image = parse_hex(
        ":0400000001020304F2\n"  // 00 data at 0
        ":020000021000EC\n"      // 02 segment 0x1000: base 0x10000
        ":0400000001020304F2\n"  //    data at 0x10000
        ":020000040800F2\n"      // 04 upper 0x0800: base 0x08000000
        ":0400000001020304F2\n"  //    data at 0x08000000
        ":04000005080001C12D\n"  // 05 entry 0x080001C1
        ":00000001FF\n");        // 01 end of file (03 has its own test: it would conflict with 05)
    EXPECT_EQ(image.describe_ranges(),
              "0x00000000-0x00000003 (4 bytes), 0x00010000-0x00010003 (4 bytes), 0x08000000-0x08000003 (4 bytes)");
    EXPECT_EQ(image.entry, 0x080001C1u);
}

TEST(IntelHex, StartSegmentAddressIsCsTimesSixteenPlusIp) {
    const Image image = parse_hex(":0400000001020304F2\n:0400000312345678E5\n:00000001FF\n");
    EXPECT_EQ(image.entry, 0x12340u + 0x5678u);
}

TEST(IntelHex, SegmentAddressingReachesPast64KiB) {
    // 16 bytes at 0xFFF0, then segment 0x1000 (base 0x10000) and 16 bytes at offset 0: one run across 64 KiB.
    const Image image = parse_hex(
        ":10FFF000000102030405060708090A0B0C0D0E0F89\n"
        ":020000021000EC\n"
        ":10000000101112131415161718191A1B1C1D1E1F78\n"
        ":00000001FF\n");
    ASSERT_EQ(image.runs().size(), 1u);
    EXPECT_EQ(image.lowest(), 0xFFF0u);
    EXPECT_EQ(image.runs().begin()->second, counting(32));
}

TEST(IntelHex, SegmentOffsetsWrapWithinTheSegment) {
    // Under segment 0x1000 a 16-byte record at offset 0xFFF8 wraps to offset 0 of the same segment.
    const Image image = parse_hex(":020000021000EC\n:10FFF800000102030405060708090A0B0C0D0E0F81\n:00000001FF\n");
    EXPECT_EQ(image.describe_ranges(), "0x00010000-0x00010007 (8 bytes), 0x0001FFF8-0x0001FFFF (8 bytes)");
    EXPECT_EQ(image.flatten(0x1FFF8, 0x20000), counting(8));
    EXPECT_EQ(image.flatten(0x10000, 0x10008), counting(8, 8));
}

TEST(IntelHex, LinearOffsetsRunOnAcross64KiB) {
    const Image image = parse_hex(":020000040800F2\n:10FFF800000102030405060708090A0B0C0D0E0F81\n:00000001FF\n");
    EXPECT_EQ(image.describe_ranges(), "0x0800FFF8-0x08010007 (16 bytes)");
}

TEST(IntelHex, BlankLinesWhitespaceLowerCaseAndCrlfAccepted) {
    const Image image = parse_hex("\r\n  :0400000001020304f2 \r\n\r\n\t:00000001ff\r\n\x1A");
    EXPECT_EQ(image.flatten(0, 4), (Bytes{1, 2, 3, 4}));
}

TEST(IntelHex, BadChecksumNamesLineAndBothValues) {
    EXPECT_EQ(fixture_error("bad_checksum.hex"), "bad_checksum.hex:3: checksum 0x0D, expected 0x0C");
    EXPECT_EQ(hex_error(":0400000001020304F3\n:00000001FF\n"), "x.hex:1: checksum 0xF3, expected 0xF2");
}

TEST(IntelHex, TruncatedRecord) {
    EXPECT_EQ(fixture_error("truncated_record.hex"),
              "truncated_record.hex:5: truncated record: the length field says 16 data bytes, the line holds 12");
    EXPECT_EQ(hex_error(":0400000001F2\n:00000001FF\n"),
              "x.hex:1: truncated record: the length field says 4 data bytes, the line holds 1");
    EXPECT_EQ(hex_error(":0400\n"), "x.hex:1: record too short: 2 bytes, a record has at least 5");
}

TEST(IntelHex, RecordLongerThanItsLengthField) {
    EXPECT_EQ(hex_error(":020000000102030405F2\n"), "x.hex:1: the line holds 5 data bytes but the length field says 2");
}

TEST(IntelHex, BadHexDigitNamesColumn) {
    EXPECT_EQ(hex_error(":04000000010G0304F2\n"), "x.hex:1: 'G' at column 13 is not a hex digit");
    EXPECT_EQ(hex_error(":0400000001 020304F2\n"), "x.hex:1: byte 0x20 at column 12 is not a hex digit");
    EXPECT_EQ(hex_error(":0400000001020304F\n"), "x.hex:1: odd number of hex digits (17)");
}

TEST(IntelHex, NotARecord) {
    EXPECT_EQ(hex_error("garbage\n"), "x.hex:1: expected ':' to start a record, found 'g'");
    EXPECT_EQ(hex_error(":0400000001020304F2\n;comment\n"), "x.hex:2: expected ':' to start a record, found ';'");
}

TEST(IntelHex, MissingEndOfFile) {
    EXPECT_EQ(fixture_error("missing_eof.hex"), "missing_eof.hex: no end-of-file record (is the file truncated?)");
    EXPECT_EQ(hex_error(""), "x.hex: no end-of-file record (is the file truncated?)");
}

// Decision: records after the end-of-file record are an error, not ignored. Two HEX files joined
// with `cat` would otherwise lose the second file's data without a word.
TEST(IntelHex, RecordsAfterEndOfFileAreRefused) {
    EXPECT_EQ(hex_error(":0400000001020304F2\n:00000001FF\n:04001000AAAAAAAA44\n:00000001FF\n"),
              "x.hex:3: content after the end-of-file record on line 2 (two files joined together?)");
}

TEST(IntelHex, OverlappingRecords) {
    EXPECT_EQ(hex_error(":0400000001020304F2\n:020002000506F1\n:00000001FF\n"),
              "x.hex:2: data at 0x00000002 overlaps data already at 0x00000002");
}

TEST(IntelHex, UnknownTypeAndWrongLengths) {
    EXPECT_EQ(hex_error(":00000006FA\n"), "x.hex:1: unknown record type 0x06");
    EXPECT_EQ(hex_error(":0100000408F3\n"), "x.hex:1: record type 0x04 must hold 2 data bytes, not 1");
    EXPECT_EQ(hex_error(":0100000100FE\n"), "x.hex:1: record type 0x01 must hold 0 data bytes, not 1");
}

TEST(IntelHex, ConflictingStartAddresses) {
    EXPECT_EQ(hex_error(":04000005080001C12D\n:0400000500000004F3\n:00000001FF\n"),
              "x.hex:2: start address 0x00000004 differs from 0x080001C1 given earlier");
}

TEST(IntelHex, DataPastFourGigabytesIsRefused) {
    const std::string message =
        hex_error(":02000004FFFFFC\n:10FFF800000102030405060708090A0B0C0D0E0F81\n:00000001FF\n");
    EXPECT_EQ(message.rfind("x.hex:2: data at 0xFFFFFFF8 (16 bytes) runs past", 0), 0u) << message;
}

TEST(IntelHex, WriterEmitsLinearAddressRecordsAndSplitsAt64KiB) {
    Image image;
    image.add(0x0800FFF8, counting(16), "test");
    image.entry = 0x080001C1;
    EXPECT_EQ(write_hex(image),
              ":020000040800F2\n"
              ":08FFF8000001020304050607E5\n"
              ":020000040801F1\n"
              ":0800000008090A0B0C0D0E0F9C\n"
              ":04000005080001C12D\n"
              ":00000001FF\n");
}

TEST(IntelHex, WriterSixteenBytesPerLine) {
    Image image;
    image.add(0, counting(40), "test");
    const std::string text = write_hex(image);
    EXPECT_EQ(text.substr(0, 44), ":10000000000102030405060708090A0B0C0D0E0F78\n");
    EXPECT_EQ(std::count(text.begin(), text.end(), '\n'), 4);  // 16 + 16 + 8 bytes, EOF
}

TEST(IntelHex, RoundTripKeepsDataAndEntry) {
    Image image;
    image.add(0x00000100, counting(200), "a");
    image.add(0x0001FFF0, counting(64), "b");
    image.add(0xFFFFFFF0, counting(16), "c");
    image.entry = 0x12345678;
    const std::string text = write_hex(image);
    const Image again = parse_hex(text);
    EXPECT_EQ(again.runs(), image.runs());
    EXPECT_EQ(again.entry, image.entry);
}

TEST(IntelHex, DescendingRecordsMergeIntoOneRun) {
    // 256 KiB written back to front. Blocks are sorted before they go into the image, so this takes
    // milliseconds; adding them in file order (each prepended to a growing run) took seconds.
    const auto record = [](uint8_t type, uint16_t offset, const Bytes& data) {
        Bytes bytes{static_cast<uint8_t>(data.size()), static_cast<uint8_t>(offset >> 8), static_cast<uint8_t>(offset),
                    type};
        bytes.insert(bytes.end(), data.begin(), data.end());
        uint8_t sum = 0;
        for (uint8_t byte : bytes) sum = static_cast<uint8_t>(sum + byte);
        bytes.push_back(static_cast<uint8_t>(-sum));
        std::string line = ":";
        for (uint8_t byte : bytes) line += fmt_hex(byte);
        return line + "\n";
    };
    constexpr uint32_t kSize = 256 << 10;
    std::string text;
    uint32_t upper = 0xFFFFFFFF;
    for (uint32_t address = kSize; address > 0;) {
        address -= 16;
        if (address >> 16 != upper) {
            upper = address >> 16;
            text += record(4, 0, {static_cast<uint8_t>(upper >> 8), static_cast<uint8_t>(upper)});
        }
        text += record(0, static_cast<uint16_t>(address), counting(16, static_cast<uint8_t>(address)));
    }
    text += ":00000001FF\n";
    const Image image = parse_hex(text);
    ASSERT_EQ(image.runs().size(), 1u);
    EXPECT_EQ(image.end(), kSize);
    EXPECT_EQ(image.flatten(0x12340, 0x12344), (Bytes{0x40, 0x41, 0x42, 0x43}));
}

TEST(IntelHex, OverlapIsReportedAtTheHigherAddress) {
    // Line 2 (0x08-0x17) comes later in the file, but blocks go into the image in address order.
    EXPECT_EQ(hex_error(":04001000AAAAAAAA44\n:10000800000102030405060708090A0B0C0D0E0F70\n:00000001FF\n"),
              "x.hex:1: data at 0x00000010 overlaps data already at 0x00000010");
}
