#pragma once
// ARM ADIv5 on top of a debug probe (ARM IHI 0031, "ARM Debug Interface Architecture Specification"):
// the SW-DP's power-up handshake, SELECT caching, sticky errors, and a MEM-AP's memory access (the
// AHB-AP of a Cortex-M onto the chip's bus) with TAR auto-increment kept inside its 1 KiB wrap.
//
// Memory operations are queued in a MemoryBatch and done in one go (the probe packs them into as few
// USB round trips as it can); read32()/write32() and friends are one-operation batches. A failure
// is a core::Error naming what was being done and the address:
// - FAULT: the DP's CTRL/STAT is read and its sticky errors cleared through ABORT; Protocol error
//   ("the chip refused ... at 0x08000000": unmapped address, protection, a core in reset).
// - WAIT past the probe's retries: the transfer is aborted (ABORT.DAPABORT); Timeout.
// - no acknowledge: the chip has gone (power, reset held, wiring); Io.
// - a wait for a register value that never came (a flash controller that stays busy): Timeout.
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "link/swd/debug_probe.hpp"

namespace mcuflash::link::swd {

class Adiv5;

// A queue of memory operations through the MEM-AP, done by run() in order.
class MemoryBatch {
public:
    explicit MemoryBatch(Adiv5& dap);

    void write32(uint32_t address, uint32_t value);
    void write16(uint32_t address, uint16_t value);  // on its byte lanes (address bit 1)
    void write8(uint32_t address, uint8_t value);
    // Consecutive words (halfwords) from `address` up, TAR set again at each 1 KiB boundary.
    void write_words(uint32_t address, std::span<const uint32_t> values);
    void write_halfwords(uint32_t address, std::span<const uint16_t> values);
    // Queues a read; returns its index in what run() returns.
    size_t read32(uint32_t address);
    // `count` consecutive words from `address`; returns the index of the first.
    size_t read_words(uint32_t address, size_t count);
    // The probe reads the word at `address` until (word & mask) == value (its match retries); the
    // batch fails with Timeout when that never comes. `what`: "the flash controller to finish".
    void wait_until(uint32_t address, uint32_t mask, uint32_t value, std::string what);

    // Does it all; returns the words read. Throws core::Error as the header says, with `what` (e.g.
    // "writing the page at 0x08004000") and the address of the operation that failed.
    std::vector<uint32_t> run(const std::string& what);
    bool empty() const { return transfers_.empty(); }
    size_t size() const { return transfers_.size(); }

    // Where each queued transfer came from, for error messages.
    struct Origin {
        uint32_t address = 0;
        const char* operation = "";  // "reading", "writing", "waiting for"
        int wait = -1;               // index into waits_ for a wait_until
    };

private:
    enum class Mode : uint8_t { Single, Increment };
    void select_bank(uint8_t bank);
    void set_csw(uint32_t size_bits, Mode mode);
    void set_tar(uint32_t address);
    void push(Transfer transfer, Origin origin);
    void single_write(uint32_t address, uint32_t lanes, uint32_t size_bits);

    Adiv5& dap_;
    std::vector<Transfer> transfers_;
    std::vector<Origin> origins_;
    std::vector<std::string> waits_;
    size_t reads_ = 0;
    // The state the MEM-AP will be in after what is queued so far.
    std::optional<uint32_t> select_, csw_, tar_;
};

class Adiv5 {
public:
    explicit Adiv5(DebugProbe& probe, uint8_t ap = 0);

    // Connects the probe (line reset, DPIDR), clears sticky errors, powers the debug and system
    // domains up (CTRL/STAT CxxxPWRUPREQ until both ACKs), then reads the AP's IDR and checks it is a
    // MEM-AP. Returns DPIDR.
    uint32_t connect();
    uint32_t dpidr() const { return dpidr_; }
    uint32_t ap_idr() const { return ap_idr_; }
    DebugProbe& probe() { return probe_; }

    // DP and AP registers (AP: `address` the full register offset, 0x00..0xFC; SELECT is cached).
    uint32_t read_dp(uint8_t address);
    void write_dp(uint8_t address, uint32_t value);
    uint32_t read_ap(uint8_t address);
    void write_ap(uint8_t address, uint32_t value);

    MemoryBatch batch() { return MemoryBatch(*this); }
    uint32_t read32(uint32_t address);
    void write32(uint32_t address, uint32_t value);
    void write16(uint32_t address, uint16_t value);
    void write8(uint32_t address, uint8_t value);
    // Bytes from any address (read as the words that hold them).
    std::vector<uint8_t> read_bytes(uint32_t address, size_t length);

    // After a reset of the chip (or an error) nothing cached may be trusted.
    void forget_state();
    // Reads CTRL/STAT and clears sticky errors (ABORT); returns CTRL/STAT as it was.
    uint32_t clear_errors();

private:
    friend class MemoryBatch;
    [[noreturn]] void fail(const TransferResult& result, const std::vector<MemoryBatch::Origin>& origins,
                           const std::vector<std::string>& waits, const std::string& what);

    DebugProbe& probe_;
    uint8_t ap_;
    uint32_t dpidr_ = 0, ap_idr_ = 0;
    std::optional<uint32_t> select_, csw_, tar_;
    uint32_t csw_base_ = 0x23000000;  // HPROT: privileged data access, master type debugger
};

// MEM-AP register offsets and CSW fields.
namespace mem_ap {
constexpr uint8_t kCsw = 0x00, kTar = 0x04, kDrw = 0x0C, kCfg = 0xF4, kBase = 0xF8, kIdr = 0xFC;
constexpr uint32_t kCswSize8 = 0, kCswSize16 = 1, kCswSize32 = 2;
constexpr uint32_t kCswAddrIncSingle = 1u << 4;
}  // namespace mem_ap

// DP CTRL/STAT bits, ABORT bits.
namespace ctrl_stat {
constexpr uint32_t kCsysPwrUpAck = 1u << 31, kCsysPwrUpReq = 1u << 30, kCdbgPwrUpAck = 1u << 29,
                   kCdbgPwrUpReq = 1u << 28, kWdataErr = 1u << 7, kStickyErr = 1u << 5, kStickyCmp = 1u << 4,
                   kStickyOrun = 1u << 1;
}
namespace abort_bits {
constexpr uint32_t kDapAbort = 1u << 0, kStkCmpClr = 1u << 1, kStkErrClr = 1u << 2, kWdErrClr = 1u << 3,
                   kOrunErrClr = 1u << 4;
constexpr uint32_t kClearAll = kStkCmpClr | kStkErrClr | kWdErrClr | kOrunErrClr;
}  // namespace abort_bits

}  // namespace mcuflash::link::swd
