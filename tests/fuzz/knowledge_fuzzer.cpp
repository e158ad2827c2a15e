// libFuzzer entry point for the knowledge base loader (targets/knowledge.hpp): one TOML document
// given to Knowledge::from_documents, then the lookups the CLI and the clients make on what loaded.
// Findings: a sanitizer report, any exception other than core::Error (what the loader documents for
// bad data; the lookups below document none except Knowledge::chip's Usage error), or a lookup that
// does not find what was loaded.
#include <algorithm>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "core/error.hpp"
#include "fuzz_check.hpp"
#include "targets/knowledge.hpp"

using namespace mcuflash;
using namespace mcuflash::targets;
using fuzz::require;

namespace {

// erase_layout makes one entry per page: only ask for it when that stays small.
constexpr uint64_t kMaxEraseUnits = 1u << 16;

void check_chip(const Knowledge& k, const std::string& name, const Chip& chip) {
    require(k.find_chip(name) == &chip && &k.chip(name) == &chip, "a loaded chip is found by name");
    require(chip.page_size && (chip.page_size & (chip.page_size - 1)) == 0, "page_size is a power of two");
    require(chip.flash_size && chip.flash_size % chip.page_size == 0, "flash_size is whole pages");
    require(chip.max_boot_size < chip.flash_size, "the boot section fits in flash");
    if (!chip.signature.empty()) {
        const Chip* same = k.chip_by_signature(chip.signature);
        require(same && same->signature == chip.signature, "a chip is found by its signature");
    }
    if (chip.product_id) {
        auto found = k.chips_by_product_id(*chip.product_id);
        require(std::find(found.begin(), found.end(), &chip) != found.end(), "a chip is found by its product ID");
    }
    if (!chip.sectors.empty()) {
        uint64_t total = 0;
        for (uint32_t sector : chip.sectors) total += sector;
        require(total == chip.flash_size, "sectors add up to flash_size");
    }
    if (!chip.sectors.empty() || chip.flash_size / chip.page_size <= kMaxEraseUnits) {
        uint64_t covered = 0;
        for (const auto& unit : erase_layout(chip, chip.flash_size)) {
            require(unit.size > 0, "erase units have a size");
            covered += unit.size;
        }
        require(covered == chip.flash_size, "erase units cover flash exactly");
    }
    if (chip.fuses) {
        // Every value of the byte holding BOOTSZ and the other fuse bytes, through the fuse checks.
        for (unsigned v = 0; v < 256; ++v) {
            FuseValues values{{chip.fuses->boot_size_fuse, static_cast<uint8_t>(v)}};
            auto size = chip.fuses->boot_size(values);
            require(!size || std::find(chip.fuses->boot_sizes.begin(), chip.fuses->boot_sizes.end(), *size) !=
                                 chip.fuses->boot_sizes.end(),
                    "BOOTSZ selects a listed size");
            (void)chip.fuses->boot_reset_programmed(values);
            (void)fuse_refusals(*chip.fuses, {{FuseByte::Low, static_cast<uint8_t>(v)},
                                              {FuseByte::High, static_cast<uint8_t>(v)},
                                              {FuseByte::Extended, static_cast<uint8_t>(v)}});
        }
    }
}

void check_bootloader(const Knowledge& k, const std::string& name, const Bootloader& b) {
    require(k.find_bootloader(name) == &b, "a loaded bootloader is found by name");
    for (const auto& [chip, size] : b.sizes) {
        const Chip* c = k.find_chip(chip);
        require(c && size < c->flash_size && size % c->page_size == 0, "a bootloader size is whole pages in flash");
        require(b.size_on(chip) == size, "size_on answers the size");
        auto candidates = k.bootloaders_for(b.protocol, chip);
        require(std::find(candidates.begin(), candidates.end(), &b) != candidates.end(),
                "a bootloader is offered for its protocol and chips");
    }
    for (const auto& [vendor, product] : b.usb_ids) {
        const Bootloader* found = k.bootloader_by_usb_id(vendor, product);
        require(found && std::find(found->usb_ids.begin(), found->usb_ids.end(), std::pair{vendor, product}) !=
                             found->usb_ids.end(),
                "a bootloader is found by its USB ID");
    }
    for (const auto& [chip, install] : b.installs) {
        const Chip* c = k.find_chip(chip);
        require(c && c->fuses && b.sizes.count(chip), "an install names a chip with fuses and a size");
        require(c->fuses->boot_size(install.fuses).has_value(), "an install's fuses select a boot section");
        require(fuse_refusals(*c->fuses, install.fuses).empty(), "an install's fuses are safe");
        for (const auto& [address, length] : install.stray_bytes)
            require(uint64_t(address) + length <= c->flash_size, "stray bytes lie inside flash");
    }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    const std::string text(reinterpret_cast<const char*>(data), size);
    Knowledge k;
    try {
        k = Knowledge::from_documents({{"fuzz.toml", text}});
    } catch (const core::Error&) {
        return 0;  // bad data, said in words: the expected outcome for most inputs
    }
    for (const auto& [name, chip] : k.chips()) check_chip(k, name, chip);
    for (const auto& [name, b] : k.bootloaders()) check_bootloader(k, name, b);
    try {
        (void)k.chip("no such chip");
        require(k.find_chip("no such chip"), "Knowledge::chip throws for an unknown chip");
    } catch (const core::Error& e) {
        require(e.kind() == core::ErrorKind::Usage, "an unknown chip is a usage error");
    }
    return 0;
}
