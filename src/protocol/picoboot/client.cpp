#include "protocol/picoboot/client.hpp"

#include <algorithm>
#include <utility>

#include <fmt/format.h>

#include "core/error.hpp"
#include "core/hexdump.hpp"

namespace mcuflash::protocol::picoboot {

using core::Error;
using core::ErrorKind;
using core::hex_address;

namespace {

const char* kBootselHint =
    "start the boot ROM: hold the BOOTSEL button while plugging the board in (or while pressing reset); it "
    "then shows up as USB 2e8a:0003 (RP2040) or 2e8a:000f (RP2350). The boot ROM is in ROM: a failed flash "
    "cannot damage it";

bool blank(std::span<const uint8_t> bytes) {
    return std::all_of(bytes.begin(), bytes.end(), [](uint8_t b) { return b == 0xFF; });
}

}  // namespace

Client::Client(link::UsbDevice& usb, ConnectOptions options) : usb_(usb), options_(std::move(options)) {}

Client::~Client() {
    // Pages of a half-written sector that the plan did not write get their content back even when
    // the command ends without a read or a start (--no-verify --no-start).
    try {
        close_sector();
    } catch (...) {
    }
}

DeviceInfo Client::connect() {
    const auto id = usb_.identity();
    if (id.vendor != kVendor || (id.product != kProduct && id.product != kProductRp2350))
        throw Error(ErrorKind::NotFound,
                    fmt::format("{} is USB {:04x}:{:04x}, not an RP2040 or RP2350 in its boot ROM (2e8a:0003, "
                                "2e8a:000f)",
                                usb_.describe(), id.vendor, id.product),
                    kBootselHint);
    rp2350_ = id.product == kProductRp2350;
    const std::string rom_chip = rp2350_ ? "rp2350" : "rp2040";
    const auto& kb = options_.knowledge_base();
    const targets::Bootloader* bootloader =
        options_.bootloader.empty() ? kb.bootloader_by_usb_id(id.vendor, id.product) : kb.find_bootloader(options_.bootloader);
    if (bootloader && bootloader->protocol != "picoboot") bootloader = nullptr;
    const targets::Chip& chip = kb.chip(options_.chip.empty() ? rom_chip : options_.chip);
    if (chip.family != rom_chip)
        throw Error(ErrorKind::Usage,
                    fmt::format("{:04x}:{:04x} is the {}'s boot ROM, but --chip says {} (a {})", id.vendor, id.product,
                                rom_chip, chip.name, chip.family),
                    fmt::format("leave --chip out, or give --chip {}", rom_chip));

    const auto found = find_interface(usb_.configuration_descriptor());
    if (!found)
        throw Error(ErrorKind::NotFound,
                    fmt::format("{} has no PICOBOOT interface (a vendor interface with a bulk OUT and a bulk IN "
                                "endpoint)",
                                usb_.describe()),
                    "the ROM was started with PICOBOOT disabled: start BOOTSEL mode with the button instead");
    interface_ = *found;
    usb_.claim_interface(interface_.number);
    try {
        reset_interface();
    } catch (Error& e) {
        if (e.kind() == ErrorKind::Io) e.with_hint(kBootselHint);
        throw e.during("resetting the PICOBOOT interface");
    }
    run(exclusive_access(next_token_++, Exclusive::Exclusive), {}, kCommandTimeoutMs, "taking exclusive access",
        std::nullopt);
    run(exit_xip(next_token_++), {}, kCommandTimeoutMs, "leaving XIP mode", std::nullopt);

    flash_base_ = chip.flash_base;
    flash_end_ = chip.flash_base + chip.flash_size;
    connected_ = true;
    open_.reset();

    DeviceInfo info;
    info.chip = chip.name;
    info.bootloader = bootloader ? bootloader->name : "";
    info.bootloader_text = fmt::format("{} boot ROM (PICOBOOT, {:04x}:{:04x})", rp2350_ ? "RP2350" : "RP2040", id.vendor, id.product);
    info.signature = {static_cast<uint8_t>(id.vendor >> 8), static_cast<uint8_t>(id.vendor),
                      static_cast<uint8_t>(id.product >> 8), static_cast<uint8_t>(id.product)};
    info.flash_base = chip.flash_base;
    info.flash_size = chip.flash_size;
    // The boot ROM is not in flash: all of it is the application's (boot2 in its first 256 bytes is
    // part of Klipper's "No bootloader" image). The plan's check for a bootloader at the start of
    // flash looks for a vector table, which an RP2040 image does not start with, so no boot_area_end.
    const uint32_t reserved = bootloader ? bootloader->size_on(chip.name).value_or(0) : 0;
    info.app_start = chip.flash_base + reserved;
    info.app_end = chip.flash_base + chip.flash_size;
    info.page_size = kPageSize;
    info.details.push_back({"usb", fmt::format("{:04x}:{:04x} bcdDevice {:04x}{}", id.vendor, id.product, id.bcd_device,
                                               id.serial.empty() ? "" : " serial " + id.serial)});
    info.details.push_back({"interface", fmt::format("{} (bulk OUT {:02X}, IN {:02X})", interface_.number,
                                                     interface_.out_endpoint, interface_.in_endpoint)});
    info.details.push_back({"flash", fmt::format("{} KiB at {}, {}-byte sectors, {}-byte pages", chip.flash_size / 1024,
                                                 hex_address(chip.flash_base), kSectorSize, kPageSize)});
    return info;
}

Capabilities Client::capabilities() const {
    Capabilities caps;
    caps.can_read = true;
    caps.write_unit = kPageSize;
    caps.verify_read_size = 4 * kReadChunk;  // each READ is three USB transfers: fewer, larger ones
    // The client erases the sectors itself (keeping what the image does not cover): the plan sees
    // no erase units, and hands pages in address order, sector after sector.
    caps.writes_in_address_order = true;
    return caps;
}

void Client::reset_interface() {
    usb_.clear_halt(interface_.in_endpoint);
    usb_.clear_halt(interface_.out_endpoint);
    usb_.control_out({kInterfaceResetRequestType, kInterfaceReset, 0, interface_.number, 0}, {}, 1000);
}

std::optional<CommandStatus> Client::command_status() {
    auto bytes = usb_.control_in({kCommandStatusRequestType, kGetCommandStatus, 0, interface_.number, kStatusSize}, 1000);
    return decode_status(bytes);
}

std::vector<uint8_t> Client::run(const std::vector<uint8_t>& command, std::span<const uint8_t> data_out,
                                 unsigned timeout_ms, const std::string& what, std::optional<uint32_t> address) {
    const uint8_t id = command[8];
    const uint32_t transfer = uint32_t{command[12]} | (uint32_t{command[13]} << 8) | (uint32_t{command[14]} << 16) |
                              (uint32_t{command[15]} << 24);
    const bool in = id & 0x80;
    std::vector<uint8_t> data;
    try {
        usb_.endpoint_out(interface_.out_endpoint, command, kCommandTimeoutMs);
        if (transfer && in) {
            while (data.size() < transfer) {
                auto part = usb_.endpoint_in(interface_.in_endpoint, transfer - data.size(), timeout_ms);
                if (part.empty())
                    throw Error(ErrorKind::Protocol, fmt::format("{} ended after {} of {} bytes", command_name(id),
                                                                 data.size(), transfer));
                data.insert(data.end(), part.begin(), part.end());
            }
        } else if (transfer) {
            usb_.endpoint_out(interface_.out_endpoint, data_out, timeout_ms);
        }
        // The status phase goes the other way: a zero-length packet once the ROM is done.
        if (in) {
            usb_.endpoint_out(interface_.out_endpoint, {}, timeout_ms);
        } else {
            auto ack = usb_.endpoint_in(interface_.in_endpoint, 64, timeout_ms);
            if (!ack.empty())
                throw Error(ErrorKind::Protocol,
                            fmt::format("{} answered {} bytes where the zero-length status belongs", command_name(id),
                                        ack.size()));
        }
        return data;
    } catch (Error& e) {
        if (e.kind() == ErrorKind::Io) {
            e.with_hint(fmt::format("the board left the bus. {}", kBootselHint));
            if (address) e.at_address(*address);
            throw e.during(what);
        }
        if (e.kind() != ErrorKind::Protocol && e.kind() != ErrorKind::Timeout) throw;
        // The ROM halts its endpoints on an error: ask why, then make the interface usable again.
        std::optional<CommandStatus> status;
        try {
            status = command_status();
        } catch (const Error&) {
        }
        try {
            reset_interface();
        } catch (const Error&) {
        }
        std::string where = address ? " at " + hex_address(*address) : std::string();
        std::string message;
        if (status && status->code != 0)
            message = fmt::format("the boot ROM refused {}{}: {} (status {})", command_name(id), where,
                                  status_words(status->code), status->code);
        else
            message = fmt::format("{}{}: {}{}", command_name(id), where, e.what(),
                                  status ? "" : "; the ROM's command status could not be read");
        Error refused(e.kind(), message, e.hint().empty() ? kBootselHint : e.hint());
        if (address) refused.at_address(*address);
        throw refused.during(what);
    }
}

void Client::erase_sector(uint32_t address) {
    run(flash_erase(next_token_++, address, kSectorSize), {}, kCommandTimeoutMs + kEraseMsPerSector,
        "erasing a flash sector", address);
    ++sectors_erased_;
}

void Client::program_page(uint32_t address, std::span<const uint8_t> page, const char* what) {
    run(picoboot::write(next_token_++, address, static_cast<uint32_t>(page.size())), page, kTransferTimeoutMs, what, address);
}

void Client::open_sector(uint32_t address) {
    const bool covered = std::any_of(coming_.begin(), coming_.end(), [address](const EraseUnit& r) {
        return r.address <= address && uint64_t{address} + kSectorSize <= r.end();
    });
    if (covered) {  // nothing of it to keep: no need to read it (erasing a blank sector costs the same)
        erase_sector(address);
        open_ = OpenSector{address, {}, address};
        return;
    }
    OpenSector sector{address, read(address, kSectorSize), address};
    if (!blank(sector.before)) erase_sector(address);
    open_ = std::move(sector);
}

void Client::flush_pending() {
    if (!open_ || open_->pending.empty()) return;
    const auto pages = std::exchange(open_->pending, {});
    program_page(open_->pending_at, pages, "writing pages");
}

void Client::restore_pages(uint32_t from, uint32_t to) {
    if (!open_ || open_->before.empty()) return;  // the plan writes the whole sector
    for (uint32_t at = from; at < to; at += kPageSize) {
        auto old = std::span(open_->before).subspan(at - open_->address, kPageSize);
        if (blank(old)) continue;  // erased already
        program_page(at, old, "writing back a page the image does not cover");
        ++pages_restored_;
    }
}

void Client::close_sector() {
    if (!open_) return;
    flush_pending();
    restore_pages(open_->next_page, open_->address + kSectorSize);
    open_.reset();
}

void Client::write(uint32_t address, std::span<const uint8_t> data) {
    if (!connected_) throw std::logic_error("picoboot: write before connect");
    if (address % kPageSize != 0 || data.size() % kPageSize != 0)
        throw std::logic_error(fmt::format("picoboot: write at {} of {} bytes is not whole {}-byte pages",
                                           hex_address(address), data.size(), kPageSize));
    if (address < flash_base_ || uint64_t(address) + data.size() > flash_end_)
        throw Error(ErrorKind::Unsafe, fmt::format("{}+{} is outside the flash ({}-{})", hex_address(address),
                                                   data.size(), hex_address(flash_base_), hex_address(flash_end_ - 1)))
            .at_address(address);
    for (uint32_t offset = 0; offset < data.size(); offset += kPageSize) {
        const uint32_t at = address + offset;
        const uint32_t sector = at & ~(kSectorSize - 1);
        if (open_ && (open_->address != sector || at < open_->next_page)) close_sector();
        if (!open_) open_sector(sector);
        if (open_->next_page != at) {
            flush_pending();
            restore_pages(open_->next_page, at);  // pages of this sector the plan stepped over
        }
        if (open_->pending.empty()) open_->pending_at = at;
        const auto page = data.subspan(offset, kPageSize);
        open_->pending.insert(open_->pending.end(), page.begin(), page.end());
        open_->next_page = at + kPageSize;
    }
}

std::vector<uint8_t> Client::read(uint32_t address, uint32_t length) {
    if (!connected_) throw std::logic_error("picoboot: read before connect");
    // A read of the sector being written would see pages not yet written back: finish it first.
    if (open_ && address < open_->address + kSectorSize && uint64_t(address) + length > open_->address) close_sector();
    std::vector<uint8_t> out;
    out.reserve(length);
    for (uint32_t done = 0; done < length;) {
        const uint32_t n = std::min(kReadChunk, length - done);
        auto part = run(picoboot::read(next_token_++, address + done, n), {}, kTransferTimeoutMs, "reading flash",
                        address + done);
        out.insert(out.end(), part.begin(), part.end());
        done += n;
    }
    return out;
}

void Client::start_application() {
    if (!connected_) return;
    close_sector();
    send_as_it_leaves([&] {
        run(rp2350_ ? reboot2(next_token_++, 0, kRebootDelayMs) : reboot(next_token_++, 0, 0, kRebootDelayMs), {},
            kCommandTimeoutMs, "rebooting into the application", std::nullopt);
    });
    connected_ = false;
}

ProtocolInfo protocol_info() {
    return usb_protocol_info<Client>(
        "picoboot",
        "the RP2040 and RP2350 boot ROMs' PICOBOOT USB interface (2e8a:0003, 2e8a:000f; picotool, Klipper's rp2040_flash)",
        kBootselHint);
}

}  // namespace mcuflash::protocol::picoboot
