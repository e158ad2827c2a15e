#include "protocol/stm32uart/client.hpp"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>
#include <string_view>
#include <thread>

#include "core/hexdump.hpp"
#include "protocol/retry.hpp"

namespace mcuflash::protocol::stm32uart {

using core::Deadline;
using core::Error;
using core::ErrorKind;
using core::hex_address;

namespace {

// How long the ROM gets to answer 0x7F; it answers within a byte time, the rest is USB latency.
constexpr long kSyncAnswerMs = 300;
constexpr int kSyncAttempts = 8;
// Enough 0xFF bytes to finish the longest thing the ROM may be in the middle of (a 256-byte block
// with its length and checksum), see resynchronise().
constexpr size_t kResyncBurst = 300;

// What expect_ack() says of a NACK, and how a caller tells it from a damaged or missing answer.
constexpr std::string_view kNackWords = "the STM32 bootloader answered NACK";
bool is_nack(const Error& e) {
    return e.kind() == ErrorKind::Protocol && std::string_view(e.what()).ends_with(kNackWords);
}

const char* kNotAnsweringHint =
    "check that BOOT0 is high (BOOT1/PB2 low) and the board was reset after setting it; the wiring: "
    "TX and RX crossed (adapter TX to board RX, RX to TX), 3.3 V levels, common ground; the port must do 8E1 (even parity): on a Raspberry Pi "
    "the mini UART (ttyS0) cannot, use the PL011 UART (dtoverlay=disable-bt, /dev/ttyAMA0)";

}  // namespace

ProtocolInfo protocol_info() {
    ProtocolInfo info;
    info.name = "stm32-uart";
    info.description = "STM32 ROM USART bootloader (ST AN3155; what stm32flash does)";
    info.serial = {115200, link::Parity::Even};
    info.offers_protection = true;
    info.probe_order = 1;
    info.make = [](link::Link& link, const ConnectOptions& options) -> std::unique_ptr<Bootloader> {
        return std::make_unique<Client>(link::link_as<link::ByteLink>(link, "stm32-uart"), options);
    };
    return info;
}

Client::Client(link::ByteLink& link, ConnectOptions options) : link_(link), options_(std::move(options)) {}

// ---- the byte level ----

Bytes Client::read_bytes(size_t count, const std::string& what, long timeout_ms) {
    Bytes out(count);
    link_.read_exact(out, Deadline::after_ms(timeout_ms), what.c_str());
    return out;
}

void Client::expect_ack(const std::string& what, long timeout_ms) {
    Deadline deadline = Deadline::after_ms(timeout_ms);
    for (;;) {
        uint8_t answer = 0;
        if (link_.read_some({&answer, 1}, deadline) == 0)
            throw Error(ErrorKind::Timeout, fmt::format("{}: no ACK from the STM32 bootloader within {} ms", what, timeout_ms));
        if (answer == kAck) return;
        if (answer == kBusy) continue;  // still working: keep waiting
        if (answer == kNack) throw Error(ErrorKind::Protocol, fmt::format("{}: {}", what, kNackWords));
        throw Error(ErrorKind::Protocol, fmt::format("{}: expected ACK (0x79), got 0x{:02X}", what, answer));
    }
}

void Client::start_command(uint8_t code) {
    link_.write(command(code));
    expect_ack(command_name(code), kAckTimeoutMs);
}

void Client::synchronise(int attempts) {
    for (int attempt = 0; attempt < attempts; ++attempt) {
        link_.drain_input();
        const uint8_t init = kInit;
        link_.write({&init, 1});
        uint8_t answer = 0;
        if (link_.read_some({&answer, 1}, Deadline::after_ms(kSyncAnswerMs)) == 0) continue;
        // NACK: the ROM had measured the baud rate already (an earlier session) and took 0x7F as a
        // command byte it does not know. Either way it now waits for a command.
        if (answer == kAck || answer == kNack) {
            link_.drain_input();
            return;
        }
    }
    throw Error(ErrorKind::NotFound,
                fmt::format("no STM32 ROM bootloader answers 0x7F on {}", link_.describe()), kNotAnsweringHint);
}

void Client::resynchronise(const Error& failure) {
    if (options_.warn) options_.warn(fmt::format("{}; resynchronising and retrying", failure.what()));
    // The ROM may be inside a command: waiting for a complement, an address, a length or data. A
    // burst of 0xFF completes any of those with a bad checksum or complement (NACK); 0xFF never
    // forms one of the special erase codes, which need a 0x00. Once the ROM waits for commands
    // again, the rest goes in pairs "FF FF", each NACKed, so it ends either waiting for a command or
    // holding one 0xFF command byte: a last 0xFF decides which.
    link_.write(Bytes(kResyncBurst, 0xFF));
    link_.pause(std::chrono::milliseconds(60));
    link_.drain_input();
    for (int probe = 0; probe < 2; ++probe) {
        const uint8_t ff = 0xFF;
        link_.write({&ff, 1});
        uint8_t answer = 0;
        if (link_.read_some({&answer, 1}, Deadline::after_ms(100)) == 1) {
            link_.pause(std::chrono::milliseconds(20));
            link_.drain_input();
            return;
        }
    }
    // Nothing answers at all: the device may have reset (power, a reset fault) and wants 0x7F again.
    synchronise(2);
}

template <typename Step>
auto Client::with_retries(const std::string& what, Step step) {
    return protocol::with_retries(what, kRetries, step, [&](const Error& e) { resynchronise(e); });
}

// ---- connecting ----

DeviceInfo Client::connect() {
    synchronise(options_.sync_attempts > 0 ? std::min(options_.sync_attempts, kSyncAttempts) : kSyncAttempts);
    DeviceInfo info;
    identify(info);
    return info;
}

void Client::read_commands() {
    Bytes get = with_retries("Get", [&](int) {
        start_command(cmd::kGet);
        Bytes n = read_bytes(1, "Get");
        Bytes rest = read_bytes(size_t(n[0]) + 1, "Get");
        expect_ack("Get", kAckTimeoutMs);
        n.insert(n.end(), rest.begin(), rest.end());
        return n;
    });
    auto commands = parse_get(get);
    if (!commands) throw Error(ErrorKind::Protocol, fmt::format("Get: malformed answer {}", core::hex_bytes(get)));
    commands_ = *commands;
}

void Client::read_product_id() {
    Bytes id = with_retries("Get ID", [&](int) {
        start_command(cmd::kGetId);
        Bytes answer = read_bytes(3, "Get ID");
        expect_ack("Get ID", kAckTimeoutMs);
        return answer;
    });
    auto pid = parse_get_id(id);
    if (!pid) throw Error(ErrorKind::Protocol, fmt::format("Get ID: malformed answer {}", core::hex_bytes(id)));
    product_id_ = *pid;
}

void Client::identify_unknown_part(DeviceInfo& info) {
    // Reading works, writing is refused (no geometry to erase by).
    info.chip = fmt::format("unknown STM32 (product ID 0x{:03X})", product_id_);
    info.flash_base = 0x08000000;
    // Reading needs the flash size: try the flash-size registers of the families mcuflash knows,
    // once each (another family's address NACKs, leaving the ROM waiting for a command).
    std::vector<uint32_t> registers;
    for (const auto& [name, chip] : options_.knowledge_base().chips())
        if (chip.flash_size_register &&
            std::find(registers.begin(), registers.end(), *chip.flash_size_register) == registers.end())
            registers.push_back(*chip.flash_size_register);
    for (uint32_t reg : registers) {
        try {
            start_command(cmd::kReadMemory);
            link_.write(address_block(reg));
            expect_ack("Read Memory (flash size register)", kAckTimeoutMs);
            link_.write(read_length(2));
            expect_ack("Read Memory (flash size register)", kAckTimeoutMs);
            Bytes kib = read_bytes(2, "Read Memory (flash size register)");
            uint32_t size = uint32_t(kib[0] | kib[1] << 8) * 1024;
            if (size < 8 * 1024 || size > 0x01000000) continue;
            flash_size_ = size;
            break;
        } catch (const Error& e) {
            if (e.kind() != ErrorKind::Protocol) resynchronise(e);
        }
    }
    info.flash_size = flash_size_;
    info.app_start = info.flash_base;
    info.app_end = info.flash_base + flash_size_;
    info.page_size = kMaxBlock;
    if (options_.warn)
        options_.warn(fmt::format("mcuflash does not know product ID 0x{:03X}: continuing read-only{}", product_id_,
                                  flash_size_ ? fmt::format(" ({} KiB of flash, from its flash size register)",
                                                            flash_size_ / 1024)
                                              : ", flash size unknown"));
}

void Client::identify(DeviceInfo& info) {
    read_commands();
    read_product_id();
    const auto& kb = options_.knowledge_base();
    std::vector<const targets::Chip*> candidates = kb.chips_by_product_id(product_id_);
    if (!options_.chip.empty()) {
        const auto& wanted = kb.chip(options_.chip);
        if (wanted.product_id != product_id_)
            throw Error(ErrorKind::Usage,
                        fmt::format("the device reports product ID 0x{:03X}, not the {} expected (0x{:03X}; from --chip, --board or Klipper's .config)",
                                    product_id_, wanted.name, wanted.product_id.value_or(0)));
        candidates = {&wanted};
    }
    info.bootloader = "stm32_rom";
    info.bootloader_text = fmt::format("STM32 ROM USART bootloader {}", version_text(commands_.version));
    info.signature = {static_cast<uint8_t>(product_id_ >> 8), static_cast<uint8_t>(product_id_)};
    info.details.emplace_back("product id", fmt::format("0x{:03X}", product_id_));
    std::vector<std::string> names;
    for (uint8_t c : commands_.commands) names.push_back(fmt::format("{:02X}", c));
    info.details.emplace_back("commands", fmt::format("{}", fmt::join(names, " ")));

    if (candidates.empty()) {
        identify_unknown_part(info);
        return;
    }
    chip_ = candidates.front();
    readout_protected_ = probe_readout_protection();
    if (readout_protected_) {
        info.details.emplace_back("readout protection",
                                  "ON: the ROM refuses reads, writes, erases and Go; `mcuflash unprotect --readout "
                                  "--erase-everything` removes it and erases the whole flash");
        if (options_.warn)
            options_.warn("the chip's readout protection is on: nothing can be read or written until it is removed "
                          "(mcuflash unprotect --readout --erase-everything, which erases the whole flash)");
    }
    flash_size_ = !readout_protected_ && (candidates.size() > 1 || chip_->flash_size_register) ? probe_flash_size(*chip_)
                                                                                                : chip_->flash_size;
    if (candidates.size() > 1) {
        // Parts that share a product ID (F103 x8/xB) differ in flash size: pick by what it reports.
        for (const auto* c : candidates)
            if (c->flash_size == flash_size_) chip_ = c;
    }
    for (const auto& unit : targets::erase_layout(*chip_, flash_size_)) erase_units_.push_back({unit.address, unit.size});
    info.chip = chip_->name;
    info.flash_base = chip_->flash_base;
    info.flash_size = flash_size_;
    info.app_start = chip_->flash_base;  // the ROM bootloader occupies no flash
    info.app_end = chip_->flash_base + flash_size_;
    info.page_size = kMaxBlock;
    if (!erase_units_.empty()) info.boot_area_end = erase_units_.front().address + erase_units_.front().size;
}

bool Client::probe_readout_protection() {
    if (!commands_.has(cmd::kReadMemory)) return false;
    // Only a NACK says the ROM refuses to read: a damaged answer or none is the line's, asked again
    // (taken as unprotected at last: a protected chip then NACKs the first write, and says so).
    for (int attempt = 0;; ++attempt) {
        link_.write(command(cmd::kReadMemory));
        try {
            expect_ack("Read Memory", kAckTimeoutMs);
            break;
        } catch (const Error& e) {
            if (is_nack(e)) return true;
            resynchronise(e);
            if (attempt == 2) return false;
        }
    }
    // Accepted: finish the command with a one-byte read of the flash base and go on.
    try {
        link_.write(address_block(chip_ ? chip_->flash_base : 0x08000000));
        expect_ack("Read Memory (address)", kAckTimeoutMs);
        link_.write(read_length(1));
        expect_ack("Read Memory (length)", kAckTimeoutMs);
        read_bytes(1, "Read Memory");
    } catch (const Error& e) {
        resynchronise(e);
    }
    return false;
}

void Client::refuse_if_protected(const char* what) const {
    if (readout_protected_)
        throw Error(ErrorKind::Unsafe,
                    fmt::format("cannot {}: the chip's readout protection is on and its ROM refuses it", what),
                    "remove the protection with `mcuflash unprotect -p stm32-uart -d PORT --readout --erase-everything` "
                    "(the chip erases its whole flash doing it), then flash again");
}

uint32_t Client::probe_flash_size(const targets::Chip& chip) {
    if (!chip.flash_size_register) return chip.flash_size;
    try {
        Bytes kib = read_block(*chip.flash_size_register, 2);
        uint32_t size = uint32_t(kib[0] | kib[1] << 8) * 1024;
        if (size == 0 || size > 0x01000000) throw Error(ErrorKind::Protocol, "implausible flash size");
        return size;
    } catch (const Error& e) {
        if (options_.warn)
            options_.warn(fmt::format("cannot read the flash size register ({}): assuming the {}'s {} KiB", e.what(),
                                      chip.name, chip.flash_size / 1024));
        return chip.flash_size;
    }
}

Capabilities Client::capabilities() const {
    Capabilities caps;
    caps.can_read = true;
    caps.write_unit = kMaxBlock;
    caps.erase_units = erase_units_;
    return caps;
}

// ---- memory ----

Bytes Client::read_block(uint32_t address, size_t count) {
    std::string what = fmt::format("Read Memory at {}", hex_address(address));
    return with_retries(what, [&](int) {
        start_command(cmd::kReadMemory);
        link_.write(address_block(address));
        expect_ack(what + " (address)", kAckTimeoutMs);
        link_.write(read_length(count));
        expect_ack(what + " (length)", kAckTimeoutMs);
        return read_bytes(count, what);
    });
}

std::vector<uint8_t> Client::read(uint32_t address, uint32_t length) {
    refuse_if_protected("read the flash");
    Bytes out;
    out.reserve(length);
    while (out.size() < length) {
        size_t count = std::min<size_t>(kMaxBlock, length - out.size());
        Bytes block = read_block(address + static_cast<uint32_t>(out.size()), count);
        out.insert(out.end(), block.begin(), block.end());
    }
    return out;
}

void Client::write_block(uint32_t address, std::span<const uint8_t> block) {
    std::string what = fmt::format("Write Memory at {}", hex_address(address));
    with_retries(what, [&](int attempt) {
        try {
            start_command(cmd::kWriteMemory);
            link_.write(address_block(address));
            expect_ack(what + " (address)", kAckTimeoutMs);
            link_.write(stm32uart::write_block(block));
            expect_ack(what, kAckTimeoutMs);
        } catch (const Error& e) {
            // A retried block meets flash the first attempt may already have programmed, which the
            // ROM refuses to program again: if it already holds the block, that is success.
            if (attempt == 0 || !transmission_problem(e)) throw;
            resynchronise(e);
            if (read_block(address, block.size()) != Bytes(block.begin(), block.end())) throw;
        }
        return 0;
    });
}

void Client::write(uint32_t address, std::span<const uint8_t> data) {
    refuse_if_protected("write the flash");
    if (!chip_)
        throw Error(ErrorKind::Unsupported,
                    fmt::format("writing needs the chip's flash layout, and product ID 0x{:03X} is unknown to mcuflash",
                                product_id_));
    for (size_t offset = 0; offset < data.size(); offset += kMaxBlock) {
        auto block = data.subspan(offset, std::min<size_t>(kMaxBlock, data.size() - offset));
        Bytes padded(block.begin(), block.end());
        padded.resize((padded.size() + 3) / 4 * 4, 0xFF);  // the ROM writes whole words
        write_block(address + static_cast<uint32_t>(offset), padded);
    }
}

// ---- erasing ----

void Client::erase_units(const std::vector<uint16_t>& numbers) {
    const bool extended = commands_.has(cmd::kExtendedErase);
    const size_t chunk = extended ? kMaxExtendedErasePages : kMaxLegacyErasePages;
    for (size_t i = 0; i < numbers.size(); i += chunk) {
        std::span<const uint16_t> part(numbers.data() + i, std::min(chunk, numbers.size() - i));
        std::string what = fmt::format("{} of {} unit(s) from #{}", extended ? "Extended Erase" : "Erase",
                                       part.size(), part.front());
        long timeout = std::min<long>(kMassEraseTimeoutMs, kEraseUnitTimeoutMs * static_cast<long>(part.size()));
        with_retries(what, [&](int) {
            start_command(extended ? cmd::kExtendedErase : cmd::kErase);
            link_.write(extended ? extended_erase_pages(part) : erase_pages(part));
            expect_ack(what, timeout);
            return 0;
        });
    }
}

void Client::erase(uint32_t address, uint32_t length) {
    refuse_if_protected("erase the flash");
    if (!chip_) throw Error(ErrorKind::Unsupported, "erasing needs the chip's flash layout, and this product ID is unknown");
    std::vector<uint16_t> numbers;
    uint64_t end = uint64_t(address) + length;
    for (size_t i = 0; i < erase_units_.size(); ++i) {
        const auto& unit = erase_units_[i];
        if (unit.address >= end || unit.end() <= address) continue;
        if (unit.address < address || unit.end() > end)
            throw Error(ErrorKind::Usage, fmt::format("{}-{} is not made of whole erase units", hex_address(address),
                                                      hex_address(static_cast<uint32_t>(end - 1))));
        numbers.push_back(static_cast<uint16_t>(i));
    }
    if (!numbers.empty()) erase_units(numbers);
}

void Client::mass_erase() {
    refuse_if_protected("mass-erase the flash");
    const bool extended = commands_.has(cmd::kExtendedErase);
    with_retries("mass erase", [&](int) {
        start_command(extended ? cmd::kExtendedErase : cmd::kErase);
        link_.write(extended ? extended_erase_mass() : erase_global());
        expect_ack("mass erase", kMassEraseTimeoutMs);
        return 0;
    });
}

// ---- protection and leaving ----

void Client::remove_readout_protection() {
    start_command(cmd::kReadoutUnprotect);
    // The second ACK comes after the mass erase; then the device resets (into the ROM again, with
    // BOOT0 still high) and needs 0x7F.
    expect_ack("Readout Unprotect (mass erase)", kMassEraseTimeoutMs);
    link_.pause(std::chrono::milliseconds(100));
    synchronise(kSyncAttempts);
    readout_protected_ = false;
}

void Client::remove_write_protection() {
    start_command(cmd::kWriteUnprotect);
    expect_ack("Write Unprotect", kMassEraseTimeoutMs);
    link_.pause(std::chrono::milliseconds(100));
    synchronise(kSyncAttempts);
}

void Client::start_application() {
    if (readout_protected_) return;  // Go is refused too; the chip stays in its bootloader
    const uint32_t entry = chip_ ? chip_->flash_base : 0x08000000;
    start_command(cmd::kGo);
    link_.write(address_block(entry));
    expect_ack(fmt::format("Go to {}", hex_address(entry)), kAckTimeoutMs);
}

}  // namespace mcuflash::protocol::stm32uart
