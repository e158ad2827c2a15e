#pragma once
// Klipper's MCU protocol, as the host speaks it to running Klipper (or Kalico) firmware: only what
// telling which firmware runs needs (identify, uptime, clock). Facts: Klipper's docs/Protocol.md and
// klippy/msgproto.py; the peer that checks us is klippy/console.py.
//
// A message block: [length][sequence][content...][crc16 high][crc16 low][0x7E]. The length counts the
// whole block (5..64 bytes); the sequence byte is 0x10 | (seq & 0x0F); the CRC (CRC-16/MCRF4XX, as
// msgproto's crc16_ccitt computes it) covers length, sequence and content, and goes high byte first.
// A block with no content is an ACK (or, with an unexpected sequence, a NAK). Content is a run of
// messages: a message id, then its parameters, every integer as a variable-length quantity (7 bits
// a byte, most significant first, bit 7 = more follows; the first byte's bits 6-5 both set = negative)
// and every buffer (%*s, %.*s) as one length byte and the bytes.
//
// Which id is which message, and its parameters, come from the firmware's data dictionary (a
// zlib-compressed JSON the MCU sends in pieces through identify_response); only "identify" (1) and
// "identify_response" (0) have fixed ids.
#include <cstdint>
#include <map>
#include <optional>
#include <span>
#include <string>
#include <variant>
#include <vector>

namespace mcuflash::protocol::klipper_mcu {

constexpr size_t kBlockMin = 5, kBlockMax = 64;
constexpr size_t kHeaderSize = 2, kTrailerSize = 3;
constexpr uint8_t kSync = 0x7E, kDestination = 0x10, kSequenceMask = 0x0F;
constexpr int32_t kIdentifyId = 1, kIdentifyResponseId = 0;
constexpr uint8_t kIdentifyChunk = 40;  // bytes asked for per identify, as klippy asks

// Variable-length quantities (msgproto's PT_uint32 encode/parse).
void append_vlq(std::vector<uint8_t>& out, int64_t value);
// Reads one at `pos` (advanced); nullopt when the content ends inside it.
std::optional<int64_t> read_vlq(std::span<const uint8_t> content, size_t& pos);

// A whole block around `content` (at most kBlockMax - 5 bytes) with sequence number `sequence`.
std::vector<uint8_t> encode_block(uint8_t sequence, std::span<const uint8_t> content);

struct Block {
    uint8_t sequence = 0;  // the low four bits
    std::vector<uint8_t> content;
};

// Finds blocks in a byte stream as Klipper does: bytes that do not start a valid block are dropped up
// to the next sync byte (counted in discarded()).
class BlockReader {
public:
    void feed(std::span<const uint8_t> bytes);
    std::optional<Block> next();
    uint64_t discarded() const { return discarded_; }

private:
    std::vector<uint8_t> buffer_;
    uint64_t discarded_ = 0;
};

// One parameter's type in a message format ("%u" ...), and a decoded value.
enum class ParamType { Uint32, Int32, Uint16, Int16, Byte, Buffer, String };
using ParamValue = std::variant<int64_t, std::vector<uint8_t>>;

struct MessageFormat {
    int32_t id = 0;
    std::string name;  // "identify_response"
    std::vector<std::pair<std::string, ParamType>> params;

    // "identify_response offset=%u data=%.*s"; throws core::Error(Protocol) on an unknown %-type.
    static MessageFormat parse(int32_t id, const std::string& format);
};

using Params = std::map<std::string, ParamValue>;

struct Message {
    std::string name;  // "#unknown" for an id the dictionary does not have
    int32_t id = 0;
    Params params;
    // The integer / buffer parameter `key`; throws core::Error(Protocol) when it is not there.
    int64_t number(const std::string& key) const;
    const std::vector<uint8_t>& bytes(const std::string& key) const;
};

// Encodes `format` with `values` (integers for integer params, bytes for buffers); throws
// core::Error(Usage) when one is missing or of the wrong kind.
std::vector<uint8_t> encode_message(const MessageFormat& format, const Params& values);

// The data dictionary: the messages both ways, the firmware's version and build constants.
struct Dictionary {
    std::string app;             // "Klipper" (or "Kalico"; older builds leave it out: "")
    std::string version;         // "v0.12.0-123-gabcdef"
    std::string build_versions;  // "gcc: ... binutils: ..."
    std::map<std::string, std::string> config;  // MCU, CLOCK_FREQ, ... as text
    std::map<int32_t, MessageFormat> messages;   // commands and responses by id
    size_t command_count = 0, response_count = 0;

    // The JSON text; throws core::Error(Protocol) when it is not a data dictionary.
    static Dictionary parse(const std::string& json);
    const MessageFormat* find(const std::string& name) const;
    // "MCU" of config, "" when absent.
    std::string mcu() const;
};

// Inflates zlib data (what identify returns); throws core::Error(Protocol) when it is not zlib.
std::string inflate(std::span<const uint8_t> compressed);
std::vector<uint8_t> deflate(std::string_view text);

// Decodes the messages of one block's content with `dictionary` (nullptr: only the fixed
// identify/identify_response are known). An unknown id ends the decoding (the rest cannot be split
// without its format) with a message named "#unknown" holding the rest as "raw".
std::vector<Message> decode_messages(std::span<const uint8_t> content, const Dictionary* dictionary);

// The identify messages, whose formats are fixed before any dictionary is known.
const MessageFormat& identify_format();
const MessageFormat& identify_response_format();

// Klipper firmware carries its compressed data dictionary in flash (the identify data): the first
// zlib stream in `image` that inflates to a data dictionary, or nullopt.
std::optional<std::vector<uint8_t>> find_dictionary_in_image(std::span<const uint8_t> image);

// The identify data of a firmware file: a klipper.dict (JSON, compressed here) or a Klipper image
// (.bin, .elf, .hex, .uf2: the compressed dictionary found in it). Throws core::Error(BadInput)
// otherwise.
std::vector<uint8_t> identify_data_from_file(const std::string& path);

// Text of a message for logs: "uptime high=0 clock=1234".
std::string describe_message(const Message& message);

}  // namespace mcuflash::protocol::klipper_mcu
