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

constexpr uint8_t kDnload = 1, kUpload = 2, kGetStatus = 3, kClrStatus = 4, kAbort = 6;
constexpr uint8_t kStateIdle = 2, kStateDnloadSync = 3, kStateDnBusy = 4, kStateDnloadIdle = 5, kStateManifestSync = 6,
                  kStateManifest = 7, kStateManifestWaitReset = 8, kStateUploadIdle = 9, kStateError = 10;
constexpr uint8_t kDfuseSetAddress = 0x21, kDfuseErase = 0x41;
constexpr unsigned kRequestTimeoutMs = 5000;
// Longest an operation may keep the device busy: a 128 KiB sector erase takes about 1-2 s; a mass
// erase of 2 MiB tens of seconds.
constexpr long kBusyLimitMs = 60000;

std::array<uint8_t, 5> command_with_address(uint8_t command, uint32_t address) {
    return {command, static_cast<uint8_t>(address), static_cast<uint8_t>(address >> 8),
            static_cast<uint8_t>(address >> 16), static_cast<uint8_t>(address >> 24)};
}

std::string usb_id(uint16_t vendor, uint16_t product) { return fmt::format("{:04x}:{:04x}", vendor, product); }

}  // namespace

const char* state_name(uint8_t state) {
    static const char* names[] = {"appIDLE",        "appDETACH", "dfuIDLE",          "dfuDNLOAD-SYNC",
                                  "dfuDNBUSY",      "dfuDNLOAD-IDLE", "dfuMANIFEST-SYNC", "dfuMANIFEST",
                                  "dfuMANIFEST-WAIT-RESET", "dfuUPLOAD-IDLE", "dfuERROR"};
    return state < 11 ? names[state] : "unknown state";
}

const char* status_text(uint8_t status) {
    static const char* texts[] = {"OK",
                                  "the file is not for this device (errTARGET)",
                                  "the file failed a vendor check (errFILE)",
                                  "the device could not write the memory (errWRITE)",
                                  "the memory erase failed (errERASE)",
                                  "the memory was not erased (errCHECK_ERASED)",
                                  "program memory function failed (errPROG)",
                                  "programmed memory failed verification (errVERIFY)",
                                  "the address is out of range (errADDRESS)",
                                  "received DNLOAD with wLength 0 too early (errNOTDONE)",
                                  "the device's firmware is corrupt (errFIRMWARE)",
                                  "vendor-specific error (errVENDOR)",
                                  "unexpected USB reset (errUSBR)",
                                  "unexpected power-on reset (errPOR)",
                                  "unknown error (errUNKNOWN)",
                                  "the device stalled an unexpected request (errSTALLEDPKT)"};
    return status < 16 ? texts[status] : "unknown status";
}

Client::Client(link::UsbDevice& usb, ConnectOptions options) : usb_(usb), options_(std::move(options)) {}

DfuStatus Client::get_status() {
    auto raw = usb_.control_in({0xA1, kGetStatus, 0, interface_, 6}, kRequestTimeoutMs);
    if (raw.size() < 6)
        throw Error(ErrorKind::Protocol, fmt::format("GETSTATUS answered {} bytes, not 6", raw.size()));
    return {raw[0], uint32_t{raw[1]} | (uint32_t{raw[2]} << 8) | (uint32_t{raw[3]} << 16), raw[4]};
}

void Client::clear_status() { usb_.control_out({0x21, kClrStatus, 0, interface_, 0}, {}, kRequestTimeoutMs); }
void Client::abort() { usb_.control_out({0x21, kAbort, 0, interface_, 0}, {}, kRequestTimeoutMs); }

void Client::to_idle() {
    DfuStatus st = get_status();
    if (st.state == kStateIdle) return;
    if (st.state == kStateError) {
        if (options_.warn)
            options_.warn(fmt::format("the device was in dfuERROR ({}): clearing it", status_text(st.status)));
        clear_status();
    } else {
        abort();
    }
    st = get_status();
    if (st.state != kStateIdle)
        throw Error(ErrorKind::Protocol, fmt::format("the device stays in {} ({}), not dfuIDLE", state_name(st.state),
                                                     status_text(st.status)),
                    "unplug and replug the board (or reset it into its bootloader again)");
}

void Client::download_and_wait(uint16_t block, std::span<const uint8_t> data, const char* what, uint32_t address) {
    usb_.control_out({0x21, kDnload, block, interface_, static_cast<uint16_t>(data.size())}, data, kRequestTimeoutMs);
    core::Deadline deadline = core::Deadline::after_ms(kBusyLimitMs);
    for (;;) {
        DfuStatus st = get_status();
        if (st.state == kStateError)
            throw Error(ErrorKind::Protocol, fmt::format("{} at {}: {}", what, hex_address(address), status_text(st.status)))
                .at_address(address);
        if (st.state == kStateDnloadIdle || st.state == kStateIdle) return;
        if (st.state != kStateDnBusy && st.state != kStateDnloadSync)
            throw Error(ErrorKind::Protocol,
                        fmt::format("{} at {}: the device went to {}", what, hex_address(address), state_name(st.state)));
        if (deadline.expired())
            throw Error(ErrorKind::Timeout, fmt::format("{} at {}: the device stayed busy for {} s", what,
                                                        hex_address(address), kBusyLimitMs / 1000));
        usb_.pause(std::chrono::milliseconds(std::max<uint32_t>(st.poll_timeout_ms, 1)));
    }
}

void Client::dfuse_command(std::span<const uint8_t> command, const char* what, uint32_t address) {
    download_and_wait(0, command, what, address);
}

void Client::set_address(uint32_t address) {
    auto command = command_with_address(kDfuseSetAddress, address);
    dfuse_command(command, "set address", address);
}

std::vector<uint8_t> Client::upload(uint16_t block, uint16_t length) {
    return usb_.control_in({0xA1, kUpload, block, interface_, length}, kRequestTimeoutMs);
}

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
    to_idle();
    mode_ = DfuseMode::Idle;
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

bool Client::continues(DfuseMode mode, uint32_t address) const {
    return mode_ == mode && next_block_ >= 2 &&
           uint64_t(pointer_) + uint64_t(next_block_ - 2) * functional_.transfer_size == address;
}

void Client::dfuse_ready(bool downloading_ok) {
    if (mode_ == DfuseMode::Idle || (downloading_ok && mode_ == DfuseMode::Downloading)) return;
    if (mode_ == DfuseMode::Uploading) abort();
    else to_idle();
    mode_ = DfuseMode::Idle;
}

void Client::erase(uint32_t address, uint32_t length) {
    if (!dfuse()) throw Error(ErrorKind::Usage, "plain DFU bootloaders erase as they write: there is no erase command");
    try {
        dfuse_ready(true);
        for (uint64_t at = address; at < uint64_t(address) + length;) {
            const auto* segment = layout_->segment_at(static_cast<uint32_t>(at));
            if (!segment || !segment->erasable)
                throw Error(ErrorKind::Unsafe,
                            fmt::format("{} is not erasable on this device", hex_address(static_cast<uint32_t>(at))));
            auto command = command_with_address(kDfuseErase, static_cast<uint32_t>(at));
            dfuse_command(command, "erase", static_cast<uint32_t>(at));
            mode_ = DfuseMode::Downloading;
            next_block_ = 0;  // whether an erase moves the pointer is the device's business
            at += segment->unit_size;
        }
    } catch (const Error&) {
        mode_ = DfuseMode::Unknown;
        throw;
    }
}

void Client::write(uint32_t address, std::span<const uint8_t> data) {
    const uint32_t chunk = functional_.transfer_size;
    if (dfuse()) {
        try {
            if (!continues(DfuseMode::Downloading, address)) {
                dfuse_ready(true);
                set_address(address);
                mode_ = DfuseMode::Downloading;
                pointer_ = address;
                next_block_ = 2;
            }
            for (size_t offset = 0; offset < data.size(); offset += chunk) {
                auto part = data.subspan(offset, std::min<size_t>(chunk, data.size() - offset));
                download_and_wait(next_block_, part, "write", address + static_cast<uint32_t>(offset));
                // A short block ends what the block numbers can address: the next write sets the address.
                next_block_ = part.size() == chunk ? static_cast<uint16_t>(next_block_ + 1) : 0;
            }
        } catch (const Error&) {
            mode_ = DfuseMode::Unknown;
            throw;
        }
        return;
    }
    end_upload();
    if (downloading_ && address < plain_next_) {
        // A step back (a rewrite after verify): a new download starts again from the base.
        abort();
        downloading_ = false;
    }
    if (!downloading_) {
        to_idle();
        plain_next_ = plain_base_;
        plain_block_ = 0;
        downloading_ = true;
    }
    if (address < plain_next_)
        throw Error(ErrorKind::Usage, fmt::format("this DFU bootloader writes from {}, not {}", hex_address(plain_base_),
                                                  hex_address(address)));
    // A gap: the bootloader erases pages as it writes them, so the gap is written as erased bytes.
    std::vector<uint8_t> stream(address - plain_next_, 0xFF);
    stream.insert(stream.end(), data.begin(), data.end());
    for (size_t offset = 0; offset < stream.size(); offset += chunk) {
        auto part = std::span<const uint8_t>(stream).subspan(offset, std::min<size_t>(chunk, stream.size() - offset));
        download_and_wait(plain_block_++, part, "write", plain_next_);
        plain_next_ += static_cast<uint32_t>(part.size());
    }
}

std::vector<uint8_t> Client::read(uint32_t address, uint32_t length) {
    if (!functional_.can_upload()) throw Error(ErrorKind::Usage, "this DFU device cannot upload (read back)");
    const uint32_t chunk = functional_.transfer_size;
    std::vector<uint8_t> out;
    if (dfuse()) {
        try {
            if (!continues(DfuseMode::Uploading, address)) {
                dfuse_ready(true);
                set_address(address);
                abort();  // UPLOAD needs dfuIDLE; the address pointer stays
                mode_ = DfuseMode::Uploading;
                pointer_ = address;
                next_block_ = 2;
            }
            while (out.size() < length) {
                auto want = static_cast<uint16_t>(std::min<uint32_t>(chunk, length - static_cast<uint32_t>(out.size())));
                auto part = upload(next_block_, want);
                out.insert(out.end(), part.begin(), part.end());
                if (part.size() < want) {
                    // Less than asked for ends the upload: the device is back in dfuIDLE.
                    mode_ = DfuseMode::Idle;
                    next_block_ = 0;
                    break;
                }
                // A block shorter than wTransferSize leaves the upload open but the next block's
                // address unknown to the numbering: the next read starts again.
                next_block_ = want == chunk ? static_cast<uint16_t>(next_block_ + 1) : 0;
            }
        } catch (const Error&) {
            mode_ = DfuseMode::Unknown;
            throw;
        }
    } else {
        // Plain DFU uploads run from the alternate setting's base: end the open download first.
        if (address < plain_base_) throw Error(ErrorKind::Usage, fmt::format("reads start at {}", hex_address(plain_base_)));
        if (!uploading_) {
            if (downloading_) {
                abort();
                downloading_ = false;
            }
            to_idle();
            uploading_ = true;
            upload_ended_ = false;
            upload_block_ = 0;
            upload_cache_.clear();
        }
        const uint64_t want = uint64_t(address - plain_base_) + length;
        while (upload_cache_.size() < want && !upload_ended_) {
            auto part = upload(upload_block_++, static_cast<uint16_t>(chunk));
            upload_cache_.insert(upload_cache_.end(), part.begin(), part.end());
            upload_ended_ = part.size() < chunk;  // a short packet ends the upload: the device is idle
        }
        if (upload_cache_.size() > address - plain_base_)
            out.assign(upload_cache_.begin() + (address - plain_base_),
                       upload_cache_.begin() + std::min<uint64_t>(upload_cache_.size(), want));
    }
    if (out.size() < length)
        throw Error(ErrorKind::Protocol, fmt::format("the device uploaded {} of {} bytes from {}", out.size(), length,
                                                     hex_address(address)));
    return out;
}

void Client::remove_write_protection() {
    throw Error(ErrorKind::Usage, "DfuSe has no write-unprotect command; only --readout");
}

void Client::remove_readout_protection() {
    if (!dfuse()) throw Error(ErrorKind::Usage, "read unprotect is a DfuSe command; this device speaks plain DFU");
    const uint8_t command[] = {0x92};
    try {
        dfuse_ready(true);
        dfuse_command(command, "read unprotect (mass erase)", chip_ ? chip_->flash_base : 0);
    } catch (const Error& e) {
        // It resets once the erase is done: a device gone from the bus has done it.
        if ((e.kind() != ErrorKind::Io && e.kind() != ErrorKind::Timeout) || usb_.present()) throw;
    }
    mode_ = DfuseMode::Unknown;
}

void Client::end_upload() {
    if (!uploading_) return;
    if (!upload_ended_) abort();
    uploading_ = false;
    upload_cache_.clear();
}

void Client::start_application() {
    try {
        if (dfuse()) {
            // DfuSe leave: point at the application, then a zero-length download.
            dfuse_ready(true);
            set_address(chip_->flash_base);
            usb_.control_out({0x21, kDnload, 2, interface_, 0}, {}, kRequestTimeoutMs);
            DfuStatus st = get_status();
            leave_outcome_ = fmt::format("answered {}", state_name(st.state));
            // It drops off the bus as its application starts: say so rather than leave it unknown.
            for (int i = 0; i < 20 && usb_.present(); ++i) usb_.pause(std::chrono::milliseconds(50));
            leave_outcome_ += usb_.present() ? ", still on the bus after 1 s" : ", then left the bus (application runs)";
            return;
        }
        end_upload();
        // Finish with a zero-length download: manifestation. After a verify the download was
        // aborted; some bootloaders (Smoothieboard) take it anyway and leave, the others stall it.
        try {
            usb_.control_out({0x21, kDnload, plain_block_, interface_, 0}, {}, kRequestTimeoutMs);
            DfuStatus st = get_status();
            if (st.state == kStateError)
                throw Error(ErrorKind::Protocol, fmt::format("finishing the download: {}", status_text(st.status)));
            leave_outcome_ = fmt::format("answered {}", state_name(st.state));
        } catch (const Error& e) {
            if (downloading_ || e.kind() != ErrorKind::Protocol) throw;
            if (usb_.present()) to_idle();  // stalled: clear dfuERROR before the reset
        }
        downloading_ = false;
        for (int i = 0; i < 4 && usb_.present(); ++i) usb_.pause(std::chrono::milliseconds(50));
        if (!usb_.present()) {
            leave_outcome_ += leave_outcome_.empty() ? "left the bus (application runs)" : ", then left the bus (application runs)";
            return;
        }
        usb_.reset_port();
        leave_outcome_ = "USB reset: the bootloader starts the application after its wait";
    } catch (const Error& e) {
        // Every block was acknowledged: a device that drops off the bus while leaving has left.
        if (e.kind() != ErrorKind::Io && e.kind() != ErrorKind::Timeout && e.kind() != ErrorKind::Protocol) throw;
        if (usb_.present()) throw;
        leave_outcome_ = "dropped off the bus (normal for many DFU bootloaders: every block had been acknowledged)";
        if (options_.warn) options_.warn("the device left DFU without answering: " + leave_outcome_);
    }
}

ProtocolInfo protocol_info() {
    ProtocolInfo info;
    info.name = "dfu";
    info.description = "USB DFU 1.1 and ST DfuSe: STM32 ROM DFU (0483:df11), stm32duino (1eaf:0003)";
    info.runs_on = link::LinkKind::Usb;
    info.offers_protection = true;
    info.make = [](link::Link& link, const ConnectOptions& options) {
        return std::unique_ptr<Bootloader>(std::make_unique<Client>(link::link_as<link::UsbDevice>(link, "dfu"), options));
    };
    return info;
}

}  // namespace mcuflash::protocol::dfu
