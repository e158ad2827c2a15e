#pragma once
// A disk in memory that holds only the sectors written to it (the rest read as zeros): a simulated
// drive's 128 MiB volume costs what its files take.
#include <array>
#include <cstring>
#include <map>

#include <fmt/format.h>

#include "core/error.hpp"
#include "storage/block_device.hpp"

namespace mcuflash::sim::msc {

class SparseDisk : public storage::BlockDevice {
public:
    SparseDisk(uint64_t sectors, std::string name) : sectors_(sectors), name_(std::move(name)) {}

    uint64_t sector_count() const override { return sectors_; }
    void read(uint64_t sector, std::span<uint8_t> out) override {
        check_range(sector, out.size());
        for (size_t i = 0; i < out.size() / storage::kSectorSize; ++i) {
            auto it = data_.find(sector + i);
            uint8_t* to = out.data() + i * storage::kSectorSize;
            if (it == data_.end()) std::memset(to, 0, storage::kSectorSize);
            else std::memcpy(to, it->second.data(), storage::kSectorSize);
        }
    }
    void write(uint64_t sector, std::span<const uint8_t> data) override {
        check_range(sector, data.size());
        for (size_t i = 0; i < data.size() / storage::kSectorSize; ++i)
            std::memcpy(data_[sector + i].data(), data.data() + i * storage::kSectorSize, storage::kSectorSize);
        count_written(data.size());
    }
    void flush() override {}
    std::string describe() const override { return name_; }

private:
    uint64_t sectors_;
    std::string name_;
    std::map<uint64_t, std::array<uint8_t, storage::kSectorSize>> data_;
};

}  // namespace mcuflash::sim::msc
