#pragma once
// What the SAMD21 and SAMD51 drivers share: the NVM controller's erase and page-write loops, each a
// stream of queued MEM-AP accesses with the error flags read after every command, and the checks of
// those flags. A family says where its flags are and how it queues one command (samd21.cpp, samd51.cpp).
#include "link/swd/adiv5.hpp"
#include "protocol/swd/flash_driver.hpp"

namespace mcuflash::protocol::swd {

// What both SAMD drivers do through the Device Service Unit (DSU, 0x41002000): the chip erase a
// debugger may ask for (CTRL.CE, then STATUSA.DONE and FAIL), which is also the only way past the
// security bit (STATUSB.PROT).
class SamDsuFlash : public FlashDriver {
public:
    explicit SamDsuFlash(link::swd::Adiv5& dap) : dap_(dap) {}
    void chip_erase() override;
    ReadoutProtection readout_protection() override;
    void remove_readout_protection() override { chip_erase(); }

private:
    link::swd::Adiv5& dap_;
};

struct SamNvmFamily {
    std::string name;         // "SAMD21 NVM controller"
    std::string unit;         // the erase unit's word: "row", "block"
    std::string ready;        // the flag the probe waits for: "INTFLAG.READY"
    std::string user_row;     // "user row", "user page"
    uint32_t default_page = 0;
    uint32_t pages_per_unit = 0;
    uint32_t flags_register = 0;  // read after each command: the error flags
    uint32_t error_flags = 0;
    uint32_t lock_error = 0;      // the flag of a region BOOTPROT or the lock bits protect
    std::string (*flag_words)(uint32_t flags) = nullptr;  // the error flags in words
};

class SamNvmFlash : public SamDsuFlash {
public:
    SamNvmFlash(const DriverContext& context, SamNvmFamily family);

    std::string name() const override { return family_.name; }
    uint32_t write_unit() const override { return page_; }
    std::vector<targets::EraseUnitRange> layout() const override;
    void erase(std::span<const targets::EraseUnitRange> units, const ProgramProgress& progress) override;
    void program(uint32_t address, std::span<const uint8_t> data, const ProgramProgress& progress) override;

protected:
    // Sets the controller up for manual page writes (once, before the first command).
    virtual void prepare_controller() = 0;
    // Queues the erase of the unit at `address`, waiting until the controller is ready again.
    virtual void queue_unit_erase(link::swd::MemoryBatch& batch, uint32_t address, std::string waiting_for) = 0;
    // Queues a page write of `bytes` at `address` through the page buffer, cleared first when `clear`.
    virtual void queue_page_write(link::swd::MemoryBatch& batch, uint32_t address, std::span<const uint8_t> bytes,
                                  bool clear, std::string waiting_for) = 0;

    void prepare();
    void check(uint32_t flags, const std::string& what, uint32_t address) const;
    // Runs a batch that rewrote the user row (page): checks the flags read at `flag_reads`, then that it
    // reads back as `expected`.
    void run_user_row_write(link::swd::MemoryBatch& batch, const std::vector<size_t>& flag_reads,
                            const std::string& what, const std::vector<uint8_t>& expected);

    DriverContext c_;
    SamNvmFamily family_;
    uint32_t page_, unit_;

private:
    bool prepared_ = false;
};

// Little-endian words of `bytes` (a multiple of 4 long), as the page buffer takes them.
std::vector<uint32_t> little_endian_words(std::span<const uint8_t> bytes);

}  // namespace mcuflash::protocol::swd
