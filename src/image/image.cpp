#include "image/image.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <iterator>

#include "core/error.hpp"
#include "core/hexdump.hpp"

namespace mcuflash::image {

using core::Error;
using core::ErrorKind;
using core::hex_address;

namespace {

constexpr uint64_t kAddressSpace = uint64_t{1} << 32;

uint64_t run_end(const Image::Runs::value_type& run) { return run.first + uint64_t{run.second.size()}; }

// The first run that ends after `address` (it may start after it, too).
Image::Runs::const_iterator first_run_reaching(const Image::Runs& runs, uint32_t address) {
    auto it = runs.upper_bound(address);
    if (it != runs.begin() && run_end(*std::prev(it)) > address) --it;
    return it;
}

}  // namespace

void Image::add(uint32_t address, std::span<const uint8_t> bytes, const std::string& origin) {
    if (bytes.empty()) return;
    const uint64_t end_address = address + uint64_t{bytes.size()};
    if (end_address > kAddressSpace)
        throw Error(ErrorKind::BadInput,
                    fmt::format("{}: data at {} ({} bytes) runs past the end of the 32-bit address space", origin,
                                hex_address(address), bytes.size()));

    auto next = runs_.lower_bound(address);  // first run starting at or after `address`
    auto prev = next == runs_.begin() ? runs_.end() : std::prev(next);
    std::optional<uint32_t> overlap;
    if (prev != runs_.end() && run_end(*prev) > address)
        overlap = address;
    else if (next != runs_.end() && next->first < end_address)
        overlap = next->first;
    if (overlap)
        throw Error(ErrorKind::BadInput, fmt::format("{}: data at {} overlaps data already at {}", origin,
                                                     hex_address(address), hex_address(*overlap)));

    const bool joins_prev = prev != runs_.end() && run_end(*prev) == address;
    const bool joins_next = next != runs_.end() && next->first == end_address;
    if (joins_prev) {
        auto& target = prev->second;
        target.insert(target.end(), bytes.begin(), bytes.end());
        if (joins_next) {
            target.insert(target.end(), next->second.begin(), next->second.end());
            runs_.erase(next);
        }
    } else if (joins_next) {
        std::vector<uint8_t> merged;
        merged.reserve(bytes.size() + next->second.size());
        merged.insert(merged.end(), bytes.begin(), bytes.end());
        merged.insert(merged.end(), next->second.begin(), next->second.end());
        runs_.erase(next);
        runs_.emplace(address, std::move(merged));
    } else {
        runs_.emplace(address, std::vector<uint8_t>(bytes.begin(), bytes.end()));
    }
}

uint32_t Image::lowest() const { return runs_.empty() ? 0 : runs_.begin()->first; }

uint64_t Image::end() const { return runs_.empty() ? 0 : run_end(*runs_.rbegin()); }

size_t Image::total_bytes() const {
    size_t total = 0;
    for (const auto& [address, bytes] : runs_) total += bytes.size();
    return total;
}

std::vector<uint8_t> Image::flatten(uint32_t from, uint64_t to, uint8_t fill) const {
    if (to <= from) return {};
    std::vector<uint8_t> out(static_cast<size_t>(to - from), fill);
    for (auto it = first_run_reaching(runs_, from); it != runs_.end() && it->first < to; ++it) {
        const uint64_t begin = std::max<uint64_t>(it->first, from);
        const uint64_t stop = std::min<uint64_t>(run_end(*it), to);
        std::copy(it->second.begin() + static_cast<ptrdiff_t>(begin - it->first),
                  it->second.begin() + static_cast<ptrdiff_t>(stop - it->first),
                  out.begin() + static_cast<ptrdiff_t>(begin - from));
    }
    return out;
}

bool Image::any_in(uint32_t from, uint64_t to) const {
    if (to <= from) return false;
    auto it = first_run_reaching(runs_, from);
    return it != runs_.end() && it->first < to;
}

Image Image::slice(uint32_t from, uint64_t to) const {
    Image out;
    out.entry = entry;
    out.source_format = source_format;
    out.family_id = family_id;
    for (auto it = first_run_reaching(runs_, from); it != runs_.end() && it->first < to; ++it) {
        const uint64_t begin = std::max<uint64_t>(it->first, from);
        const uint64_t stop = std::min<uint64_t>(run_end(*it), to);
        std::vector<uint8_t> part(it->second.begin() + static_cast<ptrdiff_t>(begin - it->first),
                                  it->second.begin() + static_cast<ptrdiff_t>(stop - it->first));
        out.runs_.emplace(static_cast<uint32_t>(begin), std::move(part));
    }
    return out;
}

void Image::shift(int64_t delta) {
    if (delta == 0) return;
    auto fits = [&](int64_t first, int64_t past_last) {
        return first + delta >= 0 && past_last + delta <= static_cast<int64_t>(kAddressSpace);
    };
    if (!runs_.empty() && !fits(lowest(), static_cast<int64_t>(end())))
        throw Error(ErrorKind::BadInput, fmt::format("moving the image {} by {:+#x} leaves the 32-bit address space",
                                                     describe_ranges(), delta));
    if (entry && !fits(*entry, int64_t{*entry} + 1))
        throw Error(ErrorKind::BadInput,
                    fmt::format("moving the entry point {} by {:+#x} leaves the 32-bit address space",
                                hex_address(*entry), delta));
    Runs moved;
    for (auto& [address, bytes] : runs_)
        moved.emplace_hint(moved.end(), static_cast<uint32_t>(address + delta), std::move(bytes));
    runs_ = std::move(moved);
    if (entry) entry = static_cast<uint32_t>(*entry + delta);
}

std::optional<uint32_t> Image::reset_vector_arm() const {
    if (runs_.empty()) return std::nullopt;
    // The vector table is the start of the image, so the word must lie in the first run.
    const auto& table = runs_.begin()->second;
    if (table.size() < 8) return std::nullopt;
    return uint32_t{table[4]} | uint32_t{table[5]} << 8 | uint32_t{table[6]} << 16 | uint32_t{table[7]} << 24;
}

std::string Image::describe_ranges() const {
    if (runs_.empty()) return "no data";
    std::string out;
    for (const auto& run : runs_) {
        if (!out.empty()) out += ", ";
        out += fmt::format("{}-{} ({} bytes)", hex_address(run.first),
                           hex_address(static_cast<uint32_t>(run_end(run) - 1)), run.second.size());
    }
    return out;
}

}  // namespace mcuflash::image
