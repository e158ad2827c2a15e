#include "link/swd/adiv5.hpp"

#include <fmt/format.h>

#include "core/error.hpp"
#include "core/hexdump.hpp"

namespace mcuflash::link::swd {

using core::Error;
using core::ErrorKind;
using core::hex_address;

namespace {

constexpr uint32_t kWrap = 1024;  // TAR auto-increment is only guaranteed within 10 bits

uint32_t select_value(uint8_t ap, uint8_t bank) { return static_cast<uint32_t>(ap) << 24 | (bank & 0xF) << 4; }

std::string ctrl_stat_words(uint32_t value) {
    std::vector<std::string> words;
    if (value & ctrl_stat::kStickyErr) words.push_back("STICKYERR: a bus access failed");
    if (value & ctrl_stat::kWdataErr) words.push_back("WDATAERR: write data parity");
    if (value & ctrl_stat::kStickyOrun) words.push_back("STICKYORUN: overrun");
    if (value & ctrl_stat::kStickyCmp) words.push_back("STICKYCMP");
    if (!(value & ctrl_stat::kCdbgPwrUpAck)) words.push_back("debug domain powered down");
    std::string text = fmt::format("CTRL/STAT 0x{:08X}", value);
    for (size_t i = 0; i < words.size(); ++i) text += (i ? ", " : ": ") + words[i];
    return text;
}

}  // namespace

// ---- MemoryBatch ----

MemoryBatch::MemoryBatch(Adiv5& dap) : dap_(dap), select_(dap.select_), csw_(dap.csw_), tar_(dap.tar_) {}

void MemoryBatch::push(Transfer transfer, Origin origin) {
    transfers_.push_back(transfer);
    origins_.push_back(origin);
}

void MemoryBatch::select_bank(uint8_t bank) {
    const uint32_t value = select_value(dap_.ap_, bank);
    if (select_ == value) return;
    push(Transfer::write(false, dp::kSelect, value), {0, "selecting the access port for"});
    select_ = value;
}

void MemoryBatch::set_csw(uint32_t size_bits, Mode mode) {
    select_bank(0);
    const uint32_t value = dap_.csw_base_ | size_bits | (mode == Mode::Increment ? mem_ap::kCswAddrIncSingle : 0);
    if (csw_ == value) return;
    push(Transfer::write(true, mem_ap::kCsw, value), {0, "setting up the memory access for"});
    csw_ = value;
}

void MemoryBatch::set_tar(uint32_t address) {
    if (tar_ == address) return;
    push(Transfer::write(true, mem_ap::kTar, address), {address, "setting the address for"});
    tar_ = address;
}

void MemoryBatch::single_write(uint32_t address, uint32_t lanes, uint32_t size_bits) {
    set_csw(size_bits, Mode::Single);
    set_tar(address);
    push(Transfer::write(true, mem_ap::kDrw, lanes), {address, "writing"});
}

void MemoryBatch::write32(uint32_t address, uint32_t value) { single_write(address, value, mem_ap::kCswSize32); }

void MemoryBatch::write16(uint32_t address, uint16_t value) {
    single_write(address, static_cast<uint32_t>(value) << (8 * (address & 2)), mem_ap::kCswSize16);
}

void MemoryBatch::write8(uint32_t address, uint8_t value) {
    single_write(address, static_cast<uint32_t>(value) << (8 * (address & 3)), mem_ap::kCswSize8);
}

void MemoryBatch::write_words(uint32_t address, std::span<const uint32_t> values) {
    if (address & 3) throw Error(ErrorKind::Internal, fmt::format("word write at unaligned {}", hex_address(address)));
    set_csw(mem_ap::kCswSize32, Mode::Increment);
    for (size_t i = 0; i < values.size(); ++i) {
        const uint32_t at = address + static_cast<uint32_t>(4 * i);
        set_tar(at);
        push(Transfer::write(true, mem_ap::kDrw, values[i]), {at, "writing"});
        tar_ = (at + 4) % kWrap ? std::optional<uint32_t>(at + 4) : std::nullopt;
    }
}

void MemoryBatch::write_halfwords(uint32_t address, std::span<const uint16_t> values) {
    if (address & 1) throw Error(ErrorKind::Internal, fmt::format("halfword write at odd {}", hex_address(address)));
    set_csw(mem_ap::kCswSize16, Mode::Increment);
    for (size_t i = 0; i < values.size(); ++i) {
        const uint32_t at = address + static_cast<uint32_t>(2 * i);
        set_tar(at);
        push(Transfer::write(true, mem_ap::kDrw, static_cast<uint32_t>(values[i]) << (8 * (at & 2))), {at, "writing"});
        tar_ = (at + 2) % kWrap ? std::optional<uint32_t>(at + 2) : std::nullopt;
    }
}

size_t MemoryBatch::read32(uint32_t address) {
    set_csw(mem_ap::kCswSize32, Mode::Single);
    set_tar(address);
    push(Transfer::read(true, mem_ap::kDrw), {address, "reading"});
    return reads_++;
}

size_t MemoryBatch::read_words(uint32_t address, size_t count) {
    if (address & 3) throw Error(ErrorKind::Internal, fmt::format("word read at unaligned {}", hex_address(address)));
    const size_t first = reads_;
    set_csw(mem_ap::kCswSize32, Mode::Increment);
    for (size_t i = 0; i < count; ++i) {
        const uint32_t at = address + static_cast<uint32_t>(4 * i);
        set_tar(at);
        push(Transfer::read(true, mem_ap::kDrw), {at, "reading"});
        tar_ = (at + 4) % kWrap ? std::optional<uint32_t>(at + 4) : std::nullopt;
        ++reads_;
    }
    return first;
}

void MemoryBatch::wait_until(uint32_t address, uint32_t mask, uint32_t value, std::string what) {
    set_csw(mem_ap::kCswSize32, Mode::Single);
    set_tar(address);
    waits_.push_back(std::move(what));
    const int wait = static_cast<int>(waits_.size() - 1);
    push(Transfer::match_mask(mask), {address, "waiting for", wait});
    push(Transfer::read_until(true, mem_ap::kDrw, value & mask), {address, "waiting for", wait});
}

std::vector<uint32_t> MemoryBatch::run(const std::string& what) {
    if (transfers_.empty()) return {};
    TransferResult result;
    try {
        result = dap_.probe_.execute(transfers_);
    } catch (Error& e) {
        dap_.forget_state();
        if (e.operation().empty()) e.during(what);
        throw;
    }
    if (!result.ok()) dap_.fail(result, origins_, waits_, what);
    dap_.select_ = select_;
    dap_.csw_ = csw_;
    dap_.tar_ = tar_;
    return std::move(result.reads);
}

// ---- Adiv5 ----

Adiv5::Adiv5(DebugProbe& probe, uint8_t ap) : probe_(probe), ap_(ap) {}

void Adiv5::forget_state() { select_.reset(), csw_.reset(), tar_.reset(); }

uint32_t Adiv5::clear_errors() {
    uint32_t status = 0;
    // With a sticky error set the DP answers only a DPIDR or CTRL/STAT read and an ABORT write (ADIv5
    // B4.2.5): read CTRL/STAT first (mcuflash only ever selects DP bank 0, where it is), then clear the
    // flags, then SELECT again.
    const Transfer read_status[] = {Transfer::read(false, dp::kCtrlStat)};
    auto result = probe_.execute(read_status);
    if (result.ok()) status = result.reads.at(0);
    probe_.write_abort(abort_bits::kClearAll);
    const Transfer reselect[] = {Transfer::write(false, dp::kSelect, select_value(ap_, 0))};
    probe_.execute(reselect);
    select_ = select_value(ap_, 0);
    csw_.reset(), tar_.reset();
    return status;
}

uint32_t Adiv5::connect() {
    forget_state();
    dpidr_ = probe_.connect();
    probe_.write_abort(abort_bits::kClearAll);
    // Power up the debug and system domains and wait for both acknowledges (ADIv5 B2.2.2).
    const uint32_t request = ctrl_stat::kCdbgPwrUpReq | ctrl_stat::kCsysPwrUpReq;
    const uint32_t acks = ctrl_stat::kCdbgPwrUpAck | ctrl_stat::kCsysPwrUpAck;
    const Transfer power_up[] = {
        Transfer::write(false, dp::kSelect, select_value(ap_, 0)),
        Transfer::write(false, dp::kCtrlStat, request),
        Transfer::match_mask(acks),
        Transfer::read_until(false, dp::kCtrlStat, acks),
    };
    auto result = probe_.execute(power_up);
    if (!result.ok()) {
        const bool timed_out = result.value_mismatch;
        throw Error(timed_out ? ErrorKind::Timeout : ErrorKind::Protocol,
                    timed_out ? "the chip's debug port did not power up (CTRL/STAT never showed CDBGPWRUPACK and "
                                "CSYSPWRUPACK)"
                              : fmt::format("the chip refused the debug power-up request (SWD ack {})", result.ack),
                    "power the board, release its reset, and try again; a chip in a deep sleep mode may need its "
                    "reset held (--connect-under-reset) while connecting");
    }
    select_ = select_value(ap_, 0);
    ap_idr_ = read_ap(mem_ap::kIdr);
    // IDR CLASS (bits 16:13) 0b1000: a MEM-AP.
    if (ap_idr_ == 0 || ((ap_idr_ >> 13) & 0xF) != 0x8)
        throw Error(ErrorKind::Unsupported,
                    fmt::format("access port {} of the chip is not a memory access port (IDR 0x{:08X})", ap_, ap_idr_));
    return dpidr_;
}

uint32_t Adiv5::read_dp(uint8_t address) {
    const Transfer t = Transfer::read(false, address);
    auto result = probe_.execute(std::span(&t, 1));
    if (!result.ok()) fail(result, {{0, "reading a debug port register for"}}, {}, fmt::format("DP register 0x{:X}", address));
    return result.reads.at(0);
}

void Adiv5::write_dp(uint8_t address, uint32_t value) {
    const Transfer t = Transfer::write(false, address, value);
    auto result = probe_.execute(std::span(&t, 1));
    if (!result.ok()) fail(result, {{0, "writing a debug port register for"}}, {}, fmt::format("DP register 0x{:X}", address));
    if (address == dp::kSelect) select_ = value;
}

uint32_t Adiv5::read_ap(uint8_t address) {
    std::vector<Transfer> transfers;
    const uint32_t select = select_value(ap_, address >> 4);
    if (select_ != select) transfers.push_back(Transfer::write(false, dp::kSelect, select));
    transfers.push_back(Transfer::read(true, address & 0xC));
    auto result = probe_.execute(transfers);
    if (!result.ok())
        fail(result, std::vector<MemoryBatch::Origin>(transfers.size(), {0, "reading an access port register for"}), {},
             fmt::format("AP register 0x{:02X}", address));
    select_ = select;
    return result.reads.at(0);
}

void Adiv5::write_ap(uint8_t address, uint32_t value) {
    std::vector<Transfer> transfers;
    const uint32_t select = select_value(ap_, address >> 4);
    if (select_ != select) transfers.push_back(Transfer::write(false, dp::kSelect, select));
    transfers.push_back(Transfer::write(true, address & 0xC, value));
    auto result = probe_.execute(transfers);
    if (!result.ok())
        fail(result, std::vector<MemoryBatch::Origin>(transfers.size(), {0, "writing an access port register for"}), {},
             fmt::format("AP register 0x{:02X}", address));
    select_ = select;
    if (address == mem_ap::kCsw) csw_ = value;
    if (address == mem_ap::kTar) tar_ = value;
}

uint32_t Adiv5::read32(uint32_t address) {
    auto batch = this->batch();
    batch.read32(address);
    return batch.run(fmt::format("reading the word at {}", hex_address(address))).at(0);
}

void Adiv5::write32(uint32_t address, uint32_t value) {
    auto batch = this->batch();
    batch.write32(address, value);
    batch.run(fmt::format("writing the word at {}", hex_address(address)));
}

void Adiv5::write16(uint32_t address, uint16_t value) {
    auto batch = this->batch();
    batch.write16(address, value);
    batch.run(fmt::format("writing the halfword at {}", hex_address(address)));
}

void Adiv5::write8(uint32_t address, uint8_t value) {
    auto batch = this->batch();
    batch.write8(address, value);
    batch.run(fmt::format("writing the byte at {}", hex_address(address)));
}

std::vector<uint8_t> Adiv5::read_bytes(uint32_t address, size_t length) {
    if (length == 0) return {};
    const uint32_t first = address & ~3u;
    const uint64_t end = static_cast<uint64_t>(address) + length;
    const size_t words = static_cast<size_t>((end - first + 3) / 4);
    auto batch = this->batch();
    batch.read_words(first, words);
    auto values = batch.run(fmt::format("reading {} bytes at {}", length, hex_address(address)));
    std::vector<uint8_t> bytes;
    bytes.reserve(length);
    for (size_t i = 0; i < length; ++i) {
        const size_t offset = address - first + i;
        bytes.push_back(static_cast<uint8_t>(values[offset / 4] >> (8 * (offset % 4))));
    }
    return bytes;
}

void Adiv5::fail(const TransferResult& result, const std::vector<MemoryBatch::Origin>& origins,
                 const std::vector<std::string>& waits, const std::string& what) {
    forget_state();
    const MemoryBatch::Origin origin =
        result.completed < origins.size() ? origins[result.completed] : (origins.empty() ? MemoryBatch::Origin{} : origins.back());
    const std::string where = origin.address ? fmt::format(" ({} {})", origin.operation, hex_address(origin.address)) : "";
    auto error = [&](ErrorKind kind, std::string message, std::string hint) {
        Error e(kind, std::move(message), std::move(hint));
        e.during(what);
        if (origin.address) e.at_address(origin.address);
        return e;
    };
    if (result.value_mismatch) {
        const std::string waited = origin.wait >= 0 && static_cast<size_t>(origin.wait) < waits.size()
                                       ? waits[static_cast<size_t>(origin.wait)]
                                       : "a register to change";
        throw error(ErrorKind::Timeout,
                    fmt::format("waited in vain for {} (the register at {} never showed it)", waited,
                                hex_address(origin.address)),
                    "the chip's flash controller may be stuck: power the board off and on, and try again");
    }
    if (result.protocol_error) {
        clear_errors();
        throw error(ErrorKind::Protocol, fmt::format("an SWD read came with a parity error{}", where),
                    "the SWD wiring is noisy or too long: shorten it or lower the SWD clock");
    }
    switch (result.ack) {
        case dap::kAckFault: {
            const uint32_t status = clear_errors();
            throw error(ErrorKind::Protocol,
                        fmt::format("the chip refused the access (SWD FAULT){}; {}", where, ctrl_stat_words(status)),
                        "the address may not exist on this chip, or the chip is protected or held in reset");
        }
        case dap::kAckWait:
            // The DP keeps answering WAIT until the stuck access is abandoned.
            try {
                probe_.write_abort(abort_bits::kDapAbort);
                clear_errors();
            } catch (const Error&) {
            }
            throw error(ErrorKind::Timeout,
                        fmt::format("the chip kept answering WAIT over SWD{} past the probe's retries", where),
                        "the chip's bus is stuck (a flash operation that never ends, or a clock stopped): power "
                        "the board off and on, and try again");
        case dap::kAckNone:
            throw error(ErrorKind::Io, fmt::format("the chip stopped answering over SWD{}", where),
                        "check the wiring, the board's power and that nothing holds it in reset; then try again");
        default:
            throw error(ErrorKind::Protocol,
                        fmt::format("the debug probe stopped after {} transfers{} (acknowledge {})", result.completed,
                                    where, result.ack),
                        "");
    }
}

}  // namespace mcuflash::link::swd
