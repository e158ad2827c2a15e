#pragma once
// A SAM-BA monitor as a device: Atmel's ROM monitor on the SAM3X/SAM4E, or the Arduino Zero / Adafruit
// SAMD51 flash bootloaders that copy it (with the X, Y and Z extensions), on the native USB port
// (`Transport::Usb`: data after S/R is raw bytes) or on a UART (`Transport::Uart`: the monitor first
// waits for the autobaud sequence ending in '#', and S/R data travels as XMODEM-CRC blocks).
//
// Commands (protocols.md section 3): an ASCII letter, hex numbers separated by ',', '#' runs it:
//   N# binary mode ("\n\r")   T# terminal mode ("\n\r")   V# version line
//   Wa,v# Ha,v# Oa,v# store a word, halfword, byte     wa,4# ha,4# oa,4# load one (binary answer)
//   Sa,n# n bytes into memory     Ra,n# n bytes out of memory     Ga# call the routine at a
//   Xa# erase a..end   Ys,0# Yd,n# copy SRAM to flash   Za,n# CRC16     (Arduino/Adafruit only)
// The parser is the monitor's own: hex digits shift into the current number, ',' moves it to the
// first argument, any other character is the command, '#' runs it. Unknown commands do nothing.
//
// G is not executed as Thumb code: it is taken as a call of the word-copy applet BOSSA (and mcuflash)
// upload, whose parameter block G points at: [a] stack, [a+4] entry (odd: Thumb), [a+8] destination,
// [a+12] source, [a+16] word count. The words are copied over the bus, so into the page buffer or
// latch when the destination is flash.
//
// Quirks of the real monitors that are modelled: the SAM3X ROM's R/w/h/o read flash as zeros (reads
// through the applet work); the Arduino/Adafruit bootloaders return garbled data for USB reads of 64
// bytes or more (BOSSA reads 63 bytes at a time); an access to an undecoded address stops the monitor
// until the next reset.
#include <cstdint>
#include <deque>
#include <optional>
#include <string>
#include <vector>

#include "sim/device.hpp"
#include "sim/samba/sam_chip.hpp"
#include "targets/knowledge.hpp"

namespace mcuflash::sim::samba {

enum class Transport { Usb, Uart };

struct MonitorStats {
    uint64_t commands = 0;
    uint64_t applet_calls = 0;
    uint64_t xmodem_blocks_refused = 0;  // NAKs sent for damaged or missing blocks
    uint64_t garbled_usb_reads = 0;      // R of 64 bytes or more on an Arduino/Adafruit bootloader over USB
    uint64_t bus_faults = 0;
    uint64_t software_resets = 0;
};

class SambaMonitorDevice : public Device {
public:
    // XMODEM receiver timing: a block that stops arriving is dropped and asked for again after
    // kXmodemByteTimeout; with nothing arriving, 'C' (or NAK) is repeated every kXmodemRequestInterval.
    static constexpr auto kXmodemByteTimeout = std::chrono::milliseconds(500);
    static constexpr auto kXmodemRequestInterval = std::chrono::seconds(3);
    static constexpr int kXmodemRequests = 10;
    // A sender whose receiver goes silent gives up after this long.
    static constexpr auto kXmodemSenderTimeout = std::chrono::seconds(10);
    // The Arduino/Adafruit bootloaders' USB reads are right up to this many bytes.
    static constexpr uint32_t kUsbReadLimit = 63;

    SambaMonitorDevice(const targets::Chip& chip, const targets::Bootloader& bootloader, const DeviceOptions& options,
                       Transport transport);

    void receive(uint8_t byte, Clock::time_point now) override;
    void tick(Clock::time_point now) override;
    std::optional<Clock::time_point> next_deadline() const override;
    void reset(ResetCause cause, Clock::time_point now) override;
    bool in_bootloader() const override { return state_ != State::Application && state_ != State::Hung; }
    std::string describe() const override;
    link::SerialSettings line_settings() const override { return {baud_, link::Parity::None}; }
    FlashMemory& flash() override { return chip_.flash(); }

    SamChip& chip() { return chip_; }
    Transport transport() const { return transport_; }
    const std::string& version() const { return version_; }
    bool has_extensions() const { return extensions_; }
    bool hung() const { return state_ == State::Hung; }
    bool application_running() const { return state_ == State::Application; }
    const MonitorStats& stats() const { return stats_; }

private:
    enum class State { Autobaud, Command, RawData, XmodemReceive, XmodemSend, Hung, Application };
    enum class SendPhase { WaitStart, WaitAck, WaitEotAck };

    void consume(uint8_t byte, Clock::time_point now);
    void command_byte(uint8_t byte, Clock::time_point now);
    void execute(uint8_t command, uint32_t first, uint32_t number, Clock::time_point now);
    void answer_read(uint32_t address, unsigned size, Clock::time_point now);
    uint8_t monitor_read_byte(uint32_t address, Clock::time_point now);
    void start_receive(uint32_t address, uint32_t length, Clock::time_point now);
    void start_send(uint32_t address, uint32_t length, Clock::time_point now);
    void call_applet(uint32_t address, Clock::time_point now);
    void erase_to_end(uint32_t address, Clock::time_point now);
    void copy_to_flash(uint32_t flash_address, uint32_t length, Clock::time_point now);
    void checksum(uint32_t address, uint32_t length, Clock::time_point now);

    void xmodem_receive_byte(uint8_t byte, Clock::time_point now);
    void xmodem_send_byte(uint8_t byte, Clock::time_point now);
    void send_block(Clock::time_point now);
    void xmodem_timeout(Clock::time_point now);
    void back_to_commands();

    void answer(const std::string& text, Clock::time_point now);
    // The CPU is busy (X, Y) until `until`; `then` goes out when it is done, input waits meanwhile.
    void busy_until(Clock::time_point until, const std::string& then, Clock::time_point now);
    void end_busy(Clock::time_point now);
    void bus_fault(const BusFault& fault);
    void software_reset(Clock::time_point now);
    void start_monitor();

    SamChip chip_;
    const std::string bootloader_name_;
    const Transport transport_;
    const uint32_t baud_;
    const std::string version_;
    const bool extensions_;  // X, Y, Z and the USB read quirk: the Arduino/Adafruit bootloaders
    MonitorStats stats_;

    State state_ = State::Application;  // until the first reset starts the monitor
    bool terminal_mode_ = false;
    // Command parser.
    uint8_t command_ = 0;
    uint32_t first_ = 0, number_ = 0;
    // S in USB mode.
    uint32_t data_address_ = 0, data_remaining_ = 0;
    // XMODEM receiver (S on a UART).
    uint8_t expected_block_ = 1;
    std::vector<uint8_t> block_;
    int idle_requests_ = 0;
    // XMODEM sender (R on a UART).
    std::vector<uint8_t> outgoing_;
    size_t block_index_ = 0;
    SendPhase send_phase_ = SendPhase::WaitStart;
    std::optional<Clock::time_point> xmodem_deadline_;
    // Y's source buffer.
    uint32_t copy_source_ = 0;
    // Busy CPU (X, Y).
    std::optional<Clock::time_point> busy_until_;
    std::string after_busy_;
    std::deque<uint8_t> pending_input_;
};

}  // namespace mcuflash::sim::samba
