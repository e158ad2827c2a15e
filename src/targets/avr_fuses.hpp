#pragma once
// AVR fuse and lock-bit facts (data/chips.toml, `[chips.X.fuses]`) and the pure checks built on them:
// which values would brick a board, which boot section a fuse setting selects.
//
// Fuse bits are active low: a programmed bit reads 0.
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace mcuflash::targets {

struct Chip;

// The bytes an AVR programmer writes besides memory: the three fuse bytes and the lock byte.
enum class FuseByte { Low, High, Extended, Lock };
const char* fuse_byte_name(FuseByte fuse);  // "lfuse", "hfuse", "efuse", "lock"
std::optional<FuseByte> fuse_byte_from_name(const std::string& name);
constexpr FuseByte kAllFuseBytes[] = {FuseByte::Low, FuseByte::High, FuseByte::Extended, FuseByte::Lock};

// A set of values, some of the four bytes given.
using FuseValues = std::map<FuseByte, uint8_t>;

// A condition a fuse value must meet for the board to stay programmable: (value & mask) in allowed.
struct FuseRule {
    FuseByte fuse = FuseByte::High;
    uint8_t mask = 0;
    std::vector<uint8_t> allowed;
    std::string why;  // the consequence in words, naming the bits
};

struct AvrFuses {
    // Bits that exist in each byte; the others read back as 1 whatever is written.
    std::map<FuseByte, uint8_t> used_bits;
    // BOOTSZ: which byte holds it, its mask, and the boot section size (bytes) for each value of the
    // masked bits shifted down (index 0 = both bits programmed = the largest section).
    FuseByte boot_size_fuse = FuseByte::High;
    uint8_t boot_size_mask = 0;
    std::vector<uint32_t> boot_sizes;
    // BOOTRST: programmed (0) makes the chip start in the boot section, where the bootloader lives.
    FuseByte boot_reset_fuse = FuseByte::High;
    uint8_t boot_reset_mask = 0;
    std::vector<FuseRule> rules;

    uint8_t used(FuseByte fuse) const;
    // The boot section size the fuses select; nullopt when the byte holding BOOTSZ is not in `values`.
    std::optional<uint32_t> boot_size(const FuseValues& values) const;
    std::optional<bool> boot_reset_programmed(const FuseValues& values) const;
    // Whether `read` is what writing `written` leaves (unused bits aside).
    bool same(FuseByte fuse, uint8_t written, uint8_t read) const { return ((written ^ read) & used(fuse)) == 0; }
};

// The reasons the given values would leave the board unprogrammable (empty: none). Each names the
// byte, its value and the bits at fault.
std::vector<std::string> fuse_refusals(const AvrFuses& facts, const FuseValues& values);

// "lfuse=0xFF" -> (Low, 0xFF). Throws core::Error(Usage) for an unknown name or a value that is not
// a byte.
std::pair<FuseByte, uint8_t> parse_fuse_assignment(const std::string& text);

}  // namespace mcuflash::targets
