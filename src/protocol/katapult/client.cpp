#include "protocol/katapult/client.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cctype>

#include "core/error.hpp"
#include "core/hexdump.hpp"
#include "entry/klipper_request.hpp"
#include "entry/serial_reset.hpp"

namespace mcuflash::protocol::katapult {

using core::Deadline;
using core::Error;
using core::ErrorKind;
using core::hex_address;

namespace {

const char* kNotAnsweringHint =
    "put the board in Katapult: double-press its reset button (within half a second), or from a running Klipper "
    "`flashtool.py -r -d PORT`; a USB board then shows up as /dev/serial/by-id/usb-katapult_...; on a UART "
    "Katapult listens at 250000 baud unless built otherwise (--baud), TX and RX crossed";

std::string lowercase(std::string text) {
    std::transform(text.begin(), text.end(), text.begin(), [](unsigned char c) { return std::tolower(c); });
    return text;
}

// What a Katapult MCU string says about the chip whatever its flash size: Katapult (like Klipper)
// reports "stm32f103xe" on every STM32F103 and "stm32g0b1xx" on every G0B1, so the letters after the
// last 'x' (the flash size) are dropped.
std::string family_prefix(const std::string& mcu) {
    std::string lower = lowercase(mcu);
    if (!lower.starts_with("stm32")) return lower;
    size_t x = lower.rfind('x');
    if (x == std::string::npos || x < 6 || lower.size() - x > 3) return lower;
    while (x > 0 && lower[x - 1] == 'x') --x;
    return lower.substr(0, x);
}

bool compatible(const targets::Chip& chip, const std::string& mcu) {
    return lowercase(chip.name).starts_with(family_prefix(mcu));
}

}  // namespace

ProtocolInfo protocol_info() {
    ProtocolInfo info;
    info.name = "katapult";
    info.description = "Katapult, formerly CanBoot, on USB-CDC or a UART (what flashtool.py -d does), or CAN (-d can:can0:UUID)";
    info.serial = {250000, link::Parity::None};
    info.make = [](link::Link& link, const ConnectOptions& options) -> std::unique_ptr<Bootloader> {
        return std::make_unique<Client>(link::link_as<link::ByteLink>(link, "katapult"), options);
    };
    return info;
}

Client::Client(link::ByteLink& link, ConnectOptions options) : link_(link), options_(std::move(options)) {}

Bytes Client::exchange(uint8_t command, const Bytes& payload, const std::string& what, int tries, long timeout_ms,
                       const std::function<bool(const Bytes&)>& accept) {
    const Bytes frame = encode(command, payload);
    ++stats_.commands;
    std::string last_problem;
    bool timed_out = false, answered = false;
    int busy_left = kMaxBusy;
    for (int attempt = 0; attempt < tries;) {
        if (attempt > 0) {
            ++stats_.retries;
            // What is still on its way belongs to the failed try.
            link_.pause(std::chrono::milliseconds(kRetryPauseMs));
            link_.drain_input();
            reader_.clear();
        }
        link_.write(frame);
        const Deadline deadline = Deadline::after_ms(timeout_ms);
        bool resend_after_busy = false;
        bool failed = false;
        while (!failed && !resend_after_busy) {
            uint8_t buffer[512];
            const size_t got = link_.read_some(buffer, deadline);
            if (got == 0) {
                timed_out = true;
                last_problem = fmt::format("no answer within {} ms", timeout_ms);
                failed = true;
                break;
            }
            reader_.feed({buffer, got});
            while (auto answer = reader_.next()) {
                answered = true;
                if (answer->command == answer::kAck) {
                    auto body = ack_body(*answer, command);
                    if (!body || (accept && !accept(*body))) {
                        ++stats_.stale;  // a late answer to an earlier try or command
                        continue;
                    }
                    return *body;
                }
                if (answer->command == answer::kBusy) {
                    ++stats_.busy;
                    if (--busy_left < 0)
                        throw Error(ErrorKind::Timeout,
                                    fmt::format("{}: Katapult stayed busy through {} answers", what, kMaxBusy),
                                    "power-cycle the board into Katapult and flash again");
                    link_.pause(std::chrono::milliseconds(kBusyPauseMs));
                    resend_after_busy = true;
                    break;
                }
                timed_out = false;
                if (answer->command == answer::kNack) {
                    ++stats_.nacks;
                    last_problem = "NACK (Katapult did not receive the frame intact)";
                } else if (answer->command == answer::kError) {
                    ++stats_.errors;
                    last_problem = "command error (Katapult refused it)";
                } else {
                    last_problem = fmt::format("unexpected answer {}", command_name(answer->command));
                }
                failed = true;
                break;
            }
        }
        if (resend_after_busy) {
            reader_.clear();
            continue;  // the same try again: busy is not a failure
        }
        ++attempt;
    }
    const bool silent = timed_out && !answered;
    Error error(timed_out ? ErrorKind::Timeout : ErrorKind::Protocol,
                fmt::format("{}: {} after {} tries", what, last_problem, tries),
                silent && !connected_ ? kNotAnsweringHint
                : silent ? "the board stopped answering: it may have reset or left Katapult (a power glitch, a loose "
                           "cable); put it in Katapult again and flash again: the bootloader itself is never written"
                         : "a damaged line: try another USB cable or port, or a lower --baud on a UART");
    throw error;
}

Bytes Client::connect_exchange(int tries) {
    link_.drain_input();
    reader_.clear();
    try {
        return exchange(cmd::kConnect, {}, "CONNECT", tries, kAnswerTimeoutMs);
    } catch (const Error& e) {
        if (e.kind() != ErrorKind::Timeout) throw;
        throw Error(ErrorKind::NotFound, fmt::format("no Katapult bootloader answers CONNECT on {}", link_.describe()),
                    kNotAnsweringHint);
    }
}

bool Client::ask_klipper_to_reboot() {
    if (!link_.serial_line()) return false;
    if (options_.warn)
        options_.warn(fmt::format("no Katapult on {}: sending Klipper's serial bootloader request, in case Klipper "
                                  "runs there",
                                  link_.describe()));
    entry::request_bootloader_over_uart(link_);
    link_.pause(std::chrono::seconds(1));  // flashtool.py gives the board a second to reboot
    return true;
}

// CONNECT after the request. A UART stays where it is; a port that went away meanwhile (a simulated
// board's pty) is opened again once it is back.
Bytes Client::connect_after_request(int tries) {
    try {
        return connect_exchange(tries);
    } catch (const Error& e) {
        if (e.kind() != ErrorKind::Io) throw;
    }
    entry::reopen_when_back(link_, std::chrono::seconds(2));
    return connect_exchange(tries);
}

DeviceInfo Client::connect() {
    const int tries = options_.sync_attempts > 0 ? std::min(options_.sync_attempts, kTries) : kTries;
    const bool may_ask = options_.reset && options_.ask_application && link_.serial_line();
    Bytes body;
    try {
        // Katapult answers its first CONNECT at once; a silent port is asked for Klipper's request soon.
        body = connect_exchange(may_ask ? 1 : tries);
    } catch (const Error& e) {
        if (e.kind() != ErrorKind::NotFound || !may_ask || !ask_klipper_to_reboot()) throw;
        body = connect_after_request(tries);
    }
    auto parsed = parse_connect(body);
    if (!parsed) throw Error(ErrorKind::Protocol, fmt::format("CONNECT: malformed answer {}", core::hex_bytes(body)));
    reported_ = *parsed;
    if (!valid_block_size(reported_.block_size))
        throw Error(ErrorKind::Protocol,
                    fmt::format("Katapult announces a block size of {} bytes; its protocol allows 64, 128, 256 or 512",
                                reported_.block_size));
    if (reported_.app_start % reported_.block_size != 0)
        throw Error(ErrorKind::Protocol, fmt::format("Katapult's application start {} is not a multiple of its {}-byte "
                                                     "block",
                                                     hex_address(reported_.app_start), reported_.block_size));
    connected_ = true;
    DeviceInfo info;
    info.bootloader = "katapult";
    info.bootloader_text = fmt::format("Katapult {}(protocol {})",
                                       reported_.software_version.empty() ? "" : reported_.software_version + " ",
                                       reported_.protocol_text());
    resolve_chip(info);
    info.details.emplace_back("mcu (Katapult)", reported_.mcu);
    info.details.emplace_back("application start", hex_address(reported_.app_start));
    info.details.emplace_back("block size", std::to_string(reported_.block_size));
    info.details.emplace_back("verify", "read back block by block (REQUEST_BLOCK): Katapult has no checksum command");
    return info;
}

void Client::resolve_chip(DeviceInfo& info) {
    const auto& kb = options_.knowledge_base();
    const std::string& mcu = reported_.mcu;
    if (!options_.chip.empty()) {
        const auto& wanted = kb.chip(options_.chip);
        if (!compatible(wanted, mcu))
            throw Error(ErrorKind::Usage,
                        fmt::format("Katapult on this board reports MCU '{}', not the {} asked for", mcu,
                                    wanted.name),
                        "check the board, or build Klipper for the MCU Katapult reports");
        chip_ = &wanted;
    } else {
        // Klipper's MCU names carry no flash size ("stm32f103xe" on every STM32F103, "stm32g0b1xx"):
        // the chip's own flash size register tells it, read through REQUEST_BLOCK (Katapult copies
        // whatever memory the address names). Without it, the name where mcuflash knows it, else the
        // smallest chip of the family, which keeps the plan's size check safe.
        std::vector<const targets::Chip*> candidates;
        for (const auto& [name, chip] : kb.chips())
            if (compatible(chip, mcu)) candidates.push_back(&chip);
        const auto* exact = kb.find_chip(mcu);
        chip_ = nullptr;
        if (candidates.empty() && !exact)
            throw Error(ErrorKind::Unsupported,
                        fmt::format("Katapult reports MCU '{}', which mcuflash does not know", mcu),
                        "give the chip with --chip if it is one mcuflash knows under another name (mcuflash chips)");
        if (candidates.size() > 1) chip_ = chip_by_flash_size(candidates);
        if (!chip_ && exact) chip_ = exact;
        if (!chip_) {
            chip_ = *std::min_element(candidates.begin(), candidates.end(),
                                      [](auto* a, auto* b) { return a->flash_size < b->flash_size; });
            if (candidates.size() > 1 && options_.warn)
                options_.warn(fmt::format("Katapult reports '{}', any flash size: taking the {} ({} KiB); give --chip "
                                          "for a larger one",
                                          mcu, chip_->name, chip_->flash_size / 1024));
        }
    }
    const uint64_t flash_end = uint64_t(chip_->flash_base) + chip_->flash_size;
    if (reported_.app_start <= chip_->flash_base || reported_.app_start >= flash_end)
        throw Error(ErrorKind::Protocol,
                    fmt::format("Katapult reports its application start at {}, which is not above the start of the {}'s "
                                "flash ({}-{})",
                                hex_address(reported_.app_start), chip_->name, hex_address(chip_->flash_base),
                                hex_address(static_cast<uint32_t>(flash_end - 1))));
    info.chip = chip_->name;
    info.flash_base = chip_->flash_base;
    info.flash_size = chip_->flash_size;
    info.app_start = reported_.app_start;  // Katapult's own word: nothing below it is written
    info.app_end = static_cast<uint32_t>(flash_end);
    info.page_size = reported_.block_size;
    app_end_ = info.app_end;
    if (const auto* bl = kb.find_bootloader("katapult"))
        if (auto size = bl->size_on(chip_->name); size && chip_->flash_base + *size != reported_.app_start)
            info.details.emplace_back("note", fmt::format("this Katapult build keeps {} KiB (the usual on a {} is {} "
                                                          "KiB): Klipper must be built for {}",
                                                          (reported_.app_start - chip_->flash_base) / 1024, chip_->name,
                                                          *size / 1024, hex_address(reported_.app_start)));
}

const targets::Chip* Client::chip_by_flash_size(const std::vector<const targets::Chip*>& candidates) {
    const auto size_register = candidates.front()->flash_size_register;
    if (!size_register || std::any_of(candidates.begin(), candidates.end(),
                                      [&](auto* c) { return c->flash_size_register != size_register; }))
        return nullptr;
    uint32_t kib = 0;
    try {
        const auto bytes = read(*size_register, 2);
        kib = bytes[0] | (bytes[1] << 8);
    } catch (const Error& e) {
        if (e.kind() != ErrorKind::Protocol && e.kind() != ErrorKind::Timeout) throw;
        return nullptr;  // a build that refuses the read: the name decides
    }
    for (const auto* chip : candidates)
        if (chip->flash_size == kib * 1024) return chip;
    // A size mcuflash has no part for (an STM32F103xC has 256 KiB): the largest known part below it.
    const targets::Chip* below = nullptr;
    for (const auto* chip : candidates)
        if (chip->flash_size < kib * 1024 && (!below || chip->flash_size > below->flash_size)) below = chip;
    if (below && options_.warn)
        options_.warn(fmt::format("the chip reports {} KiB of flash; mcuflash knows no {} part of that size: taking "
                                  "the {} ({} KiB)",
                                  kib, family_prefix(reported_.mcu), below->name, below->flash_size / 1024));
    return below;
}

Capabilities Client::capabilities() const {
    Capabilities caps;
    caps.can_read = true;
    caps.can_checksum = false;
    caps.whole_image = true;
    caps.writes_in_address_order = true;
    caps.write_unit = reported_.block_size ? reported_.block_size : 64;
    return caps;
}

// Where a stream covering `address` starts: the start of its erase unit (Katapult erases a page when
// its first block arrives and refuses a later block over unerased flash), never below the
// application start.
uint32_t Client::stream_start(uint32_t address) const {
    uint32_t start = address / reported_.block_size * reported_.block_size;
    if (chip_)
        for (const auto& unit : targets::erase_layout(*chip_, chip_->flash_size))
            if (address >= unit.address && address - unit.address < unit.size) {
                start = std::min(start, unit.address);
                break;
            }
    return std::max(start, reported_.app_start);
}

void Client::write(uint32_t address, std::span<const uint8_t> data) { write_image(address, data); }

void Client::write_image(uint32_t address, std::span<const uint8_t> bytes) {
    if (!connected_) throw std::logic_error("katapult::Client::write_image before connect()");
    if (bytes.empty()) return;
    const uint64_t end = uint64_t(address) + bytes.size();
    if (address < reported_.app_start || end > app_end_)
        throw Error(ErrorKind::Unsafe,
                    fmt::format("{}-{} is outside the application region {}-{} Katapult reports; nothing was written",
                                hex_address(address), hex_address(static_cast<uint32_t>(end - 1)),
                                hex_address(reported_.app_start), hex_address(app_end_ - 1)));
    const uint32_t block = reported_.block_size;
    const uint32_t start = stream_start(address);
    const uint64_t stream_end = std::min<uint64_t>((end + block - 1) / block * block, app_end_);
    Bytes stream(static_cast<size_t>(stream_end - start), 0xFF);
    std::copy(bytes.begin(), bytes.end(), stream.begin() + (address - start));
    pages_written_.reset();
    for (size_t offset = 0; offset < stream.size(); offset += block) {
        const uint32_t at = start + static_cast<uint32_t>(offset);
        const Bytes payload = send_block_payload(at, std::span(stream).subspan(offset, block));
        exchange(cmd::kSendBlock, payload, fmt::format("SEND_BLOCK at {}", hex_address(at)), kTries, kBlockTimeoutMs,
                 [at](const Bytes& body) { return body.size() >= 4 && read_le32(body) == at; });
        const uint64_t block_end = uint64_t(at) + block;
        write_advanced(static_cast<size_t>(std::clamp<uint64_t>(block_end, address, end) - address));
    }
    Bytes eof = exchange(cmd::kSendEof, {}, "SEND_EOF", kTries, kBlockTimeoutMs);
    if (eof.size() >= 4) pages_written_ = read_le32(eof);
}

std::vector<uint8_t> Client::read(uint32_t address, uint32_t length) {
    if (!connected_) throw std::logic_error("katapult::Client::read before connect()");
    const uint32_t block = reported_.block_size;
    std::vector<uint8_t> out;
    out.reserve(length);
    const uint64_t end = uint64_t(address) + length;
    for (uint64_t at = address / block * block; at < end; at += block) {
        const auto a = static_cast<uint32_t>(at);
        Bytes body = exchange(cmd::kRequestBlock, request_block_payload(a),
                              fmt::format("REQUEST_BLOCK at {}", hex_address(a)), kTries, kAnswerTimeoutMs,
                              [a](const Bytes& b) { return b.size() >= 4 && read_le32(b) == a; });
        if (body.size() != 4 + block)
            throw Error(ErrorKind::Protocol, fmt::format("REQUEST_BLOCK at {}: {} bytes of data, not the {}-byte block",
                                                         hex_address(a), body.size() - 4, block));
        const uint64_t from = std::max<uint64_t>(at, address), to = std::min<uint64_t>(at + block, end);
        out.insert(out.end(), body.begin() + 4 + static_cast<long>(from - at), body.begin() + 4 + static_cast<long>(to - at));
    }
    return out;
}

void Client::start_application() { exchange(cmd::kComplete, {}, "COMPLETE", 3, kAnswerTimeoutMs); }

std::optional<uint64_t> Client::canbus_uuid() {
    try {
        Bytes body = exchange(cmd::kGetCanbusId, {}, "GET_CANBUS_ID", 2, kAnswerTimeoutMs);
        return parse_canbus_id(body);
    } catch (const Error& e) {
        if (e.kind() == ErrorKind::Protocol) return std::nullopt;  // not a CAN build: command error
        throw;
    }
}

}  // namespace mcuflash::protocol::katapult
