#include "link/swd/bitbang_probe.hpp"

#include <fmt/format.h>

#include <bit>
#include <vector>

#include "core/error.hpp"

namespace mcuflash::link::swd {

using core::Error;
using core::ErrorKind;

namespace {

constexpr unsigned kLineResetOnes = 56;  // the spec asks for at least 50
constexpr uint16_t kJtagToSwd = 0xE79E;  // sent LSB first
constexpr unsigned kIdleAfterPacket = 2;  // keeps SWDIO low and driven between packets
constexpr unsigned kIdleAfterQueue = 8;   // lets the last transaction finish before the clock stops

const char* ack_words(uint8_t ack) {
    switch (ack) {
        case dap::kAckOk: return "OK";
        case dap::kAckWait: return "WAIT";
        case dap::kAckFault: return "FAULT";
        case dap::kAckNone: return "no answer";
        default: return "an invalid acknowledge";
    }
}

}  // namespace

uint8_t swd_request(bool ap, bool read, uint8_t address) {
    const unsigned a2 = address >> 2 & 1, a3 = address >> 3 & 1;
    const unsigned parity = (unsigned{ap} + unsigned{read} + a2 + a3) & 1;
    // start, APnDP, RnW, A2, A3, parity, stop (0), park (1)
    return static_cast<uint8_t>(1u | unsigned{ap} << 1 | unsigned{read} << 2 | a2 << 3 | a3 << 4 | parity << 5 | 1u << 7);
}

bool swd_parity(uint32_t value) { return std::popcount(value) & 1; }

BitbangProbe::BitbangProbe(std::unique_ptr<SwdPins> pins) : pins_(std::move(pins)) {}

BitbangProbe::~BitbangProbe() {
    if (connected_) {
        try {
            disconnect();
        } catch (...) {
            // the pins are given back by their own destructor anyway
        }
    }
}

std::string BitbangProbe::describe() const { return "SWD bit-banged on " + pins_->describe(); }

void BitbangProbe::set_clock(uint32_t hz) {
    half_period_ = hz == 0 ? std::chrono::nanoseconds(0) : std::chrono::nanoseconds(500'000'000ull / hz);
}

void BitbangProbe::set_retries(uint16_t wait_retries, uint16_t match_retries) {
    wait_retries_ = wait_retries;
    match_retries_ = match_retries;
}

void BitbangProbe::set_reset_line(bool asserted) {
    if (!pins_->has_reset_line())
        throw Error(ErrorKind::Unsupported,
                    fmt::format("the chip's nRESET is not wired to {} (the probe spec names no srst pin)", describe()),
                    "wire the board's NRST/RESET pin to a free GPIO (Klipper's docs use GPIO18) and add srst=18 to "
                    "the probe spec, or reset through the core (the default)");
    pins_->set_reset_line(asserted);
}

void BitbangProbe::pause(std::chrono::milliseconds duration) { pins_->delay(duration); }

void BitbangProbe::idle(unsigned count) {
    const uint8_t zeros[2] = {0, 0};
    while (count > 0) {
        const unsigned n = std::min(count, 16u);
        pins_->clock_out(zeros, n, half_period_);
        count -= n;
    }
}

void BitbangProbe::select_swd() {
    const uint8_t ones[7] = {0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF};
    const uint8_t select[2] = {static_cast<uint8_t>(kJtagToSwd & 0xFF), static_cast<uint8_t>(kJtagToSwd >> 8)};
    pins_->clock_out(ones, kLineResetOnes, half_period_);
    pins_->clock_out(select, 16, half_period_);
    pins_->clock_out(ones, kLineResetOnes, half_period_);
    idle(8);
}

void BitbangProbe::turnaround_to_host() {
    // One clock with nobody driving; the host takes SWDIO back after it.
    uint8_t ignored = 0;
    pins_->clock_in(std::span(&ignored, 1), 1, half_period_);
}

uint8_t BitbangProbe::packet(bool ap, bool read, uint8_t address, uint32_t& data, bool& parity_error) {
    parity_error = false;
    ++packets_;
    const uint8_t request = swd_request(ap, read, address);
    pins_->clock_out(std::span(&request, 1), 8, half_period_);
    // Turnaround to the target, then its 3-bit ACK (bit 0 of `bits` is the turnaround clock).
    uint8_t bits = 0;
    pins_->clock_in(std::span(&bits, 1), 4, half_period_);
    const uint8_t ack = bits >> 1 & 0x7;
    if (ack != dap::kAckOk) {
        // WAIT, FAULT, or nothing there: no data phase; the line comes back to the host.
        turnaround_to_host();
        idle(kIdleAfterPacket);
        return ack;
    }
    if (read) {
        uint8_t word[5] = {};
        pins_->clock_in(word, 33, half_period_);
        const uint32_t value = uint32_t{word[0]} | uint32_t{word[1]} << 8 | uint32_t{word[2]} << 16 | uint32_t{word[3]} << 24;
        parity_error = (word[4] & 1) != swd_parity(value);
        data = value;
        turnaround_to_host();
    } else {
        turnaround_to_host();
        const uint8_t word[5] = {static_cast<uint8_t>(data), static_cast<uint8_t>(data >> 8),
                                 static_cast<uint8_t>(data >> 16), static_cast<uint8_t>(data >> 24),
                                 static_cast<uint8_t>(swd_parity(data))};
        pins_->clock_out(word, 33, half_period_);
    }
    idle(kIdleAfterPacket);
    return ack;
}

uint8_t BitbangProbe::packet_retried(bool ap, bool read, uint8_t address, uint32_t& data, bool& parity_error) {
    for (unsigned attempt = 0;; ++attempt) {
        const uint8_t ack = packet(ap, read, address, data, parity_error);
        if (ack != dap::kAckWait) return ack;
        ++wait_acks_;
        if (attempt >= wait_retries_) return ack;
    }
}

TransferResult BitbangProbe::execute(std::span<const Transfer> transfers) {
    TransferResult result;
    if (transfers.empty()) return result;
    size_t done = 0;             // transfers finished, in order
    bool posted = false;         // an AP read is on its way: the next AP read or RDBUFF brings its value
    bool last_was_write = false;
    auto stop = [&](uint8_t ack, bool parity_error) {
        result.completed = done;
        result.ack = ack;
        result.protocol_error = parity_error;
        idle(kIdleAfterQueue);
        return result;
    };
    // The posted read's value, by a DP RDBUFF read (which starts no new AP access).
    auto collect = [&]() -> bool {
        uint32_t value = 0;
        bool parity_error = false;
        const uint8_t ack = packet_retried(false, true, dp::kRdbuff, value, parity_error);
        posted = false;
        if (ack != dap::kAckOk || parity_error) {
            stop(ack, parity_error);
            return false;
        }
        result.reads.push_back(value);
        ++done;
        return true;
    };

    for (size_t i = 0; i < transfers.size(); ++i) {
        const Transfer& t = transfers[i];
        const bool plain_ap_read = t.kind == Transfer::Kind::Read && t.ap;
        if (posted && !plain_ap_read && !collect()) return result;
        uint32_t data = t.value;
        bool parity_error = false;
        switch (t.kind) {
            case Transfer::Kind::SetMatchMask:
                match_mask_ = t.value;
                ++done;
                break;
            case Transfer::Kind::Read: {
                const uint8_t ack = packet_retried(t.ap, true, t.address, data, parity_error);
                if (ack != dap::kAckOk || parity_error) return stop(ack, parity_error);
                if (t.ap) {
                    if (posted) {  // this packet brought the previous AP read's value
                        result.reads.push_back(data);
                        ++done;
                    }
                    posted = true;
                } else {
                    result.reads.push_back(data);
                    ++done;
                }
                last_was_write = false;
                break;
            }
            case Transfer::Kind::ReadUntil: {
                uint8_t ack = dap::kAckOk;
                if (t.ap) ack = packet_retried(true, true, t.address, data, parity_error);  // posts the first
                bool matched = false;
                for (unsigned retry = 0; ack == dap::kAckOk && !parity_error; ++retry) {
                    ack = packet_retried(t.ap, true, t.address, data, parity_error);  // an AP read brings the one before
                    if (ack != dap::kAckOk || parity_error) break;
                    if ((data & match_mask_) == t.value) {
                        matched = true;
                        break;
                    }
                    if (retry >= match_retries_) break;
                }
                if (ack != dap::kAckOk || parity_error) return stop(ack, parity_error);
                if (!matched) {
                    stop(dap::kAckOk, false);
                    result.value_mismatch = true;
                    return result;
                }
                ++done;
                last_was_write = false;
                break;
            }
            case Transfer::Kind::Write: {
                const uint8_t ack = packet_retried(t.ap, false, t.address, data, parity_error);
                if (ack != dap::kAckOk) return stop(ack, false);
                ++done;
                last_was_write = true;
                break;
            }
        }
    }
    if (posted) {
        if (!collect()) return result;
    } else if (last_was_write) {
        // A write's FAULT (or the WAIT of the access it started) shows on the next packet: ask now.
        uint32_t ignored = 0;
        bool parity_error = false;
        const uint8_t ack = packet_retried(false, true, dp::kRdbuff, ignored, parity_error);
        if (ack != dap::kAckOk) return stop(ack, false);
    }
    result.completed = done;
    idle(kIdleAfterQueue);
    return result;
}

TransferResult BitbangProbe::read_block(bool ap, uint8_t address, size_t count) {
    std::vector<Transfer> transfers(count, Transfer::read(ap, address));
    return execute(transfers);
}

TransferResult BitbangProbe::write_block(bool ap, uint8_t address, std::span<const uint32_t> values) {
    std::vector<Transfer> transfers;
    transfers.reserve(values.size());
    for (uint32_t value : values) transfers.push_back(Transfer::write(ap, address, value));
    return execute(transfers);
}

void BitbangProbe::write_abort(uint32_t value) {
    bool parity_error = false;
    const uint8_t ack = packet(false, false, dp::kAbort, value, parity_error);
    idle(kIdleAfterQueue);
    if (ack != dap::kAckOk)
        throw Error(ErrorKind::Io,
                    fmt::format("the chip did not take a write of its debug port's ABORT register over SWD ({})",
                                ack_words(ack)),
                    "check the wiring, the board's power and that nothing holds it in reset; then try again");
}

uint32_t BitbangProbe::connect() {
    pins_->set_swclk(false);
    pins_->drive_swdio(true);
    connected_ = true;
    select_swd();
    uint32_t dpidr = 0;
    bool parity_error = false;
    const uint8_t ack = packet(false, true, dp::kDpidr, dpidr, parity_error);
    idle(kIdleAfterQueue);
    if (ack == dap::kAckNone || ack == 0)
        throw Error(ErrorKind::NotFound, fmt::format("no chip answers over SWD on {}", pins_->describe()),
                    "check the wiring (SWDIO, SWCLK and GND between the Pi and the board's SWD header; nRESET if "
                    "used), that the board is powered (its 3.3 V, not only the Pi's), and that SWD is not disabled "
                    "by the firmware (then connect under reset)");
    if (ack != dap::kAckOk)
        throw Error(ErrorKind::Protocol,
                    fmt::format("the chip answered the first SWD read (DPIDR) with {} instead of OK", ack_words(ack)),
                    "power the board off and on, and try again");
    if (parity_error)
        throw Error(ErrorKind::Protocol, "the chip's DPIDR came with a parity error over SWD",
                    "the SWD wires are noisy or too long: shorten them (under 20 cm), twist each with a ground wire, "
                    "or lower the SWD clock");
    return dpidr;
}

void BitbangProbe::disconnect() {
    connected_ = false;
    pins_->release_all();
}

}  // namespace mcuflash::link::swd
