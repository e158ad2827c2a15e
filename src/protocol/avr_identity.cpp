#include "protocol/avr_identity.hpp"

#include <fmt/format.h>

#include "core/error.hpp"
#include "core/hexdump.hpp"

namespace mcuflash::protocol {

using core::Error;
using core::ErrorKind;

AvrIdentity identify_avr(DeviceInfo& info, const std::string& protocol, const ConnectOptions& options,
                         const std::vector<uint8_t>& signature, uint8_t sw_major, uint8_t sw_minor,
                         const std::string& unidentified_text) {
    const auto& kb = options.knowledge_base();
    AvrIdentity id;
    info.signature = signature;
    id.chip = kb.chip_by_signature(signature);
    if (!id.chip)
        throw Error(ErrorKind::Unsupported,
                    fmt::format("the device's signature {} is not a chip mcuflash knows", core::hex_bytes(signature)),
                    "add the chip to data/chips.toml, or check that this is the board you meant");
    if (!options.chip.empty() && options.chip != id.chip->name)
        throw Error(ErrorKind::Usage,
                    fmt::format("the device is an {} (signature {}), not the {} asked for", id.chip->name,
                                core::hex_bytes(signature), options.chip),
                    "check --chip, or that this is the board you meant");
    info.chip = id.chip->name;
    info.flash_base = 0;
    info.flash_size = id.chip->flash_size;
    info.page_size = id.chip->page_size;
    info.app_start = 0;

    // The bootloader forced by the user, else the one whose version range matches.
    bool forced = !options.bootloader.empty();
    for (const auto* candidate : kb.bootloaders_for(protocol, id.chip->name))
        if (forced ? candidate->name == options.bootloader
                   : (candidate->sw_major_min < 0 ||
                      (sw_major >= candidate->sw_major_min && sw_major <= candidate->sw_major_max)))
            id.bootloader = candidate;
    if (forced && !id.bootloader)
        throw Error(ErrorKind::Usage, fmt::format("bootloader '{}' is not known for the {} with protocol {}",
                                                  options.bootloader, id.chip->name, protocol));
    // --bootloader may name what the device cannot tell, never overrule what it does tell: a version
    // outside the named bootloader's range is another bootloader, with another boot section size.
    if (forced && id.bootloader->sw_major_min >= 0 &&
        (sw_major < id.bootloader->sw_major_min || sw_major > id.bootloader->sw_major_max)) {
        std::string actual;
        for (const auto* candidate : kb.bootloaders_for(protocol, id.chip->name))
            if (candidate->sw_major_min >= 0 && sw_major >= candidate->sw_major_min && sw_major <= candidate->sw_major_max)
                actual = candidate->name;
        throw Error(ErrorKind::Unsafe,
                    fmt::format("--bootloader {} does not match the device: it reports software version {}.{}, which "
                                "is {}; its boot section may be larger than {}'s, so nothing was written",
                                options.bootloader, sw_major, sw_minor,
                                actual.empty() ? "no version " + options.bootloader + " has" : actual,
                                options.bootloader),
                    actual.empty() ? "leave out --bootloader and let mcuflash keep the largest boot section free"
                                   : fmt::format("leave out --bootloader, or give --bootloader {}", actual));
    }
    if (id.bootloader) {
        info.bootloader = id.bootloader->name;
        info.bootloader_text = fmt::format("{} {}.{}", id.bootloader->description, sw_major, sw_minor);
        id.boot_size = *id.bootloader->size_on(id.chip->name);
    } else {
        info.bootloader_text = fmt::format("{} version {}.{}", unidentified_text, sw_major, sw_minor);
        id.boot_size = id.chip->max_boot_size;
        info.details.emplace_back("note", fmt::format("bootloader not identified; the top {} bytes are kept free",
                                                      id.chip->max_boot_size));
    }
    info.app_end = id.chip->flash_size - id.boot_size;
    info.details.emplace_back("software version", fmt::format("{}.{}", sw_major, sw_minor));
    return id;
}

}  // namespace mcuflash::protocol
