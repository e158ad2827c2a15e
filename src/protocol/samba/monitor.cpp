#include "protocol/samba/monitor.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cctype>
#include <thread>

#include "core/hexdump.hpp"

namespace mcuflash::protocol::samba {

using core::Deadline;
using core::Error;
using core::ErrorKind;
using core::hex_address;

namespace {

// BOSSA waits this long for answers that come at once (binary mode, version, autobaud echoes).
constexpr long kQuickMs = 100;
// One USB full-speed poll interval: enough for the host controller to close the current packet.
constexpr auto kUsbPacketGap = std::chrono::milliseconds(1);
// The Arduino/Adafruit SAMD bootloaders return corrupt data for USB reads of 64 bytes or more.
constexpr uint32_t kArduinoUsbReadChunk = 63;
constexpr int kXmodemRetries = 5;
// Fills whatever S transfer the monitor may be inside (we never send more than this at once).
constexpr size_t kResyncFill = Monitor::kMaxBuffer + 64;
constexpr int kResyncProbes = 3;

const char* kNoMonitorHint =
    "the board must be in its SAM-BA bootloader: mcuflash tries the 1200-baud touch first; if the port "
    "still does not answer, double-tap the reset button (SAMD21/SAMD51 boards: the LED pulses), or on an "
    "Arduino Due press ERASE then RESET, and use the port that appears then";

}  // namespace

Monitor::Monitor(link::ByteLink& link, Transport transport, link::WarningSink warn)
    : link_(link), transport_(transport), warn_(std::move(warn)) {}

// ---- bytes ----

void Monitor::usb_packet_gap() {
    if (transport_ == Transport::Usb) link_.pause(kUsbPacketGap);
}

void Monitor::command(const std::string& text) {
    link_.write({reinterpret_cast<const uint8_t*>(text.data()), text.size()});
}

Bytes Monitor::read_exact(size_t count, const std::string& what, long timeout_ms) {
    Bytes out(count);
    link_.read_exact(out, Deadline::after_ms(timeout_ms), what.c_str());
    return out;
}

void Monitor::expect_echo(char letter, const std::string& what, long timeout_ms) {
    Bytes answer = read_exact(3, what, timeout_ms);
    if (answer[0] != static_cast<uint8_t>(letter) || answer[1] != '\n' || answer[2] != '\r')
        throw Error(ErrorKind::Protocol,
                    fmt::format("{}: expected \"{}\\n\\r\", got {}", what, letter, core::hex_bytes(answer)));
}

std::string Monitor::read_line(long first_byte_timeout_ms) {
    // The version line ends with "\n\r"; a monitor that ends it otherwise is read until it pauses.
    std::string text;
    Deadline deadline = Deadline::after_ms(first_byte_timeout_ms);
    for (;;) {
        uint8_t byte = 0;
        if (link_.read_some({&byte, 1}, deadline) == 0) break;
        text.push_back(static_cast<char>(byte));
        if (text.size() >= 2 && text.compare(text.size() - 2, 2, "\n\r") == 0) break;
        if (text.size() > 256) break;
        deadline = Deadline::after_ms(kQuickMs);
    }
    return text;
}

// ---- starting ----

void Monitor::autobaud() {
    // The ROM measures the baud rate on 0x80 bytes and starts once it sees '#'; the echoes and the
    // prompt that follow differ between monitors and are not needed.
    for (uint8_t byte : {uint8_t(0x80), uint8_t(0x80), uint8_t('#')}) {
        link_.write({&byte, 1});
        uint8_t echo[4];
        link_.read_some(echo, Deadline::after_ms(kQuickMs));
    }
    link_.pause(std::chrono::milliseconds(kQuickMs / 4));
    link_.drain_input();
}

void Monitor::start() {
    link_.drain_input();
    if (transport_ == Transport::Uart) autobaud();
    command(binary_mode());
    // "\n\r" from a monitor that was in terminal mode; nothing from some already in binary mode.
    uint8_t answer[2];
    link_.read_some(answer, Deadline::after_ms(kQuickMs));
    link_.pause(std::chrono::milliseconds(5));
    link_.drain_input();

    command(samba::version());
    std::string line = read_line(kAnswerTimeoutMs);
    // Printable text only: what follows the line ends it.
    auto end = std::find_if(line.begin(), line.end(), [](char c) { return !std::isprint(static_cast<unsigned char>(c)); });
    std::string text(line.begin(), end);
    // A port that echoes what it is sent (a loopback, a modem) answers "V#" with "V#": no monitor.
    if (text.rfind("V#", 0) == 0 || text.rfind("N#", 0) == 0) text.clear();
    if (text.empty())
        throw Error(ErrorKind::NotFound,
                    fmt::format("no SAM-BA monitor answers on {} ({} mode): {}", link_.describe(),
                                transport_ == Transport::Usb ? "USB" : "UART",
                                line.empty() ? "no answer to V#" : "V# answered " + core::hex_bytes({reinterpret_cast<const uint8_t*>(line.data()), line.size()})),
                    kNoMonitorHint);
    version_ = text;
    extensions_ = parse_extensions(version_);
    // Every bootloader that announces extensions is an Arduino/Adafruit SAMD one (BOSSA's rule).
    read_chunk_ = transport_ == Transport::Usb && version_.find("[Arduino:") != std::string::npos ? kArduinoUsbReadChunk : 0;
}

// ---- words ----

void Monitor::write_word(uint32_t address, uint32_t value) {
    command(samba::write_word(address, value));
    usb_packet_gap();
}

uint32_t Monitor::read_word(uint32_t address) {
    command(samba::read_word(address));
    Bytes b = read_exact(4, fmt::format("reading the word at {}", hex_address(address)));
    return uint32_t(b[0]) | uint32_t(b[1]) << 8 | uint32_t(b[2]) << 16 | uint32_t(b[3]) << 24;
}

void Monitor::write_byte(uint32_t address, uint8_t value) {
    command(samba::write_byte(address, value));
    usb_packet_gap();
}

uint8_t Monitor::read_byte(uint32_t address) {
    command(samba::read_byte(address));
    return read_exact(1, fmt::format("reading the byte at {}", hex_address(address)))[0];
}

void Monitor::go(uint32_t address) {
    command(samba::go(address));
    // A command in the same USB packet as G is lost by the monitors.
    usb_packet_gap();
}

// ---- data ----

void Monitor::send(uint32_t address, std::span<const uint8_t> data) {
    std::string what = fmt::format("sending {} bytes to {}", data.size(), hex_address(address));
    command(send_data(address, static_cast<uint32_t>(data.size())));
    if (transport_ == Transport::Usb) {
        usb_packet_gap();
        link_.write(data);
    } else {
        send_xmodem(data, what);
    }
}

Bytes Monitor::receive_chunk(uint32_t address, uint32_t length) {
    std::string what = fmt::format("reading {} bytes at {}", length, hex_address(address));
    command(receive_data(address, length));
    if (transport_ == Transport::Uart) return receive_xmodem(length, what);
    return read_exact(length, what);
}

Bytes Monitor::receive(uint32_t address, uint32_t length) {
    Bytes out;
    out.reserve(length);
    while (out.size() < length) {
        uint32_t at = address + static_cast<uint32_t>(out.size());
        uint32_t chunk = length - static_cast<uint32_t>(out.size());
        if (read_chunk_) chunk = std::min(chunk, read_chunk_);
        // The ROM monitors' USB code hangs on reads that fill whole 64-byte packets (BOSSA reads the
        // first byte of a power-of-two read separately); keep every read off a multiple of 64.
        if (transport_ == Transport::Usb && !read_chunk_ && chunk >= 64 && chunk % 64 == 0) chunk -= 1;
        Bytes part = receive_chunk(at, chunk);
        out.insert(out.end(), part.begin(), part.end());
    }
    return out;
}

void Monitor::send_xmodem(std::span<const uint8_t> data, const std::string& what) {
    // The receiving monitor asks with 'C' (CRC mode) for the first block.
    Deadline deadline = Deadline::after_ms(kAnswerTimeoutMs);
    for (;;) {
        uint8_t byte = 0;
        if (link_.read_some({&byte, 1}, deadline) == 0)
            throw Error(ErrorKind::Timeout, fmt::format("{}: the monitor did not ask for XMODEM data ('C')", what));
        if (byte == kCrcRequest) break;
    }
    uint8_t number = 1;
    for (size_t offset = 0; offset < data.size(); offset += kXmodemBlock, ++number) {
        Bytes block = xmodem_block(number, data.subspan(offset, std::min(kXmodemBlock, data.size() - offset)));
        for (int attempt = 0;; ++attempt) {
            link_.write(block);
            uint8_t answer = 0;
            size_t got = link_.read_some({&answer, 1}, Deadline::after_ms(kAnswerTimeoutMs));
            if (got == 1 && answer == kAck) break;
            if (got == 1 && answer == kCan)
                throw Error(ErrorKind::Protocol, fmt::format("{}: the monitor cancelled the XMODEM transfer", what));
            if (attempt + 1 >= kXmodemRetries)
                throw Error(got ? ErrorKind::Protocol : ErrorKind::Timeout,
                            fmt::format("{}: XMODEM block {} not acknowledged after {} tries", what, number, kXmodemRetries));
            link_.drain_input();
        }
    }
    for (int attempt = 0;; ++attempt) {
        const uint8_t eot = kEot;
        link_.write({&eot, 1});
        uint8_t answer = 0;
        if (link_.read_some({&answer, 1}, Deadline::after_ms(kAnswerTimeoutMs)) == 1 && answer == kAck) return;
        if (attempt + 1 >= kXmodemRetries)
            throw Error(ErrorKind::Timeout, fmt::format("{}: end of XMODEM transfer not acknowledged", what));
    }
}

Bytes Monitor::receive_xmodem(uint32_t length, const std::string& what) {
    Bytes out;
    uint8_t number = 1;
    const size_t blocks = (length + kXmodemBlock - 1) / kXmodemBlock;
    for (size_t i = 0; i < blocks; ++i, ++number) {
        for (int attempt = 0;; ++attempt) {
            // 'C' asks for the first block in CRC mode; NAK asks for a block again.
            const uint8_t ask = i == 0 ? kCrcRequest : kNak;
            if (i == 0 || attempt > 0) link_.write({&ask, 1});
            Bytes block(3 + kXmodemBlock + 2);
            size_t got = 0;
            Deadline deadline = Deadline::after_ms(kAnswerTimeoutMs);
            while (got < block.size()) {
                size_t n = link_.read_some(std::span(block).subspan(got), deadline);
                if (n == 0) break;
                got += n;
            }
            if (got == block.size()) {
                if (auto data = parse_xmodem_block(block, number)) {
                    const uint8_t ack = kAck;
                    link_.write({&ack, 1});
                    out.insert(out.end(), data->begin(), data->end());
                    break;
                }
                // Our ACK of the previous block was lost and the monitor sent it again.
                if (i > 0 && parse_xmodem_block(block, static_cast<uint8_t>(number - 1))) {
                    const uint8_t ack = kAck;
                    link_.write({&ack, 1});
                    --attempt;
                    continue;
                }
            }
            if (attempt + 1 >= kXmodemRetries)
                throw Error(got ? ErrorKind::Protocol : ErrorKind::Timeout,
                            fmt::format("{}: XMODEM block {} not received intact after {} tries", what, number,
                                        kXmodemRetries));
            link_.pause(std::chrono::milliseconds(20));
            link_.drain_input();
        }
    }
    for (int attempt = 0;; ++attempt) {
        uint8_t byte = 0;
        if (link_.read_some({&byte, 1}, Deadline::after_ms(kAnswerTimeoutMs)) == 1 && byte == kEot) {
            const uint8_t ack = kAck;
            link_.write({&ack, 1});
            break;
        }
        if (attempt + 1 >= kXmodemRetries)
            throw Error(ErrorKind::Timeout, fmt::format("{}: no end of XMODEM transfer", what));
        const uint8_t nak = kNak;
        link_.write({&nak, 1});
    }
    out.resize(length);
    return out;
}

// ---- extensions ----

void Monitor::copy_to_flash(uint32_t sram, uint32_t flash, uint32_t length) {
    std::string what = fmt::format("copying {} bytes from {} to flash at {} (Y)", length, hex_address(sram), hex_address(flash));
    command(copy_source(sram));
    expect_echo('Y', what, kAnswerTimeoutMs);
    command(samba::copy_to_flash(flash, length));
    expect_echo('Y', what, kLongTimeoutMs);
}

uint16_t Monitor::checksum(uint32_t address, uint32_t length) {
    std::string what = fmt::format("checksum of {} bytes at {} (Z)", length, hex_address(address));
    command(samba::checksum(address, length));
    Bytes answer = read_exact(12, what, kLongTimeoutMs);
    std::string text(answer.begin(), answer.end());
    auto value = parse_checksum_answer(text);
    if (!value || text.compare(10, 2, "\n\r") != 0)
        throw Error(ErrorKind::Protocol, fmt::format("{}: malformed answer {}", what, core::hex_bytes(answer)));
    return static_cast<uint16_t>(*value);
}

// ---- recovery ----

void Monitor::resynchronise(const Error& failure) {
    ++resynchronisations_;
    if (warn_) warn_(fmt::format("{}; resynchronising with the SAM-BA monitor and retrying", failure.what()));
    // In UART mode an XMODEM transfer may be open on either side: CAN ends it. Then 'N' bytes
    // complete any S transfer the monitor still waits data for (they land in the SRAM buffer it
    // named); after that each 'N' names the command anew and one '#' runs the last (binary mode,
    // harmless). A filler of '#' would run every byte the line damages into a command letter with
    // address 0: one '#' read as 'X' erases all flash from 0.
    if (transport_ == Transport::Uart) {
        const Bytes cancel(3, kCan);
        link_.write(cancel);
    }
    Bytes fill(kResyncFill, 'N');
    fill.back() = '#';
    link_.write(fill);
    for (int probe = 0; probe < kResyncProbes; ++probe) {
        link_.pause(std::chrono::milliseconds(50));
        link_.drain_input();
        try {
            std::string previous = version_;
            start();
            if (version_ == previous) return;
        } catch (const Error&) {
            // still answering something else; try again
        }
    }
    throw Error(ErrorKind::Timeout,
                fmt::format("{}; the SAM-BA monitor does not answer again after {} attempts", failure.what(), kResyncProbes),
                "reset the board into its bootloader (1200-baud touch, or double-tap reset) and retry");
}

}  // namespace mcuflash::protocol::samba
