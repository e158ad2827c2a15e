#include "protocol/dfu/client.hpp"

#include <algorithm>

#include <fmt/format.h>

#include "core/deadline.hpp"
#include "core/error.hpp"
#include "core/hexdump.hpp"

namespace mcuflash::protocol::dfu {

using core::Error;
using core::ErrorKind;
using core::hex_address;

namespace {

std::string usb_id(uint16_t vendor, uint16_t product) { return fmt::format("{:04x}:{:04x}", vendor, product); }

}  // namespace

Client::Client(link::UsbDevice& usb, ConnectOptions options)
    : usb_(usb), options_(std::move(options)), requests_(usb, options_.warn) {}

void Client::identify(DeviceInfo& info) {
    const auto id = usb_.identity();
    auto config = usb_.configuration_descriptor();
    struct Alt {
        uint8_t interface, alt, protocol, name_index;
    };
    std::vector<Alt> alts;
    bool have_functional = false;
    for (size_t at = 0; at + 2 <= config.size() && config[at] >= 2; at += config[at]) {
        const uint8_t length = config[at], type = config[at + 1];
        if (at + length > config.size()) break;
        if (type == link::usb::kDescriptorInterface && length >= 9 && config[at + 5] == 0xFE && config[at + 6] == 0x01)
            alts.push_back({config[at + 2], config[at + 3], config[at + 7], config[at + 8]});
        if (type == 0x21 && length >= 7) {
            functional_.attributes = config[at + 2];
            functional_.detach_timeout_ms = static_cast<uint16_t>(config[at + 3] | (config[at + 4] << 8));
            functional_.transfer_size = static_cast<uint16_t>(config[at + 5] | (config[at + 6] << 8));
            if (length >= 9) functional_.version = static_cast<uint16_t>(config[at + 7] | (config[at + 8] << 8));
            have_functional = true;
        }
    }
    if (alts.empty() || !have_functional)
        throw Error(ErrorKind::NotFound, fmt::format("{} has no DFU interface", usb_.describe()),
                    "put the board in its DFU bootloader (BOOT0 high and reset, or the bootloader's button)");
    if (alts.front().protocol == 1)
        throw Error(ErrorKind::Usage,
                    fmt::format("{} runs its application (DFU runtime mode), not its DFU bootloader", usb_.describe()),
                    "put the board in DFU mode: BOOT0 high (or hold the BOOT button) and reset");
    if (functional_.transfer_size == 0) functional_.transfer_size = 1024;
    interface_ = alts.front().interface;
    requests_.set_interface(interface_);
    alt_names_.clear();  // connect() may run again on the same client
    for (const auto& alt : alts) alt_names_.push_back(usb_.string_descriptor(alt.name_index));

    const auto& kb = options_.knowledge_base();
    bootloader_ = options_.bootloader.empty() ? kb.bootloader_by_usb_id(id.vendor, id.product)
                                              : kb.find_bootloader(options_.bootloader);
    if (bootloader_ && bootloader_->protocol != "dfu") bootloader_ = nullptr;

    // The alternate setting that writes the application.
    alt_ = 0;
    if (dfuse()) {
        bool found = false;
        for (size_t i = 0; i < alt_names_.size() && !found; ++i) {
            auto layout = parse_layout(alt_names_[i]);
            if (!layout) continue;
            for (const auto& s : layout->segments)
                if (s.writable && s.erasable) found = true;
            if (found) {
                alt_ = alts[i].alt;
                layout_ = layout;
            }
        }
        if (!layout_)
            throw Error(ErrorKind::Protocol, fmt::format("{} is DfuSe but no alternate setting names writable flash",
                                                         usb_.describe()));
    } else if (bootloader_ && bootloader_->dfu_alt) {
        alt_ = *bootloader_->dfu_alt;
    } else {
        alt_ = alts.back().alt;
    }

    // The chip.
    auto matches_layout = [&](const targets::Chip& chip) {
        if (!layout_) return false;
        auto units = targets::erase_layout(chip, chip.flash_size);
        std::vector<targets::EraseUnitRange> seen;
        for (const auto& s : layout_->segments)
            if (s.writable)
                for (uint32_t i = 0; i < s.count; ++i) seen.push_back({s.address + i * s.unit_size, s.unit_size});
        if (units.size() != seen.size()) return false;
        for (size_t i = 0; i < units.size(); ++i)
            if (units[i].address != seen[i].address || units[i].size != seen[i].size) return false;
        return true;
    };
    if (!options_.chip.empty()) {
        chip_ = &kb.chip(options_.chip);
        if (layout_ && !matches_layout(*chip_))
            throw Error(ErrorKind::Usage, fmt::format("the device's flash ({}) is not the {}'s", alt_names_[alt_],
                                                      chip_->name));
    } else if (layout_) {
        for (const auto& [name, chip] : kb.chips())
            if ((!bootloader_ || bootloader_->sizes.count(name)) && matches_layout(chip)) chip_ = &chip;
        if (!chip_)
            throw Error(ErrorKind::Unsupported,
                        fmt::format("no chip in data/chips.toml has the flash layout {}", alt_names_[alt_]),
                        "add the chip to data/chips.toml (flash_base, flash_size, page_size or sectors)");
    } else if (bootloader_ && !bootloader_->sizes.empty()) {
        // Plain DFU says nothing about the flash size: take the smallest chip the bootloader runs on.
        for (const auto& [name, size] : bootloader_->sizes) {
            const auto& chip = kb.chip(name);
            if (!chip_ || chip.flash_size < chip_->flash_size) chip_ = &chip;
        }
        info.details.emplace_back("note", fmt::format("plain DFU does not tell the flash size: {} assumed (--chip to "
                                                      "say otherwise)",
                                                      chip_->name));
    } else {
        throw Error(ErrorKind::Unsupported, fmt::format("{} is a DFU device mcuflash does not know", usb_.describe()),
                    "give --chip, and check data/bootloaders.toml for its VID:PID");
    }

    const uint32_t reserved = bootloader_ ? bootloader_->size_on(chip_->name).value_or(0) : 0;
    info.chip = chip_->name;
    info.bootloader = bootloader_ ? bootloader_->name : "";
    info.bootloader_text = fmt::format("{} ({}, DFU {}.{:02x})", bootloader_ ? bootloader_->description : "DFU bootloader",
                                       usb_id(id.vendor, id.product), functional_.version >> 8,
                                       functional_.version & 0xFF);
    info.signature = {static_cast<uint8_t>(id.vendor >> 8), static_cast<uint8_t>(id.vendor),
                      static_cast<uint8_t>(id.product >> 8), static_cast<uint8_t>(id.product)};
    info.flash_base = chip_->flash_base;
    info.flash_size = chip_->flash_size;
    info.app_start = chip_->flash_base + reserved;
    info.app_end = chip_->flash_base + chip_->flash_size;
    info.page_size = capabilities().write_unit;
    if (reserved == 0) {
        auto units = targets::erase_layout(*chip_, chip_->flash_size);
        if (!units.empty()) info.boot_area_end = units.front().address + units.front().size;
    }
    plain_base_ = chip_->flash_base + reserved;
    if (!dfuse() && alt_ < alt_names_.size()) {
        // "UPLOAD to Flash 0x8002000": the alternate setting's own base, when its name gives one.
        auto at = alt_names_[alt_].find("0x");
        if (at != std::string::npos) plain_base_ = static_cast<uint32_t>(std::stoul(alt_names_[alt_].substr(at), nullptr, 16));
        if (plain_base_ < info.app_start)
            throw Error(ErrorKind::Unsafe, fmt::format("alternate setting {} (\"{}\") writes at {}, inside the bootloader",
                                                       alt_, alt_names_[alt_], hex_address(plain_base_)));
        info.app_start = plain_base_;
    }
    info.details.emplace_back("usb", fmt::format("{} bcdDevice {:04x}{}", usb_id(id.vendor, id.product), id.bcd_device,
                                                 id.serial.empty() ? "" : " serial " + id.serial));
    for (size_t i = 0; i < alt_names_.size(); ++i)
        info.details.emplace_back(fmt::format("alt {}{}", alts[i].alt, alts[i].alt == alt_ ? " (used)" : ""), alt_names_[i]);
    info.details.emplace_back("transfer size", std::to_string(functional_.transfer_size));
}

DeviceInfo Client::connect() {
    DeviceInfo info;
    identify(info);
    usb_.claim_interface(interface_);
    usb_.set_alt_setting(interface_, alt_);
    dfuse_transfer_ = nullptr;
    if (dfuse()) {
        auto transfer = std::make_unique<DfuseTransfer>(requests_, *layout_, functional_.transfer_size, chip_->flash_base);
        dfuse_transfer_ = transfer.get();
        transfer_ = std::move(transfer);
    } else {
        transfer_ = std::make_unique<PlainTransfer>(requests_, plain_base_, functional_.transfer_size);
    }
    transfer_->start();
    return info;
}

Capabilities Client::capabilities() const {
    Capabilities caps;
    caps.can_read = functional_.can_upload();
    // One DNLOAD block per write unit (the plan writes unit by unit), no larger than the smallest
    // erase unit so that units never straddle one.
    uint32_t unit = functional_.transfer_size ? functional_.transfer_size : 1024;
    if (dfuse()) {
        if (layout_)
            for (const auto& s : layout_->segments)
                if (s.erasable && s.writable) {
                    unit = std::min(unit, s.unit_size);
                    for (uint32_t i = 0; i < s.count; ++i) caps.erase_units.push_back({s.address + i * s.unit_size, s.unit_size});
                }
    } else {
        if (chip_ && chip_->sectors.empty()) unit = std::min(unit, chip_->page_size);
        caps.erases_on_write = true;
        caps.writes_in_address_order = true;  // block numbers count from the application start
    }
    caps.write_unit = unit;
    return caps;
}

void Client::erase(uint32_t address, uint32_t length) {
    chosen_at_connect(transfer_, "dfu::Client").erase(address, length);
}

void Client::write(uint32_t address, std::span<const uint8_t> data) {
    chosen_at_connect(transfer_, "dfu::Client").write(address, data);
}

std::vector<uint8_t> Client::read(uint32_t address, uint32_t length) {
    if (!functional_.can_upload()) throw Error(ErrorKind::Usage, "this DFU device cannot upload (read back)");
    auto out = chosen_at_connect(transfer_, "dfu::Client").read(address, length);
    if (out.size() < length)
        throw Error(ErrorKind::Protocol, fmt::format("the device uploaded {} of {} bytes from {}", out.size(), length,
                                                     hex_address(address)));
    return out;
}

void Client::remove_write_protection() {
    throw Error(ErrorKind::Usage, "DfuSe has no write-unprotect command; only --readout");
}

void Client::remove_readout_protection() {
    if (!dfuse_transfer_) throw Error(ErrorKind::Usage, "read unprotect is a DfuSe command; this device speaks plain DFU");
    try {
        dfuse_transfer_->read_unprotect();
    } catch (const Error& e) {
        // It resets once the erase is done: a device gone from the bus has done it.
        if ((e.kind() != ErrorKind::Io && e.kind() != ErrorKind::Timeout) || usb_.present()) throw;
    }
}

void Client::start_application() {
    try {
        leave_outcome_ = chosen_at_connect(transfer_, "dfu::Client").leave();
        if (dfuse_transfer_) {
            // It drops off the bus as its application starts: say so rather than leave it unknown.
            for (int i = 0; i < 20 && usb_.present(); ++i) usb_.pause(std::chrono::milliseconds(50));
            leave_outcome_ += usb_.present() ? ", still on the bus after 1 s" : ", then left the bus (application runs)";
        }
    } catch (const Error& e) {
        // Every block was acknowledged: a device that drops off the bus while leaving has left.
        if (e.kind() != ErrorKind::Io && e.kind() != ErrorKind::Timeout && e.kind() != ErrorKind::Protocol) throw;
        if (usb_.present()) throw;
        leave_outcome_ = "dropped off the bus (normal for many DFU bootloaders: every block had been acknowledged)";
        if (options_.warn) options_.warn("the device left DFU without answering: " + leave_outcome_);
    }
}

ProtocolInfo protocol_info() {
    ProtocolInfo info = usb_protocol_info<Client>(
        "dfu", "USB DFU 1.1 and ST DfuSe: STM32 ROM DFU (0483:df11), stm32duino (1eaf:0003)");
    info.offers_protection = true;
    return info;
}

}  // namespace mcuflash::protocol::dfu
