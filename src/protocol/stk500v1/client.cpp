#include "protocol/stk500v1/client.hpp"

#include <fmt/format.h>

#include <thread>

#include "core/error.hpp"
#include "core/hexdump.hpp"
#include "entry/serial_reset.hpp"
#include "protocol/avr_identity.hpp"

namespace mcuflash::protocol::stk500v1 {

using core::Deadline;
using core::Error;
using core::ErrorKind;

namespace {
// optiboot answers within microseconds; a page write takes ~4.5 ms, ATmegaBOOT up to ~10 ms.
constexpr long kCommandTimeoutMs = 1000;
// How long one GET_SYNC waits while the bootloader may still be starting.
constexpr long kSyncProbeMs = 60;
// Words above this need the load-extended-address instruction (parts larger than 128 KiB).
constexpr uint32_t kWordSegmentBytes = 0x20000;
}  // namespace

ProtocolInfo protocol_info() {
    ProtocolInfo info;
    info.name = "stk500v1";
    info.description = "Arduino STK500v1 bootloaders: optiboot, ATmegaBOOT (avrdude -c arduino)";
    info.serial = {115200, link::Parity::None};
    info.default_on_serial = true;  // the Arduino bootloaders: the commonest on a serial port
    info.probe_order = 2;
    info.make = [](link::Link& link, const ConnectOptions& options) -> std::unique_ptr<Bootloader> {
        return std::make_unique<Client>(link::link_as<link::ByteLink>(link, "stk500v1"), options);
    };
    return info;
}

Client::Client(link::ByteLink& link, ConnectOptions options) : link_(link), options_(std::move(options)) {}

Bytes Client::exchange(const Bytes& request, const std::vector<size_t>& data_lengths, const char* what,
                       long timeout_ms) {
    link_.write(request);
    Bytes data;
    Deadline deadline = Deadline::after_ms(timeout_ms);
    for (size_t length : data_lengths) {
        Bytes reply(reply_size(length));
        // The first byte tells INSYNC from an error status; read it alone so an error is not waited out.
        link_.read_exact(std::span(reply).first(1), deadline, what);
        if (reply[0] != resp::kInSync)
            throw Error(ErrorKind::Protocol, fmt::format("{}: {}", what, *check_reply(std::span(reply).first(1))));
        link_.read_exact(std::span(reply).subspan(1), deadline, what);
        if (auto problem = check_reply(reply)) throw Error(ErrorKind::Protocol, fmt::format("{}: {}", what, *problem));
        data.insert(data.end(), reply.begin() + 1, reply.end() - 1);
    }
    return data;
}

void Client::synchronise() {
    // Probe with GET_SYNC until the bootloader answers; it may still be starting after reset.
    for (int attempt = 0; attempt < options_.sync_attempts; ++attempt) {
        if (options_.reset) entry::pulse_reset(link_);
        Deadline window = Deadline::after_ms(1500);
        while (!window.expired()) {
            link_.write(encode_get_sync());
            uint8_t reply[2];
            size_t got = 0;
            Deadline probe = Deadline::after_ms(kSyncProbeMs);
            while (got < 2) {
                size_t n = link_.read_some(std::span(reply).subspan(got), probe);
                if (n == 0) break;
                got += n;
            }
            if (got == 2 && reply[0] == resp::kInSync && reply[1] == resp::kOk) {
                // Earlier probes may still be answered: let them arrive, drop them, and confirm once more.
                link_.pause(std::chrono::milliseconds(5));
                link_.drain_input();
                try {
                    exchange(encode_get_sync(), {0}, "sync", 200);
                    current_extended_ = -1;
                    return;
                } catch (const Error&) {
                    continue;
                }
            }
        }
    }
    throw Error(ErrorKind::NotFound,
                fmt::format("no STK500v1 bootloader answers on {} (tried {} resets)", link_.describe(),
                            options_.sync_attempts),
                fmt::format("check the port and baud rate ({} here; optiboot boards use 115200, older "
                            "ATmegaBOOT boards 57600 or 19200), and that nothing else holds the port",
                            link_.settings().baud));
}

uint8_t Client::get_parameter(uint8_t parameter) {
    return exchange(encode_get_parameter(parameter), {1}, "get parameter", kCommandTimeoutMs).at(0);
}

void Client::identify(DeviceInfo& info) {
    // STK500v1 answers carry no checksum, and the version and signature decide the boot section's
    // size: read each twice, so that one damaged byte cannot shrink the region kept free.
    uint8_t major = get_parameter(kParamSwMajor);
    uint8_t minor = get_parameter(kParamSwMinor);
    auto signature = exchange(encode_read_sign(), {3}, "read signature", kCommandTimeoutMs);
    const uint8_t major_again = get_parameter(kParamSwMajor);
    const uint8_t minor_again = get_parameter(kParamSwMinor);
    const auto signature_again = exchange(encode_read_sign(), {3}, "read signature", kCommandTimeoutMs);
    if (major != major_again || minor != minor_again || signature != signature_again)
        throw Error(ErrorKind::Protocol,
                    fmt::format("the bootloader gave two different answers to the same question (version {}.{} "
                                "then {}.{}, signature {} then {}): the line damages bytes",
                                major, minor, major_again, minor_again, core::hex_bytes(signature),
                                core::hex_bytes(signature_again)),
                    "check the cable and the baud rate");
    chip_ = identify_avr(info, "stk500v1", options_, signature, major, minor, "STK500v1 bootloader").chip;
}

DeviceInfo Client::connect() {
    synchronise();
    for (int attempt = 0;; ++attempt) {
        try {
            DeviceInfo info;
            identify(info);
            exchange(encode_enter_progmode(), {0}, "enter programming mode", kCommandTimeoutMs);
            return info;
        } catch (const Error& e) {
            // A late answer to one of the sync probes shifts every answer after it, and a damaged
            // one disagrees with its repeat: let the line go quiet, drop what came, and ask again.
            if (e.kind() != ErrorKind::Protocol || attempt >= 2) throw;
            if (options_.warn) options_.warn(fmt::format("{}; asking again", e.what()));
            link_.pause(std::chrono::milliseconds(100));
            link_.drain_input();
        }
    }
}

Capabilities Client::capabilities() const {
    Capabilities caps;
    caps.can_read = true;
    caps.erases_on_write = true;
    caps.write_unit = chip_ ? chip_->page_size : 128;
    return caps;
}

Bytes Client::extended_address_prefix(uint32_t byte_address) {
    if (!chip_ || chip_->flash_size <= kWordSegmentBytes) return {};
    int segment = static_cast<int>(byte_address / kWordSegmentBytes);
    if (segment == current_extended_) return {};
    current_extended_ = segment;
    return encode_load_extended_address(static_cast<uint8_t>(segment));
}

Bytes Client::at_address(uint32_t at, const Bytes& command, size_t answer_length, const char* what) {
    for (;;) {
        // LOAD_ADDRESS and the command go out together: the bootloader answers the first while the
        // second streams in, which saves a round trip per page.
        Bytes request = extended_address_prefix(at);
        std::vector<size_t> answers = request.empty() ? std::vector<size_t>{0, answer_length}
                                                      : std::vector<size_t>{1, 0, answer_length};
        auto load = encode_load_address(static_cast<uint16_t>((at >> 1) & 0xFFFF));
        request.insert(request.end(), load.begin(), load.end());
        request.insert(request.end(), command.begin(), command.end());
        try {
            Bytes data = exchange(request, answers, what, kCommandTimeoutMs);
            recoveries_in_a_row_ = 0;
            failure_budget_.success();
            return Bytes(data.end() - static_cast<long>(answer_length), data.end());
        } catch (const Error& e) {
            if (!transmission_problem(e)) throw;
            failure_budget_.failure(e, at);
            resynchronise_after(Error(e).at_address(at), what);
        }
    }
}

void Client::resynchronise_after(const Error& failure, const char* what) {
    // A lost or garbled byte leaves the bootloader mid-frame; optiboot then restarts into the
    // application. The only way back is a reset and a fresh sync.
    if (++recoveries_in_a_row_ > kMaxRecoveriesInARow)
        throw Error(failure.kind(),
                    fmt::format("{} (gave up after {} resets in a row)", failure.what(), kMaxRecoveriesInARow),
                    "the link keeps losing bytes: try a lower --baud, a shorter cable, or another USB port");
    if (options_.warn) {
        // The link's own errors already say during what ("write page: no answer from ...").
        std::string said = failure.what();
        if (!said.starts_with(what)) said = fmt::format("{}: {}", what, said);
        options_.warn(said + "; resetting the bootloader and retrying");
    }
    bool was_reset = options_.reset;
    options_.reset = true;
    synchronise();
    options_.reset = was_reset;
    exchange(encode_enter_progmode(), {0}, "enter programming mode", kCommandTimeoutMs);
}

void Client::write(uint32_t address, std::span<const uint8_t> data) {
    const uint32_t page = capabilities().write_unit;
    if (address % page != 0 || data.size() % page != 0)
        throw Error(ErrorKind::Usage, fmt::format("stk500v1 writes whole pages: {} + {} is not {}-byte aligned",
                                                  core::hex_address(address), data.size(), page));
    for (size_t offset = 0; offset < data.size(); offset += page) {
        uint32_t at = address + static_cast<uint32_t>(offset);
        at_address(at, encode_prog_page(kMemFlash, data.subspan(offset, page)), 0, "write page");
    }
}

std::vector<uint8_t> Client::read(uint32_t address, uint32_t length) {
    if (address % 2 != 0)
        throw Error(ErrorKind::Usage, fmt::format("stk500v1 reads start at even addresses, not {}", core::hex_address(address)));
    Bytes out;
    out.reserve(length);
    while (out.size() < length) {
        uint32_t at = address + static_cast<uint32_t>(out.size());
        // Never let one READ_PAGE cross a 64K-word segment: the device's address register would wrap.
        uint32_t block = std::min<uint32_t>({kReadBlock, length - static_cast<uint32_t>(out.size()),
                                             kWordSegmentBytes - at % kWordSegmentBytes});
        Bytes data = at_address(at, encode_read_page(kMemFlash, static_cast<uint16_t>(block)), block, "read page");
        out.insert(out.end(), data.begin(), data.end());
        // optiboot reads with ELPM Z+, which carries into RAMPZ at the end of a segment: the
        // device's segment is then not the one we last told it.
        if ((at + block) % kWordSegmentBytes == 0) current_extended_ = -1;
    }
    return out;
}

void Client::start_application() {
    // optiboot arms a 16 ms watchdog on LEAVE_PROGMODE; the application runs after it.
    exchange(encode_leave_progmode(), {0}, "leave programming mode", kCommandTimeoutMs);
}

}  // namespace mcuflash::protocol::stk500v1
