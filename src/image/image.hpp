#pragma once
// Image: a firmware image as a sparse map of 32-bit addresses to bytes, whatever file it came from.
#include <cstdint>
#include <map>
#include <optional>
#include <span>
#include <string>
#include <vector>

namespace mcuflash::image {

// The file formats mcuflash reads (and some it writes); their handlers are registered in format.hpp.
enum class Format { IntelHex, SRecord, Elf, Binary, Uf2 };

class Image {
public:
    // Contiguous runs of bytes keyed by start address; runs never overlap and never touch
    // (adjacent data is merged into one run).
    using Runs = std::map<uint32_t, std::vector<uint8_t>>;

    // Adds bytes at `address`. Throws core::Error(BadInput) if they overlap bytes already present
    // or run past 0xFFFFFFFF; `origin` starts the message ("fw.hex:12", "app.elf: program header 1").
    void add(uint32_t address, std::span<const uint8_t> bytes, const std::string& origin);

    const Runs& runs() const { return runs_; }
    bool empty() const { return runs_.empty(); }
    uint32_t lowest() const;     // first address holding data; 0 when empty
    uint64_t end() const;        // one past the highest address holding data; 0 when empty
    size_t total_bytes() const;  // bytes actually present (gaps not counted)

    // The bytes in [from, to), gaps filled with `fill`; empty when to <= from.
    std::vector<uint8_t> flatten(uint32_t from, uint64_t to, uint8_t fill = 0xFF) const;
    // Whether any byte in [from, to) is present.
    bool any_in(uint32_t from, uint64_t to) const;
    // The part of the image in [from, to); metadata (entry, source format, family) is kept as is.
    Image slice(uint32_t from, uint64_t to) const;
    // Moves every byte (and the entry point) by `delta`; throws core::Error(BadInput) if anything
    // would leave the 32-bit address space.
    void shift(int64_t delta);

    // The reset vector of a Cortex-M vector table: the little-endian word at lowest() + 4,
    // if those four bytes are present.
    std::optional<uint32_t> reset_vector_arm() const;

    // "0x00000000-0x000027FF (10240 bytes), 0x00010000-0x0001000F (16 bytes)"; "no data" when empty.
    std::string describe_ranges() const;

    // Start address given by the file: ELF e_entry, Intel HEX record 03/05, S-record S7/S8/S9.
    // Absent when the file gives none; ELF and S-record tools write 0 for "none", so 0 reads as absent there.
    std::optional<uint32_t> entry;
    // The format the image was read from; set by load_file()/parse_content() (loader.hpp).
    std::optional<Format> source_format;
    // UF2 family ID, when the blocks declare one (flag 0x2000).
    std::optional<uint32_t> family_id;
    // What the parser accepted but a user should hear about ("no termination record, but ...").
    std::vector<std::string> notes;

private:
    Runs runs_;
};

}  // namespace mcuflash::image
