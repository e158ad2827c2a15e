#pragma once
// How a DFU device takes and gives flash contents: ST's DfuSe (erase commands, a settable address
// pointer, leave by a zero-length download) or plain DFU 1.1 (one download from the alternate
// setting's base, erasing as it goes; one upload from the same base). The client chooses one at connect.
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "protocol/dfu/layout.hpp"
#include "protocol/dfu/requests.hpp"

namespace mcuflash::protocol::dfu {

class Transfer {
public:
    virtual ~Transfer() = default;
    // At connect: the device in dfuIDLE, nothing open.
    virtual void start() = 0;
    virtual void erase(uint32_t address, uint32_t length) = 0;
    virtual void write(uint32_t address, std::span<const uint8_t> data) = 0;
    virtual std::vector<uint8_t> read(uint32_t address, uint32_t length) = 0;
    // Starts the application; returns how the device answered, in words.
    virtual std::string leave() = 0;
};

class DfuseTransfer : public Transfer {
public:
    DfuseTransfer(DfuRequests& requests, MemoryLayout layout, uint16_t transfer_size, uint32_t flash_base)
        : requests_(requests), layout_(std::move(layout)), transfer_size_(transfer_size), flash_base_(flash_base) {}
    void start() override;
    void erase(uint32_t address, uint32_t length) override;
    void write(uint32_t address, std::span<const uint8_t> data) override;
    std::vector<uint8_t> read(uint32_t address, uint32_t length) override;
    std::string leave() override;
    // Read unprotect (0x92): the chip mass-erases its flash, then resets (it leaves the bus).
    void read_unprotect();

private:
    void command(std::span<const uint8_t> bytes, const char* what, uint32_t address);
    void set_address(uint32_t address);
    // Whether the open download or upload goes on at `address` with the next block number (three
    // transfers saved per block over setting the address again).
    enum class Mode { Unknown, Idle, Downloading, Uploading };
    bool continues(Mode mode, uint32_t address) const;
    // Brings the device to dfuIDLE (from anything) or keeps dfuDNLOAD-IDLE when `downloading_ok`.
    void ready(bool downloading_ok);
    // Runs `step`; any error makes the mode Unknown before it goes on.
    template <typename Step>
    void guarded(Step step) {
        try {
            step();
        } catch (...) {
            mode_ = Mode::Unknown;
            throw;
        }
    }

    DfuRequests& requests_;
    MemoryLayout layout_;
    uint16_t transfer_size_;
    uint32_t flash_base_;
    // Any error makes the mode Unknown: the next operation starts from dfuIDLE.
    Mode mode_ = Mode::Unknown;
    uint32_t pointer_ = 0;
    uint16_t next_block_ = 0;  // 0: the pointer is not known
};

class PlainTransfer : public Transfer {
public:
    // `base`: where block 0 of a download goes and an upload starts.
    PlainTransfer(DfuRequests& requests, uint32_t base, uint16_t transfer_size)
        : requests_(requests), base_(base), transfer_size_(transfer_size) {}
    void start() override;
    void erase(uint32_t address, uint32_t length) override;  // throws: it erases as it writes
    void write(uint32_t address, std::span<const uint8_t> data) override;
    std::vector<uint8_t> read(uint32_t address, uint32_t length) override;
    std::string leave() override;

private:
    void end_upload();

    DfuRequests& requests_;
    uint32_t base_;
    uint16_t transfer_size_;
    // The open download: what it holds from the base (gaps as erased bytes), how much of it the device
    // has taken, and whether the next block must start it again from block 0 (after a failure).
    bool downloading_ = false;
    std::vector<uint8_t> stream_;
    size_t sent_ = 0;
    bool restart_ = false;
    uint16_t block_ = 0;
    // Reads: one upload from the base, kept open and cached (reads come page by page).
    bool uploading_ = false, upload_ended_ = false;
    uint16_t upload_block_ = 0;
    std::vector<uint8_t> upload_cache_;
};

}  // namespace mcuflash::protocol::dfu
