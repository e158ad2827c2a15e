// Motorola S-record: S1/S2/S3 data, S5/S6 counts, S7/S8/S9 start addresses, framing errors, the writer.
#include <gtest/gtest.h>

#include "image_test_support.hpp"

using namespace mcuflash::image::test_support;

namespace {

Image parse_srec(std::span<const uint8_t> content, const std::string& filename) {
    return parse_as(Format::SRecord, content, filename);
}

Image parse_srec(std::string_view text) { return parse_srec(text_bytes(text), "x.srec"); }

// The BadInput message parsing `text` produces.
std::string srec_error(std::string_view text) {
    return parse_error(Format::SRecord, text_bytes(text), "x.srec", text);
}

std::string write_srec(const Image& image) { return write_as(Format::SRecord, image); }

}  // namespace

TEST(SRecord, ReadsS1FileFromAvrObjcopy) {
    const Image image = parse_srec(read_fixture("blink.srec"), "blink.srec");
    ASSERT_EQ(image.runs().size(), 1u);
    EXPECT_EQ(image.lowest(), 0u);
    EXPECT_EQ(image.runs().begin()->second, read_fixture("blink.bin"));
    EXPECT_FALSE(image.entry) << "S9 with address 0 means no start address";
}

TEST(SRecord, ReadsS3FileWithS7StartAddress) {
    const Image image = parse_srec(read_fixture("blink_at_08000000.srec"), "blink_at_08000000.srec");
    EXPECT_EQ(image.lowest(), 0x08000000u);
    EXPECT_EQ(image.runs().begin()->second, read_fixture("blink.bin"));
    EXPECT_EQ(image.entry, 0x08000000u);
}

TEST(SRecord, S2DataWithS8StartAddress) {
    const Image image = parse_srec("S0030000FC\nS2081234560102030451\nS8041234565F\n");
    EXPECT_EQ(image.describe_ranges(), "0x00123456-0x00123459 (4 bytes)");
    EXPECT_EQ(image.entry, 0x123456u);
}

TEST(SRecord, S3DataWithS7StartAddress) {
    const Image image = parse_srec("S3090800000001020304E4\r\nS705080001C130\r\n");
    EXPECT_EQ(image.flatten(0x08000000, 0x08000004), (Bytes{1, 2, 3, 4}));
    EXPECT_EQ(image.entry, 0x080001C1u);
}

TEST(SRecord, MatchingCountsAccepted) {
    EXPECT_EQ(parse_srec("S107000001020304EE\nS5030001FB\nS9030000FC\n").total_bytes(), 4u);
    EXPECT_EQ(parse_srec("S107000001020304EE\nS604000001FA\nS9030000FC\n").total_bytes(), 4u);
}

TEST(SRecord, S5CountMismatch) {
    EXPECT_EQ(message_of([] { parse_srec(read_fixture("bad_count.srec"), "bad_count.srec"); }),
              "bad_count.srec:17: the S5 record counts 5 data records, but 15 precede it");
    EXPECT_EQ(srec_error("S107000001020304EE\nS5030002FA\nS9030000FC\n"),
              "x.srec:2: the S5 record counts 2 data records, but 1 precede it");
    EXPECT_EQ(srec_error("S107000001020304EE\nS5040001AA50\nS9030000FC\n"),
              "x.srec:2: an S5 record holds no data, this one has 1 bytes");
}

TEST(SRecord, BadChecksum) {
    EXPECT_EQ(srec_error("S0030000FC\nS107000001020304EF\nS9030000FC\n"), "x.srec:2: checksum 0xEF, expected 0xEE");
}

TEST(SRecord, TruncatedAndOverlongRecords) {
    EXPECT_EQ(srec_error("S1070000010203EE\n"),
              "x.srec:1: truncated record: the length field says 7 bytes after the count, the line holds 6");
    EXPECT_EQ(srec_error("S10700000102030405EE\n"),
              "x.srec:1: the line holds 8 bytes after the count but the length field says 7");
    EXPECT_EQ(srec_error("S3050000FA\n"), "x.srec:1: record too short: 4 bytes, a record has at least 6");
    EXPECT_EQ(srec_error("S1\n"), "x.srec:1: record too short: 0 bytes, a record has at least 4");
}

TEST(SRecord, BadCharacters) {
    EXPECT_EQ(srec_error("S10700000102030XEE\n"), "x.srec:1: 'X' at column 16 is not a hex digit");
    EXPECT_EQ(srec_error(":00000001FF\n"), "x.srec:1: expected 'S' to start a record, found ':'");
    EXPECT_EQ(srec_error("SX030000FC\n"), "x.srec:1: unknown record type 'SX'");
    EXPECT_EQ(srec_error("S\n"), "x.srec:1: unknown record type 'S'");
    EXPECT_EQ(srec_error("S4030000FC\n"), "x.srec:1: record type S4 is reserved");
}

TEST(SRecord, TerminationRecordRequiredAndLast) {
    EXPECT_EQ(srec_error("S0030000FC\nS107000001020304EE\n"),
              "x.srec: no termination record (S7, S8 or S9; is the file truncated?)");
    EXPECT_EQ(srec_error("S107000001020304EE\nS9030000FC\nS10500020506ED\nS9030000FC\n"),
              "x.srec:3: content after the S9 record on line 2 (two files joined together?)");
    EXPECT_EQ(parse_srec("S107000001020304EE\nS9030000FC\n\n\x1A").total_bytes(), 4u);
}

TEST(SRecord, ACountRecordThatEndsTheFileProvesItCompleteWithoutTermination) {
    // What srec_cat writes when the program has no start address: data, then S5, no S7/S8/S9.
    auto image = parse_srec("S0030000FC\nS107000001020304EE\nS5030001FB\n");
    EXPECT_EQ(image.total_bytes(), 4u);
    ASSERT_EQ(image.notes.size(), 1u);
    EXPECT_NE(image.notes[0].find("count record on line 3 proves all 1 data records"), std::string::npos) << image.notes[0];
    // Data after the count record: the count proves nothing about it.
    EXPECT_EQ(srec_error("S107000001020304EE\nS5030001FB\nS10500040506EB\n"),
              "x.srec: no termination record (S7, S8 or S9; is the file truncated?)");
}

TEST(SRecord, OverlappingRecords) {
    EXPECT_EQ(srec_error("S107000001020304EE\nS10500020506ED\nS9030000FC\n"),
              "x.srec:2: data at 0x00000002 overlaps data already at 0x00000002");
}

TEST(SRecord, WriterUsesS1ForSixteenBitImages) {
    Image image;
    image.add(0, counting(20), "test");
    image.entry = 0x10;
    EXPECT_EQ(write_srec(image),
              "S0030000FC\n"
              "S1130000000102030405060708090A0B0C0D0E0F74\n"
              "S107001010111213A2\n"
              "S5030002FA\n"
              "S9030010EC\n");
}

TEST(SRecord, WriterPicksTheNarrowestAddressWidth) {
    Image s2;
    s2.add(0x123456, Bytes{1, 2, 3, 4}, "test");
    s2.entry = 0x123456;
    EXPECT_EQ(write_srec(s2), "S0030000FC\nS2081234560102030451\nS5030001FB\nS8041234565F\n");

    Image s3;
    s3.add(0x08000000, Bytes{1, 2, 3, 4}, "test");
    s3.entry = 0x080001C1;
    EXPECT_EQ(write_srec(s3), "S0030000FC\nS3090800000001020304E4\nS5030001FB\nS705080001C130\n");

    Image entry_only_high;  // the data fits 16 bits but the start address does not
    entry_only_high.add(0, Bytes{1, 2, 3, 4}, "test");
    entry_only_high.entry = 0x123456;
    EXPECT_NE(write_srec(entry_only_high).find("S8041234565F"), std::string::npos);
}

TEST(SRecord, RoundTrip) {
    Image image;
    image.add(0x00000000, counting(100), "a");
    image.add(0x0000FFF0, counting(40), "b");  // crosses 64 KiB: S3 needed
    image.add(0xFFFFFF00, counting(256), "c");
    image.entry = 0x000000C1;
    const Image again = parse_srec(write_srec(image));
    EXPECT_EQ(again.runs(), image.runs());
    EXPECT_EQ(again.entry, image.entry);
}
