#pragma once
// Client for Katapult (formerly CanBoot) on a byte stream: USB-CDC (usb-katapult_... ports) or a UART
// (250000 baud by default), what `flashtool.py -d PORT -f klipper.bin` does.
//
// Katapult erases as it goes: the first block written into a flash page (STM32) or sector (RP2040)
// erases it, later blocks must follow in address order, and SEND_EOF writes what the device still
// buffers. So the image goes in as one stream from its first erase unit up (a whole-image device to
// the plan), and is verified by reading every block back with REQUEST_BLOCK: Katapult has no checksum
// command. Nothing below the application start Katapult reports is ever written.
#include <cstdint>
#include <optional>
#include <string>

#include "protocol/bootloader.hpp"
#include "protocol/katapult/codec.hpp"

namespace mcuflash::protocol::katapult {

ProtocolInfo protocol_info();

// What the exchange needed beyond one try per command, for tests and `--trace` readers.
struct ClientStats {
    uint64_t commands = 0;
    uint64_t retries = 0;      // commands sent again (no answer, NACK, command error, damaged answer)
    uint64_t nacks = 0;
    uint64_t errors = 0;       // command error answers
    uint64_t busy = 0;         // busy answers waited out
    uint64_t stale = 0;        // answers to an earlier command (or block) skipped
};

class Client : public Bootloader {
public:
    Client(link::ByteLink& link, ConnectOptions options);

    DeviceInfo connect() override;
    Capabilities capabilities() const override;
    // Katapult takes a stream from the application start up: write() is one stream too.
    void write(uint32_t address, std::span<const uint8_t> data) override;
    void write_image(uint32_t address, std::span<const uint8_t> bytes) override;
    std::vector<uint8_t> read(uint32_t address, uint32_t length) override;
    // COMPLETE: Katapult answers, then starts the application 100 ms later.
    void start_application() override;
    // After info/read/verify the board stays in Katapult (as `flashtool.py -s` leaves it).
    void leave() override {}

    // GET_CANBUS_ID: the node's CAN UUID; nullopt when the build is not a CAN one (it answers a
    // command error on USB and UART).
    std::optional<uint64_t> canbus_uuid();

    const ConnectInfo& reported() const { return reported_; }
    // SEND_EOF's answer after the last write: the pages Katapult says it wrote.
    std::optional<uint32_t> pages_written() const { return pages_written_; }
    const ClientStats& stats() const { return stats_; }

    static constexpr int kTries = 5;                // per command, as flashtool.py
    static constexpr long kAnswerTimeoutMs = 2000;  // flashtool.py's
    static constexpr long kBlockTimeoutMs = 5000;   // SEND_BLOCK may erase a 128 KiB sector first
    static constexpr int kMaxBusy = 20;             // busy answers waited out per command
    static constexpr long kBusyPauseMs = 100;
    static constexpr long kRetryPauseMs = 100;

private:
    // Sends a command and returns the ACK's payload after the acknowledged command word. `accept`
    // tells an answer to this command from a late one to an earlier (another block address).
    // Retries a bounded number of times; then throws Timeout (no answer) or Protocol.
    Bytes exchange(uint8_t command, const Bytes& payload, const std::string& what, int tries, long timeout_ms,
                   const std::function<bool(const Bytes&)>& accept = {});
    Bytes connect_exchange(int tries);
    // Klipper on a UART takes its serial bootloader request and reboots into Katapult; false when
    // the link is no serial line (nothing was sent).
    bool ask_klipper_to_reboot();
    Bytes connect_after_request(int tries);
    void resolve_chip(DeviceInfo& info);
    // Among chips sharing one MCU name, the one whose flash size the chip's own register reports;
    // nullptr when that cannot be read.
    const targets::Chip* chip_by_flash_size(const std::vector<const targets::Chip*>& candidates);
    uint32_t stream_start(uint32_t address) const;

    link::ByteLink& link_;
    ConnectOptions options_;
    FrameReader reader_;
    ConnectInfo reported_;
    bool connected_ = false;
    const targets::Chip* chip_ = nullptr;
    uint32_t app_end_ = 0;
    std::optional<uint32_t> pages_written_;
    ClientStats stats_;
};

}  // namespace mcuflash::protocol::katapult
