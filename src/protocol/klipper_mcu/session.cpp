#include "protocol/klipper_mcu/session.hpp"

#include <fmt/format.h>

#include "core/deadline.hpp"
#include "core/error.hpp"

namespace mcuflash::protocol::klipper_mcu {

using core::Error;
using core::ErrorKind;

namespace {
// How long one block waits for its answer before it goes again: at 250000 baud a block and its
// answer take under 5 ms; a USB CDC port answers faster still.
constexpr std::chrono::milliseconds kRetransmitAfter{200};
}  // namespace

Message Session::exchange(const MessageFormat& command, const Params& params, const std::string& response,
                          std::chrono::milliseconds timeout) {
    const auto content = encode_message(command, params);
    const core::Deadline overall(timeout);
    bool answered_at_all = false;
    for (int attempt = 0;; ++attempt) {
        if (attempt > 0) ++retransmissions_;
        link_.write(encode_block(sequence_, content));
        const core::Deadline this_try(std::min<core::Clock::duration>(kRetransmitAfter, overall.remaining()));
        std::optional<uint8_t> expected;  // the sequence the MCU says it expects, from its last block
        while (!this_try.expired()) {
            uint8_t buffer[256];
            const size_t n = link_.read_some(buffer, this_try);
            if (n == 0) break;
            reader_.feed(std::span(buffer, n));
            while (auto block = reader_.next()) {
                answered_at_all = true;
                expected = block->sequence;
                if (block->content.empty()) continue;  // an ACK or NAK
                for (auto& message : decode_messages(block->content, dictionary())) {
                    if (message.name != response) continue;
                    sequence_ = static_cast<uint8_t>((sequence_ + 1) & kSequenceMask);
                    return message;
                }
            }
            // Acknowledged (it expects the next one) but the response has not come yet: keep waiting.
        }
        if (overall.expired()) {
            if (!answered_at_all)
                throw Error(ErrorKind::Timeout,
                            fmt::format("nothing answered like Klipper firmware within {} ms (sent {})",
                                        timeout.count(), command.name),
                            "is Klipper running on this board, at this baud rate (--baud; printer.cfg's baud: "
                            "250000 unless set)? Stop the klipper service first: it holds the port");
            throw Error(ErrorKind::Timeout, fmt::format("the MCU acknowledged {} but sent no {} within {} ms",
                                                        command.name, response, timeout.count()));
        }
        // No response: send again with the sequence the MCU expects now. When it got the block and its
        // answer was lost, that is the next one (the same block again would only be NAKed); after a
        // NAK, the one it names.
        if (expected) sequence_ = *expected;
    }
}

const Identified& Session::identify(std::chrono::milliseconds timeout) {
    // A sync byte first: whatever half block a previous host left in the MCU's buffer ends here.
    const uint8_t sync = kSync;
    link_.write(std::span(&sync, 1));
    std::vector<uint8_t> data;
    for (;;) {
        const Params params{{"offset", static_cast<int64_t>(data.size())}, {"count", int64_t{kIdentifyChunk}}};
        Message piece;
        try {
            piece = exchange(identify_format(), params, identify_response_format().name, timeout);
        } catch (const Error& e) {
            if (data.empty() || e.kind() != ErrorKind::Timeout) throw;
            throw Error(ErrorKind::Timeout, fmt::format("the MCU stopped answering after {} bytes of its identify data: {}",
                                                        data.size(), e.what()),
                        "a board that resets while it is asked (a loose cable, a brown-out) does this: try again");
        }
        if (piece.number("offset") != static_cast<int64_t>(data.size())) continue;  // a late answer to a resend
        const auto& bytes = piece.bytes("data");
        if (bytes.empty()) break;
        data.insert(data.end(), bytes.begin(), bytes.end());
        if (data.size() > (1u << 20)) throw Error(ErrorKind::Protocol, "the MCU's identify data never ends (over 1 MiB)");
    }
    Identified identified;
    identified.dictionary = Dictionary::parse(inflate(data));
    identified.identify_data = std::move(data);
    identified_ = std::move(identified);
    return *identified_;
}

Message Session::query(const std::string& command, const Params& params, const std::string& response,
                       std::chrono::milliseconds timeout) {
    if (!identified_) identify();
    const MessageFormat* format = identified_->dictionary.find(command);
    if (!format) throw Error(ErrorKind::Unsupported, fmt::format("this firmware has no command {}", command));
    return exchange(*format, params, response, timeout);
}

}  // namespace mcuflash::protocol::klipper_mcu
