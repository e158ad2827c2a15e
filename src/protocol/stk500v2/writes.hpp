#pragma once
// How an STK500v2 bootloader takes pages: the client's two personalities (internal to the client).
#include <map>

#include "protocol/stk500v2/client.hpp"

namespace mcuflash::protocol::stk500v2 {

class Client::Writes {
public:
    explicit Writes(Client& client) : client_(client) {}
    virtual ~Writes() = default;
    virtual Capabilities capabilities() const = 0;
    virtual void erase(uint32_t address, uint32_t length) = 0;
    virtual void write(uint32_t address, std::span<const uint8_t> data) = 0;
    // The device was reset (a sign-on, a recovery): what it keeps of earlier writes is unknown.
    virtual void device_was_reset() {}

protected:
    Client& client_;
};

// stk500boot_v2 (the Arduino Mega's): every PROGRAM_FLASH_ISP erases the page its own erase pointer
// names, then advances it, whatever the address written; CHIP_ERASE_ISP (answered FAILED) sets the
// pointer back to 0. So pages go in address order from 0, and pages on the way are rewritten with
// what they held.
class Client::ErasePointerWrites : public Client::Writes {
public:
    // `erase_limit`: it never erases at or above this address (FLASHEND - 2 * BOOTSIZE + 1 in
    // stk500boot.c).
    ErasePointerWrites(Client& client, uint32_t erase_limit) : Writes(client), erase_limit_(erase_limit) {}
    Capabilities capabilities() const override;
    void erase(uint32_t address, uint32_t length) override;
    void write(uint32_t address, std::span<const uint8_t> data) override;
    void device_was_reset() override { erase_known_ = false; }

private:
    // Writes one page where the device's erase pointer is; keeps the erase and address models.
    void program_page(uint32_t at, std::span<const uint8_t> page);
    // Brings the erase pointer to `at`, writing back what the pages on the way must hold, and reading
    // back those the host never wrote (the plan verifies its own pages).
    void erase_pointer_to(uint32_t at);
    void pin_erase_pointer();
    uint32_t page_size() const;

    uint32_t erase_limit_;
    // A lower bound of the device's pointer (a retried write may have moved it one page further:
    // harmless); unknown until CHIP_ERASE_ISP pinned it after a sign-on.
    uint32_t erase_pointer_ = 0;
    bool erase_known_ = false;
    // What each page below the erase limit must hold once rewritten on the erase pointer's way:
    // what the host wrote there, else what it held when first read.
    struct PageContent {
        Bytes bytes;
        bool from_host = false;
    };
    std::map<uint32_t, PageContent> contents_;
};

// The Arduino M0's bootloader: the application region [app_start, flash end) is erased as a whole by
// CHIP_ERASE_ISP, and rows are written at absolute addresses (no erase pointer).
class Client::ApplicationRegionWrites : public Client::Writes {
public:
    ApplicationRegionWrites(Client& client, uint32_t app_start) : Writes(client), app_start_(app_start) {}
    Capabilities capabilities() const override;
    void erase(uint32_t address, uint32_t length) override;
    void write(uint32_t address, std::span<const uint8_t> data) override;

private:
    uint32_t app_start_;
};

}  // namespace mcuflash::protocol::stk500v2
