#include "protocol/hid_stm32/client.hpp"

#include <optional>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include "core/error.hpp"
#include "core/hexdump.hpp"

namespace mcuflash::protocol::hid_stm32 {

using core::Error;
using core::ErrorKind;
using core::hex_address;

namespace {

const char* kEnterBootloader =
    "start the STM32 HID bootloader (USB 1209:beba): press reset while holding BOOT1 (or the board's "
    "BOOT button), or let Klipper reboot into it, then run the command again";

std::string chips_of(const targets::Bootloader& bootloader) {
    std::vector<std::string> names;
    for (const auto& [chip, size] : bootloader.sizes) names.push_back(fmt::format("{} ({} KiB)", chip, size / 1024));
    return fmt::format("{}", fmt::join(names, ", "));
}

}  // namespace

Client::Client(link::HidDevice& hid, ConnectOptions options) : hid_(hid), options_(std::move(options)) {}

DeviceInfo Client::connect() {
    const auto id = hid_.identity();
    if (id.vendor != kVendor || id.product != kProduct)
        throw Error(ErrorKind::NotFound,
                    fmt::format("{} is USB {:04x}:{:04x}, not the STM32 HID bootloader (1209:beba)", hid_.describe(),
                                id.vendor, id.product),
                    kEnterBootloader);
    if (id.bcd_device < kFirstSupportedRelease)
        throw Error(ErrorKind::Unsupported,
                    fmt::format("this STM32 HID bootloader is release {:x}.{:02x}; pages are acknowledged from 3.00 on",
                                id.bcd_device >> 8, id.bcd_device & 0xFF),
                    "install a newer STM32 HID bootloader (3.00 or later) on the board");
    const auto& kb = options_.knowledge_base();
    // The bootloader cannot say which build it is (2 KiB or 16 KiB on an F103): --bootloader, else the
    // board's (the Eryone ER-20's 16 KiB build), else the usual build for its USB id.
    const targets::Bootloader* bootloader = nullptr;
    if (!options_.bootloader.empty()) {
        bootloader = kb.find_bootloader(options_.bootloader);
    } else if (auto board = kb.boards().find(options_.board); board != kb.boards().end()) {
        for (const auto& name : board->second.bootloaders)
            if (const auto* named = kb.find_bootloader(name); named && named->protocol == "hid-stm32") bootloader = named;
    }
    if (!bootloader) bootloader = kb.bootloader_by_usb_id(id.vendor, id.product);
    if (!bootloader || bootloader->protocol != "hid-stm32") bootloader = kb.find_bootloader("hid_stm32");
    if (!bootloader) throw Error(ErrorKind::Unsupported, "the knowledge base has no STM32 HID bootloader (hid_stm32)");

    // The bootloader does not say which chip it runs on, and the application start depends on it
    // (2 KiB on F1, 16 KiB on F4). Without --chip (or --board) the build is told from endpoint 0's
    // packet size (8 bytes in the F1 build's own USB stack, 64 in ST's library on F4), and the chip
    // is assumed.
    std::string chip_name = options_.chip;
    if (chip_name.empty()) {
        std::optional<uint8_t> packet0;
        std::string unread;
        // A stalled or unanswered request is the line's: asked three times before giving up.
        for (int attempt = 0; attempt < 3 && !packet0; ++attempt) {
            try {
                auto device = hid_.device_descriptor();
                if (device.size() >= 8) packet0 = device[7];
                else unread = fmt::format("its device descriptor has {} bytes", device.size());
            } catch (const Error& e) {
                if (e.kind() != ErrorKind::Protocol && e.kind() != ErrorKind::Timeout) throw;
                unread = e.what();
            }
        }
        if (!packet0)
            throw Error(ErrorKind::Usage,
                        fmt::format("the STM32 HID bootloader does not tell which chip it runs on, and its USB device "
                                    "descriptor, which tells its build, could not be read ({}): give it with --chip",
                                    unread),
                        fmt::format("chips it is built for: {}", chips_of(*bootloader)));
        // The chip with the least flash among those the build is known on: the bootloader cannot be
        // read back, so an image is never sent past the end of a smaller chip on a guess.
        const std::string family = *packet0 == 8 ? "stm32f1" : "stm32f4";
        const targets::Chip* smallest = nullptr;
        for (const auto& [name, reserved] : bootloader->sizes) {
            const targets::Chip* candidate = kb.find_chip(name);
            if (candidate && candidate->family == family && (!smallest || candidate->flash_size < smallest->flash_size))
                smallest = candidate;
        }
        if (!smallest)
            throw Error(ErrorKind::Usage,
                        fmt::format("the STM32 HID bootloader looks like its {} build, which the knowledge base does "
                                    "not know on any chip: give it with --chip", family),
                        fmt::format("chips it is built for: {}", chips_of(*bootloader)));
        chip_name = smallest->name;
        if (options_.warn)
            options_.warn(fmt::format("the STM32 HID bootloader does not say which chip it runs on; it looks like its "
                                      "{} build: assuming an {}, the one with the least flash ({} KiB; give --chip "
                                      "or --board for a larger one)",
                                      *packet0 == 8 ? "STM32F1" : "STM32F4", chip_name, smallest->flash_size / 1024));
    }
    const targets::Chip& chip = kb.chip(chip_name);
    f1_build_ = chip.family == "stm32f1";
    const auto size = bootloader->size_on(chip.name);
    if (!size)
        throw Error(ErrorKind::Unsupported,
                    fmt::format("the {} bootloader is not known on the {}, so where the application starts is not known",
                                bootloader->name, chip.name),
                    fmt::format("chips it is built for: {}", chips_of(*bootloader)));

    app_start_ = chip.flash_base + *size;
    flash_end_ = chip.flash_base + chip.flash_size;
    next_ = app_start_;
    connected_ = true;

    DeviceInfo info;
    info.chip = chip.name;
    info.bootloader = bootloader->name;
    info.bootloader_text = fmt::format("STM32 HID bootloader {:x}.{:02x}", id.bcd_device >> 8, id.bcd_device & 0xFF);
    info.flash_base = chip.flash_base;
    info.flash_size = chip.flash_size;
    info.app_start = app_start_;
    info.app_end = flash_end_;
    info.page_size = kPageSize;
    info.details.push_back({"application", fmt::format("from {} (the bootloader keeps {} KiB)", hex_address(app_start_), *size / 1024)});
    info.details.push_back({"reports", hid_.output_route()});
    info.details.push_back({"read-back", "none: the STM32 HID bootloader is write-only"});
    return info;
}

Capabilities Client::capabilities() const {
    Capabilities caps;
    caps.can_read = false;
    caps.write_unit = kPageSize;
    caps.writes_in_address_order = true;
    return caps;
}

[[noreturn]] void Client::fail(Error& e, const std::string& what, uint32_t address) {
    if (e.kind() == ErrorKind::Io)
        e.with_hint(fmt::format("the board left the bus; {}. The bootloader itself is intact", kEnterBootloader));
    else if (e.kind() == ErrorKind::Timeout || e.kind() == ErrorKind::Protocol)
        e.with_hint(fmt::format("the page at {} may be half written; {}", hex_address(address), kEnterBootloader));
    throw e.during(fmt::format("{} at {}", what, hex_address(address)));
}

// A report cannot be sent again: the bootloader counts every one it got, so a retry would shift
// the rest of the page. Failures end the session.
void Client::send_report(const std::vector<uint8_t>& report, const std::string& what, uint32_t address) {
    try {
        hid_.write_report(report, kReportTimeoutMs);
    } catch (Error& e) {
        fail(e, what, address);
    }
}

void Client::wait_for_ack(uint32_t address) {
    try {
        // Input reports that are not acknowledgements are skipped, as hid-flash does, within the limit.
        for (int reports = 0; reports < 64; ++reports) {
            auto input = hid_.read_report(kAckSize, kAckTimeoutMs);
            if (auto ack = decode_ack(input)) {
                if (ack->wants_double_pages) double_pages_ = true;
                return;
            }
        }
        throw Error(ErrorKind::Protocol, "the bootloader sent 64 input reports and none acknowledged the page");
    } catch (Error& e) {
        fail(e, "waiting for the page's acknowledgement", address);
    }
}

bool Client::acknowledged_soon(const char* after) {
    try {
        return decode_ack(hid_.read_report(kAckSize, kDrainTimeoutMs)).has_value();
    } catch (Error& e) {
        if (e.kind() != ErrorKind::Timeout) fail(e, after, app_start_);
        return false;
    }
}

void Client::begin() {
    if (f1_build_) {
        start_f1_session();
    } else {
        // The F4 build takes a command wherever its page buffer stands, and does not acknowledge it.
        send_report(command_report(Command::ResetPages), "sending <reset pages>", app_start_);
        acknowledged_soon("after <reset pages>");
    }
    started_ = true;
    next_ = app_start_;
}

// The F103 build looks for a command only in the first 64 bytes of its page buffer. A session that
// ended mid-page (Ctrl-C between two reports, a killed process, a pulled cable) leaves the buffer
// part-filled, and a <reset pages> then lands in it as data: every page after it would go one step
// off, on a bootloader that cannot be read back. It acknowledges a command it took and a full
// buffer alike, so <reset pages> goes until two in a row are acknowledged: the second one then sat
// at the start of the buffer and was taken. From a part-filled buffer, that costs one page of
// command bytes, written where the interrupted session had got to (in the application area).
void Client::start_f1_session() {
    int in_a_row = 0;
    for (int sent = 0; in_a_row < 2; ++sent) {
        if (sent == 2 + kPageSize / kReportSize * 2) {
            Error e(ErrorKind::Protocol, fmt::format("{} <reset pages> commands sent, and never two acknowledged in a row",
                                                     sent));
            fail(e, "starting the session", app_start_);
        }
        send_report(command_report(Command::ResetPages), "sending <reset pages>", app_start_);
        in_a_row = acknowledged_soon("after <reset pages>") ? in_a_row + 1 : 0;
    }
}

void Client::send_page(uint32_t address, std::span<const uint8_t> page, const char* what) {
    for (const auto& report : page_reports(page)) send_report(report, what, address);
    wait_for_ack(address);
    ++pages_sent_;
    next_ = address + kPageSize;
}

void Client::write(uint32_t address, std::span<const uint8_t> data) {
    if (!connected_) throw std::logic_error("hid-stm32: write before connect");
    if (address % kPageSize != 0 || data.size() % kPageSize != 0)
        throw std::logic_error(fmt::format("hid-stm32: write at {} of {} bytes is not whole {}-byte pages",
                                           hex_address(address), data.size(), kPageSize));
    if (address < app_start_)
        throw Error(ErrorKind::Unsafe,
                    fmt::format("{} is inside the STM32 HID bootloader (the application starts at {}); nothing was written",
                                hex_address(address), hex_address(app_start_)),
                    fmt::format("link the application at {} (or give the right --chip/--bootloader)", hex_address(app_start_)))
            .at_address(address);
    if (uint64_t(address) + data.size() > flash_end_)
        throw Error(ErrorKind::Unsafe, fmt::format("{}-{} goes past the end of the flash ({})", hex_address(address),
                                                   hex_address(static_cast<uint32_t>(address + data.size() - 1)),
                                                   hex_address(flash_end_ - 1)))
            .at_address(address);
    if (!started_) begin();
    if (address < next_)
        throw Error(ErrorKind::Unsupported,
                    fmt::format("the STM32 HID bootloader writes pages in order only: it is at {}, so {} cannot be "
                                "written again in this session",
                                hex_address(next_), hex_address(address)),
                    kEnterBootloader)
            .at_address(address);
    // The page pointer only moves forward: a gap in the image is written blank.
    const std::vector<uint8_t> blank(kPageSize, 0xFF);
    while (next_ < address) {
        send_page(next_, blank, "writing a blank page over a gap");
        ++gap_pages_;
    }
    for (uint32_t at = 0; at < data.size(); at += kPageSize)
        send_page(address + at, data.subspan(at, kPageSize), "writing a page");
}

std::vector<uint8_t> Client::read(uint32_t address, uint32_t) {
    throw Error(ErrorKind::Unsupported, "the STM32 HID bootloader cannot read its flash back").at_address(address);
}

void Client::start_application() {
    if (!connected_) return;
    // A device writing 2 KiB pages holds an odd last 1 KiB until the next one comes.
    if (started_ && double_pages_ && (next_ - app_start_) % (2 * kPageSize) != 0 && next_ < flash_end_) {
        const std::vector<uint8_t> blank(kPageSize, 0xFF);
        send_page(next_, blank, "completing the last 2 KiB page");
    }
    send_as_it_leaves([&] { hid_.write_report(command_report(Command::Reboot), kReportTimeoutMs); });
}

ProtocolInfo protocol_info() {
    return hid_protocol_info<Client>(
        "hid-stm32", "the STM32 HID bootloader (1209:beba; Klipper's hid-flash): write-only", kEnterBootloader);
}

}  // namespace mcuflash::protocol::hid_stm32
