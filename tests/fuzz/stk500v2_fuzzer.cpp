// libFuzzer entry point for STK500v2 answers (protocol/stk500v2/codec.hpp). The input is a byte
// stream from a programmer or stk500boot_v2, fed to a FrameDecoder one byte at a time as the client
// does; every frame found goes through check_reply and the data accessors.
// Findings: a sanitizer report, any exception, a decoder that keeps more than one frame's worth of
// state, or a frame that does not survive encode_frame -> FrameDecoder unchanged.
#include <cstdint>
#include <optional>
#include <span>
#include <string>

#include "fuzz_check.hpp"
#include "protocol/stk500v2/codec.hpp"

using namespace mcuflash;
using namespace mcuflash::protocol::stk500v2;
using fuzz::require;

namespace {

// Every command the client sends, and one it never does.
constexpr uint8_t kCommands[] = {cmd::kSignOn,          cmd::kSetParameter,     cmd::kGetParameter,
                                 cmd::kLoadAddress,     cmd::kEnterProgmodeIsp, cmd::kLeaveProgmodeIsp,
                                 cmd::kChipEraseIsp,    cmd::kProgramFlashIsp,  cmd::kReadFlashIsp,
                                 cmd::kProgramEepromIsp, cmd::kReadEepromIsp,   cmd::kProgramFuseIsp,
                                 cmd::kReadFuseIsp,     cmd::kProgramLockIsp,   cmd::kReadLockIsp,
                                 cmd::kReadSignatureIsp, cmd::kSpiMulti,        0x7E};

// Generous bounds on what one decoder may hold: a frame body is at most kMaxBody bytes, a problem
// names at most a header and 8 body bytes.
constexpr size_t kMaxCapacity = 4 * kMaxBody;
constexpr size_t kMaxProblem = 512;

void check_frame(const Frame& frame) {
    require(!frame.body.empty() && frame.body.size() <= kMaxBody, "a decoded body is 1..kMaxBody bytes");

    // The frame must encode back to bytes that decode to the same frame, with nothing left over.
    const Bytes wire = encode_frame(frame.seq, frame.body);  // 1..kMaxBody: must not throw
    require(wire.size() == frame.body.size() + kFrameOverhead, "encode_frame adds kFrameOverhead bytes");
    require(xor_checksum(wire) == 0, "a whole frame XORs to zero");
    FrameDecoder again;
    int frames = 0;
    for (uint8_t b : wire) {
        auto r = again.push(b);
        require(r != FrameDecoder::Result::Error, "a re-encoded frame decodes without error");
        if (r == FrameDecoder::Result::Frame) {
            ++frames;
            require(again.frame().seq == frame.seq && again.frame().body == frame.body, "round trip keeps the frame");
        }
    }
    require(frames == 1, "a re-encoded frame decodes exactly once");

    // The checks the client makes, against what the answer echoes and against other requests.
    const uint8_t echoed = frame.body[0];
    for (uint8_t command : kCommands) {
        for (std::optional<size_t> body_size : {std::optional<size_t>{}, std::optional<size_t>{frame.body.size()},
                                                std::optional<size_t>{frame.body.size() + 1}}) {
            auto problem = check_reply(frame, frame.seq, command, body_size);
            if (!problem) {
                require(frame.body.size() >= 2 && frame.body[0] == command && frame.body[1] == status::kOk,
                        "check_reply accepts only an OK echo of the command");
                require(!body_size || *body_size == frame.body.size(), "check_reply enforces body_size");
            } else {
                require(!problem->empty(), "a rejection says why");
            }
        }
        require(check_reply(frame, static_cast<uint8_t>(frame.seq + 1), command).has_value(),
                "check_reply rejects another sequence number");
    }
    (void)check_reply(frame, frame.seq, echoed);
    (void)describe_command(echoed);
    if (frame.body.size() >= 2) (void)describe_status(frame.body[1]);

    // The data accessors must stay inside the body whatever it holds.
    const std::string name = sign_on_name(frame);
    require(name.size() + 3 <= frame.body.size() || name.empty(), "sign_on_name stays inside the body");
    const uint8_t single = single_byte_answer(frame);
    require(frame.body.size() >= 3 ? single == frame.body[2] : single == 0, "single_byte_answer is body[2]");
    const auto read = read_data(frame);
    if (frame.body.size() >= 3) {
        require(read.size() == frame.body.size() - 3 && read.data() == frame.body.data() + 2,
                "read_data is the bytes between the statuses");
    } else {
        require(read.empty(), "read_data of a short answer is empty");
    }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    FrameDecoder decoder;
    size_t frames = 0;
    for (size_t i = 0; i < size; ++i) {
        const auto result = decoder.push(data[i]);
        require(decoder.skipped() <= i + 1, "skipped() counts bytes actually pushed");
        require(decoder.frame().body.size() <= kMaxBody && decoder.frame().body.capacity() <= kMaxCapacity,
                "the decoder holds at most one frame");
        switch (result) {
            case FrameDecoder::Result::Frame:
                ++frames;
                check_frame(decoder.frame());
                require(decoder.skipped() == 0, "a frame resets skipped()");
                break;
            case FrameDecoder::Result::Error:
                require(!decoder.problem().empty() && decoder.problem().size() <= kMaxProblem,
                        "an error is said in a few words");
                break;
            case FrameDecoder::Result::NeedMore: break;
        }
    }
    require(frames * (kFrameOverhead + 1) <= size, "every frame used at least 7 input bytes");

    // reset() forgets everything: the same stream decodes the same way again.
    decoder.reset();
    require(decoder.skipped() == 0 && decoder.problem().empty(), "reset() clears the decoder");
    size_t again = 0;
    for (size_t i = 0; i < size; ++i)
        if (decoder.push(data[i]) == FrameDecoder::Result::Frame) ++again;
    require(again == frames, "after reset() the stream yields the same frames");
    return 0;
}
