#include "protocol/stk500v2/isp_programmer.hpp"

#include <fmt/format.h>

#include <algorithm>

#include "core/hexdump.hpp"
#include "protocol/retry.hpp"

namespace mcuflash::protocol::stk500v2 {

using core::Error;
using core::ErrorKind;
using core::hex_address;
using targets::FuseByte;

namespace {

// Timing parameters avrdude.conf gives every classic ATmega part mcuflash knows (m168 ... m2560):
// ENTER_PROGMODE_ISP's defaults in IspEnter, a 9 ms chip erase (tWD_ERASE), page mode with
// RDY/BSY polling for flash.
constexpr uint8_t kChipEraseDelayMs = 9;
constexpr uint8_t kChipErasePollRdyBsy = 1;
constexpr IspProgram kFlashPageMode{};
// Flash parts above 64K words need the "load extended address" instruction (LOAD_ADDRESS bit 31).
constexpr uint32_t kExtendedAbove = 0x20000;
// An answer the programmer gives after waiting on the target (erase, page write) takes longer.
constexpr long kSignOnTimeoutMs = 500;
constexpr int kSignOnAttempts = 3;

isp::Fuse codec_fuse(FuseByte fuse) {
    switch (fuse) {
        case FuseByte::Low: return isp::Fuse::Low;
        case FuseByte::High: return isp::Fuse::High;
        default: return isp::Fuse::Extended;
    }
}

bool all_erased(std::span<const uint8_t> bytes) {
    return std::all_of(bytes.begin(), bytes.end(), [](uint8_t b) { return b == 0xFF; });
}

}  // namespace

ProgrammerInfo programmer_info() {
    ProgrammerInfo info;
    info.name = "stk500v2";
    info.description = "STK500v2 ISP programmers: AVRISP mkII clones, STK500 (avrdude -c stk500v2 / avrispv2)";
    info.simulator = "stk500v2-isp";
    info.serial = {115200, link::Parity::None};
    info.make = [](link::Link& link, const targets::Chip& chip, const targets::Knowledge& knowledge,
                   link::WarningSink warn) -> std::unique_ptr<AvrProgrammer> {
        return std::make_unique<IspProgrammer>(link::link_as<link::ByteLink>(link, "stk500v2"), chip, knowledge,
                                               std::move(warn));
    };
    return info;
}

IspProgrammer::IspProgrammer(link::ByteLink& link, const targets::Chip& chip, const targets::Knowledge& knowledge,
                             link::WarningSink warn)
    : link_(link), chip_(chip), knowledge_(knowledge), warn_(warn), session_(link, std::move(warn)) {
    extended_addressing_ = chip_.flash_size > kExtendedAbove;
}

std::string IspProgrammer::sign_on() {
    link_.drain_input();
    for (int attempt = 0; attempt < kSignOnAttempts; ++attempt) {
        try {
            Frame reply = session_.exchange(stk500v2::sign_on(), "sign on", kSignOnTimeoutMs);
            if (check_reply(reply, reply.seq, cmd::kSignOn)) continue;
            name_ = sign_on_name(reply);
            return name_;
        } catch (const Error& e) {
            if (e.kind() != ErrorKind::Timeout && e.kind() != ErrorKind::Protocol) throw;
            session_.flush_device_parser();
        }
    }
    throw Error(ErrorKind::NotFound, fmt::format("no STK500v2 programmer answers on {}", link_.describe()),
                "check the port and that it is an STK500v2 serial programmer (AVRISP mkII clone, STK500, "
                "USBasp-style boards with STK500v2 firmware); 'Arduino as ISP' speaks STK500v1 and is not "
                "supported here");
}

void IspProgrammer::enter_programming() {
    address_.reset();
    Frame reply = session_.exchange(enter_progmode_isp(IspEnter{}), "enter programming mode",
                                    Session::kCommandTimeoutMs);
    if (check_reply(reply, reply.seq, cmd::kEnterProgmodeIsp, 2)) {
        uint8_t status = reply.body.size() > 1 ? reply.body[1] : 0xFF;
        throw Error(ErrorKind::NotFound,
                    fmt::format("the {} does not answer the programmer ({})", chip_.name, describe_status(status)),
                    "check the 6-pin ISP cable (pin 1 = MISO, marked on both ends), that the target board is "
                    "powered, and that its 16 MHz crystal runs; a chip whose RSTDISBL, DWEN or clock fuses were "
                    "set wrong needs a high-voltage programmer");
    }
    auto signature = read_signature();
    if (signature != chip_.signature) {
        const auto* actual = knowledge_.chip_by_signature(signature);
        throw Error(ErrorKind::Usage,
                    fmt::format("the target's signature is {} ({}), not the {} given with --chip ({})",
                                core::hex_bytes(signature), actual ? actual->name : "unknown chip", chip_.name,
                                core::hex_bytes(chip_.signature)),
                    signature == std::vector<uint8_t>{0, 0, 0} || signature == std::vector<uint8_t>{0xFF, 0xFF, 0xFF}
                        ? "all-same signature bytes mean the target is not talking: check the wiring"
                        : "");
    }
}

void IspProgrammer::leave_programming() {
    session_.command(leave_progmode_isp(), "leave programming mode", 2);
    address_.reset();
}

std::vector<uint8_t> IspProgrammer::read_signature() {
    std::vector<uint8_t> signature;
    for (uint8_t i = 0; i < 3; ++i)
        signature.push_back(single_byte_answer(session_.command(read_signature_isp(i), "read signature", 4)));
    return signature;
}

void IspProgrammer::chip_erase() {
    session_.command(chip_erase_isp(kChipEraseDelayMs, kChipErasePollRdyBsy), "chip erase", 2);
    // The chip leaves programming mode after an erase on some parts: enter it again, as avrdude does.
    enter_programming();
}

uint8_t IspProgrammer::read(FuseByte fuse) {
    std::string what = fmt::format("read {}", targets::fuse_byte_name(fuse));
    Frame reply = fuse == FuseByte::Lock ? session_.command(read_lock_isp(), what.c_str(), 4)
                                         : session_.command(read_fuse_isp(isp::read_fuse(codec_fuse(fuse))), what.c_str(), 4);
    return single_byte_answer(reply);
}

void IspProgrammer::write(FuseByte fuse, uint8_t value) {
    std::string what = fmt::format("write {}=0x{:02X}", targets::fuse_byte_name(fuse), value);
    if (fuse == FuseByte::Lock)
        // Bits 7-6 of the lock byte do not exist; the instruction wants them as 1.
        session_.command(program_lock_isp(isp::write_lock(value | 0xC0)), what.c_str(), 3);
    else
        session_.command(program_fuse_isp(isp::write_fuse(codec_fuse(fuse), value)), what.c_str(), 3);
}

void IspProgrammer::load_address(uint32_t byte_address) {
    if (address_ == byte_address) return;
    session_.command(stk500v2::load_address(byte_address >> 1, extended_addressing_), "load address", 2);
    address_ = byte_address;
}

Frame IspProgrammer::at_address(uint32_t at, uint32_t length, const Bytes& body, const std::string& what,
                                size_t answer_size) {
    for (int attempt = 0;; ++attempt) {
        try {
            load_address(at);
            Frame reply = session_.command(body, what.c_str(), answer_size, Session::kCommandTimeoutMs, 0);
            // The programmer's address register moved on by the words read or written, but it sends
            // the extended address byte only at LOAD_ADDRESS: load again at each 128 KiB boundary.
            uint32_t next = at + length;
            address_ = (next % kExtendedAbove) ? std::optional<uint32_t>(next) : std::nullopt;
            return reply;
        } catch (const Error& e) {
            // Whether the command ran is unknown, so is the address register: load it again.
            address_.reset();
            if (!transmission_problem(e) || attempt >= Session::kRetries)
                throw;
            if (warn_) warn_(fmt::format("{}; retrying", e.what()));
            session_.flush_device_parser();
        }
    }
}

void IspProgrammer::write_flash(uint32_t address, std::span<const uint8_t> data, const core::Progress& progress) {
    const uint32_t page = chip_.page_size;
    if (address % page || data.size() % page)
        throw Error(ErrorKind::Usage, fmt::format("ISP flash writes are whole pages of {} bytes", page));
    progress.started(core::Stage::Write, data.size());
    for (uint32_t offset = 0; offset < data.size(); offset += page) {
        auto bytes = data.subspan(offset, page);
        uint32_t at = address + offset;
        if (!all_erased(bytes)) {
            at_address(at, page, program_flash_isp(kFlashPageMode, bytes),
                       fmt::format("program flash page at {}", hex_address(at)), 2);
        }
        progress.advanced(core::Stage::Write, offset + page, data.size());
    }
    progress.finished(core::Stage::Write, data.size());
}

std::vector<uint8_t> IspProgrammer::read_flash(uint32_t address, uint32_t length, const core::Progress& progress) {
    if (address % 2 || length % 2)
        throw Error(ErrorKind::Usage, "ISP flash reads are whole words: even address and length");
    std::vector<uint8_t> out;
    out.reserve(length);
    progress.started(core::Stage::Read, length);
    while (out.size() < length) {
        uint32_t at = address + static_cast<uint32_t>(out.size());
        uint32_t count = std::min<uint32_t>(kReadBlock, length - static_cast<uint32_t>(out.size()));
        count = std::min<uint32_t>(count, kExtendedAbove - at % kExtendedAbove);
        Frame reply = at_address(at, count, read_flash_isp(static_cast<uint16_t>(count)),
                                 fmt::format("read flash at {}", hex_address(at)), count + 3);
        auto data = read_data(reply);
        out.insert(out.end(), data.begin(), data.end());
        progress.advanced(core::Stage::Read, out.size(), length);
    }
    progress.finished(core::Stage::Read, length);
    return out;
}

}  // namespace mcuflash::protocol::stk500v2
