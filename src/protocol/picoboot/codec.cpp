#include "protocol/picoboot/codec.hpp"

#include <stdexcept>

#include <fmt/format.h>

namespace mcuflash::protocol::picoboot {

namespace {

void put32(std::vector<uint8_t>& out, uint32_t v) {
    for (int i = 0; i < 4; ++i) out.push_back(static_cast<uint8_t>(v >> (8 * i)));
}

uint32_t get32(std::span<const uint8_t> b) {
    return uint32_t{b[0]} | (uint32_t{b[1]} << 8) | (uint32_t{b[2]} << 16) | (uint32_t{b[3]} << 24);
}

std::vector<uint8_t> words(std::initializer_list<uint32_t> values) {
    std::vector<uint8_t> out;
    for (uint32_t v : values) put32(out, v);
    return out;
}

}  // namespace

std::string command_name(uint8_t id) {
    switch (static_cast<Command>(id)) {
        case Command::ExclusiveAccess: return "EXCLUSIVE_ACCESS";
        case Command::Reboot: return "REBOOT";
        case Command::Reboot2: return "REBOOT2";
        case Command::FlashErase: return "FLASH_ERASE";
        case Command::Read: return "READ";
        case Command::Write: return "WRITE";
        case Command::ExitXip: return "EXIT_XIP";
        case Command::EnterCmdXip: return "ENTER_CMD_XIP";
        case Command::Exec: return "EXEC";
        case Command::VectorizeFlash: return "VECTORIZE_FLASH";
    }
    return fmt::format("command 0x{:02X}", id);
}

std::string status_words(uint32_t code) {
    switch (static_cast<Status>(code)) {
        case Status::Ok: return "ok";
        case Status::UnknownCommand: return "unknown command";
        case Status::InvalidCommandLength: return "invalid command length";
        case Status::InvalidTransferLength: return "invalid transfer length";
        case Status::InvalidAddress: return "invalid address";
        case Status::BadAlignment: return "bad address alignment";
        case Status::InterleavedWrite: return "interleaved write (the UF2 drive was being written at the same time)";
        case Status::Rebooting: return "rebooting";
        case Status::UnknownError: return "unknown error";
    }
    return fmt::format("status {}", code);
}

std::optional<CommandStatus> decode_status(std::span<const uint8_t> bytes) {
    if (bytes.size() != kStatusSize) return std::nullopt;
    CommandStatus s;
    s.token = get32(bytes);
    s.code = get32(bytes.subspan(4));
    s.command = bytes[8];
    s.in_progress = bytes[9] != 0;
    return s;
}

std::vector<uint8_t> encode_command(uint32_t token, Command command, std::span<const uint8_t> args,
                                    uint32_t transfer_length) {
    if (args.size() > kArgsSize) throw std::logic_error("picoboot: more than 16 bytes of command arguments");
    std::vector<uint8_t> out;
    out.reserve(kCommandSize);
    put32(out, kMagic);
    put32(out, token);
    out.push_back(static_cast<uint8_t>(command));
    out.push_back(static_cast<uint8_t>(args.size()));
    out.push_back(0);
    out.push_back(0);
    put32(out, transfer_length);
    out.insert(out.end(), args.begin(), args.end());
    out.resize(kCommandSize, 0);
    return out;
}

std::vector<uint8_t> exclusive_access(uint32_t token, Exclusive mode) {
    const uint8_t arg = static_cast<uint8_t>(mode);
    return encode_command(token, Command::ExclusiveAccess, std::span(&arg, 1), 0);
}

std::vector<uint8_t> reboot(uint32_t token, uint32_t pc, uint32_t sp, uint32_t delay_ms) {
    return encode_command(token, Command::Reboot, words({pc, sp, delay_ms}), 0);
}

std::vector<uint8_t> reboot2(uint32_t token, uint32_t flags, uint32_t delay_ms, uint32_t param0, uint32_t param1) {
    return encode_command(token, Command::Reboot2, words({flags, delay_ms, param0, param1}), 0);
}

std::vector<uint8_t> flash_erase(uint32_t token, uint32_t address, uint32_t length) {
    return encode_command(token, Command::FlashErase, words({address, length}), 0);
}

std::vector<uint8_t> read(uint32_t token, uint32_t address, uint32_t length) {
    return encode_command(token, Command::Read, words({address, length}), length);
}

std::vector<uint8_t> write(uint32_t token, uint32_t address, uint32_t length) {
    return encode_command(token, Command::Write, words({address, length}), length);
}

std::vector<uint8_t> exit_xip(uint32_t token) { return encode_command(token, Command::ExitXip, {}, 0); }

std::optional<Interface> find_interface(std::span<const uint8_t> config) {
    std::optional<Interface> current;  // the vendor interface being read
    for (size_t at = 0; at + 2 <= config.size() && config[at] >= 2; at += config[at]) {
        const uint8_t length = config[at], type = config[at + 1];
        if (at + length > config.size()) break;
        if (type == 4 && length >= 9) {  // INTERFACE
            if (current && current->out_endpoint && current->in_endpoint) return current;
            current.reset();
            if (config[at + 5] == 0xFF && config[at + 3] == 0 && config[at + 4] == 2) current = Interface{config[at + 2]};
        } else if (type == 5 && length >= 7 && current) {  // ENDPOINT of the vendor interface
            const uint8_t address = config[at + 2], attributes = config[at + 3];
            if ((attributes & 0x03) != 0x02) continue;  // bulk only
            if (address & 0x80) current->in_endpoint = address;
            else current->out_endpoint = address;
        }
    }
    if (current && current->out_endpoint && current->in_endpoint) return current;
    return std::nullopt;
}

}  // namespace mcuflash::protocol::picoboot
