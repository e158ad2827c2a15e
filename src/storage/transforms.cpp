#include "storage/transforms.hpp"

#include <openssl/evp.h>

#include <array>
#include <sstream>

#include <fmt/format.h>

#include "core/error.hpp"
#include "image/loader.hpp"

namespace mcuflash::storage {

using core::Error;
using core::ErrorKind;

namespace {

constexpr std::array<uint8_t, 32> kRobinKey = {0xA3, 0xBD, 0xAD, 0x0D, 0x41, 0x11, 0xBB, 0x8D, 0xDC, 0x80, 0x2D,
                                               0xD0, 0xD2, 0xC4, 0x9B, 0x1E, 0x26, 0xEB, 0xE3, 0x33, 0x4A, 0x15,
                                               0xE4, 0x0A, 0xB3, 0xB1, 0x3C, 0x93, 0xBB, 0xAF, 0xF7, 0x3E};
constexpr uint32_t kChituMagic = 0x443D2D3F;
constexpr uint32_t kChituSumSeed = 0xEF3D4323;
constexpr size_t kChituBlock = 0x800;

uint32_t le32(const uint8_t* b) { return uint32_t(b[0]) | uint32_t(b[1]) << 8 | uint32_t(b[2]) << 16 | uint32_t(b[3]) << 24; }

// The byte each position of block `n` is XORed with.
void chitu_xor(std::span<uint8_t> bytes, uint32_t key) {
    for (size_t n = 0; n * kChituBlock < bytes.size(); ++n)
        for (size_t i = 0; i < kChituBlock && n * kChituBlock + i < bytes.size(); ++i) {
            const uint64_t seed = (uint64_t(i) * i + 0x4BADull * n) >> (i % 24);
            bytes[n * kChituBlock + i] ^= uint8_t((seed ^ key) & 0xFF);
        }
}

uint32_t chitu_sum(std::span<const uint8_t> encoded) {
    uint32_t sum = kChituSumSeed;
    for (size_t at = 0; at + 4 <= encoded.size(); at += 4) sum ^= le32(encoded.data() + at);
    return sum;
}

}  // namespace

std::vector<uint8_t> mks_robin_scramble(std::span<const uint8_t> firmware) {
    std::vector<uint8_t> out(firmware.begin(), firmware.end());
    for (size_t pos = 320; pos < std::min<size_t>(31040, out.size()); ++pos) out[pos] ^= kRobinKey[pos & 31];
    return out;
}

std::vector<uint8_t> chitu_encode(std::span<const uint8_t> firmware) {
    std::array<uint8_t, 16> md5{};
    unsigned int md5_len = 0;
    EVP_Digest(firmware.data(), firmware.size(), md5.data(), &md5_len, EVP_md5(), nullptr);
    const uint32_t key = uint32_t(md5[0]) << 24 | uint32_t(md5[1]) << 16 | uint32_t(md5[2]) << 8 | md5[3];
    std::vector<uint8_t> body(firmware.begin(), firmware.end());
    static const uint8_t pad[3] = {'0', 'x', '0'};  // update_chitu.py pads with the text "0x0", not zeros
    while (body.size() % kChituBlock) body.insert(body.end(), pad, pad + 3);
    chitu_xor(body, key);
    const uint32_t sum = chitu_sum(body);
    std::vector<uint8_t> out = {uint8_t(kChituMagic >> 24), uint8_t(kChituMagic >> 16), uint8_t(kChituMagic >> 8),
                                uint8_t(kChituMagic)};
    for (uint32_t v : {key, sum})
        for (int i = 0; i < 4; ++i) out.push_back(uint8_t(v >> (8 * i)));
    out.insert(out.end(), body.begin(), body.end());
    return out;
}

std::vector<uint8_t> chitu_decode(std::span<const uint8_t> file) {
    if (file.size() < 12 || (uint32_t(file[0]) << 24 | uint32_t(file[1]) << 16 | uint32_t(file[2]) << 8 | file[3]) != kChituMagic)
        throw Error(ErrorKind::BadInput, "the file on the card is not a Chitu update (no 0x443D2D3F header)");
    const uint32_t key = le32(file.data() + 4), sum = le32(file.data() + 8);
    std::vector<uint8_t> body(file.begin() + 12, file.end());
    if (chitu_sum(body) != sum)
        throw Error(ErrorKind::BadInput, "the Chitu update on the card fails its XOR sum: it is damaged");
    chitu_xor(body, key);
    return body;
}

std::vector<uint8_t> apply_transform(const std::string& name, uint32_t address, std::span<const uint8_t> firmware) {
    if (name.empty()) return {firmware.begin(), firmware.end()};
    if (name == "mks-robin") return mks_robin_scramble(firmware);
    if (name == "chitu") return chitu_encode(firmware);
    if (name == "srec") {
        image::Image img;
        img.add(address, std::vector<uint8_t>(firmware.begin(), firmware.end()), "firmware");
        std::ostringstream text;
        image::write_image(img, text, image::Format::SRecord);
        const std::string s = text.str();
        return {s.begin(), s.end()};
    }
    throw Error(ErrorKind::Unsupported, fmt::format("mcuflash does not know the '{}' transform of a card file", name));
}

std::vector<uint8_t> undo_transform(const std::string& name, uint32_t address, std::span<const uint8_t> file) {
    if (name.empty()) return {file.begin(), file.end()};
    if (name == "mks-robin") return mks_robin_scramble(file);
    if (name == "chitu") return chitu_decode(file);
    if (name == "srec") {
        image::LoadOptions options;
        options.format = image::Format::SRecord;
        auto img = image::parse_content(file, options, "the card's file");
        if (img.empty()) return {};
        if (img.lowest() != address)
            throw Error(ErrorKind::BadInput, "the S-record file on the card starts at another address");
        return img.flatten(img.lowest(), img.end(), 0xFF);
    }
    throw Error(ErrorKind::Unsupported, fmt::format("mcuflash does not know the '{}' transform of a card file", name));
}

}  // namespace mcuflash::storage
