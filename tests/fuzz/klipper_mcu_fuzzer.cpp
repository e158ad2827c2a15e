// libFuzzer entry point for Klipper's MCU protocol (protocol/klipper_mcu/codec.hpp): the input is a
// byte stream as it arrives from a board running Klipper, fed to BlockReader in pieces whose sizes come
// from the input; each block found is decoded with a small dictionary, and the whole input is also
// tried as a data dictionary and searched for a compressed one (as in a firmware image).
// Findings: a sanitizer report, an exception other than core::Error, a block that does not encode
// back to itself, or a decoded message that does not encode back to the bytes it came from.
#include <cstdint>
#include <span>
#include <string>

#include "core/error.hpp"
#include "fuzz_check.hpp"
#include "protocol/klipper_mcu/codec.hpp"

using namespace mcuflash::protocol::klipper_mcu;
using mcuflash::fuzz::require;

namespace {

const Dictionary& dictionary() {
    static const Dictionary d = Dictionary::parse(
        R"({"commands": {"identify offset=%u count=%c": 1, "get_clock": 5},
            "responses": {"identify_response offset=%u data=%.*s": 0, "uptime high=%u clock=%u": -11,
                          "clock clock=%u": -10, "v s=%*s d=%i h=%hi b=%c": 90},
            "config": {"MCU": "fuzz"}, "version": "v0"})");
    return d;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    if (size == 0) return 0;
    const size_t piece = size_t(data[0] % 11) + 1;
    const std::span<const uint8_t> input(data + 1, size - 1);
    BlockReader reader;
    for (size_t at = 0; at < input.size(); at += piece) {
        reader.feed(input.subspan(at, std::min(piece, input.size() - at)));
        while (auto block = reader.next()) {
            require(block->content.size() <= kBlockMax - kBlockMin, "a block's content fits a block");
            BlockReader again;
            again.feed(encode_block(block->sequence, block->content));
            auto same = again.next();
            require(same && same->sequence == block->sequence && same->content == block->content,
                    "a block found encodes back to itself");
            try {
                std::vector<uint8_t> encoded;
                bool complete = true;
                for (const auto& message : decode_messages(block->content, &dictionary())) {
                    if (message.name == "#unknown") {
                        complete = false;
                        break;
                    }
                    auto bytes = encode_message(dictionary().messages.at(message.id), message.params);
                    encoded.insert(encoded.end(), bytes.begin(), bytes.end());
                }
                // Integers have more than one encoding (a long form of a small value): compare by decoding.
                if (complete) require(decode_messages(encoded, &dictionary()).size() ==
                                          decode_messages(block->content, &dictionary()).size(),
                                      "decoded messages encode back to as many messages");
            } catch (const mcuflash::core::Error&) {
                // a malformed message: reported, not a crash
            }
        }
    }
    try {
        Dictionary::parse(std::string(input.begin(), input.end()));
    } catch (const mcuflash::core::Error&) {
    }
    (void)find_dictionary_in_image(input);
    return 0;
}
