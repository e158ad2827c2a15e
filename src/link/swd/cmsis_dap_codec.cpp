#include "link/swd/cmsis_dap_codec.hpp"

#include <fmt/format.h>

#include "core/error.hpp"

namespace mcuflash::link::swd::dap {

using core::Error;
using core::ErrorKind;

namespace {

constexpr uint8_t kDapIndex = 0;  // SWD: ignored, but the field is there

void put16(std::vector<uint8_t>& out, uint16_t value) {
    out.push_back(static_cast<uint8_t>(value));
    out.push_back(static_cast<uint8_t>(value >> 8));
}

void put32(std::vector<uint8_t>& out, uint32_t value) {
    for (int shift = 0; shift < 32; shift += 8) out.push_back(static_cast<uint8_t>(value >> shift));
}

uint32_t get32(std::span<const uint8_t> bytes, size_t at) {
    return static_cast<uint32_t>(bytes[at]) | static_cast<uint32_t>(bytes[at + 1]) << 8 |
           static_cast<uint32_t>(bytes[at + 2]) << 16 | static_cast<uint32_t>(bytes[at + 3]) << 24;
}

const char* command_name(Command command) {
    switch (command) {
        case Command::Info: return "DAP_Info";
        case Command::HostStatus: return "DAP_HostStatus";
        case Command::Connect: return "DAP_Connect";
        case Command::Disconnect: return "DAP_Disconnect";
        case Command::TransferConfigure: return "DAP_TransferConfigure";
        case Command::Transfer: return "DAP_Transfer";
        case Command::TransferBlock: return "DAP_TransferBlock";
        case Command::TransferAbort: return "DAP_TransferAbort";
        case Command::WriteAbort: return "DAP_WriteABORT";
        case Command::Delay: return "DAP_Delay";
        case Command::ResetTarget: return "DAP_ResetTarget";
        case Command::SwjPins: return "DAP_SWJ_Pins";
        case Command::SwjClock: return "DAP_SWJ_Clock";
        case Command::SwjSequence: return "DAP_SWJ_Sequence";
        case Command::SwdConfigure: return "DAP_SWD_Configure";
    }
    return "DAP command";
}

// The answer must start with the command's byte and hold at least `minimum` bytes.
void expect_answer(std::span<const uint8_t> response, Command command, size_t minimum) {
    if (response.empty())
        throw Error(ErrorKind::Protocol, fmt::format("the debug probe answered {} with nothing", command_name(command)));
    if (response[0] != static_cast<uint8_t>(command))
        throw Error(ErrorKind::Protocol,
                    fmt::format("the debug probe answered {} (0x{:02X}) with a packet for command 0x{:02X}{}",
                                command_name(command), static_cast<uint8_t>(command), response[0],
                                response[0] == 0xFF ? " (it does not know the command)" : ""));
    if (response.size() < minimum)
        throw Error(ErrorKind::Protocol, fmt::format("the debug probe's answer to {} is {} bytes, too short",
                                                     command_name(command), response.size()));
}

std::vector<uint8_t> command_bytes(Command command) { return {static_cast<uint8_t>(command)}; }

}  // namespace

uint8_t request_byte(const TransferRequest& request) {
    uint8_t byte = static_cast<uint8_t>((request.ap ? 1u : 0u) | (request.address & 0x0Cu));
    switch (request.kind) {
        case TransferRequest::Kind::Read: byte |= 1u << 1; break;
        case TransferRequest::Kind::Write: break;
        case TransferRequest::Kind::ReadUntil: byte |= 1u << 1 | 1u << 4; break;
        case TransferRequest::Kind::SetMatchMask: byte = 1u << 5; break;
    }
    return byte;
}

size_t request_size(const TransferRequest& request) { return request.kind == TransferRequest::Kind::Read ? 1 : 5; }

size_t response_size(const TransferRequest& request) { return request.returns_data() ? 4 : 0; }

std::vector<uint8_t> encode_info(InfoId id) { return {static_cast<uint8_t>(Command::Info), static_cast<uint8_t>(id)}; }

std::vector<uint8_t> encode_host_status(HostStatus which, bool on) {
    return {static_cast<uint8_t>(Command::HostStatus), static_cast<uint8_t>(which), static_cast<uint8_t>(on ? 1 : 0)};
}

std::vector<uint8_t> encode_connect(uint8_t port) { return {static_cast<uint8_t>(Command::Connect), port}; }

std::vector<uint8_t> encode_disconnect() { return command_bytes(Command::Disconnect); }

std::vector<uint8_t> encode_transfer_configure(uint8_t idle_cycles, uint16_t wait_retries, uint16_t match_retries) {
    auto out = command_bytes(Command::TransferConfigure);
    out.push_back(idle_cycles);
    put16(out, wait_retries);
    put16(out, match_retries);
    return out;
}

std::vector<uint8_t> encode_transfer(std::span<const TransferRequest> requests) {
    if (requests.empty() || requests.size() > 255)
        throw Error(ErrorKind::Internal, fmt::format("a DAP_Transfer holds 1 to 255 transfers, not {}", requests.size()));
    std::vector<uint8_t> out = {static_cast<uint8_t>(Command::Transfer), kDapIndex, static_cast<uint8_t>(requests.size())};
    for (const auto& request : requests) {
        out.push_back(request_byte(request));
        if (request_size(request) == 5) put32(out, request.value);
    }
    return out;
}

std::vector<uint8_t> encode_transfer_block_read(bool ap, uint8_t address, uint16_t count) {
    std::vector<uint8_t> out = {static_cast<uint8_t>(Command::TransferBlock), kDapIndex};
    put16(out, count);
    out.push_back(static_cast<uint8_t>((ap ? 1u : 0u) | 1u << 1 | (address & 0x0Cu)));
    return out;
}

std::vector<uint8_t> encode_transfer_block_write(bool ap, uint8_t address, std::span<const uint32_t> values) {
    if (values.empty() || values.size() > 0xFFFF)
        throw Error(ErrorKind::Internal, fmt::format("a DAP_TransferBlock holds 1 to 65535 words, not {}", values.size()));
    std::vector<uint8_t> out = {static_cast<uint8_t>(Command::TransferBlock), kDapIndex};
    put16(out, static_cast<uint16_t>(values.size()));
    out.push_back(static_cast<uint8_t>((ap ? 1u : 0u) | (address & 0x0Cu)));
    for (uint32_t value : values) put32(out, value);
    return out;
}

std::vector<uint8_t> encode_write_abort(uint32_t abort) {
    std::vector<uint8_t> out = {static_cast<uint8_t>(Command::WriteAbort), kDapIndex};
    put32(out, abort);
    return out;
}

std::vector<uint8_t> encode_swj_pins(uint8_t output, uint8_t select, uint32_t wait_us) {
    std::vector<uint8_t> out = {static_cast<uint8_t>(Command::SwjPins), output, select};
    put32(out, wait_us);
    return out;
}

std::vector<uint8_t> encode_swj_clock(uint32_t hz) {
    auto out = command_bytes(Command::SwjClock);
    put32(out, hz);
    return out;
}

std::vector<uint8_t> encode_swj_sequence(std::span<const uint8_t> bits, unsigned count) {
    if (count < 1 || count > 256 || bits.size() < (count + 7) / 8)
        throw Error(ErrorKind::Internal, fmt::format("a DAP_SWJ_Sequence of {} bits from {} bytes", count, bits.size()));
    std::vector<uint8_t> out;
    out.reserve(2 + (count + 7) / 8);
    out.push_back(static_cast<uint8_t>(Command::SwjSequence));
    out.push_back(static_cast<uint8_t>(count == 256 ? 0 : count));  // 0 means 256
    for (size_t i = 0; i < (count + 7) / 8; ++i) out.push_back(bits[i]);
    return out;
}

std::vector<uint8_t> encode_swd_configure(uint8_t turnaround, bool data_phase) {
    if (turnaround < 1 || turnaround > 4)
        throw Error(ErrorKind::Internal, fmt::format("SWD turnaround of {} clocks (1 to 4)", turnaround));
    return {static_cast<uint8_t>(Command::SwdConfigure),
            static_cast<uint8_t>((turnaround - 1) | (data_phase ? 1u << 2 : 0u))};
}

bool decode_status(std::span<const uint8_t> response, Command command) {
    expect_answer(response, command, 2);
    return response[1] == kStatusOk;
}

std::vector<uint8_t> decode_info(std::span<const uint8_t> response) {
    expect_answer(response, Command::Info, 2);
    const size_t length = response[1];
    if (response.size() < 2 + length)
        throw Error(ErrorKind::Protocol,
                    fmt::format("the debug probe's DAP_Info answer says {} bytes but holds {}", length, response.size() - 2));
    return {response.begin() + 2, response.begin() + 2 + static_cast<std::ptrdiff_t>(length)};
}

std::string info_string(std::span<const uint8_t> value) {
    std::string text(value.begin(), value.end());
    if (auto nul = text.find('\0'); nul != std::string::npos) text.resize(nul);
    return text;
}

std::optional<uint32_t> info_number(std::span<const uint8_t> value) {
    if (value.size() != 1 && value.size() != 2 && value.size() != 4) return std::nullopt;
    uint32_t number = 0;
    for (size_t i = 0; i < value.size(); ++i) number |= static_cast<uint32_t>(value[i]) << (8 * i);
    return number;
}

uint8_t decode_connect(std::span<const uint8_t> response) {
    expect_answer(response, Command::Connect, 2);
    return response[1];
}

uint8_t decode_swj_pins(std::span<const uint8_t> response) {
    expect_answer(response, Command::SwjPins, 2);
    return response[1];
}

namespace {
void decode_response_byte(uint8_t byte, TransferResponse& out) {
    out.ack = byte & 0x07;
    out.protocol_error = byte & kResponseProtocolError;
    out.value_mismatch = byte & kResponseValueMismatch;
}
}  // namespace

TransferResponse decode_transfer(std::span<const uint8_t> response, std::span<const TransferRequest> requests) {
    expect_answer(response, Command::Transfer, 3);
    TransferResponse out;
    out.count = response[1];
    decode_response_byte(response[2], out);
    if (out.count > requests.size())
        throw Error(ErrorKind::Protocol, fmt::format("the debug probe says it did {} transfers of the {} asked",
                                                     out.count, requests.size()));
    // Data come for the done plain reads; a read that failed (FAULT, parity) brings none.
    size_t words = 0;
    for (unsigned i = 0; i < out.count; ++i) words += requests[i].returns_data() ? 1 : 0;
    if (response.size() < 3 + 4 * words)
        throw Error(ErrorKind::Protocol, fmt::format("the debug probe's DAP_Transfer answer holds {} bytes for {} words read",
                                                     response.size() - 3, words));
    for (size_t i = 0; i < words; ++i) out.reads.push_back(get32(response, 3 + 4 * i));
    return out;
}

TransferResponse decode_transfer_block(std::span<const uint8_t> response, unsigned expected_reads) {
    expect_answer(response, Command::TransferBlock, 4);
    TransferResponse out;
    out.count = static_cast<unsigned>(response[1] | response[2] << 8);
    decode_response_byte(response[3], out);
    const unsigned words = expected_reads ? std::min(out.count, expected_reads) : 0;
    if (response.size() < 4 + 4 * static_cast<size_t>(words))
        throw Error(ErrorKind::Protocol, fmt::format("the debug probe's DAP_TransferBlock answer holds {} bytes for {} words",
                                                     response.size() - 4, words));
    for (unsigned i = 0; i < words; ++i) out.reads.push_back(get32(response, 4 + 4 * static_cast<size_t>(i)));
    return out;
}

unsigned block_capacity(size_t packet_size) {
    // The command has 5 header bytes, the answer 4: the smaller room decides.
    return static_cast<unsigned>(std::min<size_t>((packet_size - 5) / 4, 0xFFFF));
}

std::vector<BulkInterface> vendor_bulk_interfaces(std::span<const uint8_t> d) {
    std::vector<BulkInterface> found;
    bool in_vendor = false;
    for (size_t at = 0; at + 2 <= d.size();) {
        const uint8_t length = d[at], type = d[at + 1];
        if (length < 2 || at + length > d.size()) break;
        if (type == 4 && length >= 9) {  // interface (alternate settings other than 0 skipped)
            in_vendor = d[at + 5] == 0xFF && d[at + 3] == 0;
            if (in_vendor) found.push_back({d[at + 2], d[at + 8], 0, 0, 0});
        } else if (type == 5 && length >= 7 && in_vendor) {
            const uint8_t address = d[at + 2];
            const bool bulk = (d[at + 3] & 0x03) == 0x02;
            const uint16_t size = static_cast<uint16_t>(d[at + 4] | d[at + 5] << 8);
            auto& current = found.back();
            if (bulk && !(address & 0x80) && !current.out) current.out = address, current.packet_size = size;
            if (bulk && (address & 0x80) && !current.in) current.in = address;
        }
        at += length;
    }
    std::erase_if(found, [](const BulkInterface& i) { return !i.out || !i.in; });
    return found;
}

std::vector<std::pair<uint8_t, uint8_t>> hid_interfaces(std::span<const uint8_t> d) {
    std::vector<std::pair<uint8_t, uint8_t>> found;
    for (size_t at = 0; at + 2 <= d.size();) {
        const uint8_t length = d[at], type = d[at + 1];
        if (length < 2 || at + length > d.size()) break;
        if (type == 4 && length >= 9 && d[at + 5] == 3 && d[at + 3] == 0) found.emplace_back(d[at + 2], d[at + 8]);
        at += length;
    }
    return found;
}

}  // namespace mcuflash::link::swd::dap
