#include "sim/flash_memory.hpp"

#include <fcntl.h>
#include <fmt/format.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <stdexcept>

#include "core/error.hpp"
#include "core/hexdump.hpp"
#include "targets/knowledge.hpp"

namespace mcuflash::sim {

using core::Error;
using core::ErrorKind;
using core::hex_address;

FlashLayout FlashLayout::of_chip(const targets::Chip& chip, uint32_t write_unit) {
    FlashLayout layout;
    layout.base = chip.flash_base;
    layout.write_unit = write_unit;
    for (const auto& unit : targets::erase_layout(chip, chip.flash_size)) {
        if (!layout.regions.empty() && layout.regions.back().unit_size == unit.size) ++layout.regions.back().count;
        else layout.regions.push_back({unit.size, 1});
    }
    return layout;
}

FlashLayout FlashLayout::uniform(uint32_t base, uint32_t size, uint32_t erase_unit, uint32_t write_unit) {
    if (erase_unit == 0 || size % erase_unit != 0)
        throw std::invalid_argument(fmt::format("flash size {} is not a multiple of the erase unit {}", size, erase_unit));
    return FlashLayout{base, {{erase_unit, size / erase_unit}}, write_unit};
}

uint32_t FlashLayout::size() const {
    uint64_t total = 0;
    for (const auto& r : regions) total += uint64_t{r.unit_size} * r.count;
    return static_cast<uint32_t>(total);
}

const char* flash_status_name(FlashStatus status) {
    switch (status) {
        case FlashStatus::Ok: return "ok";
        case FlashStatus::Protected: return "protected";
        case FlashStatus::OutOfRange: return "out of range";
        case FlashStatus::Misaligned: return "misaligned";
    }
    return "?";
}

FlashMemory::FlashMemory(FlashLayout layout, FlashTiming timing) : layout_(std::move(layout)), timing_(timing) {
    uint64_t total = 0;
    for (const auto& r : layout_.regions) {
        if (r.unit_size == 0 || r.count == 0) throw std::invalid_argument("flash erase region with no units");
        total += uint64_t{r.unit_size} * r.count;
    }
    if (total == 0 || uint64_t{layout_.base} + total > (uint64_t{1} << 32))
        throw std::invalid_argument("flash layout is empty or runs past the 32-bit address space");
    if (layout_.write_unit == 0) throw std::invalid_argument("flash write unit is zero");
    cells_.assign(static_cast<size_t>(total), kErased);
}

FlashMemory::~FlashMemory() {
    if (file_fd_ >= 0) ::close(file_fd_);
}

bool FlashMemory::contains(uint32_t address, uint64_t length) const {
    return address >= base() && uint64_t{address} + length <= end();
}

std::optional<FlashMemory::Unit> FlashMemory::erase_unit_at(uint32_t address) const {
    if (!contains(address, 1)) return std::nullopt;
    uint32_t start = base();
    for (const auto& r : layout_.regions) {
        uint64_t region_end = uint64_t{start} + uint64_t{r.unit_size} * r.count;
        if (address < region_end) {
            uint32_t index = (address - start) / r.unit_size;
            return Unit{start + index * r.unit_size, r.unit_size};
        }
        start = static_cast<uint32_t>(region_end);
    }
    return std::nullopt;
}

void FlashMemory::protect(ProtectedRange range) {
    if (!contains(range.address, range.length) || range.length == 0)
        throw std::invalid_argument(fmt::format("protected range '{}' {}+{} is not inside the flash", range.name,
                                                hex_address(range.address), range.length));
    protected_.push_back(std::move(range));
}

const ProtectedRange* FlashMemory::protection_hit(uint32_t address, uint64_t length) const {
    for (const auto& p : protected_)
        if (address < p.end() && uint64_t{address} + length > p.address) return &p;
    return nullptr;
}

FlashOutcome FlashMemory::refuse(const char* operation, uint32_t address, uint64_t length, FlashStatus status) {
    if (status == FlashStatus::Protected) {
        const ProtectedRange* p = protection_hit(address, length);
        ++counters_.violations;
        violations_.push_back(fmt::format("{} {}+{} refused: overlaps protected '{}' {}..{}", operation,
                                          hex_address(address), length, p->name, hex_address(p->address),
                                          hex_address(p->end() - 1)));
    }
    return FlashOutcome{status, {}};
}

FlashOutcome FlashMemory::erase(uint32_t address, uint32_t length) {
    if (length == 0 || !contains(address, length)) return refuse("erase", address, length, FlashStatus::OutOfRange);
    auto first = erase_unit_at(address);
    uint64_t stop = uint64_t{address} + length;
    auto last = erase_unit_at(static_cast<uint32_t>(stop - 1));
    if (first->address != address || uint64_t{last->address} + last->size != stop)
        return refuse("erase", address, length, FlashStatus::Misaligned);
    if (protection_hit(address, length)) return refuse("erase", address, length, FlashStatus::Protected);

    FlashOutcome outcome;
    for (uint64_t at = address; at < stop;) {
        auto unit = erase_unit_at(static_cast<uint32_t>(at));
        std::fill_n(cells_.begin() + static_cast<std::ptrdiff_t>(offset_of(unit->address)), unit->size, kErased);
        outcome.busy += timing_.erase_unit + timing_.erase_per_kib * unit->size / 1024;
        ++counters_.erases;
        at += unit->size;
    }
    write_through(address, length);
    return outcome;
}

FlashOutcome FlashMemory::program(uint32_t address, std::span<const uint8_t> data) {
    if (data.empty() || !contains(address, data.size()))
        return refuse("program", address, data.size(), FlashStatus::OutOfRange);
    if ((address - base()) % layout_.write_unit != 0 || data.size() % layout_.write_unit != 0)
        return refuse("program", address, data.size(), FlashStatus::Misaligned);
    if (protection_hit(address, data.size())) return refuse("program", address, data.size(), FlashStatus::Protected);

    bool wanted_set_bits = false;
    uint8_t* cell = cells_.data() + offset_of(address);
    for (size_t i = 0; i < data.size(); ++i) {
        // A flash cell can only be discharged by programming: bits that are 0 stay 0 until erased.
        if (data[i] & ~cell[i]) wanted_set_bits = true;
        cell[i] &= data[i];
    }
    ++counters_.programs;
    counters_.bytes_programmed += data.size();
    if (wanted_set_bits) ++counters_.programs_over_unerased;
    write_through(address, data.size());
    return FlashOutcome{FlashStatus::Ok, timing_.program_unit * (data.size() / layout_.write_unit)};
}

uint8_t FlashMemory::at(uint32_t address) const {
    if (!contains(address, 1)) throw std::out_of_range(fmt::format("flash read at {}", hex_address(address)));
    return cells_[offset_of(address)];
}

void FlashMemory::read(uint32_t address, std::span<uint8_t> out) const {
    if (!contains(address, out.size()))
        throw std::out_of_range(fmt::format("flash read {}+{}", hex_address(address), out.size()));
    std::copy_n(cells_.begin() + static_cast<std::ptrdiff_t>(offset_of(address)), out.size(), out.begin());
}

void FlashMemory::load(uint32_t address, std::span<const uint8_t> data) {
    if (!contains(address, data.size()))
        throw std::out_of_range(fmt::format("flash load {}+{}", hex_address(address), data.size()));
    std::copy(data.begin(), data.end(), cells_.begin() + static_cast<std::ptrdiff_t>(offset_of(address)));
    write_through(address, data.size());
}

std::vector<uint8_t> FlashMemory::placeholder(const std::string& name, uint32_t length) {
    std::string text = fmt::format("[mcuflash-sim placeholder: {}] ", name);
    std::vector<uint8_t> out(length);
    for (uint32_t i = 0; i < length; ++i) out[i] = static_cast<uint8_t>(text[i % text.size()]);
    return out;
}

void FlashMemory::fill_protected_with_placeholder() {
    for (const auto& p : protected_) load(p.address, placeholder(p.name, p.length));
}

bool FlashMemory::protected_ranges_intact() const {
    for (const auto& p : protected_) {
        auto expected = placeholder(p.name, p.length);
        if (!std::equal(expected.begin(), expected.end(), cells_.begin() + static_cast<std::ptrdiff_t>(offset_of(p.address))))
            return false;
    }
    return true;
}

FlashMemory::FileOrigin FlashMemory::attach_file(const std::filesystem::path& path) {
    auto fail = [&](const std::string& what) {
        return Error(ErrorKind::Io, fmt::format("flash file {}: {}: {}", path.string(), what, std::strerror(errno)));
    };
    int fd = ::open(path.c_str(), O_RDWR | O_CLOEXEC);
    FileOrigin origin = FileOrigin::Loaded;
    if (fd < 0 && errno == ENOENT) {
        fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
        origin = FileOrigin::Created;
    }
    if (fd < 0) throw fail("cannot open");

    if (origin == FileOrigin::Loaded) {
        struct stat st {};
        if (::fstat(fd, &st) != 0) {
            ::close(fd);
            throw fail("cannot stat");
        }
        if (static_cast<uint64_t>(st.st_size) != cells_.size()) {
            ::close(fd);
            throw Error(ErrorKind::BadInput,
                        fmt::format("flash file {} holds {} bytes but this device's flash is {} bytes", path.string(),
                                    st.st_size, cells_.size()),
                        "delete the file to start from an erased flash, or pass the chip it was made for");
        }
        std::vector<uint8_t> image(cells_.size());
        if (::pread(fd, image.data(), image.size(), 0) != static_cast<ssize_t>(image.size())) {
            ::close(fd);
            throw fail("cannot read");
        }
        cells_ = std::move(image);
    }
    if (file_fd_ >= 0) ::close(file_fd_);
    file_fd_ = fd;
    file_path_ = path;
    if (origin == FileOrigin::Created) write_through(base(), cells_.size());
    return origin;
}

void FlashMemory::write_through(uint32_t address, uint64_t length) {
    if (file_fd_ < 0) return;
    size_t offset = offset_of(address);
    ssize_t written = ::pwrite(file_fd_, cells_.data() + offset, length, static_cast<off_t>(offset));
    if (written != static_cast<ssize_t>(length))
        throw Error(ErrorKind::Io, fmt::format("flash file {}: cannot write {} bytes at offset {}: {}",
                                               file_path_->string(), length, offset, std::strerror(errno)));
}

}  // namespace mcuflash::sim
