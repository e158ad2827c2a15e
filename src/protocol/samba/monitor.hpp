#pragma once
// The SAM-BA monitor on the wire: what BOSSA's Samba class does, written from the protocol notes
// (protocols.md section 3). Two transports share the commands:
// - USB (CDC ACM): data after S/R is raw bytes. The monitors mis-parse a command that shares a USB
//   packet with the data after it, so the host waits one USB poll interval (1 ms) between them.
//   Arduino/Adafruit SAMD bootloaders corrupt reads of 64 bytes or more: reads go in 63-byte chunks.
// - UART: autobaud (0x80 0x80 '#') first; data after S/R travels as XMODEM-CRC blocks.
// The flash controller drivers (nvmctrl_d21, nvmctrl_d51, eefc) are built on these commands.
#include <cstdint>
#include <span>
#include <string>

#include "core/error.hpp"
#include "link/byte_link.hpp"
#include "protocol/samba/codec.hpp"

namespace mcuflash::protocol::samba {

enum class Transport { Usb, Uart };

class Monitor {
public:
    Monitor(link::ByteLink& link, Transport transport, link::WarningSink warn);

    // Autobaud (UART), binary mode and the version string. Throws NotFound when nothing answers
    // like a SAM-BA monitor.
    void start();
    const std::string& version_text() const { return version_; }
    const Extensions& extensions() const { return extensions_; }
    Transport transport() const { return transport_; }
    link::ByteLink& link() { return link_; }

    void write_word(uint32_t address, uint32_t value);  // W: no answer
    uint32_t read_word(uint32_t address);               // w
    void write_byte(uint32_t address, uint8_t value);   // O: no answer
    uint8_t read_byte(uint32_t address);                // o
    void send(uint32_t address, std::span<const uint8_t> data);  // S: host -> device memory
    Bytes receive(uint32_t address, uint32_t length);            // R: device memory -> host
    void go(uint32_t address);  // G: SP from [address], PC from [address + 4]; returns to the monitor
    // Extensions (only when extensions() announces them). X (erase to the end of flash) is not
    // used: see Client::erase.
    void copy_to_flash(uint32_t sram, uint32_t flash, uint32_t length);  // Y src,0 then Y dst,len
    uint16_t checksum(uint32_t address, uint32_t length);             // Z: CRC16/XMODEM on the device

    // Brings the monitor back to waiting for a command after a failed exchange (the device may be
    // in the middle of an S transfer, or hold half a command), and checks it answers again.
    void resynchronise(const core::Error& failure);
    uint64_t resynchronisations() const { return resynchronisations_; }

    static constexpr uint32_t kMaxBuffer = 4096;  // largest Y copy and Z range the bootloaders take
    static constexpr long kAnswerTimeoutMs = 1000;
    static constexpr long kLongTimeoutMs = 5000;  // Y (program 4 KiB), Z

private:
    void command(const std::string& text);
    // After a command whose data or successor must not share its USB packet (BOSSA's flush).
    void usb_packet_gap();
    Bytes read_exact(size_t count, const std::string& what, long timeout_ms = kAnswerTimeoutMs);
    // "X\n\r"-style answers: the letter, then "\n\r".
    void expect_echo(char letter, const std::string& what, long timeout_ms);
    std::string read_line(long first_byte_timeout_ms);
    void autobaud();
    void send_xmodem(std::span<const uint8_t> data, const std::string& what);
    Bytes receive_xmodem(uint32_t length, const std::string& what);
    Bytes receive_chunk(uint32_t address, uint32_t length);

    link::ByteLink& link_;
    Transport transport_;
    link::WarningSink warn_;
    std::string version_;
    Extensions extensions_;
    uint32_t read_chunk_ = 0;  // 0 = no limit
    uint64_t resynchronisations_ = 0;
};

}  // namespace mcuflash::protocol::samba
