#include <gtest/gtest.h>

#include "protocol/stk500v2/codec.hpp"

using namespace mcuflash::protocol::stk500v2;
using Bytes = std::vector<uint8_t>;

// Frames below were captured from avrdude 7.1 (-c wiring -p m2560) talking to the real stk500boot_v2
// in simavr, unless marked "by hand".

TEST(Stk500v2Codec, SignOnFrame) {
    // 1B ^ 01 ^ 00 ^ 01 ^ 0E ^ 01 = 14 (by hand; avrdude sends exactly this).
    EXPECT_EQ(encode_frame(1, sign_on()), (Bytes{0x1B, 0x01, 0x00, 0x01, 0x0E, 0x01, 0x14}));
}

TEST(Stk500v2Codec, EnterProgmodeWithAtmega2560Timing) {
    EXPECT_EQ(encode_frame(2, enter_progmode_isp(IspEnter{})),
              (Bytes{0x1B, 0x02, 0x00, 0x0C, 0x0E, 0x10, 0xC8, 0x64, 0x19, 0x20, 0x00, 0x53, 0x03, 0xAC, 0x53, 0x00,
                     0x00, 0x31}));
}

TEST(Stk500v2Codec, ReadSignature) {
    EXPECT_EQ(encode_frame(3, read_signature_isp(0)), (Bytes{0x1B, 0x03, 0x00, 0x06, 0x0E, 0x1B, 0x04, 0x30, 0x00, 0x00, 0x00, 0x3F}));
    EXPECT_EQ(encode_frame(5, read_signature_isp(2)), (Bytes{0x1B, 0x05, 0x00, 0x06, 0x0E, 0x1B, 0x04, 0x30, 0x00, 0x02, 0x00, 0x3B}));
}

TEST(Stk500v2Codec, LoadAddressIsWordsMsbFirstWithExtendedBit) {
    // Byte address 0x200 = word 0x100 on the atmega2560 (bit 31 set).
    EXPECT_EQ(encode_frame(6, load_address(0x100, true)), (Bytes{0x1B, 0x06, 0x00, 0x05, 0x0E, 0x06, 0x80, 0x00, 0x01, 0x00, 0x91}));
    EXPECT_EQ(load_address(0x1F000, false), (Bytes{0x06, 0x00, 0x01, 0xF0, 0x00}));  // by hand
}

TEST(Stk500v2Codec, ProgramAndReadFlash) {
    Bytes page(256, 0xFF);
    auto body = program_flash_isp(IspProgram{}, page);
    ASSERT_EQ(body.size(), 266u);
    EXPECT_EQ(Bytes(body.begin(), body.begin() + 10), (Bytes{0x13, 0x01, 0x00, 0xC1, 0x0A, 0x40, 0x4C, 0x20, 0x00, 0x00}));
    auto frame = encode_frame(9, body);
    EXPECT_EQ(Bytes(frame.begin(), frame.begin() + 5), (Bytes{0x1B, 0x09, 0x01, 0x0A, 0x0E}));
    EXPECT_EQ(encode_frame(7, read_flash_isp(256)), (Bytes{0x1B, 0x07, 0x00, 0x04, 0x0E, 0x14, 0x01, 0x00, 0x20, 0x23}));
    IspProgram no_write;
    no_write.write_page = false;
    EXPECT_EQ(program_flash_isp(no_write, Bytes{1, 2})[3], 0x41);
    EXPECT_THROW(program_flash_isp(IspProgram{}, Bytes(266, 0)), std::length_error);
    EXPECT_THROW(read_flash_isp(273), std::length_error);
    EXPECT_NO_THROW(read_flash_isp(272));
}

TEST(Stk500v2Codec, FusesAndLock) {
    EXPECT_EQ(encode_frame(0x14, read_fuse_isp(isp::read_fuse(isp::Fuse::Low))),
              (Bytes{0x1B, 0x14, 0x00, 0x06, 0x0E, 0x18, 0x04, 0x50, 0x00, 0x00, 0x00, 0x4B}));
    EXPECT_EQ(encode_frame(0x15, read_fuse_isp(isp::read_fuse(isp::Fuse::High))),
              (Bytes{0x1B, 0x15, 0x00, 0x06, 0x0E, 0x18, 0x04, 0x58, 0x08, 0x00, 0x00, 0x4A}));
    EXPECT_EQ(encode_frame(0x16, read_fuse_isp(isp::read_fuse(isp::Fuse::Extended))),
              (Bytes{0x1B, 0x16, 0x00, 0x06, 0x0E, 0x18, 0x04, 0x50, 0x08, 0x00, 0x00, 0x41}));
    EXPECT_EQ(encode_frame(0x17, read_lock_isp()),
              (Bytes{0x1B, 0x17, 0x00, 0x06, 0x0E, 0x1A, 0x04, 0x58, 0x00, 0x00, 0x00, 0x42}));
    // by hand, from the ATmega serial programming instruction set
    EXPECT_EQ(program_fuse_isp(isp::write_fuse(isp::Fuse::High, 0xD8)), (Bytes{0x17, 0xAC, 0xA8, 0x00, 0xD8}));
    EXPECT_EQ(program_fuse_isp(isp::write_fuse(isp::Fuse::Low, 0xFF)), (Bytes{0x17, 0xAC, 0xA0, 0x00, 0xFF}));
    EXPECT_EQ(program_fuse_isp(isp::write_fuse(isp::Fuse::Extended, 0xFD)), (Bytes{0x17, 0xAC, 0xA4, 0x00, 0xFD}));
    EXPECT_EQ(program_lock_isp(isp::write_lock(0xCF)), (Bytes{0x19, 0xAC, 0xE0, 0x00, 0xCF}));
}

TEST(Stk500v2Codec, OtherCommands) {
    EXPECT_EQ(encode_frame(0x18, leave_progmode_isp()), (Bytes{0x1B, 0x18, 0x00, 0x03, 0x0E, 0x11, 0x01, 0x01, 0x1F}));
    EXPECT_EQ(chip_erase_isp(10, 0), (Bytes{0x12, 0x0A, 0x00, 0xAC, 0x80, 0x00, 0x00}));
    EXPECT_EQ(get_parameter(param::kSwMajor), (Bytes{0x03, 0x91}));
    EXPECT_EQ(set_parameter(param::kSckDuration, 2), (Bytes{0x02, 0x98, 0x02}));
    EXPECT_EQ(spi_multi(Bytes{0x30, 0x00, 0x01, 0x00}, 4, 0), (Bytes{0x1D, 0x04, 0x04, 0x00, 0x30, 0x00, 0x01, 0x00}));
    EXPECT_EQ(read_eeprom_isp(16), (Bytes{0x16, 0x00, 0x10, 0xA0}));
    EXPECT_THROW(encode_frame(1, Bytes{}), std::length_error);
    EXPECT_THROW(encode_frame(1, Bytes(276, 0)), std::length_error);
}

namespace {
std::vector<Frame> decode_all(FrameDecoder& d, const Bytes& stream, std::vector<std::string>* problems = nullptr) {
    std::vector<Frame> frames;
    for (uint8_t b : stream) {
        auto r = d.push(b);
        if (r == FrameDecoder::Result::Frame) frames.push_back(d.frame());
        if (r == FrameDecoder::Result::Error && problems) problems->push_back(d.problem());
    }
    return frames;
}
}  // namespace

TEST(Stk500v2Codec, DecodesTheBootloadersSignOnAnswer) {
    // stk500boot_v2's answer, with noise before it.
    Bytes stream{0x00, 0xFF, 0x1B, 0x01, 0x00, 0x0B, 0x0E, 0x01, 0x00, 0x08, 'A', 'V', 'R', 'I', 'S', 'P', '_', '2', 0x74};
    FrameDecoder d;
    auto frames = decode_all(d, stream);
    ASSERT_EQ(frames.size(), 1u);
    EXPECT_EQ(frames[0].seq, 1);
    EXPECT_FALSE(check_reply(frames[0], 1, cmd::kSignOn).has_value());
    EXPECT_EQ(sign_on_name(frames[0]), "AVRISP_2");
}

TEST(Stk500v2Codec, DecodesReadAnswersAndChecksThem) {
    Bytes sig{0x1B, 0x04, 0x00, 0x04, 0x0E, 0x1B, 0x00, 0x98, 0x00, 0x96};
    FrameDecoder d;
    auto frames = decode_all(d, sig);
    ASSERT_EQ(frames.size(), 1u);
    EXPECT_FALSE(check_reply(frames[0], 4, cmd::kReadSignatureIsp, 4).has_value());
    EXPECT_EQ(single_byte_answer(frames[0]), 0x98);
    // Round trip of a page read answer.
    Bytes body{cmd::kReadFlashIsp, status::kOk};
    for (int i = 0; i < 256; ++i) body.push_back(static_cast<uint8_t>(i));
    body.push_back(status::kOk);
    frames = decode_all(d, encode_frame(7, body));
    ASSERT_EQ(frames.size(), 1u);
    EXPECT_FALSE(check_reply(frames[0], 7, cmd::kReadFlashIsp, 259).has_value());
    auto data = read_data(frames[0]);
    ASSERT_EQ(data.size(), 256u);
    EXPECT_EQ(data[255], 255);
}

TEST(Stk500v2Codec, ReportsProblemsInWords) {
    FrameDecoder d;
    std::vector<std::string> problems;
    // Bad checksum.
    decode_all(d, Bytes{0x1B, 0x02, 0x00, 0x02, 0x0E, 0x10, 0x00, 0x06}, &problems);
    ASSERT_EQ(problems.size(), 1u);
    EXPECT_NE(problems[0].find("bad checksum 0x06 (computed 0x05)"), std::string::npos) << problems[0];
    // Bad token, then a good frame.
    problems.clear();
    auto frames = decode_all(d, Bytes{0x1B, 0x02, 0x00, 0x02, 0x0F, 0x1B, 0x02, 0x00, 0x02, 0x0E, 0x10, 0x00, 0x05}, &problems);
    ASSERT_EQ(problems.size(), 1u);
    EXPECT_NE(problems[0].find("bad token 0x0f"), std::string::npos) << problems[0];
    ASSERT_EQ(frames.size(), 1u);
    EXPECT_EQ(frames[0].body, (Bytes{0x10, 0x00}));
    // A rejected header (length 0x200) whose second byte is a start byte: the frame starting there is found.
    problems.clear();
    frames = decode_all(d, Bytes{0x1B, 0x1B, 0x02, 0x00, 0x02, 0x0E, 0x10, 0x00, 0x05}, &problems);
    ASSERT_EQ(problems.size(), 1u);
    EXPECT_NE(problems[0].find("impossible frame length 512"), std::string::npos) << problems[0];
    ASSERT_EQ(frames.size(), 1u);
    EXPECT_EQ(frames[0].seq, 2);
    // Impossible length.
    problems.clear();
    decode_all(d, Bytes{0x1B, 0x01, 0x01, 0x14, 0x0E}, &problems);
    ASSERT_EQ(problems.size(), 1u);
    EXPECT_NE(problems[0].find("impossible frame length 276"), std::string::npos) << problems[0];
}

TEST(Stk500v2Codec, ReplyChecksNameTheProblem) {
    Frame ok{3, {cmd::kLoadAddress, status::kOk}};
    EXPECT_FALSE(check_reply(ok, 3, cmd::kLoadAddress, 2).has_value());
    auto seq = check_reply(ok, 4, cmd::kLoadAddress);
    ASSERT_TRUE(seq);
    EXPECT_NE(seq->find("sequence mismatch"), std::string::npos);
    auto other = check_reply(ok, 3, cmd::kProgramFlashIsp);
    ASSERT_TRUE(other);
    EXPECT_NE(other->find("LOAD_ADDRESS"), std::string::npos);
    Frame failed{5, {cmd::kChipEraseIsp, status::kFailed}};
    auto f = check_reply(failed, 5, cmd::kChipEraseIsp);
    ASSERT_TRUE(f);
    EXPECT_NE(f->find("CHIP_ERASE_ISP (0x12) answered FAILED (0xC0)"), std::string::npos) << *f;
    Frame cksum{5, {cmd::kAnswerChecksumError, status::kChecksumError}};
    auto c = check_reply(cksum, 5, cmd::kProgramFlashIsp);
    ASSERT_TRUE(c);
    EXPECT_NE(c->find("bad checksum"), std::string::npos);
    Frame trailing{6, {cmd::kReadFuseIsp, status::kOk, 0xFF, status::kFailed}};
    EXPECT_TRUE(check_reply(trailing, 6, cmd::kReadFuseIsp, 4).has_value());
    EXPECT_NE(describe_status(0x80).find("CMD_TOUT"), std::string::npos);
    EXPECT_NE(describe_status(0x42).find("not an STK500v2 status"), std::string::npos);
}

TEST(Stk500v2Codec, MonitorGuardKeepsBangsOutOfTheCounterWindow) {
    Bytes plain{0x1B, 0x09, 0x00, 0x02, 0x0E, 0x13, 0x00};
    EXPECT_EQ(monitor_guard_fill(65530, 65530, plain), 0u);  // no "!!!": nothing to do
    Bytes bangs(20, '!');
    EXPECT_EQ(monitor_guard_fill(1000, 1000, bangs), 0u);  // far from the wrap
    // The run at index 0 would be byte 65536 (counter 0): shift it to byte 65544 (counter 8).
    EXPECT_EQ(monitor_guard_fill(65535, 65535, Bytes{'!', '!', '!'}), 8u);
    // Unknown by a whole wrap: no filler helps, and the search must end (it looped for ever).
    EXPECT_EQ(monitor_guard_fill(0, 70000, Bytes{'!', '!', '!'}), 0u);
    // Ending just before the wrap is fine: bytes 65533..65535 have counters 65533..65535.
    EXPECT_EQ(monitor_guard_fill(65532, 65532, Bytes{'!', '!', '!'}), 0u);
    // A run whose first '!' would have counter 7 still fires (7, 8, 9): counter 8 does not.
    EXPECT_EQ(monitor_guard_fill(65536 + 6, 65536 + 6, Bytes{'!', '!', '!'}), 1u);
    // Uncertainty widens the window: any count in [65500, 65540] must be safe.
    size_t fill = monitor_guard_fill(65500, 65540, bangs);
    for (uint64_t d = 65500; d <= 65540; ++d)
        for (size_t i = 0; i + 2 < bangs.size(); ++i) {
            uint64_t counter = (d + fill + i + 1) % 65536;
            EXPECT_FALSE(counter <= 7) << "received " << d << " index " << i;
        }
    // The first bytes after reset are checked too.
    EXPECT_GT(monitor_guard_fill(0, 0, Bytes{'!', '!', '!'}), 0u);
}
