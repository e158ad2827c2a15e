#include "sim/cmsis_dap/dap_processor.hpp"

#include <algorithm>

#include <fmt/format.h>

namespace mcuflash::sim::cmsis_dap {

namespace {

using swd::SwdAck;

// Command ids (CMSIS-DAP v2.1, "Commands"); the probe's own constants, not shared with link/.
enum : uint8_t {
    kInfo = 0x00,
    kHostStatus = 0x01,
    kConnect = 0x02,
    kDisconnect = 0x03,
    kTransferConfigure = 0x04,
    kTransfer = 0x05,
    kTransferBlock = 0x06,
    kTransferAbort = 0x07,
    kWriteAbort = 0x08,
    kDelay = 0x09,
    kResetTarget = 0x0A,
    kSwjPins = 0x10,
    kSwjClock = 0x11,
    kSwjSequence = 0x12,
    kSwdConfigure = 0x13,
    kSwdSequence = 0x1D,
    kQueueCommands = 0x7E,
    kExecuteCommands = 0x7F,
    kInvalid = 0xFF,
};
constexpr uint8_t kStatusOk = 0x00, kStatusError = 0xFF;
constexpr uint8_t kPortDefault = 0, kPortSwd = 1;

// DAP_Info ids.
enum : uint8_t {
    kInfoVendor = 0x01,
    kInfoProduct = 0x02,
    kInfoSerial = 0x03,
    kInfoProtocolVersion = 0x04,
    kInfoTargetVendor = 0x05,
    kInfoTargetName = 0x06,
    kInfoBoardVendor = 0x07,
    kInfoBoardName = 0x08,
    kInfoFirmwareVersion = 0x09,
    kInfoCapabilities = 0xF0,
    kInfoPacketCount = 0xFE,
    kInfoPacketSize = 0xFF,
};
constexpr uint8_t kCapabilitySwd = 0x01;

// Transfer request bits.
constexpr uint8_t kApNdp = 0x01, kRnW = 0x02, kAddress = 0x0C, kMatchValue = 0x10, kMatchMask = 0x20,
                  kTimestamp = 0x80;
// Transfer response bits beside the acknowledge.
constexpr uint8_t kValueMismatch = 0x10;
constexpr uint8_t kDpAbort = 0x0, kDpRdbuff = 0xC;
constexpr uint8_t kPinReset = 0x80;

constexpr uint32_t kMaxClockHz = 10'000'000;

void put16(std::vector<uint8_t>& out, uint16_t v) {
    out.push_back(static_cast<uint8_t>(v));
    out.push_back(static_cast<uint8_t>(v >> 8));
}
void put32(std::vector<uint8_t>& out, uint32_t v) {
    for (int i = 0; i < 4; ++i) out.push_back(static_cast<uint8_t>(v >> (8 * i)));
}
void set16(std::vector<uint8_t>& out, size_t at, uint16_t v) {
    out[at] = static_cast<uint8_t>(v);
    out[at + 1] = static_cast<uint8_t>(v >> 8);
}

const char* ack_name(SwdAck ack) {
    switch (ack) {
        case SwdAck::Ok: return "OK";
        case SwdAck::Wait: return "WAIT";
        case SwdAck::Fault: return "FAULT";
        case SwdAck::NoResponse: return "no response";
    }
    return "?";
}

}  // namespace

// Reads a command's fields; past the end of the packet it reads zeros (what a firmware reading its
// zero-filled packet buffer sees), so a short command cannot make the probe read out of bounds.
class DapProcessor::Reader {
public:
    explicit Reader(std::span<const uint8_t> bytes) : bytes_(bytes) {}
    bool at_end() const { return at_ >= bytes_.size(); }
    uint8_t u8() { return at_ < bytes_.size() ? bytes_[at_++] : (++at_, 0); }
    uint16_t u16() {
        uint16_t lo = u8();
        return static_cast<uint16_t>(lo | (u8() << 8));
    }
    uint32_t u32() {
        uint32_t v = 0;
        for (int i = 0; i < 4; ++i) v |= uint32_t{u8()} << (8 * i);
        return v;
    }
    std::vector<uint8_t> bytes(size_t n) {
        std::vector<uint8_t> out;
        for (size_t i = 0; i < n; ++i) out.push_back(u8());
        return out;
    }

private:
    std::span<const uint8_t> bytes_;
    size_t at_ = 0;
};

DapProcessor::DapProcessor(swd::DebugTarget& target, ProbeIdentity identity, bool timing)
    : target_(target), identity_(std::move(identity)), timing_(timing) {}

void DapProcessor::spend(Clock::duration d) {
    if (timing_) cursor_ += d;
}

void DapProcessor::spend_bits(uint64_t bits) {
    const uint32_t hz = std::min(clock_hz_, kMaxClockHz);
    spend(std::chrono::nanoseconds(bits * 1'000'000'000ull / hz));
}

SwdAck DapProcessor::packet(bool ap, bool read, uint8_t address, uint32_t& data) {
    for (unsigned attempt = 0;; ++attempt) {
        uint32_t value = data;
        const SwdAck ack = target_.transfer(ap, read, address, value, cursor_);
        ++packets_;
        // Request, turnaround, acknowledge; then data and parity with one more turnaround, or
        // (WAIT, FAULT) the turnaround back, plus the data phase when configured to clock it.
        uint64_t bits = 8 + turnaround_ + 3;
        if (ack == SwdAck::Ok) bits += 33 + turnaround_ + idle_cycles_;
        else bits += turnaround_ + (data_phase_ ? 33 : 0);
        spend_bits(bits);
        if (ack == SwdAck::Ok) {
            if (read) data = value;
            return ack;
        }
        if (ack != SwdAck::Wait) {
            trace(fmt::format("SWD {} {} 0x{:X}: {}", ap ? "AP" : "DP", read ? "read" : "write", address, ack_name(ack)));
            return ack;
        }
        ++wait_acks_;
        if (attempt >= wait_retry_) {
            trace(fmt::format("SWD {} {} 0x{:X}: WAIT {} times, giving up", ap ? "AP" : "DP", read ? "read" : "write",
                              address, attempt + 1));
            return ack;
        }
    }
}

void DapProcessor::tick(Clock::time_point now) {
    cursor_ = std::max(cursor_, now);
    target_.tick(cursor_);
}

DapAnswer DapProcessor::execute(std::span<const uint8_t> command, Clock::time_point now) {
    if (!epoch_set_) epoch_ = now, epoch_set_ = true;
    cursor_ = std::max(cursor_, now);
    target_.tick(cursor_);
    DapAnswer answer;
    if (command.empty()) {
        answer.response = {kInvalid};
    } else if (command[0] == kTransferAbort) {
        answer.has_response = false;  // nothing runs between whole commands: nothing to abort
    } else {
        Reader reader(command);
        run_one(reader, answer.response);
    }
    answer.done_at = cursor_;
    return answer;
}

bool DapProcessor::run_one(Reader& in, std::vector<uint8_t>& out) {
    const uint8_t id = in.u8();
    const size_t start = out.size();
    out.push_back(id);
    switch (id) {
        case kInfo: info(in, out); return true;
        case kHostStatus: {
            const uint8_t type = in.u8();
            in.u8();  // LED on/off: the simulated probe has no LEDs to light
            out.push_back(type <= 1 ? kStatusOk : kStatusError);
            return true;
        }
        case kConnect: {
            const uint8_t port = in.u8();
            if (port == kPortDefault || port == kPortSwd) {
                connected_ = true;
                out.push_back(kPortSwd);
            } else {
                trace(fmt::format("DAP_Connect port {}: this probe does SWD only", port));
                out.push_back(0);  // JTAG (2) or unknown: connect failed
            }
            return true;
        }
        case kDisconnect:
            connected_ = false;
            out.push_back(kStatusOk);
            return true;
        case kTransferConfigure:
            idle_cycles_ = in.u8();
            wait_retry_ = in.u16();
            match_retry_ = in.u16();
            out.push_back(kStatusOk);
            return true;
        case kTransfer: transfer(in, out); return true;
        case kTransferBlock: transfer_block(in, out); return true;
        case kWriteAbort: {
            in.u8();  // DAP index: ignored for SWD
            uint32_t value = in.u32();
            const bool ok = connected_ && packet(false, false, kDpAbort, value) == SwdAck::Ok;
            out.push_back(ok ? kStatusOk : kStatusError);
            return true;
        }
        case kDelay:
            spend(std::chrono::microseconds(in.u16()));
            out.push_back(kStatusOk);
            return true;
        case kResetTarget:
            // The "device specific" sequence of this probe: a 1 ms nRESET pulse.
            target_.set_reset_line(true, cursor_);
            spend(std::chrono::milliseconds(1));
            target_.set_reset_line(false, cursor_);
            pins_ |= kPinReset;
            out.push_back(kStatusOk);
            out.push_back(1);  // a reset sequence is implemented
            return true;
        case kSwjPins: swj_pins(in, out); return true;
        case kSwjClock: {
            const uint32_t hz = in.u32();
            if (hz == 0) {
                out.push_back(kStatusError);
                return true;
            }
            clock_hz_ = hz;
            out.push_back(kStatusOk);
            return true;
        }
        case kSwjSequence: swj_sequence(in, out); return true;
        case kSwdConfigure: {
            const uint8_t config = in.u8();
            turnaround_ = static_cast<uint8_t>((config & 0x03) + 1);
            data_phase_ = config & 0x04;
            out.push_back(kStatusOk);
            return true;
        }
        case kSwdSequence: swd_sequence(in, out); return true;
        case kExecuteCommands: {
            const uint8_t count = in.u8();
            out.push_back(count);
            for (unsigned i = 0; i < count; ++i) {
                if (in.at_end()) break;
                if (!run_one(in, out)) break;  // its length is unknown: the rest cannot be parsed
            }
            return true;
        }
        default:
            // Unknown, JTAG, SWO, UART, DAP_QueueCommands, vendor: "Commands that are not
            // implemented reply with 0xFF instead of repeating the command byte."
            trace(fmt::format("DAP command 0x{:02X}: not implemented (0xFF)", id));
            out.resize(start);
            out.push_back(kInvalid);
            while (!in.at_end()) in.u8();  // the rest of the packet cannot be parsed any more
            return false;
    }
}

void DapProcessor::info(Reader& in, std::vector<uint8_t>& out) {
    const uint8_t which = in.u8();
    auto string = [&out](const std::string& text) {
        if (text.empty()) {
            out.push_back(0);
            return;
        }
        out.push_back(static_cast<uint8_t>(text.size() + 1));
        out.insert(out.end(), text.begin(), text.end());
        out.push_back(0);
    };
    switch (which) {
        case kInfoVendor: string(identity_.vendor); return;
        case kInfoProduct: string(identity_.product); return;
        case kInfoSerial: string(identity_.serial); return;
        case kInfoProtocolVersion: string(identity_.protocol_version); return;
        case kInfoTargetVendor: string(identity_.target_vendor); return;
        case kInfoTargetName: string(identity_.target_name); return;
        case kInfoBoardVendor:
        case kInfoBoardName: string(""); return;
        case kInfoFirmwareVersion: string(identity_.firmware_version); return;
        case kInfoCapabilities:
            out.push_back(1);
            out.push_back(kCapabilitySwd);
            return;
        case kInfoPacketCount:
            out.push_back(1);
            out.push_back(identity_.packet_count);
            return;
        case kInfoPacketSize:
            out.push_back(2);
            put16(out, identity_.packet_size);
            return;
        default: out.push_back(0); return;  // not available
    }
}

void DapProcessor::transfer(Reader& in, std::vector<uint8_t>& out) {
    in.u8();  // DAP index: ignored for SWD
    const uint8_t count = in.u8();
    const size_t header = out.size();
    out.push_back(0);  // transfers done
    out.push_back(0);  // last response
    uint8_t done = 0;
    uint8_t response = 0;
    bool stopped = !connected_;
    bool posted = false;  // an AP read was issued whose value the next AP read or RDBUFF brings
    std::optional<uint32_t> posted_timestamp;
    bool last_was_write = false;
    const auto timestamp = [this] {
        return static_cast<uint32_t>(std::chrono::duration_cast<std::chrono::microseconds>(cursor_ - epoch_).count());
    };
    // The posted AP read's value, collected with a DP RDBUFF read.
    const auto collect_posted = [&]() -> bool {
        uint32_t value = 0;
        const SwdAck ack = packet(false, true, kDpRdbuff, value);
        response = static_cast<uint8_t>(ack);
        posted = false;
        if (ack != SwdAck::Ok) return false;
        if (posted_timestamp) put32(out, *posted_timestamp);
        put32(out, value);
        ++done;
        return true;
    };

    for (unsigned i = 0; i < count; ++i) {
        const uint8_t request = in.u8();
        const bool ap = request & kApNdp, read = request & kRnW;
        const auto address = static_cast<uint8_t>(request & kAddress);
        const bool match = read && (request & kMatchValue);
        const bool wants_timestamp = request & kTimestamp;
        uint32_t value = (!read || match) ? in.u32() : 0;
        if (stopped) continue;  // the rest of the requests are parsed, not executed

        const bool plain_ap_read = ap && read && !match;
        if (posted && !plain_ap_read && !collect_posted()) {
            stopped = true;
            continue;
        }
        if (plain_ap_read) {
            const std::optional<uint32_t> stamp = wants_timestamp ? std::optional<uint32_t>(timestamp()) : std::nullopt;
            uint32_t previous = 0;
            const SwdAck ack = packet(true, true, address, previous);
            response = static_cast<uint8_t>(ack);
            if (ack != SwdAck::Ok) {
                stopped = true;
                continue;
            }
            if (posted) {  // this packet brought the previous AP read's value
                if (posted_timestamp) put32(out, *posted_timestamp);
                put32(out, previous);
                ++done;
            }
            posted = true;
            posted_timestamp = stamp;
            last_was_write = false;
        } else if (read && !match) {  // DP read: not posted
            if (wants_timestamp) put32(out, timestamp());
            uint32_t data = 0;
            const SwdAck ack = packet(false, true, address, data);
            response = static_cast<uint8_t>(ack);
            if (ack != SwdAck::Ok) {
                if (wants_timestamp) out.resize(out.size() - 4);
                stopped = true;
                continue;
            }
            put32(out, data);
            ++done;
            last_was_write = false;
        } else if (match) {
            // Read until (value & mask) == match, up to the match retry count; no data in the answer.
            uint32_t data = 0;
            SwdAck ack = SwdAck::Ok;
            if (ap) ack = packet(true, true, address, data);  // post the first read
            bool matched = false;
            for (unsigned retry = 0; ack == SwdAck::Ok; ++retry) {
                ack = packet(ap, true, address, data);  // an AP read brings the one before it
                if (ack != SwdAck::Ok) break;
                if ((data & match_mask_) == value) {
                    matched = true;
                    break;
                }
                if (retry >= match_retry_) break;
            }
            response = static_cast<uint8_t>(ack);
            if (ack != SwdAck::Ok) {
                stopped = true;
                continue;
            }
            if (!matched) {
                trace(fmt::format("value match on {} 0x{:X}: read 0x{:08X}, wanted 0x{:08X} under mask 0x{:08X}",
                                  ap ? "AP" : "DP", address, data, value, match_mask_));
                response |= kValueMismatch;
                stopped = true;
                continue;
            }
            ++done;
            last_was_write = false;
        } else if (request & kMatchMask) {  // sets the match mask: no SWD packet
            match_mask_ = value;
            ++done;
        } else {
            if (wants_timestamp) put32(out, timestamp());
            const SwdAck ack = packet(ap, false, address, value);
            response = static_cast<uint8_t>(ack);
            if (ack != SwdAck::Ok) {
                if (wants_timestamp) out.resize(out.size() - 4);
                stopped = true;
                continue;
            }
            ++done;
            last_was_write = true;
        }
    }
    if (!stopped) {
        if (posted) {
            collect_posted();
        } else if (last_was_write) {
            // A write's FAULT may only show on the next packet: read RDBUFF so this answer tells.
            uint32_t ignored = 0;
            response = static_cast<uint8_t>(packet(false, true, kDpRdbuff, ignored));
        }
    }
    out[header] = done;
    out[header + 1] = response;
}

void DapProcessor::transfer_block(Reader& in, std::vector<uint8_t>& out) {
    in.u8();  // DAP index
    const uint16_t count = in.u16();
    const uint8_t request = in.u8();
    const bool ap = request & kApNdp, read = request & kRnW;
    const auto address = static_cast<uint8_t>(request & kAddress);
    const size_t header = out.size();
    put16(out, 0);
    out.push_back(0);
    uint16_t done = 0;
    SwdAck ack = SwdAck::Ok;
    if (!connected_) {
        if (!read) in.bytes(size_t{count} * 4);
        return;
    }
    if (read) {
        if (ap && count > 0) {
            uint32_t ignored = 0;
            ack = packet(true, true, address, ignored);  // posts the first read
            for (uint16_t i = 1; i < count && ack == SwdAck::Ok; ++i) {
                uint32_t previous = 0;
                ack = packet(true, true, address, previous);
                if (ack == SwdAck::Ok) put32(out, previous), ++done;
            }
            if (ack == SwdAck::Ok) {
                uint32_t last = 0;
                ack = packet(false, true, kDpRdbuff, last);
                if (ack == SwdAck::Ok) put32(out, last), ++done;
            }
        } else {
            for (uint16_t i = 0; i < count && ack == SwdAck::Ok; ++i) {
                uint32_t data = 0;
                ack = packet(false, true, address, data);
                if (ack == SwdAck::Ok) put32(out, data), ++done;
            }
        }
    } else {
        for (uint16_t i = 0; i < count; ++i) {
            uint32_t value = in.u32();
            if (ack != SwdAck::Ok) continue;
            ack = packet(ap, false, address, value);
            if (ack == SwdAck::Ok) ++done;
        }
        if (ack == SwdAck::Ok && count > 0) {
            uint32_t ignored = 0;
            ack = packet(false, true, kDpRdbuff, ignored);  // the last write's outcome
        }
    }
    set16(out, header, done);
    out[header + 2] = static_cast<uint8_t>(ack);
}

void DapProcessor::swj_pins(Reader& in, std::vector<uint8_t>& out) {
    const uint8_t value = in.u8();
    const uint8_t select = in.u8();
    in.u32();  // wait time: the simulated pins reach their level at once
    const bool reset_was_released = pins_ & kPinReset;
    pins_ = static_cast<uint8_t>((pins_ & ~select) | (value & select));
    if ((select & kPinReset) && reset_was_released != bool(pins_ & kPinReset)) {
        trace(pins_ & kPinReset ? "nRESET released" : "nRESET asserted");
        target_.set_reset_line(!(pins_ & kPinReset), cursor_);
    }
    out.push_back(pins_);
}

void DapProcessor::swj_sequence(Reader& in, std::vector<uint8_t>& out) {
    unsigned count = in.u8();
    if (count == 0) count = 256;
    const auto bits = in.bytes((count + 7) / 8);
    target_.swj_sequence(bits, count, cursor_);
    spend_bits(count);
    out.push_back(kStatusOk);
}

void DapProcessor::swd_sequence(Reader& in, std::vector<uint8_t>& out) {
    const uint8_t sequences = in.u8();
    out.push_back(kStatusOk);
    for (unsigned i = 0; i < sequences; ++i) {
        const uint8_t info = in.u8();
        unsigned count = info & 0x3F;
        if (count == 0) count = 64;
        const size_t bytes = (count + 7) / 8;
        if (info & 0x80) {
            // Input: nothing drives SWDIO outside a packet here, so the pull-up reads ones.
            for (size_t b = 0; b < bytes; ++b) out.push_back(0xFF);
        } else {
            const auto bits = in.bytes(bytes);
            target_.swj_sequence(bits, count, cursor_);
        }
        spend_bits(count);
    }
}

}  // namespace mcuflash::sim::cmsis_dap
