#include "protocol/halfkay/client.hpp"

#include <algorithm>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include "core/error.hpp"
#include "core/hexdump.hpp"

namespace mcuflash::protocol::halfkay {

using core::Error;
using core::ErrorKind;
using core::hex_address;

namespace {

const char* kPressButton =
    "press the button on the Teensy (its bootloader, HalfKay, then shows up as USB 16c0:0478), then run "
    "the command again";

const char* format_words(BlockFormat f) {
    switch (f) {
        case BlockFormat::Address16: return "16-bit address + block";
        case BlockFormat::Address8To23: return "address bits 8-23 + block";
        case BlockFormat::Address24Padded64: return "24-bit address, 64-byte header + block";
    }
    return "";
}

}  // namespace

Client::Client(link::HidDevice& hid, ConnectOptions options) : hid_(hid), options_(std::move(options)) {}

DeviceInfo Client::connect() {
    const auto id = hid_.identity();
    if (id.vendor != kVendor || id.product != kProduct)
        throw Error(ErrorKind::NotFound,
                    fmt::format("{} is USB {:04x}:{:04x}, not a Teensy in its HalfKay bootloader (16c0:0478)",
                                hid_.describe(), id.vendor, id.product),
                    kPressButton);
    const auto& kb = options_.knowledge_base();
    const targets::Bootloader* bootloader =
        options_.bootloader.empty() ? kb.bootloader_by_usb_id(id.vendor, id.product) : kb.find_bootloader(options_.bootloader);
    if (bootloader && bootloader->protocol != "halfkay") bootloader = nullptr;

    // HalfKay does not say which Teensy it is: the chip comes from --chip (or --board), or the
    // bootloader row when it names one chip.
    std::string chip_name = options_.chip;
    if (chip_name.empty() && bootloader && bootloader->sizes.size() == 1) chip_name = bootloader->sizes.begin()->first;
    if (chip_name.empty()) {
        std::vector<std::string> names;
        for (const auto& t : teensies()) names.push_back(fmt::format("{} ({})", t.mcu, t.board));
        throw Error(ErrorKind::Usage, "HalfKay does not tell which Teensy it is: give the chip with --chip",
                    fmt::format("Teensies: {}", fmt::join(names, ", ")));
    }
    const targets::Chip& chip = kb.chip(chip_name);
    teensy_ = find_teensy(chip.name);
    if (!teensy_) {
        std::vector<std::string> names;
        for (const auto& t : teensies()) names.push_back(t.mcu);
        throw Error(ErrorKind::Unsupported,
                    fmt::format("a HalfKay bootloader answers, but the {} is not a Teensy's chip", chip.name),
                    fmt::format("Teensy chips: {}", fmt::join(names, ", ")));
    }

    // The output report's size tells the block format: a Teensy of another kind is refused here,
    // before its flash is erased by a first block it would misread.
    std::optional<uint32_t> report_bytes;
    try {
        report_bytes = output_report_bytes(hid_.report_descriptor());
    } catch (const Error& e) {
        if (e.kind() != ErrorKind::Protocol && e.kind() != ErrorKind::Timeout) throw;
    }
    if (report_bytes && *report_bytes != teensy_->report_size()) {
        std::vector<std::string> fits;
        for (const auto& t : teensies())
            if (t.report_size() == *report_bytes) fits.push_back(fmt::format("{} ({})", t.mcu, t.board));
        throw Error(ErrorKind::Usage,
                    fmt::format("this Teensy's HalfKay takes {}-byte reports, but the {} ({}) needs {}: it is another "
                                "Teensy; nothing was written",
                                *report_bytes, teensy_->mcu, teensy_->board, teensy_->report_size()),
                    fits.empty() ? std::string("mcuflash does not know this Teensy")
                                 : fmt::format("give the right chip with --chip: {}", fmt::join(fits, " or ")));
    }

    DeviceInfo info;
    info.chip = chip.name;
    info.bootloader = bootloader ? bootloader->name : "";
    info.bootloader_text = fmt::format("HalfKay ({})", teensy_->board);
    info.flash_base = chip.flash_base;
    info.flash_size = chip.flash_size;
    info.app_start = chip.flash_base;
    uint32_t app_end = chip.flash_base + std::min(teensy_->code_size, chip.flash_size);
    if (bootloader)
        if (auto size = bootloader->size_on(chip.name)) app_end = std::min(app_end, chip.flash_base + chip.flash_size - *size);
    info.app_end = app_end;
    info.page_size = teensy_->block_size;
    info.details.push_back({"board", teensy_->board});
    info.details.push_back({"block", fmt::format("{} bytes ({})", teensy_->block_size, format_words(teensy_->format))});
    info.details.push_back({"read-back", "none: HalfKay is write-only"});
    if (report_bytes) info.details.push_back({"output report", fmt::format("{} bytes", *report_bytes)});
    return info;
}

Capabilities Client::capabilities() const {
    Capabilities caps;
    caps.can_read = false;
    caps.write_unit = teensy_ ? teensy_->block_size : 256;
    // The first block erases the whole application area: nothing is erased separately, and the
    // blocks go up from the first.
    caps.writes_in_address_order = true;
    return caps;
}

void Client::send(const std::vector<uint8_t>& report, unsigned timeout_ms, const std::string& what, uint32_t address) {
    for (int attempt = 1;; ++attempt) {
        try {
            hid_.write_report(report, timeout_ms);
            return;
        } catch (Error& e) {
            const bool again = (e.kind() == ErrorKind::Timeout || e.kind() == ErrorKind::Protocol) && attempt < kAttempts;
            if (again) {
                if (options_.warn)
                    options_.warn(fmt::format("{} at {}: {}; sending it again", what, hex_address(address), e.what()));
                hid_.pause(std::chrono::milliseconds(10));
                continue;
            }
            if (e.kind() == ErrorKind::Io)
                e.with_hint(fmt::format("the Teensy left the bus; {}. Its bootloader is intact", kPressButton));
            throw e.during(fmt::format("{} at {}", what, hex_address(address)));
        }
    }
}

void Client::send_block(uint32_t address, std::span<const uint8_t> block) {
    const bool first = !erased_;
    if (!first && std::all_of(block.begin(), block.end(), [](uint8_t b) { return b == 0xFF; })) {
        ++blocks_skipped_;  // erased by the first block already
        return;
    }
    send(block_report(*teensy_, address, block), first ? kFirstBlockTimeoutMs : kBlockTimeoutMs,
         first ? "erasing the chip and writing the first block" : "writing a block", address);
    erased_ = true;
    ++blocks_sent_;
}

void Client::write(uint32_t address, std::span<const uint8_t> data) {
    if (!teensy_) throw std::logic_error("halfkay: write before connect");
    const uint32_t unit = teensy_->block_size;
    if (address % unit != 0 || data.size() % unit != 0)
        throw std::logic_error(fmt::format("halfkay: write at {} of {} bytes is not whole {}-byte blocks",
                                           hex_address(address), data.size(), unit));
    if (uint64_t(address) + data.size() > teensy_->code_size)
        throw Error(ErrorKind::Unsafe,
                    fmt::format("{}-{} reaches the HalfKay bootloader (the application ends at {})", hex_address(address),
                                hex_address(static_cast<uint32_t>(address + data.size() - 1)),
                                hex_address(teensy_->code_size - 1)))
            .at_address(address);
    // teensy_loader_cli always sends block 0 first: that block makes HalfKay erase the chip.
    if (!erased_ && address != 0) {
        std::vector<uint8_t> blank(unit, 0xFF);
        send(block_report(*teensy_, 0, blank), kFirstBlockTimeoutMs, "erasing the chip (block 0)", 0);
        erased_ = true;
        ++blocks_sent_;
    }
    for (uint32_t at = 0; at < data.size(); at += unit) send_block(address + at, data.subspan(at, unit));
}

std::vector<uint8_t> Client::read(uint32_t address, uint32_t) {
    throw Error(ErrorKind::Unsupported, "the Teensy's HalfKay bootloader cannot read its flash back")
        .at_address(address);
}

void Client::start_application() {
    if (!teensy_) return;
    send_as_it_leaves([&] { hid_.write_report(boot_report(*teensy_), 500); });
}

ProtocolInfo protocol_info() {
    return hid_protocol_info<Client>(
        "halfkay", "PJRC's HalfKay on Teensy boards (16c0:0478; teensy_loader_cli): write-only", kPressButton);
}

}  // namespace mcuflash::protocol::halfkay
