#include "sim/dfu/dfu_device.hpp"

#include <algorithm>

#include <fmt/format.h>

namespace mcuflash::sim::dfu {

namespace {

using namespace std::chrono_literals;

constexpr uint8_t kDetach = 0, kDnload = 1, kUpload = 2, kGetStatus = 3, kClrStatus = 4, kGetState = 5, kAbort = 6;
constexpr uint8_t kCanDownload = 0x01, kCanUpload = 0x02, kManifestationTolerant = 0x04;
constexpr uint8_t kStringManufacturer = 1, kStringProduct = 2, kStringSerial = 3, kStringFirstAlt = 4;

// "/0x08000000/04*016Kg,01*064Kg,07*128Kg": the chip's erase units, readable, erasable, writable.
std::string layout_string(const targets::Chip& chip, const std::string& name) {
    std::string out = fmt::format("@{}/0x{:08X}/", name, chip.flash_base);
    auto layout = FlashLayout::of_chip(chip, 4);
    for (size_t i = 0; i < layout.regions.size(); ++i) {
        const auto& r = layout.regions[i];
        out += fmt::format("{}{:02}*{:03}Kg", i ? "," : "", r.count, r.unit_size / 1024);
    }
    return out;
}

uint32_t le32(std::span<const uint8_t> b, size_t at) {
    return uint32_t{b[at]} | (uint32_t{b[at + 1]} << 8) | (uint32_t{b[at + 2]} << 16) | (uint32_t{b[at + 3]} << 24);
}

}  // namespace

// What data/bootloaders.toml says of the bootloader on this chip: its USB id and the flash it keeps.
void apply_bootloader_row(DfuPersonality& p, const targets::Chip& chip, const targets::Bootloader& bootloader) {
    p.name = bootloader.name;
    if (!bootloader.usb_ids.empty()) std::tie(p.vendor, p.product) = bootloader.usb_ids.front();
    p.protected_size = bootloader.size_on(chip.name).value_or(0);
}

namespace {

// What a personality says of itself over USB: the device's release and strings, whether it speaks
// DfuSe, and its DFU functional descriptor (bmAttributes, wTransferSize).
struct UsbIdentity {
    uint16_t bcd_device = 0;
    std::string manufacturer, product, serial;
    bool dfuse = false;
    uint8_t attributes = 0;
    uint16_t transfer_size = 0;
};

DfuPersonality personality(const targets::Chip& chip, const targets::Bootloader& bootloader, UsbIdentity identity) {
    DfuPersonality p;
    apply_bootloader_row(p, chip, bootloader);
    p.bcd_device = identity.bcd_device;
    p.manufacturer = std::move(identity.manufacturer);
    p.product_string = std::move(identity.product);
    p.serial = std::move(identity.serial);
    p.dfuse = identity.dfuse;
    p.attributes = identity.attributes;
    p.transfer_size = identity.transfer_size;
    return p;
}

// STM32F0/F1 flash: a page erase ~20 ms; a halfword every 50 us.
void page_flash_timing(DfuPersonality& p) {
    p.erase_unit = 20ms;
    p.program_per_kib = std::chrono::microseconds(50 * 512);
}

}  // namespace

DfuPersonality st_rom_dfu(const targets::Chip& chip, const targets::Bootloader& bootloader) {
    // bmAttributes 0x0B: can download, can upload, will detach.
    DfuPersonality p = personality(chip, bootloader,
                                   {.bcd_device = 0x2200, .manufacturer = "STMicroelectronics",
                                    .product = "STM32  BOOTLOADER", .serial = "FFFFFFFEFFFF", .dfuse = true,
                                    .attributes = 0x0B, .transfer_size = 2048});
    p.alts.push_back({layout_string(chip, "Internal Flash  "), chip.flash_base, true});
    const bool f4 = !chip.sectors.empty();
    p.alts.push_back({f4 ? "@Option Bytes  /0x1FFFC000/01*016 e" : "@Option Bytes  /0x1FFFF800/01*016 e",
                      f4 ? 0x1FFFC000u : 0x1FFFF800u, false});
    if (f4) {
        // RM0090: 16 KiB sectors ~300 ms, 64 KiB ~600 ms, 128 KiB ~1 s; a word every 16 us.
        p.erase_unit = 200ms;
        p.erase_per_kib = std::chrono::microseconds(6250);
        p.program_per_kib = std::chrono::microseconds(16 * 256);
    } else {
        page_flash_timing(p);
    }
    return p;
}

DfuPersonality stm32duino(const targets::Chip& chip, const targets::Bootloader& bootloader) {
    DfuPersonality p = personality(chip, bootloader,
                                   {.bcd_device = 0x0201, .manufacturer = "LeafLabs", .product = "Maple 003",
                                    .serial = "LLM 003", .attributes = kCanDownload | kCanUpload,
                                    .transfer_size = 0x800});
    p.alts = {{"ERROR. Upload to RAM not supported.", 0x20000C00, false},
              {"UPLOAD to Flash 0x8005000", 0x08005000, true},
              {"UPLOAD to Flash 0x8002000", 0x08002000, true}};
    p.wait_window = 3s;
    page_flash_timing(p);
    return p;
}

DfuPersonality smoothie_dfu(const targets::Chip& chip, const targets::Bootloader& bootloader) {
    // bmAttributes 0x0B: will detach, can upload, can download.
    DfuPersonality p = personality(chip, bootloader,
                                   {.bcd_device = 0x0100, .manufacturer = "SmoothieWare", .product = "Smoothie",
                                    .attributes = 0x0B, .transfer_size = 512});
    p.alts = {{"Smoothie DFU", chip.flash_base + p.protected_size, true}};
    p.write_buffer = 512;  // FLASH_BUF_SIZE
    p.erases_sector_at_start = true;
    p.answers_busy_first = false;  // it writes during the DNLOAD and reports the next state at once
    p.fixed_poll_ms = 500;
    p.upload_fills_request = true;
    p.manifest_from_any_state = true;
    p.leaves_after_manifest = true;
    // UM10360: sector erase 100 ms, 512-byte write about 1 ms.
    p.erase_unit = 100ms;
    p.program_per_kib = std::chrono::microseconds(2000);
    return p;
}

DfuDevice::DfuDevice(const targets::Chip& chip, DfuPersonality personality, const DeviceOptions& options)
    : chip_(chip),
      p_(std::move(personality)),
      flash_(FlashLayout::of_chip(chip, p_.dfuse && !chip.sectors.empty() ? 4 : 2),
             options.timing ? FlashTiming{p_.erase_unit, p_.erase_per_kib, p_.program_per_kib / (1024 / (chip.sectors.empty() ? 2 : 4))}
                            : FlashTiming{}),
      timing_(options.timing) {
    if (p_.protected_size) {
        flash_.protect({chip.flash_base, p_.protected_size, p_.name});
        flash_.fill_protected_with_placeholder();
    }
    if (options.flash_file) flash_.attach_file(*options.flash_file);
}

std::string DfuDevice::describe() const { return fmt::format("{} on {}", p_.name, chip_.name); }

std::vector<uint8_t> DfuDevice::device_descriptor() const {
    return usb::device_descriptor_bytes(p_.vendor, p_.product, p_.bcd_device, kStringManufacturer, kStringProduct,
                                        p_.serial.empty() ? 0 : kStringSerial);
}

std::vector<uint8_t> DfuDevice::configuration_descriptor() const {
    std::vector<uint8_t> out{9, 2, 0, 0, 1, 1, 0, 0xC0, 50};
    const uint16_t version = p_.dfuse ? 0x011A : 0x0110;
    for (size_t alt = 0; alt < p_.alts.size(); ++alt) {
        // Interface: class 0xFE (application specific), subclass 1 (DFU), protocol 2 (DFU mode).
        out.insert(out.end(), {9, 4, 0, static_cast<uint8_t>(alt), 0, 0xFE, 1, 2,
                               static_cast<uint8_t>(kStringFirstAlt + alt)});
    }
    // The DFU functional descriptor, once, after the interfaces.
    out.insert(out.end(), {9, 0x21, p_.attributes, 0xFF, 0x00, static_cast<uint8_t>(p_.transfer_size),
                           static_cast<uint8_t>(p_.transfer_size >> 8), static_cast<uint8_t>(version),
                           static_cast<uint8_t>(version >> 8)});
    out[2] = static_cast<uint8_t>(out.size());
    out[3] = static_cast<uint8_t>(out.size() >> 8);
    return out;
}

std::string DfuDevice::string_descriptor(uint8_t index) const {
    if (index == kStringManufacturer) return p_.manufacturer;
    if (index == kStringProduct) return p_.product_string;
    if (index == kStringSerial) return p_.serial;
    if (index >= kStringFirstAlt && index - kStringFirstAlt < static_cast<int>(p_.alts.size()))
        return p_.alts[index - kStringFirstAlt].name;
    return {};
}

void DfuDevice::bus_reset(Clock::time_point now) {
    attached_ = true;
    state_ = kIdle;
    status_ = kOk;
    busy_until_.reset();
    leave_at_.reset();
    pending_.clear();
    address_pointer_ = chip_.flash_base;
    plain_offset_ = upload_offset_ = 0;
    write_buffer_.clear();
    erased_this_session_.assign(flash_.size() / 256 + 1, false);
    activity_ = false;
    alt_setting_ = 0;
    window_ends_.reset();
    const uint32_t app = p_.protected_size ? chip_.flash_base + p_.protected_size : chip_.flash_base;
    if (p_.wait_window > Clock::duration::zero() && (flash_.at(app) != 0xFF || flash_.at(app + 1) != 0xFF))
        window_ends_ = now + p_.wait_window;
    trace(fmt::format("{}: USB reset: DFU mode", describe()));
}

void DfuDevice::detach(const std::string& why) {
    attached_ = false;
    trace(fmt::format("{}: {}: the device leaves the bus", describe(), why));
}

void DfuDevice::tick(Clock::time_point now) {
    if (leave_at_ && now >= *leave_at_) {
        leave_at_.reset();
        detach("left DFU, application runs");
    }
    if (window_ends_ && now >= *window_ends_) {
        window_ends_.reset();
        if (!activity_) detach("no DFU request within the wait window, application runs");
    }
}

void DfuDevice::fail(Status status) {
    state_ = kError;
    status_ = status;
    pending_.clear();
}

bool DfuDevice::in_flash(uint32_t address, uint64_t length) const { return flash_.contains(address, length); }

usb::ControlResult DfuDevice::class_request(const link::UsbSetup& setup, std::span<const uint8_t> data_out,
                                            Clock::time_point now) {
    activity_ = true;
    const bool in = setup.is_in();
    switch (setup.request) {
        case kDnload:
            if (in) break;
            return download(setup.value, data_out, now);
        case kUpload:
            if (!in) break;
            return upload(setup.value, setup.length);
        case kGetStatus:
            if (!in) break;
            return get_status(now);
        case kGetState:
            if (!in) break;
            return usb::ControlResult::ok({state_});
        case kClrStatus:
            if (state_ != kError) break;
            state_ = kIdle;
            status_ = kOk;
            return usb::ControlResult::ok();
        case kAbort:
            if (state_ == kIdle || state_ == kDnloadSync || state_ == kDnloadIdle || state_ == kManifestSync ||
                state_ == kUploadIdle) {
                state_ = kIdle;
                pending_.clear();
                upload_offset_ = 0;
                return usb::ControlResult::ok();
            }
            break;
        case kDetach:
        default:
            break;
    }
    // A request the state does not allow: the device stalls and goes to dfuERROR (DFU 1.1 6.1.2).
    fail(kErrStalledPkt);
    return usb::ControlResult::stalled();
}

usb::ControlResult DfuDevice::download(uint16_t block, std::span<const uint8_t> data, Clock::time_point now) {
    (void)now;
    if (p_.manifest_from_any_state && state_ != kError) {
        if (data.empty()) {
            state_ = kManifestSync;
            return usb::ControlResult::ok();
        }
        if (state_ != kDnloadIdle) state_ = kIdle;  // it takes blocks in any state
    }
    if (!(p_.attributes & kCanDownload) || (state_ != kIdle && state_ != kDnloadIdle) || data.size() > p_.transfer_size) {
        fail(kErrStalledPkt);
        return usb::ControlResult::stalled();
    }
    if (data.empty()) {
        if (state_ != kDnloadIdle) {
            fail(kErrStalledPkt);
            return usb::ControlResult::stalled();
        }
        state_ = kManifestSync;
        return usb::ControlResult::ok();
    }
    if (state_ == kIdle && !p_.dfuse) {
        // A download from dfuIDLE is a new one: the Maple bootloader starts again at the base.
        plain_offset_ = 0;
        std::fill(erased_this_session_.begin(), erased_this_session_.end(), false);
    }
    pending_.assign(data.begin(), data.end());
    pending_block_ = block;
    state_ = kDnloadSync;
    return usb::ControlResult::ok();
}

usb::ControlResult DfuDevice::upload(uint16_t block, uint16_t length) {
    if (!(p_.attributes & kCanUpload) || (state_ != kIdle && state_ != kUploadIdle)) {
        fail(kErrStalledPkt);
        return usb::ControlResult::stalled();
    }
    std::vector<uint8_t> out;
    uint32_t address = 0;
    if (p_.dfuse) {
        if (block == 0) {
            state_ = kIdle;
            return usb::ControlResult::ok({0x00, 0x21, 0x41, 0x92});  // the commands it supports
        }
        if (block == 1) {
            fail(kErrStalledPkt);
            return usb::ControlResult::stalled();
        }
        address = address_pointer_ + (block - 2u) * p_.transfer_size;
    } else {
        const auto& alt = p_.alts.at(std::min<size_t>(alt_setting_, p_.alts.size() - 1));
        if (!alt.flash) {
            fail(kErrTarget);
            return usb::ControlResult::stalled();
        }
        address = alt.base + upload_offset_;
    }
    for (uint32_t i = 0; i < length && in_flash(address + i, 1); ++i) out.push_back(flash_.at(address + i));
    if (p_.upload_fills_request) out.resize(length, 0xFF);  // memcpy from its flash pointer, whatever is there
    if (!p_.dfuse) upload_offset_ += static_cast<uint32_t>(out.size());
    state_ = out.size() < length ? kIdle : kUploadIdle;  // a short packet ends the upload
    if (state_ == kIdle) upload_offset_ = 0;
    return usb::ControlResult::ok(std::move(out));
}

usb::ControlResult DfuDevice::get_status(Clock::time_point now) {
    uint8_t reported = state_;
    Clock::duration poll{};
    if (state_ == kDnloadSync) {
        // The first GETSTATUS after a block starts the work and always answers dfuDNBUSY (as ST's
        // ROM does; dfu-util's DfuSe commands insist on it); the next one reports the outcome.
        execute_pending(now);
        if (state_ != kError && p_.answers_busy_first) {
            state_ = kDnBusy;
            if (!busy_until_) busy_until_ = now;
            poll = *busy_until_ - now;
        } else if (state_ != kError) {
            busy_until_.reset();
            state_ = kDnloadIdle;
        }
        reported = state_;
    } else if (state_ == kDnBusy) {
        if (!busy_until_ || now >= *busy_until_) {
            busy_until_.reset();
            state_ = kDnloadIdle;
        } else {
            poll = *busy_until_ - now;
        }
        reported = state_;
    } else if (state_ == kManifestSync) {
        if (p_.dfuse) {
            // Leave: it answers MANIFEST once, then runs the application (or drops off at once).
            if (leave_without_answer_) {
                detach("leave (without answering)");
                return usb::ControlResult::vanished();
            }
            reported = state_ = kManifest;
            leave_at_ = now + 10ms;
        } else if (p_.leaves_after_manifest) {
            // It answers with the state it enters, then disconnects from USB and starts the application.
            reported = state_ = kManifestWaitReset;
            leave_at_ = now + 1ms;
        } else {
            reported = kManifest;
            state_ = (p_.attributes & kManifestationTolerant) ? kIdle : kManifestWaitReset;
        }
    }
    uint32_t poll_ms = static_cast<uint32_t>(std::chrono::ceil<std::chrono::milliseconds>(poll).count());
    if (p_.fixed_poll_ms) poll_ms = p_.fixed_poll_ms;
    return usb::ControlResult::ok({status_, static_cast<uint8_t>(poll_ms), static_cast<uint8_t>(poll_ms >> 8),
                                   static_cast<uint8_t>(poll_ms >> 16), reported, 0});
}

void DfuDevice::execute_pending(Clock::time_point now) {
    if (p_.dfuse && pending_block_ == 0) {
        dfuse_command(now);
    } else if (p_.dfuse && pending_block_ == 1) {
        fail(kErrStalledPkt);
    } else if (p_.dfuse) {
        write_block(address_pointer_ + (pending_block_ - 2u) * p_.transfer_size, pending_, now);
    } else {
        const auto& alt = p_.alts.at(std::min<size_t>(alt_setting_, p_.alts.size() - 1));
        if (!alt.flash) {
            fail(kErrTarget);
        } else {
            uint32_t at = alt.base + plain_offset_;
            plain_offset_ += static_cast<uint32_t>(pending_.size());
            if (!p_.write_buffer) {
                write_block(at, pending_, now);
            } else {
                // Bytes gather in a RAM buffer; only a full buffer is written.
                if (write_buffer_.empty()) write_buffer_address_ = at;
                write_buffer_.insert(write_buffer_.end(), pending_.begin(), pending_.end());
                if (write_buffer_.size() >= p_.write_buffer) {
                    auto full = std::exchange(write_buffer_, {});
                    write_block(write_buffer_address_, full, now);
                }
            }
        }
    }
    pending_.clear();
}

Clock::duration DfuDevice::erase_unit_at(uint32_t address) {
    auto unit = flash_.erase_unit_at(address);
    if (!unit) return {};
    FlashOutcome outcome = flash_.erase(unit->address, unit->size);
    if (!outcome.ok()) {
        fail(kErrErase);
        return {};
    }
    return outcome.busy;
}

void DfuDevice::dfuse_command(Clock::time_point now) {
    if (pending_.empty()) return fail(kErrStalledPkt);
    const uint8_t command = pending_[0];
    Clock::duration busy{};
    if (command == 0x21 && pending_.size() == 5) {
        address_pointer_ = le32(pending_, 1);
    } else if (command == 0x41 && pending_.size() == 5) {
        uint32_t address = le32(pending_, 1);
        if (!in_flash(address, 1)) return fail(kErrTarget);
        busy = erase_unit_at(address);
    } else if (command == 0x41 && pending_.size() == 1) {
        for (uint32_t at = flash_.base(); at < flash_.end();) {
            auto unit = flash_.erase_unit_at(at);
            busy += erase_unit_at(at);
            at += unit->size;
        }
    } else if (command == 0x92 && pending_.size() == 1) {
        // Read unprotect: a mass erase, then the chip resets.
        flash_.erase(flash_.base(), flash_.size());
        leave_at_ = now + 50ms;
    } else {
        return fail(kErrStalledPkt);
    }
    if (state_ == kError) return;
    if (busy > Clock::duration::zero()) busy_until_ = now + busy;
}

void DfuDevice::write_block(uint32_t address, std::span<const uint8_t> data, Clock::time_point now) {
    const uint64_t length = data.size();
    if (!in_flash(address, length)) return fail(kErrAddress);
    Clock::duration busy{};
    if (p_.erases_sector_at_start) {
        auto unit = flash_.erase_unit_at(address);
        if (unit && unit->address == address) busy += erase_unit_at(address);
        if (state_ == kError) return;
    } else if (!p_.dfuse) {
        // The Maple bootloader erases each page as the first block enters it.
        for (uint64_t at = address; at < address + length;) {
            auto unit = flash_.erase_unit_at(static_cast<uint32_t>(at));
            size_t index = (unit->address - flash_.base()) / 256;
            if (!erased_this_session_[index]) {
                erased_this_session_[index] = true;
                busy += erase_unit_at(unit->address);
                if (state_ == kError) return;
            }
            at = uint64_t(unit->address) + unit->size;
        }
    }
    // Programming works on whole write units: pad with 0xFF, which leaves cells unchanged.
    const uint32_t unit = flash_.layout().write_unit;
    uint32_t start = address / unit * unit;
    uint64_t end = (uint64_t(address) + length + unit - 1) / unit * unit;
    std::vector<uint8_t> buffer(end - start, 0xFF);
    std::copy(data.begin(), data.end(), buffer.begin() + (address - start));
    FlashOutcome outcome = flash_.program(start, buffer);
    if (!outcome.ok()) return fail(kErrWrite);
    busy += outcome.busy;
    if (busy > Clock::duration::zero()) busy_until_ = now + busy;
}

}  // namespace mcuflash::sim::dfu
