#include "protocol/stk500v2/client.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <thread>

#include "core/hexdump.hpp"
#include "protocol/retry.hpp"
#include "entry/serial_reset.hpp"
#include "protocol/avr_identity.hpp"
#include "protocol/stk500v2/writes.hpp"

namespace mcuflash::protocol::stk500v2 {

using core::Deadline;
using core::Error;
using core::ErrorKind;
using core::hex_address;

namespace {

// How long one reset waits for the bootloader to sign on. stk500boot_v2 listens about 1 s after
// reset before it starts the application.
constexpr long kSignOnWindowMs = 1500;
// Flash parts above 64K words need the extended address (LOAD_ADDRESS bit 31).
constexpr uint32_t kExtendedAbove = 0x20000;

// The device answered with a status other than OK: its own refusal, not a transmission problem.
class DeviceRefusal : public Error {
public:
    using Error::Error;
};

}  // namespace

ProtocolInfo protocol_info() {
    ProtocolInfo info;
    info.name = "stk500v2";
    info.description = "Arduino Mega \"wiring\" bootloader stk500boot_v2 (avrdude -c wiring)";
    info.serial = {115200, link::Parity::None};
    info.probe_order = 3;
    info.make = [](link::Link& link, const ConnectOptions& options) -> std::unique_ptr<Bootloader> {
        return std::make_unique<Client>(link::link_as<link::ByteLink>(link, "stk500v2"), options);
    };
    return info;
}

// ---------------------------------------------------------------------------------------------
// Session

Session::Session(link::ByteLink& link, link::WarningSink warn) : link_(link), warn_(std::move(warn)) {}

void Session::send(const Bytes& frame) {
    if (size_t fill = monitor_guard_fill(received_min_, received_max_, frame)) {
        // Shift the frame so no "!!!" in it lands where the bootloader's byte counter wraps.
        Bytes filler(fill, kFiller);
        link_.write(filler);
        received_min_ += fill;
        received_max_ += fill;
    }
    link_.write(frame);
    received_min_ += frame.size();
    received_max_ += frame.size();
}

std::optional<Frame> Session::read_frame(uint8_t seq, Deadline deadline, const char* what) {
    size_t used = 0;
    for (;;) {
        while (used < pending_.size()) {
            auto result = decoder_.push(pending_[used++]);
            if (result == FrameDecoder::Result::Frame) {
                if (decoder_.frame().seq != seq) continue;  // a late answer to an earlier request
                pending_.erase(pending_.begin(), pending_.begin() + static_cast<long>(used));
                return decoder_.frame();
            }
            if (result == FrameDecoder::Result::Error) {
                pending_.erase(pending_.begin(), pending_.begin() + static_cast<long>(used));
                throw Error(ErrorKind::Protocol, fmt::format("{}: {}", what, decoder_.problem()));
            }
        }
        pending_.clear();
        used = 0;
        uint8_t buffer[512];
        size_t n = link_.read_some(buffer, deadline);
        if (n == 0) return std::nullopt;
        pending_.insert(pending_.end(), buffer, buffer + n);
    }
}

Frame Session::exchange(const Bytes& body, const char* what, long timeout_ms) {
    Bytes frame = encode_frame(seq_, body);
    send(frame);
    // The device's time plus the wire's: the request may still be on its way, the longest answer
    // has to cross back (10 bits a byte).
    const size_t wire_bytes = frame.size() + kMaxBody + 6;
    const long wire_ms = static_cast<long>(wire_bytes * 10 * 1000 / std::max<uint32_t>(link_.settings().baud, 1200));
    auto reply = read_frame(seq_, Deadline::after_ms(timeout_ms + wire_ms), what);
    if (!reply)
        throw Error(ErrorKind::Timeout, fmt::format("{}: no answer from {} to {} (seq {})", what, link_.describe(),
                                                    describe_command(body.at(0)), seq_));
    ++seq_;
    return *reply;
}

Frame Session::command(const Bytes& body, const char* what, std::optional<size_t> body_size, long timeout_ms,
                       int retries) {
    for (int attempt = 0;; ++attempt) {
        std::optional<Error> failure;
        try {
            Frame reply = exchange(body, what, timeout_ms);
            bool checksum_refused = reply.body.size() >= 2 && (reply.body[0] == cmd::kAnswerChecksumError ||
                                                               reply.body[1] == status::kChecksumError);
            if (!checksum_refused) {
                if (auto problem = check_reply(reply, reply.seq, body.at(0), body_size))
                    throw DeviceRefusal(ErrorKind::Protocol, fmt::format("{}: {}", what, *problem));
                return reply;
            }
            failure = Error(ErrorKind::Protocol, fmt::format("{}: {}", what, *check_reply(reply, reply.seq, body.at(0))));
        } catch (const DeviceRefusal&) {
            throw;
        } catch (const Error& e) {
            if (!transmission_problem(e)) throw;
            failure = e;
        }
        if (attempt >= retries) throw *failure;
        if (warn_) warn_(fmt::format("{}; retrying", failure->what()));
        flush_device_parser();
    }
}

std::optional<Frame> Session::probe_sign_on(long window_ms) {
    Deadline window = Deadline::after_ms(window_ms);
    uint64_t before_last_probe = 0;
    while (!window.expired()) {
        seq_ = 1;
        before_last_probe = received_max_;
        send(encode_frame(1, sign_on()));
        std::optional<Frame> reply;
        try {
            reply = read_frame(1, Deadline::after_ms(kSyncProbeMs), "sign on");
        } catch (const Error&) {
            continue;  // noise while the bootloader starts
        }
        if (!reply || check_reply(*reply, 1, cmd::kSignOn)) continue;
        // Earlier probes may still be answered: let those answers arrive and drop them.
        link_.pause(std::chrono::milliseconds(20));
        link_.drain_input();
        pending_.clear();
        decoder_.reset();
        // The device received the last probe and everything after it; earlier probes perhaps not.
        received_min_ = received_max_ - before_last_probe;
        seq_ = 2;
        return reply;
    }
    return std::nullopt;
}

void Session::flush_device_parser() {
    // A device inside a frame's body waits for at most kMaxBody more bytes and the checksum; it
    // ignores everything but 0x1B between frames.
    Bytes filler(kMaxBody + 1, kFiller);
    link_.write(filler);
    received_min_ += filler.size();
    received_max_ += filler.size();
    link_.pause(std::chrono::milliseconds(50));
    link_.drain_input();
    pending_.clear();
    decoder_.reset();
}

void Session::device_was_reset() {
    received_min_ = received_max_ = 0;
    pending_.clear();
    decoder_.reset();
    seq_ = 1;
}

// ---------------------------------------------------------------------------------------------
// Client (bootloader role)

Client::Client(link::ByteLink& link, ConnectOptions options)
    : link_(link), options_(std::move(options)), session_(link, options_.warn) {}

Client::~Client() = default;

void Client::synchronise() {
    for (int attempt = 0; attempt < options_.sync_attempts; ++attempt) {
        if (options_.reset) {
            entry::pulse_reset(link_);
            session_.device_was_reset();
        }
        if (auto reply = session_.probe_sign_on(kSignOnWindowMs)) {
            sign_on_ = sign_on_name(*reply);
            device_address_.reset();
            if (writes_) writes_->device_was_reset();
            return;
        }
    }
    throw Error(ErrorKind::NotFound,
                fmt::format("no STK500v2 bootloader answers on {} (tried {} resets)", link_.describe(),
                            options_.sync_attempts),
                fmt::format("check the port and baud rate ({} here; the Arduino Mega's stk500boot_v2 uses 115200), "
                            "and that nothing else holds the port",
                            link_.settings().baud));
}

uint8_t Client::get_parameter(uint8_t id) {
    return single_byte_answer(session_.command(stk500v2::get_parameter(id), "get parameter", 3));
}

void Client::identify(DeviceInfo& info) {
    uint8_t hw = get_parameter(param::kHwVersion);
    uint8_t major = get_parameter(param::kSwMajor);
    uint8_t minor = get_parameter(param::kSwMinor);
    std::vector<uint8_t> signature;
    for (uint8_t i = 0; i < 3; ++i)
        signature.push_back(single_byte_answer(session_.command(read_signature_isp(i), "read signature", 4)));
    info.details.emplace_back("sign-on", sign_on_);
    info.details.emplace_back("hardware version", fmt::format("0x{:02X}", hw));
    if (identify_impersonator(info, signature, major, minor)) return;
    auto id = identify_avr(info, "stk500v2", options_, signature, major, minor,
                           fmt::format("STK500v2 bootloader \"{}\"", sign_on_));
    chip_ = id.chip;
    extended_addressing_ = chip_->flash_size > kExtendedAbove;
    // stk500boot.c: APP_END = FLASHEND - 2 * BOOTSIZE + 1 with BOOTSIZE in bytes, so it erases nothing
    // in the 2 * boot size below the end of flash (on the atmega2560: 0x3C000-0x3DFFF of the app).
    const uint32_t erase_limit = chip_->flash_size > 2 * id.boot_size ? chip_->flash_size - 2 * id.boot_size : 0;
    writes_ = std::make_unique<ErasePointerWrites>(*this, erase_limit);
    if (erase_limit < info.app_end) info.details.emplace_back("erases pages below", hex_address(erase_limit));
}

bool Client::identify_impersonator(DeviceInfo& info, const std::vector<uint8_t>& signature, uint8_t major,
                                   uint8_t minor) {
    const auto& kb = options_.knowledge_base();
    for (const auto& [name, bootloader] : kb.bootloaders()) {
        if (bootloader.protocol != "stk500v2" || bootloader.reports_signature != signature) continue;
        if (bootloader.sw_major_min >= 0 && (major < bootloader.sw_major_min || major > bootloader.sw_major_max)) continue;
        if (bootloader.sizes.size() != 1) continue;
        const auto& [chip_name, size] = *bootloader.sizes.begin();
        if (!options_.bootloader.empty() && options_.bootloader != name) continue;
        if (!options_.chip.empty() && options_.chip != chip_name)
            throw Error(ErrorKind::Usage,
                        fmt::format("the device is {} on an {} (it reports the signature {} of another chip), not "
                                    "the {} asked for",
                                    bootloader.description, chip_name, core::hex_bytes(signature), options_.chip),
                        "check --chip, or that this is the board you meant");
        chip_ = &kb.chip(chip_name);
        writes_ = std::make_unique<ApplicationRegionWrites>(*this, size);
        extended_addressing_ = false;
        info.chip = chip_->name;
        info.signature = signature;
        info.bootloader = name;
        info.bootloader_text = fmt::format("{} {}.{}", bootloader.description, major, minor);
        info.flash_base = 0;
        info.flash_size = chip_->flash_size;
        info.page_size = capabilities().write_unit;
        info.app_start = size;
        info.app_end = chip_->flash_size;
        info.details.emplace_back("software version", fmt::format("{}.{}", major, minor));
        info.details.emplace_back("reports", fmt::format("signature {} (not its own chip's)", core::hex_bytes(signature)));
        return true;
    }
    return false;
}

DeviceInfo Client::connect() {
    synchronise();
    DeviceInfo info;
    identify(info);
    session_.command(enter_progmode_isp(IspEnter{}), "enter programming mode", 2);
    return info;
}

Capabilities Client::capabilities() const {
    if (writes_) return writes_->capabilities();
    Capabilities caps;  // before connect(): what every STK500v2 bootloader offers
    caps.can_read = true;
    caps.write_unit = 256;
    return caps;
}

void Client::erase(uint32_t address, uint32_t length) {
    chosen_at_connect(writes_, "stk500v2::Client").erase(address, length);
}

void Client::write(uint32_t address, std::span<const uint8_t> data) {
    chosen_at_connect(writes_, "stk500v2::Client").write(address, data);
}

void Client::recover(const Error& failure, const char* what, uint32_t at) {
    // The link lost the session (the bootloader may have started the application or its monitor):
    // reset and sign on again. The reset restarts the bootloader's erase pointer at 0.
    if (++recoveries_in_a_row_ > kMaxRecoveriesInARow || ++recoveries_total_ > kMaxRecoveries)
        throw Error(failure.kind(),
                    fmt::format("{} (gave up after {} resets)", failure.what(), recoveries_total_),
                    "the link keeps losing bytes: try another USB port or cable")
            .at_address(at);
    if (options_.warn)
        options_.warn(fmt::format("{} at {}: {}; resetting the bootloader and retrying", what, hex_address(at),
                                  failure.what()));
    bool was_reset = options_.reset;
    options_.reset = true;
    synchronise();
    options_.reset = was_reset;
    session_.command(enter_progmode_isp(IspEnter{}), "enter programming mode", 2);
}

void Client::with_recovery(const char* what, uint32_t at, const std::function<void()>& step) {
    int attempts = 0;
    for (;;) {
        try {
            step();
            recoveries_in_a_row_ = 0;
            failure_budget_.success();
            return;
        } catch (const DeviceRefusal&) {
            throw;
        } catch (const Error& e) {
            if (!transmission_problem(e)) throw;
            count_failure(e, at);
            // The device's address register (and perhaps its erase pointer) moved or not: unknown.
            device_address_.reset();
            if (++attempts <= Session::kRetries) {
                if (options_.warn) options_.warn(fmt::format("{} at {}: {}; retrying", what, hex_address(at), e.what()));
                session_.flush_device_parser();
                continue;
            }
            recover(Error(e), what, at);
            attempts = 0;
            throw RestartNeeded{};
        }
    }
}

void Client::load_address(uint32_t byte_address) {
    if (device_address_ == byte_address) return;
    session_.command(stk500v2::load_address(byte_address >> 1, extended_addressing_), "load address", 2,
                     Session::kCommandTimeoutMs, 0);
    device_address_ = byte_address;
}

void Client::count_failure(const Error& failure, uint32_t at) {
    failure_budget_.failure(failure, at);
}

std::vector<uint8_t> Client::read(uint32_t address, uint32_t length) {
    if (address % 2 != 0)
        throw Error(ErrorKind::Usage, fmt::format("stk500v2 reads start at even addresses, not {}", hex_address(address)));
    Bytes out;
    out.reserve(length);
    while (out.size() < length) {
        uint32_t at = address + static_cast<uint32_t>(out.size());
        uint32_t block = std::min<uint32_t>(kReadBlock, length - static_cast<uint32_t>(out.size()));
        uint32_t even = (block + 1) & ~1u;  // the bootloader reads whole words
        try {
            with_recovery("read flash", at, [&] {
                load_address(at);
                Frame reply = session_.command(read_flash_isp(static_cast<uint16_t>(even)), "read flash", even + 3,
                                               Session::kCommandTimeoutMs, 0);
                device_address_ = at + even;
                auto data = read_data(reply);
                out.insert(out.end(), data.begin(), data.begin() + block);
            });
        } catch (const RestartNeeded&) {
            if (writes_) writes_->device_was_reset();
        }
    }
    return out;
}

void Client::start_application() {
    // stk500boot_v2 answers, then jumps to address 0.
    session_.command(leave_progmode_isp(), "leave programming mode", 2);
}

}  // namespace mcuflash::protocol::stk500v2
