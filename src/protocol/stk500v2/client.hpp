#pragma once
// STK500v2 client for the Arduino Mega "wiring" bootloader stk500boot_v2 (avrdude -c wiring).
// Session (framing, sequence numbers, retries) is meant to serve the ISP programmer role too.
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>

#include "core/error.hpp"
#include "protocol/bootloader.hpp"
#include "protocol/retry.hpp"
#include "protocol/stk500v2/codec.hpp"
#include "targets/knowledge.hpp"

namespace mcuflash::protocol::stk500v2 {

ProtocolInfo protocol_info();

// One STK500v2 conversation over a byte link: framing, sequence numbers, stale answers, retries.
// Shared by the bootloader client and the ISP programmer.
class Session {
public:
    Session(link::ByteLink& link, link::WarningSink warn);

    // Sends `body` and returns its checked answer (status OK, `body_size` if given). A garbled or
    // missing answer, or the device's CKSUM_ERROR, is retried `retries` times (the command must be
    // safe to repeat); a status other than OK throws core::Error(Protocol) with the status in words.
    Frame command(const Bytes& body, const char* what, std::optional<size_t> body_size = std::nullopt,
                  long timeout_ms = kCommandTimeoutMs, int retries = kRetries);
    // One attempt: the answer with the right sequence number whatever its status; throws
    // core::Error(Timeout) when none comes, core::Error(Protocol) for garbled frames.
    Frame exchange(const Bytes& body, const char* what, long timeout_ms);

    // Sign-on probing after a reset: SIGN_ON every kSyncProbeMs with sequence number 1 until an
    // answer comes or `window_ms` passes. Returns the answer (and leaves the sequence at 2).
    std::optional<Frame> probe_sign_on(long window_ms);

    // After a failed exchange the device may be inside a frame: send enough filler for it to give
    // the frame up, and forget what arrives meanwhile.
    void flush_device_parser();
    // The device was reset: its byte counter starts again (see monitor_guard_fill).
    void device_was_reset();

    uint8_t next_seq() const { return seq_; }
    link::ByteLink& link() { return link_; }

    // What the device may take for a command beyond the wire time of the frames (stk500boot_v2 writes
    // a page in about 10 ms; USB serial adapters add up to 16 ms): a lost answer costs this, not 1 s.
    static constexpr long kCommandTimeoutMs = 300;
    static constexpr long kSyncProbeMs = 200;  // avrdude's sign-on retry interval
    static constexpr int kRetries = 4;         // avrdude: 5 attempts

private:
    void send(const Bytes& frame);
    std::optional<Frame> read_frame(uint8_t seq, core::Deadline deadline, const char* what);

    link::ByteLink& link_;
    link::WarningSink warn_;
    FrameDecoder decoder_;
    Bytes pending_;  // bytes read but not yet fed to the decoder
    uint8_t seq_ = 1;
    // Bytes the device may have received since its reset: at least min, at most max.
    uint64_t received_min_ = 0, received_max_ = 0;
};

// The bootloader role: stk500boot_v2 and compatible STK500v2 bootloaders.
class Client : public Bootloader {
public:
    Client(link::ByteLink& link, ConnectOptions options);
    ~Client() override;

    DeviceInfo connect() override;
    Capabilities capabilities() const override;
    void erase(uint32_t address, uint32_t length) override;
    void write(uint32_t address, std::span<const uint8_t> data) override;
    std::vector<uint8_t> read(uint32_t address, uint32_t length) override;
    void start_application() override;

    // Bytes per READ_FLASH_ISP: one page; the answer (page + 3) fits the 275-byte frame limit.
    static constexpr uint32_t kReadBlock = 256;

private:
    void synchronise();
    void identify(DeviceInfo& info);
    // A bootloader that reports another chip's signature (the Arduino M0's): fills `info` and returns
    // true when the signature and version are one data/bootloaders.toml names in reports_signature.
    bool identify_impersonator(DeviceInfo& info, const std::vector<uint8_t>& signature, uint8_t major, uint8_t minor);
    uint8_t get_parameter(uint8_t id);
    // A transmission problem: gives up once they exceed an allowance plus a share of what worked.
    void count_failure(const core::Error& failure, uint32_t at);
    void load_address(uint32_t byte_address);
    void recover(const core::Error& failure, const char* what, uint32_t at);
    // Runs `step`, retrying it after transmission problems; after too many, resets the device
    // (recover) and throws RestartNeeded: the caller starts its operation again.
    struct RestartNeeded {};
    void with_recovery(const char* what, uint32_t at, const std::function<void()>& step);

    link::ByteLink& link_;
    ConnectOptions options_;
    Session session_;
    const targets::Chip* chip_ = nullptr;
    // How the bootloader takes pages (writes.hpp): stk500boot_v2 erases the page its erase pointer
    // names at every write; the Arduino M0 erases its whole application region at once. Chosen by
    // identify().
    class Writes;
    class ErasePointerWrites;
    class ApplicationRegionWrites;
    std::unique_ptr<Writes> writes_;
    std::string sign_on_;  // what SIGN_ON answered ("AVRISP_2" for stk500boot_v2)
    bool extended_addressing_ = false;  // LOAD_ADDRESS bit 31 (parts above 64K words)
    // The device's flash address register (auto-increments by each read/program); nullopt = unknown.
    std::optional<uint32_t> device_address_;
    static constexpr int kMaxRecoveriesInARow = 5;
    int recoveries_in_a_row_ = 0;
    // Resets in the whole session: rewriting after a reset must not loop for ever.
    static constexpr int kMaxRecoveries = 10;
    int recoveries_total_ = 0;
    FailureBudget failure_budget_;  // bounds the whole session's retries, not only one step's
};

}  // namespace mcuflash::protocol::stk500v2
