// libFuzzer entry point for Katapult frames (protocol/katapult/codec.hpp): the input is a byte stream
// as it arrives from the device, fed to FrameReader in pieces whose sizes come from the input; every
// frame found is decoded as each answer the client expects.
// Findings: a sanitizer report, any exception, or a frame that does not encode back to the same bytes,
// a CONNECT answer that breaks its layout.
#include <cstdint>
#include <span>

#include "fuzz_check.hpp"
#include "protocol/katapult/codec.hpp"

using namespace mcuflash::protocol::katapult;
using mcuflash::fuzz::require;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    if (size == 0) return 0;
    const size_t piece = size_t(data[0] % 13) + 1;
    const std::span<const uint8_t> input(data + 1, size - 1);
    FrameReader reader;
    size_t frames = 0, framed_bytes = 0;
    for (size_t at = 0; at < input.size(); at += piece) {
        reader.feed(input.subspan(at, std::min(piece, input.size() - at)));
        while (auto frame = reader.next()) {
            ++frames;
            require(frame->payload.size() % 4 == 0, "payloads are whole words");
            const Bytes again = encode(*frame);
            framed_bytes += again.size();
            FrameReader check;
            check.feed(again);
            auto same = check.next();
            require(same && same->command == frame->command && same->payload == frame->payload,
                    "a frame found encodes back to itself");
            for (uint8_t command : {cmd::kConnect, cmd::kSendBlock, cmd::kSendEof, cmd::kRequestBlock,
                                    cmd::kComplete, cmd::kGetCanbusId})
                if (auto body = ack_body(*frame, command)) {
                    require(body->size() + 4 == frame->payload.size(), "ACK body follows the command word");
                    if (auto info = parse_connect(*body)) {
                        require(info->mcu.find('\0') == std::string::npos, "the MCU string holds no NUL");
                        (void)valid_block_size(info->block_size);
                        (void)info->protocol_text();
                    }
                    if (auto block = parse_block_answer(*body)) require(block->data.size() + 4 == body->size(), "block");
                    (void)parse_canbus_id(*body);
                }
            (void)command_name(frame->command);
        }
    }
    require(framed_bytes + reader.skipped() + reader.buffered() == input.size(), "every byte is framed, skipped or kept");
    (void)frames;
    return 0;
}
