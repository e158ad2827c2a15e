#include "protocol/stk500v1/codec.hpp"

#include <fmt/format.h>

#include "core/hexdump.hpp"

namespace mcuflash::protocol::stk500v1 {

Bytes encode_get_sync() { return {cmd::kGetSync, kEop}; }
Bytes encode_get_parameter(uint8_t parameter) { return {cmd::kGetParameter, parameter, kEop}; }
Bytes encode_enter_progmode() { return {cmd::kEnterProgmode, kEop}; }
Bytes encode_leave_progmode() { return {cmd::kLeaveProgmode, kEop}; }

Bytes encode_load_address(uint16_t word_address) {
    return {cmd::kLoadAddress, static_cast<uint8_t>(word_address & 0xFF), static_cast<uint8_t>(word_address >> 8), kEop};
}

Bytes encode_universal(uint8_t b0, uint8_t b1, uint8_t b2, uint8_t b3) {
    return {cmd::kUniversal, b0, b1, b2, b3, kEop};
}

Bytes encode_load_extended_address(uint8_t extended) { return encode_universal(kOpLoadExtAddress, 0x00, extended, 0x00); }

Bytes encode_prog_page(uint8_t memory, std::span<const uint8_t> data) {
    Bytes out;
    out.reserve(data.size() + 5);
    out.push_back(cmd::kProgPage);
    out.push_back(static_cast<uint8_t>(data.size() >> 8));
    out.push_back(static_cast<uint8_t>(data.size() & 0xFF));
    out.push_back(memory);
    out.insert(out.end(), data.begin(), data.end());
    out.push_back(kEop);
    return out;
}

Bytes encode_read_page(uint8_t memory, uint16_t length) {
    return {cmd::kReadPage, static_cast<uint8_t>(length >> 8), static_cast<uint8_t>(length & 0xFF), memory, kEop};
}

Bytes encode_read_sign() { return {cmd::kReadSign, kEop}; }

std::string describe_status(uint8_t status) {
    switch (status) {
        case resp::kOk: return "OK";
        case resp::kFailed: return "FAILED (the bootloader could not do it)";
        case resp::kUnknown: return "UNKNOWN (the bootloader does not know this command)";
        case resp::kNoDevice: return "NODEVICE";
        case resp::kInSync: return "INSYNC";
        case resp::kNoSync: return "NOSYNC (the bootloader lost the frame: a byte was lost or garbled)";
    }
    return fmt::format("0x{:02x} (not an STK500 status byte)", status);
}

std::optional<std::string> check_reply(std::span<const uint8_t> reply) {
    if (reply.size() < 2) return fmt::format("answer too short ({} bytes)", reply.size());
    if (reply.front() != resp::kInSync)
        return fmt::format("expected INSYNC (0x14), got {}: {}", describe_status(reply.front()),
                           core::hex_bytes(reply.first(std::min<size_t>(reply.size(), 8))));
    if (reply.back() != resp::kOk)
        return fmt::format("expected OK (0x10) at the end, got {}", describe_status(reply.back()));
    return std::nullopt;
}

}  // namespace mcuflash::protocol::stk500v1
