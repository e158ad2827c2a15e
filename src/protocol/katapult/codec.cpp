#include "protocol/katapult/codec.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <stdexcept>

#include "core/crc.hpp"

namespace mcuflash::protocol::katapult {

bool valid_block_size(uint32_t size) {
    return std::find(std::begin(kBlockSizes), std::end(kBlockSizes), size) != std::end(kBlockSizes);
}

std::string command_name(uint8_t code) {
    const char* name = nullptr;
    switch (code) {
        case cmd::kConnect: name = "CONNECT"; break;
        case cmd::kSendBlock: name = "SEND_BLOCK"; break;
        case cmd::kSendEof: name = "SEND_EOF"; break;
        case cmd::kRequestBlock: name = "REQUEST_BLOCK"; break;
        case cmd::kComplete: name = "COMPLETE"; break;
        case cmd::kGetCanbusId: name = "GET_CANBUS_ID"; break;
        case answer::kAck: name = "ACK"; break;
        case answer::kNack: name = "NACK"; break;
        case answer::kError: name = "command error"; break;
        case answer::kBusy: name = "busy"; break;
        default: break;
    }
    return name ? fmt::format("{} (0x{:02X})", name, code) : fmt::format("0x{:02X}", code);
}

Bytes encode(uint8_t command, std::span<const uint8_t> payload) {
    if (payload.size() % 4 != 0 || payload.size() / 4 > kMaxPayloadWords)
        throw std::invalid_argument(fmt::format("Katapult payload of {} bytes: not whole words or too long", payload.size()));
    Bytes out{kHeader0, kHeader1, command, static_cast<uint8_t>(payload.size() / 4)};
    out.insert(out.end(), payload.begin(), payload.end());
    const uint16_t crc = core::crc16_mcrf4xx(std::span<const uint8_t>(out).subspan(2));
    out.push_back(static_cast<uint8_t>(crc));
    out.push_back(static_cast<uint8_t>(crc >> 8));
    out.push_back(kTrailer0);
    out.push_back(kTrailer1);
    return out;
}

Bytes encode(const Frame& frame) { return encode(frame.command, frame.payload); }

void FrameReader::feed(std::span<const uint8_t> bytes) { buffer_.insert(buffer_.end(), bytes.begin(), bytes.end()); }

std::optional<Frame> FrameReader::next() {
    size_t start = 0;
    auto drop = [&](size_t count) {
        skipped_ += count;
        start += count;
    };
    std::optional<Frame> found;
    while (buffer_.size() - start >= 2) {
        if (buffer_[start] != kHeader0 || buffer_[start + 1] != kHeader1) {
            drop(1);
            continue;
        }
        if (buffer_.size() - start < 4) break;
        const size_t length = size_t(buffer_[start + 3]) * 4 + kFrameOverhead;
        if (buffer_.size() - start < length) break;  // wait for the rest
        const uint8_t* f = buffer_.data() + start;
        const uint16_t crc = core::crc16_mcrf4xx(std::span<const uint8_t>(f + 2, length - 6));
        const bool good = f[length - 2] == kTrailer0 && f[length - 1] == kTrailer1 &&
                          f[length - 4] == static_cast<uint8_t>(crc) && f[length - 3] == static_cast<uint8_t>(crc >> 8);
        if (!good) {
            drop(1);  // look for the next header inside it
            continue;
        }
        found = Frame{f[2], Bytes(f + 4, f + length - 4)};
        start += length;
        break;
    }
    // A lone first header byte at the end may still start a frame.
    if (!found && buffer_.size() - start == 1 && buffer_[start] != kHeader0) drop(1);
    buffer_.erase(buffer_.begin(), buffer_.begin() + static_cast<long>(start));
    return found;
}

Bytes le32(uint32_t value) {
    return {static_cast<uint8_t>(value), static_cast<uint8_t>(value >> 8), static_cast<uint8_t>(value >> 16),
            static_cast<uint8_t>(value >> 24)};
}

uint32_t read_le32(std::span<const uint8_t> b) {
    return uint32_t{b[0]} | uint32_t{b[1]} << 8 | uint32_t{b[2]} << 16 | uint32_t{b[3]} << 24;
}

Bytes send_block_payload(uint32_t address, std::span<const uint8_t> block) {
    Bytes out = le32(address);
    out.insert(out.end(), block.begin(), block.end());
    return out;
}

Bytes request_block_payload(uint32_t address) { return le32(address); }

std::optional<Bytes> ack_body(const Frame& frame, uint8_t command) {
    if (frame.command != answer::kAck || frame.payload.size() < 4) return std::nullopt;
    if (read_le32(frame.payload) != command) return std::nullopt;
    return Bytes(frame.payload.begin() + 4, frame.payload.end());
}

std::string ConnectInfo::protocol_text() const {
    return fmt::format("{}.{}.{}", (protocol_version >> 16) & 0xFF, (protocol_version >> 8) & 0xFF,
                       protocol_version & 0xFF);
}

namespace {

bool printable(const std::string& text) {
    return std::all_of(text.begin(), text.end(), [](char c) { return c >= 0x20 && c < 0x7F; });
}

}  // namespace

std::optional<ConnectInfo> parse_connect(std::span<const uint8_t> body) {
    if (body.size() < 12) return std::nullopt;
    ConnectInfo info;
    info.protocol_version = read_le32(body);
    info.app_start = read_le32(body.subspan(4));
    info.block_size = read_le32(body.subspan(8));
    std::string rest(body.begin() + 12, body.end());
    while (!rest.empty() && rest.back() == '\0') rest.pop_back();
    if (info.protocol_version >= 0x00010100) {
        const size_t nul = rest.find('\0');
        info.mcu = rest.substr(0, nul);
        if (nul != std::string::npos) {
            info.software_version = rest.substr(nul);
            info.software_version.erase(0, info.software_version.find_first_not_of('\0'));
        }
    } else {
        info.mcu = rest;
    }
    if (!printable(info.mcu) || !printable(info.software_version)) return std::nullopt;
    return info;
}

Bytes connect_body(const ConnectInfo& info) {
    Bytes out = le32(info.protocol_version);
    for (uint32_t v : {info.app_start, info.block_size}) {
        auto w = le32(v);
        out.insert(out.end(), w.begin(), w.end());
    }
    auto words = [](size_t n) { return (n + 3) / 4 * 4; };
    Bytes mcu(words(info.mcu.size()), 0);
    std::copy(info.mcu.begin(), info.mcu.end(), mcu.begin());
    out.insert(out.end(), mcu.begin(), mcu.end());
    out.insert(out.end(), 4, 0);  // the word that ends the MCU string
    Bytes version(words(info.software_version.size()), 0);
    std::copy(info.software_version.begin(), info.software_version.end(), version.begin());
    out.insert(out.end(), version.begin(), version.end());
    return out;
}

std::optional<BlockAnswer> parse_block_answer(std::span<const uint8_t> body) {
    if (body.size() < 4) return std::nullopt;
    return BlockAnswer{read_le32(body), Bytes(body.begin() + 4, body.end())};
}

std::optional<uint64_t> parse_canbus_id(std::span<const uint8_t> body) {
    if (body.size() < 6) return std::nullopt;
    uint64_t uuid = 0;
    for (size_t i = 0; i < 6; ++i) uuid = uuid << 8 | body[i];
    return uuid;
}

}  // namespace mcuflash::protocol::katapult
