#include "image/block_list.hpp"

#include <algorithm>
#include <numeric>

namespace mcuflash::image {

void BlockList::add(uint32_t address, std::span<const uint8_t> bytes, uint64_t where) {
    if (bytes.empty()) return;
    blocks_.push_back({address, storage_.size(), bytes.size(), where});
    storage_.insert(storage_.end(), bytes.begin(), bytes.end());
}

void BlockList::add_to(Image& image) const {
    std::vector<size_t> order(blocks_.size());
    std::iota(order.begin(), order.end(), size_t{0});
    std::stable_sort(order.begin(), order.end(),
                     [&](size_t a, size_t b) { return blocks_[a].address < blocks_[b].address; });
    const std::span<const uint8_t> storage(storage_);
    for (size_t index : order) {
        const Block& block = blocks_[index];
        image.add(block.address, storage.subspan(block.position, block.length), origin_of_(block.where));
    }
}

}  // namespace mcuflash::image
