#pragma once
// The flash memory every simulated device is built on. It enforces what real flash does, so a client
// that gets away with something here gets away with it on hardware too:
//  - erasing works on whole erase units (pages, rows or sectors; sectors may differ in size) and sets
//    them to 0xFF;
//  - programming works on whole write units and can only clear bits (the new value is ANDed into the
//    old one), so writing without erasing first corrupts data exactly as the chip would;
//  - protected ranges (the bootloader's own region) refuse erase and program; every refused attempt is
//    counted and logged so tests can assert that no bootloader overwrite was attempted;
//  - each operation reports how long the chip would be busy with it.
// Optionally the whole memory is mirrored in a raw image file (write-through, so the file is current
// whenever an operation returns).
#include <cstdint>
#include <filesystem>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "core/deadline.hpp"

namespace mcuflash::targets {
struct Chip;
}

namespace mcuflash::sim {

using core::Clock;

// A run of equal erase units, as in a DfuSe layout string ("4*16K,1*64K,7*128K").
struct EraseRegion {
    uint32_t unit_size = 0;
    uint32_t count = 0;
};

struct FlashLayout {
    uint32_t base = 0;                  // address of the first byte
    std::vector<EraseRegion> regions;   // consecutive from `base`
    uint32_t write_unit = 1;            // programming granularity (AVR: the page; STM32F1: 2 bytes)

    // `size` bytes of equal erase units.
    static FlashLayout uniform(uint32_t base, uint32_t size, uint32_t erase_unit, uint32_t write_unit);
    // A chip's whole flash in the erase units the knowledge base gives it (pages, or sectors).
    static FlashLayout of_chip(const targets::Chip& chip, uint32_t write_unit);
    uint32_t size() const;
};

struct FlashTiming {
    Clock::duration erase_unit{};     // per erase unit
    Clock::duration erase_per_kib{};  // plus this per KiB of the unit (big sectors erase slower)
    Clock::duration program_unit{};   // per write unit
};

enum class FlashStatus { Ok, Protected, OutOfRange, Misaligned };
const char* flash_status_name(FlashStatus status);

struct FlashOutcome {
    FlashStatus status = FlashStatus::Ok;
    Clock::duration busy{};  // how long the chip is busy (zero when refused)
    bool ok() const { return status == FlashStatus::Ok; }
};

struct ProtectedRange {
    uint32_t address = 0;
    uint32_t length = 0;
    std::string name;  // "bootloader", "optiboot", ...
    uint32_t end() const { return address + length; }
};

struct FlashCounters {
    uint64_t erases = 0;                  // erase units erased
    uint64_t programs = 0;                // program operations done
    uint64_t bytes_programmed = 0;
    uint64_t programs_over_unerased = 0;  // programs that wanted a 0 -> 1 change (and did not get it)
    uint64_t violations = 0;              // refused operations on protected ranges
};

class FlashMemory {
public:
    static constexpr uint8_t kErased = 0xFF;

    explicit FlashMemory(FlashLayout layout, FlashTiming timing = {});
    ~FlashMemory();
    FlashMemory(const FlashMemory&) = delete;
    FlashMemory& operator=(const FlashMemory&) = delete;

    uint32_t base() const { return layout_.base; }
    uint32_t size() const { return static_cast<uint32_t>(cells_.size()); }
    uint64_t end() const { return uint64_t{base()} + size(); }
    bool contains(uint32_t address, uint64_t length) const;
    const FlashLayout& layout() const { return layout_; }
    const FlashTiming& timing() const { return timing_; }
    void set_timing(const FlashTiming& timing) { timing_ = timing; }

    struct Unit {
        uint32_t address = 0;
        uint32_t size = 0;
    };
    // The erase unit holding `address`, if it is inside the memory.
    std::optional<Unit> erase_unit_at(uint32_t address) const;

    void protect(ProtectedRange range);
    const std::vector<ProtectedRange>& protected_ranges() const { return protected_; }

    // Erases every unit in [address, address + length); both ends must be unit boundaries.
    FlashOutcome erase(uint32_t address, uint32_t length);
    // ANDs `data` into the cells at `address`; address and size must be whole write units.
    FlashOutcome program(uint32_t address, std::span<const uint8_t> data);

    uint8_t at(uint32_t address) const;                       // throws std::out_of_range
    void read(uint32_t address, std::span<uint8_t> out) const;  // throws std::out_of_range
    std::span<const uint8_t> contents() const { return cells_; }

    // Factory programming for setting a scene: puts bytes in place with no erase rule, protection,
    // counting or timing (and writes them through to the file).
    void load(uint32_t address, std::span<const uint8_t> data);
    // Fills every protected range with placeholder(name) so tests can see that it stays intact.
    void fill_protected_with_placeholder();
    // A recognisable stand-in for a bootloader's code: "[mcuflash-sim placeholder: NAME] " repeated.
    static std::vector<uint8_t> placeholder(const std::string& name, uint32_t length);
    bool protected_ranges_intact() const;  // each protected range still holds its placeholder

    enum class FileOrigin { Loaded, Created };
    // Mirrors the memory in a raw image of the whole flash (from base()). An existing file is loaded
    // (its size must equal size(), else core::Error(BadInput)); a missing one is created from the
    // current contents. Every later change is written through at once.
    FileOrigin attach_file(const std::filesystem::path& path);
    const std::optional<std::filesystem::path>& file() const { return file_path_; }

    const FlashCounters& counters() const { return counters_; }
    // One line per refused operation, e.g. "program 0x0001FC00+256 refused: inside protected 'optiboot' ...".
    const std::vector<std::string>& violations() const { return violations_; }

private:
    size_t offset_of(uint32_t address) const { return address - layout_.base; }
    // The first protected range overlapping [address, address + length), if any.
    const ProtectedRange* protection_hit(uint32_t address, uint64_t length) const;
    FlashOutcome refuse(const char* operation, uint32_t address, uint64_t length, FlashStatus status);
    void write_through(uint32_t address, uint64_t length);

    FlashLayout layout_;
    FlashTiming timing_;
    std::vector<uint8_t> cells_;
    std::vector<ProtectedRange> protected_;
    FlashCounters counters_;
    std::vector<std::string> violations_;
    std::optional<std::filesystem::path> file_path_;
    int file_fd_ = -1;
};

}  // namespace mcuflash::sim
