#include "protocol/klipper_mcu/codec.hpp"

#include <fmt/format.h>
#include <zlib.h>

#include <algorithm>
#include <fstream>
#include <iterator>
#include <nlohmann/json.hpp>

#include "core/crc.hpp"
#include "core/error.hpp"
#include "image/loader.hpp"

namespace mcuflash::protocol::klipper_mcu {

using core::Error;
using core::ErrorKind;

void append_vlq(std::vector<uint8_t>& out, int64_t v) {
    // The leading groups that are needed, as msgproto encodes (a value fits one byte when it is in
    // -32..95: bits 6-5 of the first byte tell the sign).
    if (v >= 0xC000000 || v < -0x4000000) out.push_back(static_cast<uint8_t>(((v >> 28) & 0x7F) | 0x80));
    if (v >= 0x180000 || v < -0x80000) out.push_back(static_cast<uint8_t>(((v >> 21) & 0x7F) | 0x80));
    if (v >= 0x3000 || v < -0x1000) out.push_back(static_cast<uint8_t>(((v >> 14) & 0x7F) | 0x80));
    if (v >= 0x60 || v < -0x20) out.push_back(static_cast<uint8_t>(((v >> 7) & 0x7F) | 0x80));
    out.push_back(static_cast<uint8_t>(v & 0x7F));
}

std::optional<int64_t> read_vlq(std::span<const uint8_t> content, size_t& pos) {
    if (pos >= content.size()) return std::nullopt;
    uint8_t c = content[pos++];
    int64_t v = c & 0x7F;
    if ((c & 0x60) == 0x60) v |= -0x20;
    for (int more = 0; c & 0x80; ++more) {
        if (pos >= content.size() || more == 4) return std::nullopt;
        c = content[pos++];
        v = static_cast<int64_t>(static_cast<uint64_t>(v) << 7) | (c & 0x7F);
    }
    return v;
}

namespace {

uint16_t block_crc(std::span<const uint8_t> bytes) { return core::crc16_mcrf4xx(bytes); }

}  // namespace

std::vector<uint8_t> encode_block(uint8_t sequence, std::span<const uint8_t> content) {
    if (content.size() > kBlockMax - kBlockMin)
        throw Error(ErrorKind::Internal, fmt::format("a Klipper message block holds at most {} bytes of content, not {}",
                                                     kBlockMax - kBlockMin, content.size()));
    std::vector<uint8_t> block;
    block.push_back(static_cast<uint8_t>(content.size() + kBlockMin));
    block.push_back(static_cast<uint8_t>(kDestination | (sequence & kSequenceMask)));
    block.insert(block.end(), content.begin(), content.end());
    const uint16_t crc = block_crc(block);
    block.push_back(static_cast<uint8_t>(crc >> 8));
    block.push_back(static_cast<uint8_t>(crc));
    block.push_back(kSync);
    return block;
}

void BlockReader::feed(std::span<const uint8_t> bytes) { buffer_.insert(buffer_.end(), bytes.begin(), bytes.end()); }

std::optional<Block> BlockReader::next() {
    for (;;) {
        // A stray sync byte between blocks is idle line, not a block.
        while (!buffer_.empty() && buffer_[0] == kSync) buffer_.erase(buffer_.begin());
        if (buffer_.size() < kBlockMin) {
            if (buffer_.empty() || (buffer_[0] >= kBlockMin && buffer_[0] <= kBlockMax)) return std::nullopt;
        } else {
            const size_t length = buffer_[0];
            const bool plausible = length >= kBlockMin && length <= kBlockMax &&
                                   (buffer_[1] & ~kSequenceMask) == kDestination;
            if (plausible && buffer_.size() < length) return std::nullopt;
            if (plausible && buffer_[length - 1] == kSync) {
                const uint16_t crc = block_crc(std::span(buffer_).first(length - kTrailerSize));
                if (buffer_[length - 3] == (crc >> 8) && buffer_[length - 2] == (crc & 0xFF)) {
                    Block block;
                    block.sequence = buffer_[1] & kSequenceMask;
                    block.content.assign(buffer_.begin() + kHeaderSize, buffer_.begin() + static_cast<long>(length - kTrailerSize));
                    buffer_.erase(buffer_.begin(), buffer_.begin() + static_cast<long>(length));
                    return block;
                }
            }
        }
        // Not a block here: drop up to and including the next sync byte, as the firmware does.
        auto sync = std::find(buffer_.begin() + 1, buffer_.end(), kSync);
        const auto dropped = sync == buffer_.end() ? buffer_.end() : sync + 1;
        discarded_ += static_cast<uint64_t>(dropped - buffer_.begin());
        buffer_.erase(buffer_.begin(), dropped);
    }
}

MessageFormat MessageFormat::parse(int32_t id, const std::string& format) {
    MessageFormat out;
    out.id = id;
    size_t start = 0;
    bool first = true;
    while (start <= format.size()) {
        size_t end = format.find(' ', start);
        std::string word = format.substr(start, end == std::string::npos ? std::string::npos : end - start);
        start = end == std::string::npos ? format.size() + 1 : end + 1;
        if (word.empty()) continue;
        if (first) {
            out.name = word;
            first = false;
            continue;
        }
        const size_t equals = word.find('=');
        if (equals == std::string::npos) throw Error(ErrorKind::Protocol, fmt::format("message format '{}': '{}' has no '='", format, word));
        const std::string name = word.substr(0, equals), type = word.substr(equals + 1);
        static const std::map<std::string, ParamType> kTypes{
            {"%u", ParamType::Uint32}, {"%i", ParamType::Int32},   {"%hu", ParamType::Uint16}, {"%hi", ParamType::Int16},
            {"%c", ParamType::Byte},   {"%.*s", ParamType::Buffer}, {"%*s", ParamType::String}};
        auto it = kTypes.find(type);
        if (it == kTypes.end()) throw Error(ErrorKind::Protocol, fmt::format("message format '{}': unknown type '{}'", format, type));
        out.params.emplace_back(name, it->second);
    }
    if (out.name.empty()) throw Error(ErrorKind::Protocol, "an empty message format");
    return out;
}

namespace {

bool is_buffer(ParamType type) { return type == ParamType::Buffer || type == ParamType::String; }

int64_t as_declared(ParamType type, int64_t raw) {
    const auto low32 = static_cast<uint32_t>(raw);
    switch (type) {
        case ParamType::Int32:
        case ParamType::Int16: return static_cast<int32_t>(low32);
        default: return low32;
    }
}

}  // namespace

int64_t Message::number(const std::string& key) const {
    auto it = params.find(key);
    const auto* value = it == params.end() ? nullptr : std::get_if<int64_t>(&it->second);
    if (!value) throw Error(ErrorKind::Protocol, fmt::format("the MCU's {} has no number {}", name, key));
    return *value;
}

const std::vector<uint8_t>& Message::bytes(const std::string& key) const {
    auto it = params.find(key);
    const auto* value = it == params.end() ? nullptr : std::get_if<std::vector<uint8_t>>(&it->second);
    if (!value) throw Error(ErrorKind::Protocol, fmt::format("the MCU's {} has no data {}", name, key));
    return *value;
}

std::vector<uint8_t> encode_message(const MessageFormat& format, const Params& values) {
    std::vector<uint8_t> out;
    append_vlq(out, format.id);
    for (const auto& [name, type] : format.params) {
        auto it = values.find(name);
        if (it == values.end()) throw Error(ErrorKind::Usage, fmt::format("{}: no value for {}", format.name, name));
        if (is_buffer(type)) {
            const auto* bytes = std::get_if<std::vector<uint8_t>>(&it->second);
            if (!bytes || bytes->size() > 255) throw Error(ErrorKind::Usage, fmt::format("{}: {} must be a buffer", format.name, name));
            out.push_back(static_cast<uint8_t>(bytes->size()));
            out.insert(out.end(), bytes->begin(), bytes->end());
        } else {
            const auto* number = std::get_if<int64_t>(&it->second);
            if (!number) throw Error(ErrorKind::Usage, fmt::format("{}: {} must be a number", format.name, name));
            append_vlq(out, *number);
        }
    }
    return out;
}

const MessageFormat& identify_format() {
    static const MessageFormat format = MessageFormat::parse(kIdentifyId, "identify offset=%u count=%c");
    return format;
}

const MessageFormat& identify_response_format() {
    static const MessageFormat format = MessageFormat::parse(kIdentifyResponseId, "identify_response offset=%u data=%.*s");
    return format;
}

std::vector<Message> decode_messages(std::span<const uint8_t> content, const Dictionary* dictionary) {
    std::vector<Message> out;
    size_t pos = 0;
    while (pos < content.size()) {
        const size_t start = pos;
        auto id = read_vlq(content, pos);
        const MessageFormat* format = nullptr;
        if (id && dictionary) {
            auto it = dictionary->messages.find(static_cast<int32_t>(*id));
            if (it != dictionary->messages.end()) format = &it->second;
        } else if (id && *id == kIdentifyId) {
            format = &identify_format();
        } else if (id && *id == kIdentifyResponseId) {
            format = &identify_response_format();
        }
        Message message;
        message.id = static_cast<int32_t>(id.value_or(-1));
        if (!format) {
            message.name = "#unknown";
            message.params["raw"] = std::vector<uint8_t>(content.begin() + static_cast<long>(start), content.end());
            out.push_back(std::move(message));
            return out;
        }
        message.name = format->name;
        for (const auto& [name, type] : format->params) {
            if (is_buffer(type)) {
                if (pos >= content.size() || pos + 1 + content[pos] > content.size())
                    throw Error(ErrorKind::Protocol, fmt::format("{}: {} runs past the end of the block", format->name, name));
                const size_t length = content[pos];
                message.params[name] = std::vector<uint8_t>(content.begin() + static_cast<long>(pos + 1),
                                                            content.begin() + static_cast<long>(pos + 1 + length));
                pos += 1 + length;
            } else {
                auto value = read_vlq(content, pos);
                if (!value) throw Error(ErrorKind::Protocol, fmt::format("{}: {} runs past the end of the block", format->name, name));
                message.params[name] = as_declared(type, *value);
            }
        }
        out.push_back(std::move(message));
    }
    return out;
}

std::string describe_message(const Message& message) {
    std::string text = message.name;
    for (const auto& [key, value] : message.params) {
        if (const auto* number = std::get_if<int64_t>(&value)) text += fmt::format(" {}={}", key, *number);
        else text += fmt::format(" {}=({} bytes)", key, std::get<std::vector<uint8_t>>(value).size());
    }
    return text;
}

std::string inflate(std::span<const uint8_t> compressed) {
    z_stream stream{};
    if (inflateInit(&stream) != Z_OK) throw Error(ErrorKind::Internal, "zlib: inflateInit failed");
    stream.next_in = const_cast<Bytef*>(compressed.data());
    stream.avail_in = static_cast<uInt>(compressed.size());
    std::string out;
    int result = Z_OK;
    constexpr size_t kLimit = 4 << 20;  // a data dictionary is tens of KiB
    while (result == Z_OK && out.size() < kLimit) {
        char chunk[16384];
        stream.next_out = reinterpret_cast<Bytef*>(chunk);
        stream.avail_out = sizeof chunk;
        result = ::inflate(&stream, Z_NO_FLUSH);
        out.append(chunk, sizeof chunk - stream.avail_out);
        if (result == Z_BUF_ERROR && stream.avail_in == 0) break;
    }
    inflateEnd(&stream);
    if (result != Z_STREAM_END)
        throw Error(ErrorKind::Protocol, fmt::format("the identify data is not a complete zlib stream ({})",
                                                     result == Z_OK || result == Z_BUF_ERROR ? "it ends early" : "corrupt"));
    return out;
}

std::vector<uint8_t> deflate(std::string_view text) {
    uLongf length = compressBound(static_cast<uLong>(text.size()));
    std::vector<uint8_t> out(length);
    if (compress2(out.data(), &length, reinterpret_cast<const Bytef*>(text.data()), static_cast<uLong>(text.size()), 9) != Z_OK)
        throw Error(ErrorKind::Internal, "zlib: compress failed");
    out.resize(length);
    return out;
}

Dictionary Dictionary::parse(const std::string& text) {
    nlohmann::json json;
    try {
        json = nlohmann::json::parse(text);
    } catch (const nlohmann::json::exception& e) {
        throw Error(ErrorKind::Protocol, fmt::format("the data dictionary is not JSON: {}", e.what()));
    }
    if (!json.is_object() || !json.contains("commands") || !json.contains("responses") || !json["commands"].is_object() ||
        !json["responses"].is_object())
        throw Error(ErrorKind::Protocol, "the data dictionary has no commands and responses: not Klipper firmware");
    Dictionary d;
    auto text_of = [&](const char* key) { return json.contains(key) && json[key].is_string() ? json[key].get<std::string>() : ""; };
    d.app = text_of("app");
    d.version = text_of("version");
    d.build_versions = text_of("build_versions");
    if (json.contains("config") && json["config"].is_object())
        for (const auto& [key, value] : json["config"].items())
            d.config[key] = value.is_string() ? value.get<std::string>() : value.dump();
    auto add = [&](const nlohmann::json& table, size_t& count) {
        for (const auto& [format, id] : table.items()) {
            if (!id.is_number_integer()) throw Error(ErrorKind::Protocol, fmt::format("data dictionary: '{}' has no numeric id", format));
            auto message = MessageFormat::parse(id.get<int32_t>(), format);
            d.messages[message.id] = std::move(message);
            ++count;
        }
    };
    add(json["commands"], d.command_count);
    add(json["responses"], d.response_count);
    return d;
}

const MessageFormat* Dictionary::find(const std::string& name) const {
    for (const auto& [id, format] : messages)
        if (format.name == name) return &format;
    return nullptr;
}

std::string Dictionary::mcu() const {
    auto it = config.find("MCU");
    return it == config.end() ? "" : it->second;
}

namespace {

// Inflates the zlib stream at the start of `bytes`: its text and how many bytes it took; nullopt
// unless it is a whole stream whose text starts with '{' (a dictionary). The first 64 bytes of text
// are looked at before the rest is inflated: most candidates in an image fail there, cheaply.
std::optional<std::pair<std::string, size_t>> inflate_json_at(std::span<const uint8_t> bytes) {
    z_stream stream{};
    if (inflateInit(&stream) != Z_OK) return std::nullopt;
    stream.next_in = const_cast<Bytef*>(bytes.data());
    stream.avail_in = static_cast<uInt>(bytes.size());
    std::string out;
    int result = Z_OK;
    size_t chunk = 64;
    while (result == Z_OK && out.size() < (4u << 20)) {
        const size_t before = out.size();
        out.resize(before + chunk);
        stream.next_out = reinterpret_cast<Bytef*>(out.data() + before);
        stream.avail_out = static_cast<uInt>(chunk);
        result = ::inflate(&stream, Z_NO_FLUSH);
        out.resize(before + chunk - stream.avail_out);
        if (out.empty() ? result != Z_OK : out[0] != '{') break;
        chunk = 16384;
    }
    const size_t consumed = stream.total_in;
    inflateEnd(&stream);
    if (result != Z_STREAM_END || out.empty() || out[0] != '{') return std::nullopt;
    return std::make_pair(std::move(out), consumed);
}

}  // namespace

std::optional<std::vector<uint8_t>> find_dictionary_in_image(std::span<const uint8_t> image) {
    for (size_t at = 0; at + 2 < image.size(); ++at) {
        // A zlib header: CM 8 (deflate) in the low nibble, and the two bytes a multiple of 31.
        if ((image[at] & 0x0F) != 8 || (image[at] >> 4) > 7 || ((image[at] << 8) | image[at + 1]) % 31 != 0) continue;
        auto found = inflate_json_at(image.subspan(at));
        if (!found || found->first.find("\"commands\"") == std::string::npos) continue;
        try {
            Dictionary::parse(found->first);
        } catch (const Error&) {
            continue;
        }
        return std::vector<uint8_t>(image.begin() + static_cast<long>(at),
                                    image.begin() + static_cast<long>(at + found->second));
    }
    return std::nullopt;
}

std::vector<uint8_t> identify_data_from_file(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    if (!in) throw Error(ErrorKind::BadInput, fmt::format("cannot open {}", path));
    std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    if (!text.empty() && text[0] == '{') {
        Dictionary::parse(text);  // a klipper.dict: refuse anything else early
        return deflate(text);
    }
    const image::Image firmware = image::load_file(path);
    if (auto found = find_dictionary_in_image(firmware.flatten(firmware.lowest(), firmware.end()))) return *found;
    throw Error(ErrorKind::BadInput, fmt::format("{} is neither a klipper.dict nor a Klipper image (no data dictionary in it)", path));
}

}  // namespace mcuflash::protocol::klipper_mcu
