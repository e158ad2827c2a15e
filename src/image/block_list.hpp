#pragma once
// Internal: the data blocks a parser finds, added to an Image in address order once the whole file
// has been read. Added in file order, a file written back to front (descending addresses) would cost
// quadratic time, every block being prepended to an ever-growing run.
#include <cstdint>
#include <functional>
#include <span>
#include <string>
#include <vector>

#include "image/image.hpp"

namespace mcuflash::image {

class BlockList {
public:
    // `origin_of` turns a block's `where` (a line number, a byte offset) into the origin that
    // Image::add() puts in its messages ("fw.hex:12").
    explicit BlockList(std::function<std::string(uint64_t where)> origin_of) : origin_of_(std::move(origin_of)) {}

    void add(uint32_t address, std::span<const uint8_t> bytes, uint64_t where);

    // Adds every block to `image`, lowest address first (file order among equal addresses), so an
    // overlap is reported at the block with the higher address.
    void add_to(Image& image) const;

private:
    struct Block {
        uint32_t address;
        size_t position;  // into storage_
        size_t length;
        uint64_t where;
    };
    std::function<std::string(uint64_t)> origin_of_;
    std::vector<Block> blocks_;
    std::vector<uint8_t> storage_;
};

}  // namespace mcuflash::image
