#pragma once
// Katapult (formerly CanBoot) as its firmware runs on a USB-CDC or UART board, from Arksine/katapult's
// src/command.c, src/flashcmd.c and the chips' flash.c: frames `01 88 cmd len payload crc16 99 03`,
// CONNECT, SEND_BLOCK, SEND_EOF, REQUEST_BLOCK, COMPLETE (the application starts 100 ms after the
// answer) and GET_CANBUS_ID (a command error on a USB or UART build).
//
// Flash, as the firmware writes it:
// - STM32 (and, as an approximation, LPC176x): a block at the start of an erase unit erases the unit
//   unless it is erased already or holds exactly this block with the rest erased (a retransmission);
//   a block inside a unit must land on erased flash or equal what is there; every block is compared
//   after programming. SEND_EOF answers the number of units started.
// - RP2040: blocks are gathered in a 256-byte page buffer, written out when a block for another page
//   arrives or at SEND_EOF; a page at the start of a 4 KiB sector erases the sector first.
// Nothing below the application start is written (a command error instead), and the bootloader's own
// region is a protected range of the flash model.
//
// The frame parser keeps Katapult's behaviour after a damaged frame: command_find_block() answers one
// NACK and then looks for the next 0x01 from the start of its buffer, where the damaged frame's own
// header still is, so it never consumes it and stops taking commands until the next reset. Set
// `KatapultConfig::skip_damaged_frames` to model a parser that drops the damaged header instead.
//
// Resets: ResetCause::Pin stands for what enters Katapult (the double reset; a pty or in-process
// link opening the port): the bootloader starts afresh. ResetCause::PowerOn is a plain restart:
// Katapult starts the application when the application area holds one, else stays.
#include <cstdint>
#include <deque>
#include <optional>
#include <string>
#include <vector>

#include "sim/device.hpp"
#include "sim/flash_memory.hpp"
#include "targets/knowledge.hpp"

namespace mcuflash::sim::katapult {

// Katapult's bytes, written here from protocol.md and command.h rather than shared with the client.
namespace bytes {
constexpr uint8_t kStx1 = 0x01, kStx2 = 0x88, kSync2 = 0x99, kSync = 0x03;
constexpr uint8_t kConnect = 0x11, kRxBlock = 0x12, kRxEof = 0x13, kReqBlock = 0x14, kComplete = 0x15,
                  kGetCanbusId = 0x16;
constexpr uint8_t kAck = 0xA0, kNack = 0xF1, kCommandError = 0xF2, kBusy = 0xF3;
constexpr uint32_t kProtoVersion = 0x00010100;  // 1.1.0
constexpr size_t kMessageMin = 8, kMessageMax = 128;
}  // namespace bytes

struct KatapultConfig {
    uint32_t block_size = 64;  // CONFIG_BLOCK_SIZE: 64 in every Katapult build; 128/256/512 for tests
    std::string mcu;           // CONFIG_MCU; "" = what Katapult's Kconfig names the chip
    std::string version = "v0.0.1-mcuflash-sim";
    bool skip_damaged_frames = false;
    // Faults the byte-level injector cannot make: answer busy (0xF3) to every Nth command instead of
    // running it (0: never; Katapult itself never answers busy).
    uint32_t busy_every = 0;
    std::optional<uint64_t> canbus_uuid;  // a CAN build: GET_CANBUS_ID answers it
};

struct KatapultStats {
    uint64_t frames = 0;         // valid frames dispatched
    uint64_t nacks = 0;
    uint64_t command_errors = 0;
    uint64_t busy = 0;
    uint64_t blocks_written = 0;
    uint64_t retransmissions = 0;  // SEND_BLOCKs that found their block in place already
    bool wedged = false;           // the parser stopped at a damaged frame (until reset)
};

// CONFIG_MCU of Katapult's Kconfig for a knowledge-base chip ("stm32f103xe" for every F103).
std::string katapult_mcu_name(const targets::Chip& chip);

class KatapultDevice : public Device {
public:
    KatapultDevice(const targets::Chip& chip, const targets::Bootloader& bootloader, const DeviceOptions& options,
                   KatapultConfig config = {});

    void receive(uint8_t byte, Clock::time_point now) override;
    void tick(Clock::time_point now) override;
    std::optional<Clock::time_point> next_deadline() const override;
    void reset(ResetCause cause, Clock::time_point now) override;
    bool in_bootloader() const override { return mode_ == Mode::Bootloader; }
    std::string describe() const override;
    link::SerialSettings line_settings() const override { return {baud_, link::Parity::None}; }
    FlashMemory& flash() override { return flash_; }

    uint32_t app_start() const { return app_start_; }
    const KatapultConfig& config() const { return config_; }
    const KatapultStats& stats() const { return stats_; }
    const std::string& mcu() const { return mcu_; }

private:
    enum class Mode { Bootloader, Application };
    enum class Model { Pages, PageBuffer };

    void process(Clock::time_point now);
    void dispatch(uint8_t command, const std::vector<uint8_t>& frame, Clock::time_point now);
    void respond(uint8_t type, const std::vector<uint8_t>& payload, Clock::time_point now);
    void ack(uint8_t command, const std::vector<uint8_t>& rest, Clock::time_point now);
    void command_error(Clock::time_point now) {
        ++stats_.command_errors;
        respond(bytes::kCommandError, {}, now);
    }

    // flash_write_block(): 0 or a negative reason; `busy` gets the flash time.
    int write_block(uint32_t address, const uint8_t* data, Clock::duration& busy);
    int write_block_pages(uint32_t address, const uint8_t* data, Clock::duration& busy);
    int write_block_buffered(uint32_t address, const uint8_t* data, Clock::duration& busy);
    int flush_buffer(Clock::duration& busy);
    bool erased(uint32_t address, uint32_t length) const;
    bool application_valid() const;

    const targets::Chip chip_;
    const std::string bootloader_name_;
    KatapultConfig config_;
    std::string mcu_;
    uint32_t baud_;
    uint32_t app_start_;
    Model model_;
    FlashMemory flash_;
    KatapultStats stats_;

    Mode mode_ = Mode::Bootloader;
    std::vector<uint8_t> rx_;
    bool need_sync_ = false, need_valid_ = false;
    uint32_t page_write_count_ = 0;
    uint64_t commands_seen_ = 0;
    // Answers wait while the flash is busy; bytes arriving meanwhile wait in the receive buffer.
    std::optional<Clock::time_point> busy_until_;
    std::vector<uint8_t> pending_answer_;
    std::optional<Clock::time_point> jump_at_;  // COMPLETE: the application starts then
    // RP2040's page buffer.
    bool buffer_full_ = false;
    uint32_t buffer_address_ = 0;
    std::vector<uint8_t> buffer_;
};

}  // namespace mcuflash::sim::katapult
