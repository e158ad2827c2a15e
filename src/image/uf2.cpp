// UF2 (Microsoft's USB Flashing Format, github.com/microsoft/uf2 README): 512-byte blocks, each
// carrying up to 476 bytes for one target address.
#include <fmt/format.h>

#include <array>
#include <ostream>

#include "image/block_list.hpp"
#include "image/byte_order.hpp"
#include "image/handlers.hpp"
#include "image/parse_error.hpp"

namespace mcuflash::image {

namespace {

constexpr size_t kBlockSize = 512;
constexpr size_t kMaxPayload = 476;
constexpr size_t kPayloadOffset = 32;

constexpr uint32_t kMagicStart0 = 0x0A324655;  // "UF2\n"
constexpr uint32_t kMagicStart1 = 0x9E5D5157;
constexpr uint32_t kMagicEnd = 0x0AB16F30;

constexpr uint32_t kFlagNotMainFlash = 0x00000001;
constexpr uint32_t kFlagFileContainer = 0x00001000;
constexpr uint32_t kFlagFamilyIdPresent = 0x00002000;

// Field offsets within a block; all fields are 32-bit little endian.
enum : size_t {
    kMagicStart0At = 0,
    kMagicStart1At = 4,
    kFlagsAt = 8,
    kTargetAddressAt = 12,
    kPayloadSizeAt = 16,
    kBlockNumberAt = 20,
    kBlockCountAt = 24,
    kFamilyIdAt = 28,
    kMagicEndAt = 508,
};

uint32_t field(std::span<const uint8_t> block, size_t at) {
    return static_cast<uint32_t>(read_little_endian(block.subspan(at, 4)));
}

// Block numbers run 0..numBlocks-1 in each file; UF2 files may be concatenated, so a complete
// run may be followed by another one starting at 0.
class BlockSequence {
public:
    // Returns the problem with this block's numbering, if any.
    std::optional<std::string> accept(uint32_t number, uint32_t count) {
        if (count == 0) return "the block count is 0";
        if (number >= count) return fmt::format("block number {} is not below the block count {}", number, count);
        if (next_ == count_) {  // between files: a new run must start
            if (number != 0) return fmt::format("block number {}, expected 0", number);
            count_ = count;
            next_ = 0;
        } else if (count != count_) {
            return fmt::format("the block count changes from {} to {}", count_, count);
        } else if (number != next_) {
            return fmt::format("block number {}, expected {}", number, next_);
        }
        ++next_;
        return std::nullopt;
    }
    bool complete() const { return next_ == count_; }
    uint32_t seen() const { return next_; }
    uint32_t count() const { return count_; }

private:
    uint32_t count_ = 0;
    uint32_t next_ = 0;
};

void check_magic(std::span<const uint8_t> block, size_t at, uint32_t expected, const char* which,
                 const std::string& filename, uint64_t block_offset) {
    if (const uint32_t found = field(block, at); found != expected)
        fail_at_offset(filename, block_offset + at,
                       fmt::format("bad {} magic 0x{:08X}, expected 0x{:08X}", which, found, expected));
}

Image parse_uf2(std::span<const uint8_t> file, const ParseOptions&, const std::string& filename) {
    if (const size_t partial = file.size() % kBlockSize)
        fail_at_offset(filename, file.size() - partial,
                       fmt::format("{} trailing bytes do not make a whole {}-byte block", partial, kBlockSize));
    Image image;
    BlockList blocks([&](uint64_t offset) { return offset_origin(filename, offset); });
    BlockSequence sequence;
    for (uint64_t offset = 0; offset < file.size(); offset += kBlockSize) {
        const auto block = file.subspan(offset, kBlockSize);
        check_magic(block, kMagicStart0At, kMagicStart0, "first start", filename, offset);
        check_magic(block, kMagicStart1At, kMagicStart1, "second start", filename, offset);
        check_magic(block, kMagicEndAt, kMagicEnd, "end", filename, offset);

        const uint32_t flags = field(block, kFlagsAt);
        const uint32_t payload_size = field(block, kPayloadSizeAt);
        if (payload_size > kMaxPayload)
            fail_at_offset(filename, offset + kPayloadSizeAt,
                           fmt::format("payload size {} exceeds {}", payload_size, kMaxPayload));
        if (auto problem = sequence.accept(field(block, kBlockNumberAt), field(block, kBlockCountAt)))
            fail_at_offset(filename, offset + kBlockNumberAt, *problem);
        if (flags & kFlagFileContainer)
            fail_at_offset(filename, offset + kFlagsAt,
                           "the block carries a file for a file system (flag 0x1000), not flash contents");
        if (flags & kFlagNotMainFlash) continue;  // e.g. comments or data for another memory

        if (flags & kFlagFamilyIdPresent) {
            const uint32_t family = field(block, kFamilyIdAt);
            if (image.family_id && *image.family_id != family)
                fail_at_offset(filename, offset + kFamilyIdAt,
                               fmt::format("family ID 0x{:08X} differs from 0x{:08X} in earlier blocks (files for "
                                           "several chips in one are not supported)",
                                           family, *image.family_id));
            image.family_id = family;
        }
        blocks.add(field(block, kTargetAddressAt), block.subspan(kPayloadOffset, payload_size), offset);
    }
    if (!sequence.complete())
        fail_at_offset(
            filename, file.size(),
            fmt::format("the file ends after block {} of {} (is it truncated?)", sequence.seen(), sequence.count()));
    blocks.add_to(image);
    return image;
}

// One block per 256-byte aligned unit of flash the image touches, gaps in it 0xFF (the RP2040 boot
// ROM takes only 256-byte payloads at 256-byte aligned addresses; the other UF2 bootloaders take
// them too). The family ID goes in every block when the image has one.
void write_uf2(const Image& image, std::ostream& out) {
    constexpr uint32_t kUnit = 256;
    std::vector<uint32_t> units;
    for (const auto& [address, bytes] : image.runs()) {
        for (uint64_t at = address / kUnit * kUnit; at < uint64_t{address} + bytes.size(); at += kUnit)
            if (units.empty() || units.back() != at) units.push_back(static_cast<uint32_t>(at));
    }
    std::array<uint8_t, kBlockSize> block{};
    auto put = [&](size_t at, uint32_t value) {
        for (int i = 0; i < 4; ++i) block[at + i] = uint8_t(value >> (8 * i));
    };
    for (size_t n = 0; n < units.size(); ++n) {
        block.fill(0);
        put(kMagicStart0At, kMagicStart0);
        put(kMagicStart1At, kMagicStart1);
        put(kFlagsAt, image.family_id ? kFlagFamilyIdPresent : 0);
        put(kTargetAddressAt, units[n]);
        put(kPayloadSizeAt, kUnit);
        put(kBlockNumberAt, uint32_t(n));
        put(kBlockCountAt, uint32_t(units.size()));
        put(kFamilyIdAt, image.family_id.value_or(0));
        const auto payload = image.flatten(units[n], uint64_t{units[n]} + kUnit, 0xFF);
        std::copy(payload.begin(), payload.end(), block.begin() + kPayloadOffset);
        put(kMagicEndAt, kMagicEnd);
        out.write(reinterpret_cast<const char*>(block.data()), std::streamsize(block.size()));
    }
}

bool sniff_uf2(std::span<const uint8_t> content) {
    return content.size() >= kBlockSize && field(content, kMagicStart0At) == kMagicStart0 &&
           field(content, kMagicStart1At) == kMagicStart1;
}

}  // namespace

FormatHandler uf2_handler() {
    return {
        .id = Format::Uf2,
        .name = "uf2",
        .title = "UF2",
        .extensions = ".uf2",
        .sniff = sniff_uf2,
        .parse = parse_uf2,
        .write = write_uf2,
    };
}

}  // namespace mcuflash::image
