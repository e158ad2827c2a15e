#include "protocol/samba/client.hpp"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>
#include <array>
#include <cctype>

#include "core/crc.hpp"
#include "core/hexdump.hpp"
#include "entry/touch_1200.hpp"
#include "protocol/retry.hpp"

namespace mcuflash::protocol::samba {

using core::Error;
using core::ErrorKind;
using core::hex_address;

namespace {

// Identification registers (protocols.md section 3, BOSSA Device::create).
constexpr uint32_t kCpuId = 0xE000ED00;
constexpr uint32_t kDsuDid = 0x41002018;
constexpr uint32_t kChipIdSam4 = 0x400E0740;   // CHIPID_CIDR (SAM3N/S/U, SAM4), EXID at +4
constexpr uint32_t kChipIdSam3x = 0x400E0940;  // CHIPID_CIDR on SAM3X/A
constexpr uint32_t kDidMask = 0xFFFF00FF;      // without the die and revision fields
constexpr uint32_t kChipIdMask = 0x7FFFFFE0;   // without the version and extension flag
constexpr uint32_t kCortexM0Plus = 0xC600, kCortexM4 = 0xC240;
// An unidentified SAMD flash bootloader: assume the largest SAM-BA bootloader there is (Adafruit's
// SAMD51 one), so nothing of it can be overwritten.
constexpr uint32_t kUnknownBootloaderReserve = 16 * 1024;

const char* kDoubleTapHint =
    "put the board in its bootloader by hand: SAMD21/SAMD51 boards: double-tap the reset button (the LED "
    "pulses; the port may get another name); Arduino Due: press ERASE, then RESET, and use the native or "
    "programming port that appears; then run mcuflash again with --no-reset";

bool is_eefc(const targets::SamFacts& sam) { return sam.controller == "eefc"; }

// The driver of the chip's flash controller (data/chips.toml sam.controller).
std::unique_ptr<FlashController> make_controller(const targets::Chip& chip, Monitor& monitor,
                                                 const FlashGeometry& geometry) {
    const auto& sam = *chip.sam;
    if (sam.controller == "nvmctrl_d21") return make_nvmctrl_d21(monitor, geometry);
    if (sam.controller == "nvmctrl_d51") return make_nvmctrl_d51(monitor, geometry);
    std::string family = chip.family;
    for (auto& c : family) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
    // BOSSA reads every EEFC part through the applet (the SAM3 ROM's R reads flash as zeros).
    return make_eefc(monitor, geometry, family, sam.reset_controller, true);
}

uint32_t be32(const std::vector<uint8_t>& bytes, size_t offset) {
    return uint32_t(bytes[offset]) << 24 | uint32_t(bytes[offset + 1]) << 16 | uint32_t(bytes[offset + 2]) << 8 |
           bytes[offset + 3];
}

std::vector<uint8_t> be_bytes(uint32_t value) {
    return {static_cast<uint8_t>(value >> 24), static_cast<uint8_t>(value >> 16), static_cast<uint8_t>(value >> 8),
            static_cast<uint8_t>(value)};
}

}  // namespace

// ---- registration ----

namespace {
ProtocolInfo make_info(const char* name, const char* description, uint32_t baud, Transport transport) {
    ProtocolInfo info;
    info.name = name;
    info.description = description;
    info.serial = {baud, link::Parity::None};
    info.make = [transport, protocol = info.name](link::Link& link,
                                                  const ConnectOptions& options) -> std::unique_ptr<Bootloader> {
        return std::make_unique<Client>(link::link_as<link::ByteLink>(link, protocol), transport, options);
    };
    return info;
}
}  // namespace

ProtocolInfo usb_protocol_info() {
    // The baud rate means nothing to a USB CDC port; 921600 is what bossac opens it with.
    auto info = make_info("samba", "Atmel SAM-BA monitor on USB: SAM3X/SAM4 ROM, Arduino Zero and Adafruit SAMD bootloaders (bossac -U)",
                     921600, Transport::Usb);
    info.probe_order = 4;
    return info;
}

ProtocolInfo uart_protocol_info() {
    return make_info("samba-uart", "Atmel SAM-BA monitor on a UART: autobaud, XMODEM-CRC data (bossac -U false)", 115200,
                     Transport::Uart);
}

Client::Client(link::ByteLink& link, Transport transport, ConnectOptions options)
    : link_(link), monitor_(link, transport, options.warn), options_(std::move(options)) {}

Client::~Client() = default;

template <typename Step>
auto Client::with_retries(const std::string& what, Step step) {
    return protocol::with_retries(what, kRetries, [&](int) { return step(); }, [&](const Error& e) {
        monitor_.resynchronise(e);
        // The filler that ended a broken transfer may have landed on the applet.
        if (applet_) applet_->invalidate();
    });
}

// ---- connecting ----

void Client::start_monitor() {
    try {
        monitor_.start();
        return;
    } catch (const Error& e) {
        if (e.kind() != ErrorKind::NotFound || !options_.reset || !options_.ask_application ||
            monitor_.transport() != Transport::Usb)
            throw;
    }
    // Not the monitor: perhaps the application (Klipper, an Arduino sketch), which resets into the
    // bootloader when touched at 1200 baud.
    auto touch = entry::touch_1200_baud(link_);
    if (!touch.touched)
        throw Error(ErrorKind::NotFound, fmt::format("no SAM-BA monitor answers on {}", link_.describe()), kDoubleTapHint);
    if (!touch.reopened) {
        std::string where = touch.new_ports.empty() ? std::string("no new serial port appeared")
                                                    : "new serial port(s): " + fmt::format("{}", fmt::join(touch.new_ports, ", "));
        throw Error(ErrorKind::NotFound,
                    fmt::format("after the 1200-baud touch {} did not come back ({})", link_.describe(), where),
                    touch.new_ports.empty() ? kDoubleTapHint
                                            : fmt::format("the bootloader came up under another name: run again with -d {}",
                                                          touch.new_ports.front()));
    }
    try {
        monitor_.start();
    } catch (const Error& e) {
        if (e.kind() != ErrorKind::NotFound) throw;
        throw Error(ErrorKind::NotFound,
                    fmt::format("no SAM-BA monitor answers on {}, not even after the 1200-baud touch", link_.describe()),
                    kDoubleTapHint);
    }
}

DeviceInfo Client::connect() {
    start_monitor();
    DeviceInfo info;
    identify(info);
    return info;
}

std::string Client::ChipIdentity::text() const {
    return fmt::format("{} 0x{:08X}", device_id ? "DSU DID" : "CHIPID", value);
}

Client::ChipIdentity Client::read_chip_identity() {
    // Read only registers every candidate has, in BOSSA's order: a read of an address the chip does
    // not decode stops its CPU.
    ChipIdentity id;
    with_retries("identifying the chip", [&] {
        if ((monitor_.read_word(0) & 0xFF000000) == 0xEA000000)
            throw Error(ErrorKind::Usage, "this is an ARM7/ARM9 SAM (SAM7/SAM9): mcuflash supports Cortex-M SAM chips only",
                        "use bossac for this board");
        id.cpuid = monitor_.read_word(kCpuId);
        const uint32_t part = id.cpuid & 0xFFF0;
        bool rom_vector = part == kCortexM4 && (monitor_.read_word(4) & 0xFFF00000) == 0x00800000;
        if (part == kCortexM0Plus || (part == kCortexM4 && !rom_vector)) {
            id.device_id = true;
            id.value = monitor_.read_word(kDsuDid);
        } else {
            uint32_t base = kChipIdSam4;
            id.value = monitor_.read_word(base);
            if (id.value == 0) id.value = monitor_.read_word(base = kChipIdSam3x);
            id.extension = monitor_.read_word(base + 4);
        }
        return 0;
    });
    return id;
}

const targets::Chip* Client::chip_with(const ChipIdentity& id) const {
    const uint32_t mask = id.device_id ? kDidMask : kChipIdMask;
    const targets::Chip* found = nullptr;
    for (const auto& [name, chip] : options_.knowledge_base().chips()) {
        if (!chip.sam || chip.signature.size() < 4) continue;
        if (!is_eefc(*chip.sam) != id.device_id) continue;
        if ((be32(chip.signature, 0) & mask) != (id.value & mask)) continue;
        // SAM4E parts share CHIPID and differ in EXID.
        if (chip.signature.size() >= 8 && be32(chip.signature, 4) != id.extension) continue;
        found = &chip;
    }
    return found;
}

std::pair<const targets::Bootloader*, uint32_t> Client::flash_bootloader() {
    const auto& kb = options_.knowledge_base();
    if (!options_.bootloader.empty()) {
        const auto* bootloader = kb.find_bootloader(options_.bootloader);
        if (!bootloader || !bootloader->size_on(chip_->name))
            throw Error(ErrorKind::Usage, fmt::format("the knowledge base has no bootloader '{}' for the {}",
                                                      options_.bootloader, chip_->name));
        return {bootloader, *bootloader->size_on(chip_->name)};
    }
    // A ROM monitor (no extensions) keeps no flash; a flash bootloader keeps the start. Only a chip
    // that has one in ROM (SAM3/SAM4, not SAMD) may be running it: the version text alone, which
    // carries no checksum, must not decide that the whole flash is the application's.
    const auto candidates = kb.bootloaders_for("samba", chip_->name);
    const bool chip_has_rom_monitor = std::ranges::any_of(candidates, [&](const targets::Bootloader* candidate) {
        return candidate->size_on(chip_->name) == 0u;
    });
    const bool rom_monitor =
        chip_has_rom_monitor && monitor_.version_text().find("[Arduino:") == std::string::npos;
    const targets::Bootloader* bootloader = nullptr;
    uint32_t reserved = 0;
    for (const auto* candidate : candidates) {
        auto size = candidate->size_on(chip_->name);
        if (!size || (*size == 0) != rom_monitor) continue;
        if (!bootloader || *size > reserved) {
            bootloader = candidate;
            reserved = *size;
        }
    }
    if (!bootloader && !rom_monitor) {
        reserved = kUnknownBootloaderReserve;
        if (options_.warn)
            options_.warn(fmt::format("unidentified SAM-BA bootloader \"{}\" on the {}: keeping the first {} KiB of "
                                      "flash for it",
                                      monitor_.version_text(), chip_->name, reserved / 1024));
    }
    return {bootloader, reserved};
}

void Client::describe_boot_protection(DeviceInfo& info, uint32_t reserved) {
    // SAM-BA commands carry no checksum, so only a fuse stops a command damaged on the line from
    // erasing the bootloader.
    if (reserved == 0) return;
    auto guarded = controller_->boot_protection();
    if (!guarded) return;
    if (*guarded >= reserved) {
        info.details.emplace_back("bootloader protection",
                                  fmt::format("BOOTPROT keeps the first {} KiB (the bootloader's {} KiB) from erases "
                                              "and writes",
                                              *guarded / 1024, reserved / 1024));
        return;
    }
    const std::string text = fmt::format(
        "none from the chip (BOOTPROT covers {} KiB of the bootloader's {} KiB): mcuflash sends nothing there and "
        "reads each row address back before erasing, but another tool, or a command damaged on the line, could erase "
        "it (setting BOOTPROT protects it: OpenOCD's `{} bootloader {}` through SWD)",
        *guarded / 1024, reserved / 1024, chip_->family == "samd51" ? "atsame5" : "at91samd", reserved);
    info.details.emplace_back("bootloader protection", text);
    if (options_.warn) options_.warn("the bootloader is not protected by the chip: " + text);
}

void Client::identify(DeviceInfo& info) {
    const ChipIdentity id = read_chip_identity();
    chip_ = chip_with(id);
    info.bootloader_text = "SAM-BA " + monitor_.version_text();
    info.signature = be_bytes(id.value);
    info.details.emplace_back("CPUID", fmt::format("0x{:08X}", id.cpuid));
    info.details.emplace_back(id.device_id ? "DSU DID" : "CHIPID", fmt::format("0x{:08X}", id.value));
    if (!id.device_id && id.extension) info.details.emplace_back("CHIPID EXID", fmt::format("0x{:08X}", id.extension));
    const auto& ext = monitor_.extensions();
    info.details.emplace_back("monitor", fmt::format("{} mode, extensions: {}{}{}{}",
                                                     monitor_.transport() == Transport::Usb ? "USB" : "UART",
                                                     ext.erase ? "X" : "", ext.buffered_write ? "Y" : "",
                                                     ext.checksum ? "Z" : "",
                                                     ext.erase || ext.buffered_write || ext.checksum ? "" : "none"));
    if (!chip_)
        throw Error(ErrorKind::Unsupported,
                    fmt::format("mcuflash does not know this SAM chip ({}, CPUID 0x{:08X})", id.text(), id.cpuid),
                    "its flash geometry and identifier belong in data/chips.toml");
    if (!options_.chip.empty()) {
        const auto& wanted = options_.knowledge_base().chip(options_.chip);
        if (&wanted != chip_)
            throw Error(ErrorKind::Usage,
                        fmt::format("the device is a {} ({}), not the {} expected (--chip, --board or Klipper's "
                                    ".config)",
                                    chip_->name, id.text(), wanted.name));
    }

    const auto& sam = *chip_->sam;
    geometry_ = {chip_->flash_base, chip_->flash_size, chip_->page_size, sam.planes, sam.erase_unit};
    controller_ = make_controller(*chip_, monitor_, geometry_);
    applet_ = std::make_unique<WordCopyApplet>(monitor_, sam.applet_area, sam.stack_top);
    buffer_ = applet_->end();
    buffer_size_ = Monitor::kMaxBuffer;

    const auto [bootloader, reserved] = flash_bootloader();
    app_start_ = chip_->flash_base + reserved;
    info.chip = chip_->name;
    info.bootloader = bootloader ? bootloader->name : "";
    info.flash_base = chip_->flash_base;
    info.flash_size = chip_->flash_size;
    info.app_start = app_start_;
    info.app_end = chip_->flash_base + chip_->flash_size;
    info.page_size = capabilities().write_unit;
    info.details.emplace_back("flash controller", controller_->name());
    info.details.emplace_back("flash pages", fmt::format("{} of {} bytes{}", chip_->flash_size / chip_->page_size,
                                                   chip_->page_size,
                                                   geometry_.planes > 1 ? fmt::format(" in {} planes", geometry_.planes) : ""));
    describe_boot_protection(info, reserved);
}

void Client::require_chip(const char* action) const {
    if (!controller_)
        throw Error(ErrorKind::Usage, fmt::format("{} needs a connected, identified chip", action));
}

Capabilities Client::capabilities() const {
    Capabilities caps;
    caps.can_read = true;
    caps.can_checksum = monitor_.extensions().checksum;
    if (caps.can_checksum) {
        caps.checksum_name = "CRC-16/XMODEM";
        caps.local_checksum = [](std::span<const uint8_t> bytes) -> uint32_t { return core::crc16_xmodem(bytes); };
    }
    if (!controller_) return caps;
    const uint32_t unit = controller_->erase_unit();
    caps.erases_on_write = unit == 0;
    // A whole erase unit (up to one buffer) per write where the flash is erased first: the 0xFF the
    // plan pads with leaves erased flash as it is, and fewer, larger transfers are faster.
    caps.write_unit = unit ? std::min(unit, buffer_size_) : geometry_.page_size;
    if (unit)
        for (uint32_t at = geometry_.flash_base; at < geometry_.flash_base + geometry_.flash_size; at += unit)
            caps.erase_units.push_back({at, unit});
    return caps;
}

// ---- erasing ----

void Client::erase(uint32_t address, uint32_t length) {
    require_chip("erasing");
    const uint64_t end = uint64_t(address) + length;
    const uint64_t flash_end = uint64_t(geometry_.flash_base) + geometry_.flash_size;
    if (address < app_start_ || end > flash_end)
        throw Error(ErrorKind::Unsafe,
                    fmt::format("refusing to erase {}-{}: outside the application region {}-{}", hex_address(address),
                                hex_address(static_cast<uint32_t>(end - 1)), hex_address(app_start_),
                                hex_address(static_cast<uint32_t>(flash_end - 1))));
    const uint32_t unit = controller_->erase_unit();
    if (unit == 0) return;  // pages are erased as they are written
    if (address % unit || length % unit)
        throw Error(ErrorKind::Usage, fmt::format("{}-{} is not made of whole {}-byte erase units", hex_address(address),
                                                  hex_address(static_cast<uint32_t>(end - 1)), unit));
    // Row by row through the flash controller, never the bootloader's X ("erase from here to the end
    // of flash"): the controller's address register is read back before each erase, while a damaged
    // X erases from wherever the damage points, the bootloader included where BOOTPROT is off.
    for (uint32_t at = address; at < end; at += unit)
        with_retries(fmt::format("erasing {}-{}", hex_address(at), hex_address(at + unit - 1)), [&] {
            controller_->erase(at, unit);
            return 0;
        });
}

// ---- writing ----

void Client::write(uint32_t address, std::span<const uint8_t> data) {
    require_chip("writing");
    const uint32_t page = geometry_.page_size;
    // The bootloader check comes first: a write into the bootloader is refused as unsafe, aligned or not.
    if (address < app_start_ || uint64_t(address) + data.size() > uint64_t(geometry_.flash_base) + geometry_.flash_size)
        throw Error(ErrorKind::Unsafe,
                    fmt::format("refusing to write {} bytes at {}: the application region is {}-{}", data.size(),
                                hex_address(address), hex_address(app_start_),
                                hex_address(geometry_.flash_base + geometry_.flash_size - 1)),
                    "the bootloader lives below the application start; writing there would brick the board");
    if (address % page || data.size() % page)
        throw Error(ErrorKind::Usage, fmt::format("SAM-BA writes whole {}-byte pages: {} + {} bytes is not aligned",
                                                  page, hex_address(address), data.size()));
    const bool buffered = monitor_.extensions().buffered_write;
    for (size_t offset = 0; offset < data.size(); offset += buffer_size_) {
        auto chunk = data.subspan(offset, std::min<size_t>(buffer_size_, data.size() - offset));
        const uint32_t at = address + static_cast<uint32_t>(offset);
        const auto length = static_cast<uint32_t>(chunk.size());
        with_retries(fmt::format("writing {} bytes at {}", length, hex_address(at)), [&] {
            monitor_.send(buffer_, chunk);
            if (buffered) monitor_.copy_to_flash(buffer_, at, length);
            else controller_->program_pages(at, buffer_, length, *applet_);
            return 0;
        });
    }
}

// ---- reading and checking ----

std::vector<uint8_t> Client::read(uint32_t address, uint32_t length) {
    if (!controller_ || controller_->monitor_reads_flash())
        return with_retries(fmt::format("reading {} bytes at {}", length, hex_address(address)),
                            [&] { return monitor_.receive(address, length); });
    // Flash through the applet into SRAM, then out of SRAM: whole words.
    const uint32_t first = address & ~3u;
    const uint64_t last = (uint64_t(address) + length + 3) & ~uint64_t(3);
    Bytes words;
    words.reserve(static_cast<size_t>(last - first));
    for (uint64_t at = first; at < last;) {
        const auto chunk = static_cast<uint32_t>(std::min<uint64_t>(buffer_size_, last - at));
        const auto from = static_cast<uint32_t>(at);
        Bytes part = with_retries(fmt::format("reading {} bytes at {}", chunk, hex_address(from)), [&] {
            applet_->copy(buffer_, from, chunk / 4);
            return monitor_.receive(buffer_, chunk);
        });
        words.insert(words.end(), part.begin(), part.end());
        at += chunk;
    }
    const size_t skip = address - first;
    return Bytes(words.begin() + static_cast<long>(skip), words.begin() + static_cast<long>(skip + length));
}

uint16_t Client::checksum_block(uint32_t address, uint32_t length) {
    return with_retries(fmt::format("checksum of {} bytes at {}", length, hex_address(address)),
                        [&] { return monitor_.checksum(address, length); });
}

std::optional<uint32_t> Client::checksum(uint32_t address, uint32_t length) {
    if (!monitor_.extensions().checksum) return std::nullopt;
    // Z takes at most one buffer's worth. CRC-16/XMODEM (init 0, no final xor) is linear, so the CRC
    // of A then B is the CRC of A continued over |B| zero bytes, xor the CRC of B.
    static const Bytes zeros(Monitor::kMaxBuffer, 0);
    uint16_t total = 0;
    for (uint32_t done = 0; done < length;) {
        const uint32_t chunk = std::min(Monitor::kMaxBuffer, length - done);
        const uint16_t part = checksum_block(address + done, chunk);
        total = static_cast<uint16_t>(core::crc16_xmodem(std::span(zeros).first(chunk), total) ^ part);
        done += chunk;
    }
    return total;
}

// ---- leaving ----

void Client::start_application() {
    require_chip("starting the application");
    if (is_eefc(*chip_->sam)) {
        // The ROM monitor runs while GPNVM bit 1 is clear (the 1200-baud touch clears it).
        bool changed = with_retries("setting boot from flash (GPNVM bit 1)", [&] { return controller_->set_boot_from_flash(); });
        if (changed && options_.warn) options_.warn("GPNVM bit 1 set: the chip boots from flash from now on");
    }
    leave();
}

void Client::leave() {
    require_chip("resetting the chip");
    send_as_it_leaves([&] { controller_->reset(); });
}

}  // namespace mcuflash::protocol::samba
