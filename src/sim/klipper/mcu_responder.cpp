#include "sim/klipper/mcu_responder.hpp"

#include <fmt/format.h>

#include "core/error.hpp"

namespace mcuflash::sim::klipper {

namespace km = protocol::klipper_mcu;
using core::Error;
using core::ErrorKind;

McuResponder::McuResponder(std::vector<uint8_t> identify_data, std::function<void(const std::string&)> log)
    : identify_data_(std::move(identify_data)),
      dictionary_(km::Dictionary::parse(km::inflate(identify_data_))),
      log_(std::move(log)) {
    auto it = dictionary_.config.find("CLOCK_FREQ");
    clock_frequency_ = it == dictionary_.config.end() ? 0 : std::stod(it->second);
    if (clock_frequency_ <= 0) clock_frequency_ = 1e6;
}

uint64_t McuResponder::clock_at(core::Clock::time_point now) const {
    const double seconds = std::chrono::duration<double>(now - started_).count();
    return static_cast<uint64_t>(seconds * clock_frequency_);
}

std::vector<uint8_t> McuResponder::receive(std::span<const uint8_t> bytes, core::Clock::time_point now) {
    std::vector<uint8_t> out;
    reader_.feed(bytes);
    while (auto block = reader_.next()) {
        if (block->sequence != expected_sequence_) {
            // Out of sequence: NAK with the one expected (an empty block carrying it), ignore the rest.
            auto nak = km::encode_block(expected_sequence_, {});
            out.insert(out.end(), nak.begin(), nak.end());
            continue;
        }
        expected_sequence_ = static_cast<uint8_t>((expected_sequence_ + 1) & km::kSequenceMask);
        std::vector<uint8_t> content;
        for (const auto& message : km::decode_messages(block->content, &dictionary_)) answer(message, now, content);
        if (!content.empty()) {
            auto response = km::encode_block(expected_sequence_, content);
            out.insert(out.end(), response.begin(), response.end());
        }
        auto ack = km::encode_block(expected_sequence_, {});
        out.insert(out.end(), ack.begin(), ack.end());
    }
    return out;
}

void McuResponder::answer(const km::Message& message, core::Clock::time_point now, std::vector<uint8_t>& content) {
    auto respond = [&](const std::string& name, const km::Params& params) {
        const km::MessageFormat* format = dictionary_.find(name);
        if (!format) return;
        auto encoded = km::encode_message(*format, params);
        content.insert(content.end(), encoded.begin(), encoded.end());
    };
    if (message.name == "identify") {
        const auto offset = static_cast<size_t>(message.number("offset"));
        const auto count = static_cast<size_t>(message.number("count"));
        const size_t from = std::min(offset, identify_data_.size());
        const size_t to = std::min(from + count, identify_data_.size());
        respond("identify_response", {{"offset", static_cast<int64_t>(offset)},
                                      {"data", std::vector<uint8_t>(identify_data_.begin() + static_cast<long>(from),
                                                                    identify_data_.begin() + static_cast<long>(to))}});
    } else if (message.name == "get_uptime") {
        const uint64_t clock = clock_at(now);
        respond("uptime", {{"high", static_cast<int64_t>(clock >> 32)}, {"clock", static_cast<int64_t>(clock & 0xFFFFFFFF)}});
    } else if (message.name == "get_clock") {
        respond("clock", {{"clock", static_cast<int64_t>(clock_at(now) & 0xFFFFFFFF)}});
    } else if (message.name == "get_canbus_id" && canbus_uuid_) {
        std::vector<uint8_t> uuid;
        for (int shift = 40; shift >= 0; shift -= 8) uuid.push_back(static_cast<uint8_t>(*canbus_uuid_ >> shift));
        respond("canbus_id", {{"canbus_uuid", uuid}, {"canbus_nodeid", int64_t{canbus_node_id_}}});
    } else if (message.name == "get_config") {
        respond("config", {{"is_config", 0}, {"crc", 0}, {"is_shutdown", 0}, {"move_count", 0}});
    } else if (log_) {
        log_(fmt::format("not simulated, ignored: {}", km::describe_message(message)));
    }
}

}  // namespace mcuflash::sim::klipper
